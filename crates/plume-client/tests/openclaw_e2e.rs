//! Delivery through the real `openclaw` CLI from npm, with a running gateway and a fake
//! Telegram Bot API on loopback (OPENCLAW.md). Needs Node 24 and `openclaw` on the path that
//! `PLUME_OPENCLAW_PATH` names, and a network namespace with only loopback:
//! `scripts/test-openclaw` sets both up and runs these tests.

#[path = "../../plume-testkit/tests/common/mod.rs"]
mod common;

mod openclaw;

use common::*;
use openclaw::{wait_sent, OpenClaw};
use plume_testkit::fake_telegram::FakeTelegram;
use serde_json::json;
use std::process::Command;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the real openclaw CLI: run scripts/test-openclaw"]
async fn the_skill_is_eligible_once_the_key_is_configured() {
    let telegram = FakeTelegram::start().await;
    let oc = OpenClaw::new(&telegram.api_root);
    oc.install_skill();
    let before = oc.skill_info();
    assert_eq!(before["eligible"], false, "{before}");
    assert_eq!(before["missing"]["env"], json!(["PLUME_API_KEY"]));
    assert_eq!(
        before["missing"]["bins"],
        json!([]),
        "plume is found on PATH"
    );
    oc.write_config(
        &telegram.api_root,
        Some(("plume_sk_configured", "http://127.0.0.1:9")),
    );
    let after = oc.skill_info();
    assert_eq!(after["eligible"], true, "{after}");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the real openclaw CLI: run scripts/test-openclaw"]
async fn results_reach_telegram_once_through_the_real_cli() {
    let s = Server::start("[queue]\npoll_interval_ms = 100\n", &[]).await;
    let u = s.user(10_000);
    let telegram = FakeTelegram::start().await;
    let mut oc = OpenClaw::new(&telegram.api_root);
    oc.write_config(&telegram.api_root, Some((&u.key, &s.base)));
    oc.start_gateway(&telegram);
    let create = |oc: &OpenClaw, prompt: &str| {
        oc.plume(&["create", "--category", "Banana2", "--prompt", prompt])["task_id"]
            .as_i64()
            .unwrap()
    };

    // A result photo arrives once, byte-identical, with its caption.
    let task = create(&oc, "sleep=200");
    let r = oc.plume(&[
        "register",
        "--task-id",
        &task.to_string(),
        "--channel",
        "telegram",
        "--target",
        "4242",
        "--interval",
        "1",
    ]);
    assert_eq!(r["success"], true, "{r}");
    let sent = wait_sent(&telegram, 1, &oc);
    let photo = &sent[0];
    assert_eq!(photo.method, "sendPhoto");
    assert_eq!(photo.chat_id, "4242");
    assert_eq!(photo.text, "✅ image generation complete!");
    let url = s.get(&u.key, &format!("/api/open/tasks/{task}")).await.1["data"]["result"]
        ["imageUrl"]
        .as_str()
        .unwrap()
        .to_string();
    let served = s.download(&url).await;
    assert_eq!(photo.file.as_ref().unwrap().1, served, "byte-identical");

    // Failure and timeout messages.
    let failed = create(&oc, "fail=the_prompt_was_refused");
    let slow = create(&oc, "sleep=60000");
    oc.plume(&[
        "register",
        "--task-id",
        &failed.to_string(),
        "--channel",
        "telegram",
        "--target",
        "4242",
        "--interval",
        "1",
    ]);
    oc.plume(&[
        "register",
        "--task-id",
        &slow.to_string(),
        "--channel",
        "telegram",
        "--target",
        "4243",
        "--interval",
        "1",
        "--max-duration",
        "2",
    ]);
    let sent = wait_sent(&telegram, 3, &oc);
    let texts: Vec<String> = sent.iter().map(|m| m.text.clone()).collect();
    assert!(
        texts.contains(&format!("❌ Task #{failed} failed\nthe prompt was refused")),
        "{texts:?}"
    );
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with(&format!("⏰ Task #{slow} has been waiting"))),
        "{texts:?}"
    );

    // The gateway is down when the task completes: delivered once after it returns.
    oc.stop_gateway();
    let later = create(&oc, "sleep=100");
    oc.plume(&[
        "register",
        "--task-id",
        &later.to_string(),
        "--channel",
        "telegram",
        "--target",
        "4244",
        "--interval",
        "1",
    ]);
    let deadline = Instant::now() + Duration::from_secs(90);
    while !oc.poller_log().contains("nothing was sent") {
        assert!(Instant::now() < deadline, "{}", oc.poller_log());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(telegram.sent().len(), 3);
    oc.start_gateway(&telegram);
    let sent = wait_sent(&telegram, 4, &oc);
    assert_eq!(sent[3].chat_id, "4244");
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(telegram.sent().len(), 4, "nothing was sent twice");
}

/// The wheel `scripts/package-plume` builds gives a machine without Rust a working `plume`:
/// installed the way OpenClaw's `uv` install kind does it (`uv tool install plume-cli`, the
/// local wheel folder standing in for PyPI) and with pip, it runs, and OpenClaw finds it.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the real openclaw CLI and the packaged wheel: run scripts/test-openclaw"]
async fn the_wheel_gives_openclaw_a_working_plume() {
    let wheels = std::env::var("PLUME_TEST_WHEEL_DIR")
        .expect("PLUME_TEST_WHEEL_DIR: run scripts/test-openclaw");
    let uv = std::env::var("PLUME_TEST_UV").expect("PLUME_TEST_UV: run scripts/test-openclaw");
    let tmp = TempDir::new("plume-wheel");
    let out = Command::new(&uv)
        .args([
            "tool",
            "install",
            "--offline",
            "--find-links",
            &wheels,
            "plume-cli",
        ])
        .env("UV_TOOL_DIR", tmp.0.join("tools"))
        .env("UV_TOOL_BIN_DIR", tmp.0.join("bin"))
        .env("UV_CACHE_DIR", tmp.0.join("cache"))
        .env("UV_PYTHON_DOWNLOADS", "never")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "uv: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let venv = tmp.0.join("venv");
    let ok = Command::new("python3")
        .arg("-m")
        .arg("venv")
        .arg(&venv)
        .status()
        .unwrap();
    assert!(ok.success());
    let out = Command::new(venv.join("bin/pip"))
        .args([
            "install",
            "--quiet",
            "--no-index",
            "--find-links",
            &wheels,
            "plume-cli",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pip: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let home = tmp.0.join("home");
    std::fs::create_dir_all(&home).unwrap();
    for plume in [tmp.0.join("bin/plume"), venv.join("bin/plume")] {
        let run = |args: &[&str], key: Option<&str>| {
            let mut cmd = Command::new(&plume);
            cmd.args(args)
                .env_clear()
                .env("HOME", &home)
                .env("PATH", "/usr/bin:/bin");
            if let Some(key) = key {
                cmd.env("PLUME_API_KEY", key);
            }
            cmd.output().unwrap()
        };
        let version = run(&["--version"], None);
        assert!(version.status.success());
        assert!(
            String::from_utf8_lossy(&version.stdout).contains(env!("CARGO_PKG_VERSION")),
            "{}",
            String::from_utf8_lossy(&version.stdout)
        );
        let unset = run(&["check-config"], None);
        assert_eq!(
            String::from_utf8_lossy(&unset.stdout).trim(),
            "NOT_CONFIGURED"
        );
        let set = run(&["check-config"], Some("plume_sk_wheel"));
        assert_eq!(String::from_utf8_lossy(&set.stdout).trim(), "CONFIGURED");
    }

    let telegram = FakeTelegram::start().await;
    let oc = OpenClaw::with_plume_in(&telegram.api_root, &tmp.0.join("bin"));
    oc.install_skill();
    oc.write_config(
        &telegram.api_root,
        Some(("plume_sk_wheel", "http://127.0.0.1:9")),
    );
    let info = oc.skill_info();
    assert_eq!(
        info["missing"]["bins"],
        json!([]),
        "plume from the wheel: {info}"
    );
    assert_eq!(info["eligible"], true, "{info}");
}
