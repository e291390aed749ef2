//! The real `openclaw` CLI from npm in a throwaway home, for the tests that run it: a
//! config on loopback (gateway, Telegram fake, optionally a scripted model), the gateway
//! process, and the skill installed from this repository. Each test binary uses a part.
#![allow(dead_code)]

use crate::common::*;
use plume_testkit::fake_telegram::FakeTelegram;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const GATEWAY_TOKEN: &str = "test-gateway-token-0123456789";

pub struct OpenClaw {
    home: TempDir,
    path: String,
    gateway_port: u16,
    gateway: Option<Child>,
    /// Extra environment for every OpenClaw process (e.g. `NODE_EXTRA_CA_CERTS`).
    env: Vec<(String, String)>,
}

impl OpenClaw {
    pub fn new(telegram_root: &str) -> OpenClaw {
        let plume_dir = PathBuf::from(env!("CARGO_BIN_EXE_plume"))
            .parent()
            .unwrap()
            .to_path_buf();
        OpenClaw::with_plume_in(telegram_root, &plume_dir)
    }

    /// OpenClaw whose PATH finds `plume` in `plume_dir` (and nowhere else).
    pub fn with_plume_in(telegram_root: &str, plume_dir: &Path) -> OpenClaw {
        let extra = std::env::var("PLUME_OPENCLAW_PATH").expect("PLUME_OPENCLAW_PATH must name the folders of node and openclaw; run scripts/test-openclaw");
        let home = TempDir::new("plume-openclaw");
        let gateway_port = free_port();
        let oc = OpenClaw {
            path: format!("{}:{extra}:/usr/bin:/bin", plume_dir.display()),
            home,
            gateway_port,
            gateway: None,
            env: Vec::new(),
        };
        std::fs::create_dir_all(oc.state()).unwrap();
        oc.write_config(telegram_root, None);
        oc
    }

    pub fn set_env(&mut self, name: &str, value: &str) {
        self.env.push((name.into(), value.into()));
    }

    /// OpenClaw with the Feishu channel plugin installed from npm. OpenClaw lets only a
    /// plugin installed from the registry open its inbound queue (a linked or archived one is
    /// refused), and the install cannot run offline: `scripts/test-openclaw` installs it
    /// once into a home at a fixed path (`PLUME_TEST_FEISHU_HOME`; OpenClaw records absolute
    /// paths) and keeps that home as a tar, which this unpacks afresh there.
    pub fn with_feishu(telegram_root: &str) -> OpenClaw {
        let home = PathBuf::from(
            std::env::var("PLUME_TEST_FEISHU_HOME")
                .expect("PLUME_TEST_FEISHU_HOME: run scripts/test-openclaw"),
        );
        let tar = std::env::var("PLUME_TEST_FEISHU_HOME_TAR")
            .expect("PLUME_TEST_FEISHU_HOME_TAR: run scripts/test-openclaw");
        let _ = std::fs::remove_dir_all(&home);
        let ok = Command::new("tar")
            .arg("-xf")
            .arg(&tar)
            .arg("-C")
            .arg(home.parent().unwrap())
            .status()
            .unwrap();
        assert!(ok.success(), "unpacking {tar}");
        let mut oc = OpenClaw::new(telegram_root);
        oc.home = TempDir(home);
        oc.write_config(telegram_root, None);
        oc
    }

    /// `openclaw plugins install npm-pack:<tgz>` of the Plume provider plugin that
    /// `scripts/package-openclaw-plugin` packed (`PLUME_TEST_PLUGIN_TGZ`), which must succeed.
    pub fn install_plume_plugin(&self) {
        let tgz = std::env::var("PLUME_TEST_PLUGIN_TGZ")
            .expect("PLUME_TEST_PLUGIN_TGZ: run scripts/test-openclaw");
        self.run_ok(&[
            "plugins",
            "install",
            &format!("npm-pack:{tgz}"),
            "--force",
            "--accept-capabilities",
        ]);
    }

    /// Runs `openclaw <args>`; returns whether it succeeded, its JSON output (Null when
    /// there is none) and its stderr.
    pub fn run_json(&self, args: &[&str]) -> (bool, Value, String) {
        let out = self.command("openclaw").args(args).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let json = stdout
            .find('{')
            .and_then(|i| serde_json::from_str(&stdout[i..]).ok())
            .unwrap_or(Value::Null);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        (out.status.success(), json, format!("{stdout}\n{stderr}"))
    }

    /// `openclaw skills install skill/plume-image`, which must succeed.
    pub fn install_skill(&self) {
        let skill = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../skill/plume-image");
        self.run_ok(&["skills", "install", skill.to_str().unwrap()]);
    }

    /// Runs `openclaw <args>`, which must succeed.
    pub fn run_ok(&self, args: &[&str]) {
        let out = self.command("openclaw").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "openclaw {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `openclaw skills info plume-image --json`.
    pub fn skill_info(&self) -> Value {
        let out = self
            .command("openclaw")
            .args(["skills", "info", "plume-image", "--json"])
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stdout)))
    }

    pub fn state(&self) -> PathBuf {
        self.home.0.join(".openclaw")
    }

    pub fn write_config(&self, telegram_root: &str, plume: Option<(&str, &str)>) {
        self.write_config_with(telegram_root, plume, json!({}));
    }

    /// The config, with `extra` merged in (objects key by key, anything else replaced).
    pub fn write_config_with(
        &self,
        telegram_root: &str,
        plume: Option<(&str, &str)>,
        extra: Value,
    ) {
        let mut config = json!({
            "gateway": {"mode": "local", "port": self.gateway_port, "bind": "loopback", "auth": {"mode": "token", "token": GATEWAY_TOKEN}},
            "update": {"checkOnStart": false},
            "telemetry": {"enabled": false},
            "channels": {"telegram": {"enabled": true, "botToken": "123456:TESTTOKEN", "apiRoot": telegram_root}},
        });
        if let Some((key, base)) = plume {
            config["skills"] = json!({"entries": {"plume-image": {"apiKey": key, "env": {"PLUME_API_BASE": base}}}});
        }
        merge(&mut config, extra);
        // What OpenClaw wrote itself (`meta`, installed plugins) stays: without its `meta`
        // OpenClaw takes the file for damaged and restores its backup.
        let path = self.state().join("openclaw.json");
        let mut old: Value = std::fs::read_to_string(&path)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_else(|| json!({}));
        merge(&mut old, config);
        let config = old;
        std::fs::write(
            self.state().join("openclaw.json"),
            serde_json::to_string_pretty(&config).unwrap(),
        )
        .unwrap();
    }

    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .env("HOME", &self.home.0)
            .env("PATH", &self.path)
            .env("OPENCLAW_DISABLE_BONJOUR", "1")
            .env("OPENCLAW_NO_AUTO_UPDATE", "1")
            .env("OPENCLAW_NO_RESPAWN", "1")
            .env("SHELL", "/bin/sh")
            // The namespace has no network: npm must not wait for the registry.
            .env("npm_config_offline", "true")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.home.0);
        cmd
    }

    pub fn plume(&self, args: &[&str]) -> Value {
        let out = self.command("plume").args(args).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        serde_json::from_str(text.trim()).unwrap_or(Value::String(text))
    }

    pub fn start_gateway(&mut self, telegram: &FakeTelegram) {
        let log = std::fs::File::create(self.home.0.join("gateway.log")).unwrap();
        let child = self
            .command("openclaw")
            .args(["gateway", "run"])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        self.gateway = Some(child);
        // Ready once the Telegram channel is polling, and the gateway port answers.
        let deadline = Instant::now() + Duration::from_secs(60);
        while !(telegram.calls().iter().any(|c| c == "getUpdates")
            && std::net::TcpStream::connect(("127.0.0.1", self.gateway_port)).is_ok())
        {
            assert!(
                Instant::now() < deadline,
                "the gateway did not start:\n{}",
                self.gateway_log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn stop_gateway(&mut self) {
        if let Some(mut child) = self.gateway.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn gateway_log(&self) -> String {
        std::fs::read_to_string(self.home.0.join("gateway.log")).unwrap_or_default()
    }

    pub fn poller_log(&self) -> String {
        std::fs::read_to_string(self.state().join("media/plume/poller.log")).unwrap_or_default()
    }
}

fn merge(into: &mut Value, from: Value) {
    match (into, from) {
        (Value::Object(into), Value::Object(from)) => {
            for (k, v) in from {
                merge(into.entry(k).or_insert(Value::Null), v);
            }
        }
        (into, from) => *into = from,
    }
}

impl Drop for OpenClaw {
    fn drop(&mut self) {
        self.stop_gateway();
    }
}

pub fn wait_sent(
    telegram: &FakeTelegram,
    n: usize,
    oc: &OpenClaw,
) -> Vec<plume_testkit::fake_telegram::Sent> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let sent = telegram.sent();
        if sent.len() >= n {
            return sent;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} messages arrived; poller.log:\n{}",
            sent.len(),
            oc.poller_log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
