//! The background poller against a real `plume-server` process: delivery messages, a gateway
//! that is down, and a poller killed mid-delivery; each job is delivered exactly once.

#[path = "../../plume-testkit/tests/common/mod.rs"]
mod common;
mod harness;

use harness::*;
use serde_json::Value;
use std::time::Duration;

#[tokio::test]
async fn register_delivers_once_with_the_messages_of_the_contract() {
    let (s, u) = server().await;
    let c = Client::new(&s.base, &u.key);
    let ok_task = c.ok(&["create", "--category", "Banana2", "--prompt", "sleep=300"])["task_id"]
        .as_i64()
        .unwrap();
    let failed = c.ok(&[
        "create",
        "--category",
        "Banana2",
        "--prompt",
        "fail=the_model_refused",
    ])["task_id"]
        .as_i64()
        .unwrap();
    let video = c.ok(&["create", "--category", "veo", "--prompt", "sleep=200"])["task_id"]
        .as_i64()
        .unwrap();
    let slow = c.ok(&["create", "--category", "Banana2", "--prompt", "sleep=60000"])["task_id"]
        .as_i64()
        .unwrap();
    let r = c.ok(&[
        "register",
        "--task-id",
        &ok_task.to_string(),
        "--channel",
        "telegram",
        "--target",
        "1001",
        "--interval",
        "1",
    ]);
    assert!(r["pid"].as_u64().unwrap() > 0);
    assert!(r["message"]
        .as_str()
        .unwrap()
        .contains(&format!("#{ok_task}")));
    c.ok(&[
        "register",
        "--task-id",
        &failed.to_string(),
        "--channel",
        "telegram",
        "--target",
        "1001",
        "--interval",
        "1",
    ]);
    c.ok(&[
        "register",
        "--task-id",
        &video.to_string(),
        "--channel",
        "telegram",
        "--target",
        "1002",
        "--interval",
        "1",
    ]);
    c.ok(&[
        "register",
        "--task-id",
        &slow.to_string(),
        "--channel",
        "telegram",
        "--target",
        "1003",
        "--interval",
        "1",
        "--max-duration",
        "2",
    ]);
    let (out, ok, _) = c.run(&[
        "register",
        "--task-id",
        &slow.to_string(),
        "--channel",
        "telegram",
        "--target",
        "1003",
    ]);
    assert!(!ok);
    assert_eq!(out["code"], "ALREADY_REGISTERED");
    let jobs = c.ok(&["jobs"]);
    assert_eq!(jobs["poller_running"], true);

    let sent = c.wait_delivered(4, Duration::from_secs(40));
    assert_eq!(sent.len(), 4, "each job delivered exactly once: {sent:?}");
    let by_target = |t: &str, contains: &str| {
        sent.iter()
            .find(|m| m["target"] == t && m["message"].as_str().unwrap().contains(contains))
            .cloned()
            .unwrap_or_else(|| panic!("{t} {contains}: {sent:?}"))
    };
    let image = by_target("1001", "image generation complete");
    assert_eq!(image["channel"], "telegram");
    let media = std::path::PathBuf::from(image["media"].as_str().unwrap());
    assert!(
        media.starts_with(&c.state),
        "media is delivered from under the state folder"
    );
    assert_eq!(
        media.file_name().unwrap().to_str().unwrap(),
        format!("result_{ok_task}.png")
    );
    let served = s.get(&u.key, &format!("/api/open/tasks/{ok_task}")).await.1["data"]["result"]
        ["imageUrl"]
        .as_str()
        .unwrap()
        .to_string();
    let bytes = s
        .http
        .get(&served)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(image["media_sha256"].as_str().unwrap(), sha256_file(&media));
    assert_eq!(
        std::fs::read(&media).unwrap(),
        bytes.to_vec(),
        "byte-identical"
    );
    let fail = by_target("1001", "failed");
    assert_eq!(
        fail["message"],
        format!("❌ Task #{failed} failed\nthe model refused")
    );
    assert!(fail.get("media").is_none());
    let v = by_target("1002", "video generation complete");
    assert!(v["media"]
        .as_str()
        .unwrap()
        .ends_with(&format!("result_{video}.mp4")));
    let late = by_target("1003", "⏰");
    assert!(late["message"]
        .as_str()
        .unwrap()
        .starts_with(&format!("⏰ Task #{slow} has been waiting")));
    c.wait_poller_gone(Duration::from_secs(10));
    let last: Value = serde_json::from_slice(
        &std::fs::read(c.media().join("last_result_telegram.json")).unwrap(),
    )
    .unwrap();
    for field in [
        "task_id",
        "result_url",
        "local_file",
        "media_type",
        "created_at",
    ] {
        assert!(last.get(field).is_some(), "{field}: {last}");
    }
}

#[tokio::test]
async fn gateway_down_at_completion_delivers_once_after_it_returns() {
    let (s, u) = server().await;
    let c = Client::new(&s.base, &u.key);
    c.set_gateway_down(true);
    let task = c.ok(&["create", "--category", "Banana2", "--prompt", "sleep=100"])["task_id"]
        .as_i64()
        .unwrap();
    c.ok(&[
        "register",
        "--task-id",
        &task.to_string(),
        "--channel",
        "telegram",
        "--target",
        "7",
        "--interval",
        "1",
    ]);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !c.poller_log().contains("nothing was sent") {
        assert!(std::time::Instant::now() < deadline, "{}", c.poller_log());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(c.sent().is_empty());
    c.set_gateway_down(false);
    let sent = c.wait_delivered(1, Duration::from_secs(30));
    assert_eq!(sent.len(), 1);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(c.sent().len(), 1, "not sent twice");
}

#[tokio::test]
async fn kill_nine_of_the_poller_loses_nothing_and_sends_nothing_twice() {
    let (s, u) = server().await;
    let c = Client {
        env: {
            let mut e = Client::new(&s.base, &u.key).env;
            e.push(("FAKE_OPENCLAW_DELAY".into(), "0.5".into()));
            e
        },
        ..Client::new(&s.base, &u.key)
    };
    let mut tasks = Vec::new();
    for i in 0..5 {
        let id = c.ok(&[
            "create",
            "--category",
            "Banana2",
            "--prompt",
            &format!("sleep={}", 300 + i * 300),
        ])["task_id"]
            .as_i64()
            .unwrap();
        c.ok(&[
            "register",
            "--task-id",
            &id.to_string(),
            "--channel",
            "telegram",
            "--target",
            &format!("t{i}"),
            "--interval",
            "1",
        ]);
        tasks.push(id);
    }
    // Kill the poller while it is working through the jobs.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while c.sent().is_empty() {
        assert!(std::time::Instant::now() < deadline, "{}", c.poller_log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = c.poller_pid().expect("the poller runs");
    std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // The next plume command finds jobs and no poller, and starts one (a reboot, an OOM kill
    // and kill -9 look the same); without it, delivery would wait for the next register.
    let jobs = c.ok(&["jobs", "--ensure-poller"]);
    assert_eq!(jobs["poller_started"], true, "{jobs}");
    assert_eq!(jobs["poller_running"], true, "{jobs}");
    assert_ne!(jobs["poller_pid"], serde_json::json!(pid), "{jobs}");
    let again = c.ok(&["jobs", "--ensure-poller"]);
    assert_eq!(again["poller_started"], false, "one poller: {again}");
    let extra = c.ok(&["create", "--category", "Banana2", "--prompt", "sleep=100"])["task_id"]
        .as_i64()
        .unwrap();
    c.ok(&[
        "register",
        "--task-id",
        &extra.to_string(),
        "--channel",
        "telegram",
        "--target",
        "t-extra",
        "--interval",
        "1",
    ]);
    tasks.push(extra);
    let sent = c.wait_delivered(tasks.len(), Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(1));
    let sent = if c.sent().len() > sent.len() {
        c.sent()
    } else {
        sent
    };
    let mut targets: Vec<String> = sent
        .iter()
        .map(|m| m["target"].as_str().unwrap().to_string())
        .collect();
    targets.sort();
    let mut expected: Vec<String> = (0..5)
        .map(|i| format!("t{i}"))
        .chain(["t-extra".to_string()])
        .collect();
    expected.sort();
    assert_eq!(targets, expected, "every job delivered exactly once");
}
