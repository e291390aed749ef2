//! Seedream and Seedance through Ark against a fake upstream on loopback, every provider's
//! error classes, and restarts that resume upstream jobs instead of paying again.

mod common;
mod provider_support;
use common::*;
use plume_server::providers::media::b64_encode;
use plume_testkit::fake_upstream::{Canned, FakeUpstream};
use provider_support::*;
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test]
async fn seedream_request_partial_sets_and_errors() {
    let fake = FakeUpstream::start().await;
    let s = start(&fake, "").await;
    let u = s.user(10_000);
    let input = png(12, 12);
    let url = s.upload_url(&u.key, input.clone(), "in.png").await;
    let body = json!({"category": "seedream", "content": {"prompt": "把猫换成狗", "imageUrls": [url],
        "generationConfig": {"imageConfig": {"image_size": "2K", "aspectRatio": "16:9"}}}});
    let t = run(&s, &u.key, body.clone()).await;
    assert_eq!(t["status"], 3, "{t}");
    assert_eq!(
        (
            t["result"]["width"].as_u64(),
            t["result"]["height"].as_u64()
        ),
        (Some(40), Some(30))
    );
    let r = &fake.requests("ark.images")[0];
    assert_eq!(r.path, "/api/v3/images/generations");
    assert_eq!(r.headers["authorization"], format!("Bearer {ARK_KEY}"));
    assert_eq!(r.body["model"], "doubao-seedream-4-0-250828");
    assert_eq!(r.body["prompt"], "把猫换成狗");
    assert_eq!(r.body["size"], "2560x1440");
    assert_eq!(r.body["watermark"], false);
    assert_eq!(r.body["sequential_image_generation"], "disabled");
    assert_eq!(r.body["response_format"], "b64_json");
    // The public base is loopback, so the upstream could not fetch our URL: a data URI goes.
    assert_eq!(
        r.body["image"],
        format!("data:image/png;base64,{}", b64_encode(&input))
    );

    // A preset size without a ratio; text only.
    run(
        &s,
        &u.key,
        json!({"category": "seedream", "content": {"prompt": "a tree"}}),
    )
    .await;
    let r = &fake.requests("ark.images")[1];
    assert_eq!(r.body["size"], "2K");
    assert!(r.body.get("image").is_none());

    // An image set where one image failed: the rest succeed.
    fake.push(
        "ark.images",
        Canned::status(
            200,
            json!({"model": "m", "created": 1, "data": [
                {"b64_json": b64_encode(&png(16, 16)), "size": "16x16"},
                {"error": {"code": "OutputImageSensitiveContentDetected", "message": "moderated"}},
            ]}),
        ),
    );
    let t = run(
        &s,
        &u.key,
        json!({"category": "seedream", "content": {"prompt": "a set"}}),
    )
    .await;
    assert_eq!(t["status"], 3, "{t}");
    assert_eq!(t["result"]["imageUrls"].as_array().unwrap().len(), 1);

    let ark = |status: u16, code: &str| {
        Canned::status(
            status,
            json!({"error": {"code": code, "message": format!("{code} Request id: 0217"), "type": "BadRequest"}}),
        )
    };
    let cases: Vec<(Canned, i64, &str)> = vec![
        (
            ark(400, "InputTextSensitiveContentDetected"),
            4,
            "CONTENT_POLICY",
        ),
        (ark(400, "InvalidParameter"), 4, "INVALID_REQUEST"),
        (ark(401, "AuthenticationError"), 4, "UPSTREAM_AUTH"),
        (ark(403, "AccountOverdueError"), 4, "UPSTREAM_AUTH"),
        (
            ark(404, "InvalidEndpointOrModel.NotFound"),
            4,
            "MODEL_UNAVAILABLE",
        ),
        (ark(429, "ModelAccountIpmRateLimitExceeded"), 3, ""),
        (ark(500, "InternalServiceError"), 3, ""),
        (
            Canned::status(
                200,
                json!({"data": [{"error": {"code": "OutputImageSensitiveContentDetected", "message": "no"}}]}),
            ),
            4,
            "CONTENT_POLICY",
        ),
    ];
    for (i, (canned, status, code)) in cases.into_iter().enumerate() {
        fake.push("ark.images", canned);
        let t = run(
            &s,
            &u.key,
            json!({"category": "seedream", "content": {"prompt": format!("case {i}")}}),
        )
        .await;
        assert_eq!(t["status"], status, "case {i}: {t}");
        if status == 4 {
            assert_eq!(t["error"]["code"], code, "case {i}: {t}");
        }
    }
    ledger_settled(&s, &u);
}

#[tokio::test]
async fn seedance_tasks_from_queued_to_the_end() {
    let fake = FakeUpstream::start().await;
    let s = start(&fake, "").await;
    let u = s.user(10_000);
    let a = s.upload_url(&u.key, png(16, 16), "a.png").await;
    let b = s.upload_url(&u.key, png(16, 16), "b.png").await;
    let t = run(&s, &u.key, json!({"category": "seedance2", "content": {"prompt": "the boat drifts", "processing_mode": "first_last_frame",
        "imageUrls": [a, b], "videoConfig": {"model": "seedance2-10s", "aspectRatio": "16:9"}}})).await;
    assert_eq!(t["status"], 3, "{t}");
    let part = &t["result"]["parts"][0];
    assert_eq!(part["duration"], 7.5);
    assert!(part["posterUrl"].as_str().unwrap().starts_with(&s.base));
    let submit = &fake.requests("ark.submit")[0];
    assert_eq!(submit.path, "/api/v3/contents/generations/tasks");
    assert_eq!(submit.headers["authorization"], format!("Bearer {ARK_KEY}"));
    assert_eq!(submit.body["model"], "doubao-seedance-2-0-260128");
    assert_eq!(submit.body["duration"], 10);
    assert_eq!(submit.body["watermark"], false);
    assert!(submit.body.get("ratio").is_none(), "frames fix the ratio");
    let content = submit.body["content"].as_array().unwrap();
    assert_eq!(
        content[0],
        json!({"type": "text", "text": "the boat drifts"})
    );
    assert_eq!(content[1]["role"], "first_frame");
    assert_eq!(content[2]["role"], "last_frame");
    assert!(content[1]["image_url"]["url"]
        .as_str()
        .unwrap()
        .starts_with("data:image/png;base64,"));
    assert!(fake.count("ark.poll") >= 3, "queued, running, succeeded");

    // Text to video carries the ratio; references take their role.
    run(&s, &u.key, json!({"category": "seedance2", "content": {"prompt": "rain", "videoConfig": {"aspectRatio": "21:9"}}})).await;
    assert_eq!(fake.requests("ark.submit")[1].body["ratio"], "21:9");
    assert_eq!(fake.requests("ark.submit")[1].body["duration"], 5);

    let poll = |status: &str, error: Value| {
        Canned::status(
            200,
            json!({"id": "cgt-x", "status": status, "error": error}),
        )
    };
    fake.push(
        "ark.poll",
        poll(
            "failed",
            json!({"code": "OutputVideoSensitiveContentDetected", "message": "moderated"}),
        ),
    );
    let t = run(
        &s,
        &u.key,
        json!({"category": "seedance2", "content": {"prompt": "bad"}}),
    )
    .await;
    assert_eq!(
        (t["status"].as_i64(), t["error"]["code"].as_str()),
        (Some(4), Some("CONTENT_POLICY")),
        "{t}"
    );
    fake.push(
        "ark.poll",
        poll(
            "failed",
            json!({"code": "InternalServiceError", "message": "render crashed"}),
        ),
    );
    let t = run(
        &s,
        &u.key,
        json!({"category": "seedance2", "content": {"prompt": "crash"}}),
    )
    .await;
    assert_eq!(t["error"]["code"], "UPSTREAM_FAILED");
    assert!(t["result"].as_str().unwrap().contains("render crashed"));
    fake.push("ark.poll", poll("expired", Value::Null));
    let t = run(
        &s,
        &u.key,
        json!({"category": "seedance2", "content": {"prompt": "late"}}),
    )
    .await;
    assert_eq!(t["error"]["code"], "UPSTREAM_EXPIRED");

    // Cancelling a Plume task cancels the queued upstream task.
    fake.hold(true);
    let id = s
        .create(
            &u.key,
            &json!({"category": "seedance2", "content": {"prompt": "never mind"}}),
        )
        .await
        .1["data"]["id"]
        .as_i64()
        .unwrap();
    while s.get(&u.key, &format!("/api/open/tasks/{id}")).await.1["data"]["progress"]
        .as_i64()
        .unwrap()
        == 0
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let c = s
        .post(&u.key, &format!("/api/open/tasks/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(c.1["data"]["status"], 6);
    let deletes = fake.requests("ark.delete");
    assert_eq!(deletes.len(), 1);
    assert!(deletes[0]
        .path
        .starts_with("/api/v3/contents/generations/tasks/cgt-"));
    assert_eq!(
        deletes[0].headers["authorization"],
        format!("Bearer {ARK_KEY}")
    );
    fake.hold(false);
    ledger_settled(&s, &u);
}

#[tokio::test]
async fn a_restart_resumes_upstream_jobs_instead_of_paying_again() {
    let fake = FakeUpstream::start().await;
    let mut s = start(&fake, &veo_section(&fake)).await;
    let u = s.user(10_000);
    fake.hold(true);
    let veo = s
        .create(
            &u.key,
            &json!({"category": "veo", "content": {"prompt": "resume me"}}),
        )
        .await
        .1["data"]["id"]
        .as_i64()
        .unwrap();
    let seedance = s
        .create(
            &u.key,
            &json!({"category": "seedance2", "content": {"prompt": "resume me too"}}),
        )
        .await
        .1["data"]["id"]
        .as_i64()
        .unwrap();
    for id in [veo, seedance] {
        while s.get(&u.key, &format!("/api/open/tasks/{id}")).await.1["data"]["progress"]
            .as_i64()
            .unwrap()
            < 50
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    s.kill9();
    let polls_before = fake.count("veo.poll") + fake.count("ark.poll");
    s.spawn().await;
    fake.hold(false);
    for id in [veo, seedance] {
        let t = s.wait_terminal(&u.key, id, Duration::from_secs(30)).await;
        assert_eq!(t["status"], 3, "{t}\n{}", s.log());
    }
    assert_eq!(fake.count("veo.submit"), 1, "veo submitted once");
    assert_eq!(fake.count("ark.submit"), 1, "seedance submitted once");
    assert!(
        fake.count("veo.poll") + fake.count("ark.poll") > polls_before,
        "polling resumed"
    );
    let veo_polls = fake.requests("veo.poll");
    assert!(
        veo_polls.iter().all(|p| p.path == veo_polls[0].path),
        "the same operation throughout"
    );
    ledger_settled(&s, &u);
    assert_eq!(s.balance(&u)["ledger"]["capture"], 60 + 40);
}

#[tokio::test]
async fn every_provider_meets_every_error_class() {
    let fake = FakeUpstream::start().await;
    let s = start(&fake, &veo_section(&fake)).await;
    let u = s.user(100_000);
    let google = |code: u16, status: &str| json!({"error": {"code": code, "message": format!("{status} from the fake"), "status": status}});
    let ark = |_: u16, code: &str| json!({"error": {"code": code, "message": format!("{code} from the fake"), "type": "Error"}});
    type Envelope = fn(u16, &str) -> Value;
    let providers: Vec<(&str, &'static str, Value, Envelope, [&str; 6])> = vec![
        (
            "Banana2",
            "gemini.generate",
            json!({"prompt": "p"}),
            google,
            [
                "INVALID_ARGUMENT",
                "PERMISSION_DENIED",
                "NOT_FOUND",
                "RESOURCE_EXHAUSTED",
                "INTERNAL",
                "",
            ],
        ),
        (
            "seedream",
            "ark.images",
            json!({"prompt": "p"}),
            ark,
            [
                "InvalidParameter",
                "AuthenticationError",
                "InvalidEndpointOrModel.NotFound",
                "QuotaExceeded",
                "InternalServiceError",
                "",
            ],
        ),
        (
            "veo",
            "veo.submit",
            json!({"prompt": "p"}),
            google,
            [
                "INVALID_ARGUMENT",
                "PERMISSION_DENIED",
                "NOT_FOUND",
                "RESOURCE_EXHAUSTED",
                "INTERNAL",
                "",
            ],
        ),
        (
            "seedance2",
            "ark.submit",
            json!({"prompt": "p"}),
            ark,
            [
                "InvalidParameter",
                "AuthenticationError",
                "ModelNotOpen",
                "ServerOverloaded",
                "InternalServiceError",
                "",
            ],
        ),
    ];
    for (category, route, content, envelope, codes) in providers {
        let body = json!({"category": category, "content": content});
        let expect: [(u16, i64, &str); 5] = [
            (400, 4, "INVALID_REQUEST"),
            (403, 4, "UPSTREAM_AUTH"),
            (404, 4, "MODEL_UNAVAILABLE"),
            (429, 3, ""),
            (500, 3, ""),
        ];
        for ((http, status, code), upstream_code) in expect.into_iter().zip(codes) {
            let before = fake.count(route);
            fake.push(route, Canned::status(http, envelope(http, upstream_code)));
            let t = run(&s, &u.key, body.clone()).await;
            assert_eq!(t["status"], status, "{category} {http}: {t}");
            if status == 4 {
                assert_eq!(t["error"]["code"], code, "{category} {http}: {t}");
                assert_eq!(
                    fake.count(route) - before,
                    1,
                    "{category} {http}: not retried"
                );
            } else {
                assert_eq!(
                    fake.count(route) - before,
                    2,
                    "{category} {http}: retried once, then succeeded"
                );
            }
        }
        // A timeout, then success.
        let before = fake.count(route);
        fake.push(route, Canned::delayed(1600));
        let t = run(&s, &u.key, body.clone()).await;
        assert_eq!(t["status"], 3, "{category} timeout: {t}");
        assert_eq!(
            fake.count(route) - before,
            2,
            "{category}: the timed-out call was retried"
        );
    }
    ledger_settled(&s, &u);
    let l = s.balance(&u)["ledger"].clone();
    assert!(
        l["refund"].as_i64().unwrap() > 0 && l["capture"].as_i64().unwrap() > 0,
        "{l}"
    );
}
