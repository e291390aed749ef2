//! Shared by the provider suites: the real `plume-server` configured against a fake
//! upstream on loopback, and the ledger check every suite ends with.
#![allow(dead_code)]

use crate::common::*;
use plume_testkit::fake_upstream::FakeUpstream;
use serde_json::Value;
use std::time::Duration;

pub const GEMINI_KEY: &str = "test-gemini-key-0123";
pub const ARK_KEY: &str = "test-ark-key-4567";

pub fn config(fake: &FakeUpstream, extra: &str) -> String {
    format!(
        r#"
[queue]
poll_interval_ms = 50
retry_backoff_ms = 50
max_attempts = 2
lease_seconds = 1.0
[fetch]
allow_private_networks = ["127.0.0.0/8"]
[providers.retry]
max_attempts = 3
base_delay_ms = 20
max_delay_ms = 100
[providers.gemini]
base_url = "{base}/v1beta"
timeout_seconds = 1
[providers.ark]
base_url = "{base}/api/v3"
poll_interval_ms = 50
timeout_seconds = 1
{extra}
"#,
        base = fake.base
    )
}

pub async fn start(fake: &FakeUpstream, extra: &str) -> Server {
    Server::start_bin(
        real_server_bin(),
        &config(fake, extra),
        &[("GEMINI_API_KEY", GEMINI_KEY), ("ARK_API_KEY", ARK_KEY)],
    )
    .await
}

pub fn veo_section(fake: &FakeUpstream) -> String {
    format!(
        "[providers.veo]\nbase_url = \"{}/v1beta\"\npoll_interval_ms = 50\ntimeout_seconds = 1\n",
        fake.base
    )
}

pub async fn run(s: &Server, key: &str, body: Value) -> Value {
    let r = s.create(key, &body).await;
    assert_eq!(r.0, 200, "{}", r.1);
    s.wait_terminal(
        key,
        r.1["data"]["id"].as_i64().unwrap(),
        Duration::from_secs(30),
    )
    .await
}

pub fn ledger_settled(s: &Server, user: &User) {
    let b = s.balance(user);
    let l = &b["ledger"];
    let (reserve, capture, refund) = (
        l["reserve"].as_i64().unwrap(),
        l["capture"].as_i64().unwrap(),
        l["refund"].as_i64().unwrap(),
    );
    assert_eq!(reserve, capture + refund, "every task settled once: {b}");
    assert_eq!(
        b["balance"].as_i64().unwrap(),
        l["topup"].as_i64().unwrap() - reserve + refund
    );
}
