//! The defaults an operator expects with no configuration (docs/CONFIGURATION.md, "Limits"):
//! a per-key rate limit, header limits, a deadline on every request, and a Retry-After on
//! every 429 and 503.

mod common;
use common::*;
use futures::StreamExt;
use std::time::{Duration, Instant};

#[tokio::test]
async fn a_key_is_rate_limited_by_default() {
    let s = Server::start("", &[]).await;
    let u = s.user(0);
    let started = Instant::now();
    let mut passed = 0u32;
    let refused = loop {
        let batch: Vec<_> = (0..16)
            .map(|_| {
                s.http
                    .get(s.url("/api/open/validate"))
                    .bearer_auth(&u.key)
                    .send()
            })
            .collect();
        let mut refused = None;
        for r in futures::future::join_all(batch).await {
            let r = r.unwrap();
            match r.status().as_u16() {
                200 => passed += 1,
                429 => refused = Some(r),
                other => panic!("status {other}"),
            }
        }
        if let Some(r) = refused {
            break r;
        }
        assert!(passed < 5000, "no limit by default");
    };
    // 1200 a minute in bursts of 1200: the burst, plus what refilled meanwhile (20 a second).
    let refill = (started.elapsed().as_secs_f64() * 20.0).ceil() as u32 + 16;
    assert!((1200..=1200 + refill).contains(&passed), "{passed} passed");
    let wait: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait));
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["code"], "RATE_LIMITED");
}

#[tokio::test]
async fn oversized_headers_answer_431() {
    let s = Server::start("", &[]).await;
    let u = s.user(0);
    let get = || s.http.get(s.url("/api/open/validate")).bearer_auth(&u.key);
    assert_eq!(get().send().await.unwrap().status().as_u16(), 200);
    let mut many = get();
    for i in 0..101 {
        many = many.header(format!("x-extra-{i}"), "1");
    }
    assert_eq!(many.send().await.unwrap().status().as_u16(), 431);
    let big = get().header("x-big", "a".repeat(40 * 1024));
    let r = big.send().await.unwrap();
    assert_eq!(r.status().as_u16(), 431);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], "VALIDATION_ERROR");
}

#[tokio::test]
async fn a_slow_request_gets_503_and_a_long_poll_fits_the_deadline() {
    let s = Server::start("[limits]\nrequest_timeout_seconds = 5\n", &[]).await;
    let u = s.user(100);
    // An upload that stalls: the answer comes at the deadline, not when the client gives up.
    let head = "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n";
    let stalled = futures::stream::iter(vec![Ok::<_, std::io::Error>(bytes::Bytes::from(head))])
        .chain(futures::stream::once(async {
            tokio::time::sleep(Duration::from_secs(20)).await;
            Ok(bytes::Bytes::from("--b--\r\n"))
        }));
    let started = Instant::now();
    let r = s
        .http
        .post(s.url("/api/open/upload"))
        .bearer_auth(&u.key)
        .header("content-type", "multipart/form-data; boundary=b")
        .body(reqwest::Body::wrap_stream(stalled))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(r.headers()["retry-after"], "5");

    // A long poll asks for 30 s and is answered before the deadline, with the task.
    let (_, created) = s.create(&u.key, &banana("sleep=20000 slow")).await;
    let id = created["data"]["id"].as_i64().unwrap();
    let started = Instant::now();
    let (status, body) = s
        .get(&u.key, &format!("/api/open/tasks/{id}?wait=30"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn every_503_says_when_to_retry() {
    let s = Server::start("", &[("PLUME_TEST_EXECUTORS", "none")]).await;
    let u = s.user(100);
    let r = s
        .http
        .post(s.url("/api/open/tasks"))
        .bearer_auth(&u.key)
        .json(&banana("a kite"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], "CATEGORY_UNAVAILABLE");
}
