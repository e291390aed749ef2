//! Runs the `plume` binary against a real server process, with its own OpenClaw state folder
//! and a recording stand-in for the `openclaw` CLI (the chat platform is the boundary we
//! cannot reach; the real CLI has its own suite, `openclaw_e2e`).
#![allow(dead_code)]

pub use crate::common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A stand-in `openclaw` that records each `message send` (arguments and the media's
/// SHA-256) as one JSON line, answers as the real CLI does, and fails like an unreachable
/// gateway while the file `gateway_down` exists beside it.
const FAKE_OPENCLAW: &str = r#"#!/usr/bin/env python3
import hashlib, json, os, sys, time
here = os.path.dirname(os.path.abspath(__file__))
if os.path.exists(os.path.join(here, "gateway_down")):
    print("Error: Gateway not reachable at ws://127.0.0.1:18789 (ECONNREFUSED)", file=sys.stderr)
    sys.exit(1)
args = sys.argv[1:]
record = {"argv": args}
i = 0
while i < len(args):
    if args[i].startswith("--") and i + 1 < len(args):
        record[args[i][2:]] = args[i + 1]
        i += 2
    else:
        i += 1
if "media" in record:
    with open(record["media"], "rb") as f:
        record["media_sha256"] = hashlib.sha256(f.read()).hexdigest()
time.sleep(float(os.environ.get("FAKE_OPENCLAW_DELAY", "0")))
with open(os.path.join(here, "sent.jsonl"), "a") as f:
    f.write(json.dumps(record) + "\n")
print("✅ Sent via telegram. Message ID: 1001")
"#;

pub struct Client {
    pub home: TempDir,
    pub state: PathBuf,
    pub bin_dir: PathBuf,
    pub env: Vec<(String, String)>,
}

impl Client {
    /// A state folder with `PLUME_API_KEY` and `PLUME_API_BASE` in the environment.
    pub fn new(base: &str, key: &str) -> Client {
        let home = TempDir::new("plume-client");
        let state = home.0.join(".openclaw");
        let bin_dir = home.0.join("bin");
        std::fs::create_dir_all(&state).unwrap();
        std::fs::create_dir_all(&bin_dir).unwrap();
        let fake = bin_dir.join("openclaw");
        std::fs::write(&fake, FAKE_OPENCLAW).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        Client {
            state,
            bin_dir,
            env: vec![
                ("PLUME_API_KEY".into(), key.into()),
                ("PLUME_API_BASE".into(), base.into()),
            ],
            home,
        }
    }

    pub fn without_env(mut self) -> Client {
        self.env.clear();
        self
    }

    pub fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_plume"));
        cmd.env_clear()
            .env("HOME", &self.home.0)
            .env("PATH", format!("{}:/usr/bin:/bin", self.bin_dir.display()))
            .env("OPENCLAW_STATE_DIR", &self.state)
            .env("SHELL", "/bin/sh");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs `plume ARGS`: its JSON, whether it exited 0, and its stderr.
    pub fn run(&self, args: &[&str]) -> (Value, bool, String) {
        let out = self.command().args(args).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(
            stdout.trim().lines().count(),
            1,
            "exactly one line on stdout: {stdout:?} {stderr}"
        );
        let json =
            serde_json::from_str(stdout.trim()).unwrap_or(Value::String(stdout.trim().to_string()));
        assert_eq!(
            json.get("success")
                .and_then(Value::as_bool)
                .unwrap_or(out.status.success()),
            out.status.success(),
            "{json}"
        );
        (json, out.status.success(), stderr)
    }

    pub fn ok(&self, args: &[&str]) -> Value {
        let (json, ok, stderr) = self.run(args);
        assert!(ok, "plume {args:?} failed: {json} {stderr}");
        json
    }

    pub fn media(&self) -> PathBuf {
        self.state.join("media/plume")
    }

    /// The recorded `openclaw message send` calls.
    pub fn sent(&self) -> Vec<Value> {
        std::fs::read_to_string(self.bin_dir.join("sent.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    pub fn set_gateway_down(&self, down: bool) {
        let flag = self.bin_dir.join("gateway_down");
        if down {
            std::fs::write(flag, "").unwrap();
        } else {
            let _ = std::fs::remove_file(flag);
        }
    }

    /// Waits until `n` messages were sent and no job is left.
    pub fn wait_delivered(&self, n: usize, within: Duration) -> Vec<Value> {
        let deadline = Instant::now() + within;
        loop {
            let sent = self.sent();
            let jobs = std::fs::read_dir(self.media().join("cron_tasks"))
                .map(|d| {
                    d.flatten()
                        .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                        .count()
                })
                .unwrap_or(0);
            if sent.len() >= n && jobs == 0 {
                return sent;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} delivered, {jobs} jobs left; poller.log:\n{}",
                sent.len(),
                self.poller_log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn poller_log(&self) -> String {
        std::fs::read_to_string(self.media().join("poller.log")).unwrap_or_default()
    }

    pub fn poller_pid(&self) -> Option<u32> {
        self.ok(&["jobs"])["poller_pid"].as_u64().map(|p| p as u32)
    }

    pub fn wait_poller_gone(&self, within: Duration) {
        let deadline = Instant::now() + within;
        while self.ok(&["jobs"])["poller_running"] == true {
            assert!(
                Instant::now() < deadline,
                "the poller did not leave: {}",
                self.poller_log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

pub fn sha256_file(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
}

pub async fn server() -> (Server, User) {
    let s = Server::start("[queue]\npoll_interval_ms = 100\n", &[]).await;
    let u = s.user(10_000);
    (s, u)
}

/// The content the server stored for a task.
pub async fn content_of(s: &Server, u: &User, id: i64) -> Value {
    s.get(&u.key, &format!("/api/open/tasks/{id}")).await.1["data"]["content"].clone()
}
