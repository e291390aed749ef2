//! Crashes and shutdowns: `kill -9` with tasks queued and running, then a restart; SIGTERM
//! with a task running.

mod common;
use common::*;
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test]
async fn kill_nine_then_restart_settles_every_task_once() {
    let config = "[queue]\nlease_seconds = 1.0\ndefault_concurrency = 2\npoll_interval_ms = 100\nretry_backoff_ms = 50\n";
    let mut s = Server::start(config, &[]).await;
    let u = s.user(1000);
    let mut ids = Vec::new();
    for prompt in [
        "upstream sleep=1500",
        "upstream sleep=1500",
        "upstream sleep=1500",
        "sleep=200",
        "fail=broken_input",
        "upstream sleep=800",
    ] {
        ids.push(
            s.create(&u.key, &banana(prompt)).await.1["data"]["id"]
                .as_i64()
                .unwrap(),
        );
    }
    let veo = s
        .create(
            &u.key,
            &json!({"category": "veo", "content": {"prompt": "upstream sleep=1500"}}),
        )
        .await
        .1["data"]["id"]
        .as_i64()
        .unwrap();
    ids.push(veo);
    // Wait until tasks are running upstream, then kill the server without warning.
    let deadline = Instant::now() + Duration::from_secs(20);
    let saved_before_kill: Vec<i64> = loop {
        let (_, b) = s
            .get(
                &u.key,
                &format!(
                    "/api/open/tasks/batch?ids={}",
                    ids.iter()
                        .map(|i| i.to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                ),
            )
            .await;
        // Running upstream with the job id saved (the executor reports 10 % right after).
        let saved: Vec<i64> = b["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["status"] == 2 && t["progress"] == 10)
            .map(|t| t["id"].as_i64().unwrap())
            .collect();
        if saved.len() >= 2 {
            break saved;
        }
        assert!(Instant::now() < deadline, "tasks never started: {b}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    s.kill9();
    let mid = s.balance(&u);
    assert_eq!(
        mid["balance"].as_i64().unwrap(),
        1000 - mid["ledger"]["reserve"].as_i64().unwrap()
            + mid["ledger"]["refund"].as_i64().unwrap()
    );

    s.spawn().await;
    let mut expected_refund = 0;
    for id in &ids {
        let t = s.wait_terminal(&u.key, *id, Duration::from_secs(60)).await;
        let status = t["status"].as_i64().unwrap();
        if *id == ids[4] {
            assert_eq!(status, 4, "{t}");
            expected_refund += t["credits_cost"].as_i64().unwrap();
        } else {
            assert_eq!(status, 3, "{t}");
        }
    }
    // A job whose id was saved before the crash is resumed, never submitted again. A task
    // killed between submitting and saving its job id (a window no server can close without
    // the upstream's help) may submit once more, never more.
    for id in ids.iter().filter(|id| **id != ids[3] && **id != ids[4]) {
        let log = std::fs::read_to_string(s.dir.0.join(id.to_string())).unwrap();
        if saved_before_kill.contains(id) {
            assert_eq!(log.lines().count(), 1, "task {id} submitted {log:?}");
        } else {
            assert!(
                (1..=2).contains(&log.lines().count()),
                "task {id} submitted {log:?}"
            );
        }
    }
    let b = s.balance(&u);
    let reserve = b["ledger"]["reserve"].as_i64().unwrap();
    assert_eq!(reserve, 6 * 10 + 60);
    assert_eq!(b["ledger"]["refund"], expected_refund);
    assert_eq!(
        b["ledger"]["capture"].as_i64().unwrap(),
        reserve - expected_refund
    );
    assert_eq!(
        b["balance"].as_i64().unwrap(),
        1000 - reserve + expected_refund
    );
}

#[tokio::test]
async fn sigterm_lets_running_work_finish() {
    let config = "[queue]\nshutdown_grace_seconds = 10\ndefault_concurrency = 1\n";
    let mut s = Server::start(config, &[]).await;
    let u = s.user(100);
    let running = s.create(&u.key, &banana("sleep=1500")).await.1["data"]["id"]
        .as_i64()
        .unwrap();
    let queued = s.create(&u.key, &banana("sleep=10")).await.1["data"]["id"]
        .as_i64()
        .unwrap();
    while s.get(&u.key, &format!("/api/open/tasks/{running}")).await.1["data"]["status"] != 2 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = s.terminate();
    assert!(status.success(), "{status}");
    let (tasks, _) = s.admin(&["tasks"]);
    let by_id = |id: i64| {
        tasks["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(
        by_id(running)["status"],
        3,
        "the running task finished within the grace period"
    );
    assert_eq!(
        by_id(queued)["status"],
        1,
        "nothing new was claimed after the signal"
    );
    s.spawn().await;
    assert_eq!(
        s.wait_terminal(&u.key, queued, Duration::from_secs(20))
            .await["status"],
        3
    );
}

#[tokio::test]
async fn shutdown_past_the_grace_period_releases_the_task_for_the_next_start() {
    let config = "[queue]\nshutdown_grace_seconds = 0.3\nlease_seconds = 60\n";
    let mut s = Server::start(config, &[]).await;
    let u = s.user(100);
    let id = s.create(&u.key, &banana("upstream sleep=3000")).await.1["data"]["id"]
        .as_i64()
        .unwrap();
    while s.get(&u.key, &format!("/api/open/tasks/{id}")).await.1["data"]["progress"] != 10 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(s.terminate().success());
    s.spawn().await;
    // The lease is 60 s; only the release lets this finish quickly.
    let t = s.wait_terminal(&u.key, id, Duration::from_secs(20)).await;
    assert_eq!(t["status"], 3);
    let log = std::fs::read_to_string(s.dir.0.join(id.to_string())).unwrap();
    assert_eq!(log.lines().count(), 1, "resumed, not resubmitted");
    assert_eq!(s.balance(&u)["ledger"]["capture"], 10);
}
