//! Measures the `plume` client on this machine: the wall time of `plume create` (a process
//! start, settings, one API call) and the background poller's memory while it watches 20
//! jobs. Runs the release `plume` and `plume-test-server` beside this binary; start it with
//! `scripts/bench-client`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn sibling(name: &str) -> PathBuf {
    std::env::current_exe()
        .expect("own path")
        .with_file_name(name)
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn json(out: std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stdout)))
}

fn main() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("plume-client-bench-{}", std::process::id()));
    let state = dir.join("openclaw");
    std::fs::create_dir_all(dir.join("bin"))?;
    // A stand-in openclaw: the poller's memory is what is measured, not delivery.
    let fake = dir.join("bin/openclaw");
    std::fs::write(&fake, "#!/bin/sh\nexit 0\n")?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755))?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let server = sibling("plume-test-server");
    let data = dir.join("data");
    let mut child = Command::new(&server)
        .arg("serve")
        .env("PLUME_LISTEN", format!("127.0.0.1:{port}"))
        .env("PLUME_DATA_DIR", &data)
        .env("RUST_LOG", "warn")
        .stderr(Stdio::null())
        .spawn()?;
    let result = (|| -> anyhow::Result<()> {
        let admin = |args: &[&str]| {
            json(
                Command::new(&server)
                    .arg("admin")
                    .args(args)
                    .env("PLUME_DATA_DIR", &data)
                    .output()
                    .expect("admin"),
            )
        };
        std::thread::sleep(Duration::from_millis(500));
        let user = admin(&["create-user", "--name", "bench"])["user_id"]
            .as_str()
            .unwrap_or("1")
            .to_string();
        let key = admin(&["create-key", "--user", &user])["key"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        admin(&["topup", "--user", &user, "--amount", "1000000"]);
        let plume = |args: &[&str]| {
            Command::new(sibling("plume"))
                .args(args)
                .env("OPENCLAW_STATE_DIR", &state)
                .env("PLUME_API_KEY", &key)
                .env("PLUME_API_BASE", &base)
                .env(
                    "PATH",
                    format!("{}:/usr/bin:/bin", dir.join("bin").display()),
                )
                .output()
                .expect("plume runs")
        };
        let mut times = Vec::new();
        for i in 0..30 {
            let started = Instant::now();
            let out = plume(&[
                "create",
                "--category",
                "Banana2",
                "--prompt",
                &format!("sleep=600000 bench {i}"),
            ]);
            times.push(started.elapsed());
            anyhow::ensure!(
                out.status.success(),
                "create failed: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "plume create (30 runs): median {:.1} ms, p90 {:.1} ms, min {:.1} ms, max {:.1} ms",
            ms(times[15]),
            ms(times[27]),
            ms(times[0]),
            ms(times[29])
        );
        let mut pid = 0;
        for id in 1..=20 {
            let out = json(plume(&[
                "register",
                "--task-id",
                &id.to_string(),
                "--channel",
                "telegram",
                "--target",
                "1",
                "--interval",
                "1",
            ]));
            pid = out["pid"].as_u64().unwrap_or(0) as u32;
        }
        let mut samples = Vec::new();
        for _ in 0..20 {
            std::thread::sleep(Duration::from_millis(500));
            if let Some(kib) = rss_kib(pid) {
                samples.push(kib);
            }
        }
        let jobs = json(plume(&["jobs"]));
        anyhow::ensure!(
            jobs["jobs"].as_array().map(Vec::len) == Some(20),
            "20 jobs expected: {jobs}"
        );
        samples.sort_unstable();
        println!(
            "poller watching 20 jobs for 10 s (1 s interval, batch queries): RSS median {} KiB, max {} KiB",
            samples.get(samples.len() / 2).copied().unwrap_or(0),
            samples.last().copied().unwrap_or(0)
        );
        let _ = Command::new("kill").arg(pid.to_string()).status();
        Ok(())
    })();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(Path::new(&dir));
    result
}
