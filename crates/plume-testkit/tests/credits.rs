//! The ledger under concurrency, idempotency, retries, time limits and failures.

mod common;
use common::*;
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test]
async fn two_hundred_concurrent_creates_against_a_balance_for_one_hundred() {
    let s = Server::start("[queue]\ndefault_concurrency = 4\n", &[]).await;
    let u = s.user(500); // remove-bg costs 5: exactly 100 tasks
    let up = s.upload(&u.key, png(16, 16), "in.png").await;
    let url = up.1["data"]["file_url"].as_str().unwrap().to_string();
    let body = json!({"category": "remove-bg", "content": {"imageUrls": [url]}});
    let (accepted, refused) = race_creates(&[&s], &u.key, &body, 200).await;
    assert_eq!((accepted.len(), refused), (100, 100));
    let b = s.balance(&u);
    assert_eq!(b["balance"], 0);
    assert_ledger_adds_up(&b, false);
    for id in &accepted {
        assert_eq!(
            s.wait_terminal(&u.key, *id, Duration::from_secs(60)).await["status"],
            3
        );
    }
    let b = s.balance(&u);
    assert_eq!(b["balance"], 0);
    assert_eq!(
        b["ledger"],
        json!({"topup": 500, "reserve": 500, "capture": 500, "refund": 0})
    );
}

#[tokio::test]
async fn idempotency_key_gives_one_task_and_one_charge() {
    let s = Server::start("", &[]).await;
    let u = s.user(100);
    let send = |body: Value, key: &'static str| {
        let req = s
            .http
            .post(s.url("/api/open/tasks"))
            .bearer_auth(&u.key)
            .header("Idempotency-Key", key)
            .json(&body);
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let first = send(banana("a cat"), "req-1").await;
    let again = send(banana("a cat"), "req-1").await;
    assert_eq!((first.0, again.0), (200, 200));
    assert_eq!(first.1["data"]["id"], again.1["data"]["id"]);
    assert_eq!(s.balance(&u)["balance"], 90, "charged once");
    let reused = send(banana("a dog"), "req-1").await;
    assert_error(&reused, 422, "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(s.balance(&u)["balance"], 90);
    // Another key is another task; a bad key is refused.
    assert_ne!(
        send(banana("a cat"), "req-2").await.1["data"]["id"],
        first.1["data"]["id"]
    );
    let bad = s
        .http
        .post(s.url("/api/open/tasks"))
        .bearer_auth(&u.key)
        .header("Idempotency-Key", "x".repeat(300))
        .json(&banana("a"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    // The same key from another account is independent.
    let v = s.user(100);
    let theirs = s
        .http
        .post(s.url("/api/open/tasks"))
        .bearer_auth(&v.key)
        .header("Idempotency-Key", "req-1")
        .json(&banana("a dog"))
        .send()
        .await
        .unwrap();
    assert_eq!(theirs.status(), 200);
}

#[tokio::test]
async fn failures_refund_and_retries_do_not_charge_twice() {
    let s = Server::start("[queue]\nretry_backoff_ms = 50\nmax_attempts = 3\n", &[]).await;
    let u = s.user(100);
    let failed = s
        .create(&u.key, &banana("fail=the_model_refused_this_prompt"))
        .await
        .1["data"]["id"]
        .as_i64()
        .unwrap();
    let retried = s.create(&u.key, &banana("retry=2")).await.1["data"]["id"]
        .as_i64()
        .unwrap();
    let exhausted = s.create(&u.key, &banana("retry=5")).await.1["data"]["id"]
        .as_i64()
        .unwrap();
    let f = s
        .wait_terminal(&u.key, failed, Duration::from_secs(20))
        .await;
    assert_eq!(f["status"], 4);
    assert_eq!(f["result"], "the model refused this prompt");
    assert_eq!(
        f["error"],
        json!({"code": "UPSTREAM_REFUSED", "message": "the model refused this prompt"})
    );
    assert_eq!(
        s.wait_terminal(&u.key, retried, Duration::from_secs(20))
            .await["status"],
        3
    );
    let e = s
        .wait_terminal(&u.key, exhausted, Duration::from_secs(20))
        .await;
    assert_eq!(e["status"], 4);
    assert_eq!(e["error"]["code"], "UPSTREAM_UNAVAILABLE");
    let b = s.balance(&u);
    assert_eq!(
        b["ledger"],
        json!({"topup": 100, "reserve": 30, "capture": 10, "refund": 20})
    );
    assert_eq!(b["balance"], 90);
}

#[tokio::test]
async fn a_task_past_its_time_limit_times_out_and_is_refunded() {
    let s = Server::start(
        "[time_limits]\nBanana2 = 1\n[queue]\npoll_interval_ms = 100\n",
        &[],
    )
    .await;
    let u = s.user(100);
    let id = s.create(&u.key, &banana("sleep=20000")).await.1["data"]["id"]
        .as_i64()
        .unwrap();
    let t = s.wait_terminal(&u.key, id, Duration::from_secs(20)).await;
    assert_eq!(t["status"], 5);
    assert_eq!(t["status_text"], "timeout");
    assert_eq!(t["error"]["code"], "TIMEOUT");
    let b = s.balance(&u);
    assert_eq!(b["balance"], 100);
    assert_eq!(b["ledger"]["refund"], 10);
    // A queued task that never got a worker times out too.
    let s2 = Server::start(
        "[time_limits]\nveo = 1\n[queue]\npoll_interval_ms = 100\n",
        &[("PLUME_TEST_EXECUTORS", "veo")],
    )
    .await;
    let u2 = s2.user(200);
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(
            s2.create(
                &u2.key,
                &json!({"category": "veo", "content": {"prompt": "sleep=5000"}}),
            )
            .await
            .1["data"]["id"]
                .as_i64()
                .unwrap(),
        );
    }
    for id in ids {
        assert_eq!(
            s2.wait_terminal(&u2.key, id, Duration::from_secs(20)).await["status"],
            5
        );
    }
    assert_eq!(s2.balance(&u2)["balance"], 200);
}
