//! Measures the API on this machine: GET-task and create-task throughput and latency against
//! a real server process (release build, SQLite, local disk). Run it with `scripts/bench`.

use clap::Parser;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(about = "Benchmark plume-server: GET-task and create-task throughput and latency.")]
struct Args {
    /// Concurrent clients.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Seconds per phase.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// The server binary (default: plume-test-server beside this one).
    #[arg(long)]
    server: Option<PathBuf>,
}

struct Phase {
    name: &'static str,
    latencies: Vec<Duration>,
    errors: usize,
    elapsed: Duration,
}

impl Phase {
    fn report(&mut self) {
        self.latencies.sort();
        let n = self.latencies.len();
        let pct = |p: f64| {
            self.latencies
                .get(((n as f64 * p) as usize).min(n.saturating_sub(1)))
                .copied()
                .unwrap_or_default()
        };
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{:<12} {:>8} req {:>9.0} req/s   p50 {:>7.2} ms   p95 {:>7.2} ms   p99 {:>7.2} ms   max {:>7.2} ms   errors {}",
            self.name,
            n,
            n as f64 / self.elapsed.as_secs_f64(),
            ms(pct(0.50)),
            ms(pct(0.95)),
            ms(pct(0.99)),
            ms(self.latencies.last().copied().unwrap_or_default()),
            self.errors
        );
    }
}

async fn run_phase<F, Fut>(name: &'static str, clients: usize, seconds: f64, request: F) -> Phase
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let request = Arc::new(request);
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(seconds);
    let mut handles = Vec::new();
    for _ in 0..clients {
        let request = request.clone();
        handles.push(tokio::spawn(async move {
            let (mut lat, mut errors) = (Vec::new(), 0);
            while Instant::now() < end {
                let t = Instant::now();
                if request().await {
                    lat.push(t.elapsed());
                } else {
                    errors += 1;
                }
            }
            (lat, errors)
        }));
    }
    let mut phase = Phase {
        name,
        latencies: Vec::new(),
        errors: 0,
        elapsed: Duration::ZERO,
    };
    for h in handles {
        let (lat, errors) = h.await.expect("client task");
        phase.latencies.extend(lat);
        phase.errors += errors;
    }
    phase.elapsed = start.elapsed();
    phase
}

fn admin(server: &PathBuf, data: &PathBuf, args: &[&str]) -> anyhow::Result<Value> {
    let out = Command::new(server)
        .arg("admin")
        .args(args)
        .env("PLUME_DATA_DIR", data)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "admin {args:?}: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let server = args.server.unwrap_or_else(|| {
        std::env::current_exe()
            .expect("own path")
            .with_file_name("plume-test-server")
    });
    let dir = std::env::temp_dir().join(format!("plume-bench-{}", std::process::id()));
    let data = dir.join("data");
    std::fs::create_dir_all(&dir)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = Command::new(&server)
        .arg("serve")
        .env("PLUME_LISTEN", format!("127.0.0.1:{port}"))
        .env("PLUME_DATA_DIR", &data)
        .env("RUST_LOG", "warn")
        .stderr(Stdio::null())
        .spawn()?;
    let result = bench(&server, &data, &base, args.clients, args.seconds).await;
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn bench(
    server: &PathBuf,
    data: &PathBuf,
    base: &str,
    clients: usize,
    seconds: f64,
) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()?;
    for _ in 0..200 {
        if http.get(format!("{base}/healthz")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let user = admin(server, data, &["create-user", "--name", "bench"])?["user_id"]
        .as_str()
        .unwrap_or("1")
        .to_string();
    let key = admin(server, data, &["create-key", "--user", &user])?["key"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    admin(
        server,
        data,
        &["topup", "--user", &user, "--amount", "1000000000"],
    )?;
    let body = json!({"category": "Banana2", "content": {"prompt": "benchmark", "generationConfig": {"imageConfig": {"image_size": "1K"}}}});
    let created: Value = http
        .post(format!("{base}/api/open/tasks"))
        .bearer_auth(&key)
        .json(&body)
        .send()
        .await?
        .json()
        .await?;
    let id = created["data"]["id"]
        .as_i64()
        .ok_or_else(|| anyhow::anyhow!("create failed: {created}"))?;
    println!("plume-server benchmark: {clients} clients, {seconds} s per phase, SQLite + local disk, {} cores", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));

    let (h, k, u) = (
        http.clone(),
        key.clone(),
        format!("{base}/api/open/tasks/{id}"),
    );
    let mut get = run_phase("GET task", clients, seconds, move || {
        let req = h.get(&u).bearer_auth(&k);
        async move { matches!(req.send().await, Ok(r) if r.status().is_success()) }
    })
    .await;
    get.report();

    let (h, k, u) = (http.clone(), key.clone(), format!("{base}/api/open/tasks"));
    let mut create = run_phase("create task", clients, seconds, move || {
        let req = h.post(&u).bearer_auth(&k).json(&body);
        async move { matches!(req.send().await, Ok(r) if r.status().is_success()) }
    })
    .await;
    create.report();
    Ok(())
}
