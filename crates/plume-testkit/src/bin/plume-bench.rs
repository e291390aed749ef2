//! Measures the API on this machine: GET-task and create-task throughput and latency against
//! real server processes (release build): SQLite + local disk, and with `--database postgres`
//! also one and two nodes on PostgreSQL + S3. Run it with `scripts/bench`.

use clap::Parser;
use plume_testkit::backends::{Backend, Kind};
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
    /// `sqlite` (default) or `postgres`: also 1 and 2 nodes on PostgreSQL + S3 (a fresh
    /// database on PLUME_TEST_POSTGRES and a bucket on scripts/s3-server), in the same run.
    #[arg(long, default_value = "sqlite", value_parser = ["sqlite", "postgres"])]
    database: String,
    /// How long each created task runs in the scripted executor. 0 (default): tasks finish at
    /// once, so the create phase also pays for executing every task it creates (claim, output
    /// file, settle). Real tasks take seconds; with e.g. 30000 the workers hold a few tasks
    /// and the phase measures the create path itself.
    #[arg(long, default_value_t = 0)]
    task_ms: u64,
    /// Users the clients are spread over, each with a key of its own. One user's creates
    /// queue on its credit account (SQLite: on the one writer anyway).
    #[arg(long, default_value_t = 1)]
    users: usize,
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

/// One server setup under test: its nodes and the settings they share.
struct Setup {
    label: String,
    server: PathBuf,
    dir: PathBuf,
    env: Vec<(String, String)>,
    bases: Vec<String>,
    children: Vec<std::process::Child>,
    _backend: Backend,
}

impl Setup {
    async fn start(server: &PathBuf, kind: Kind, nodes: usize) -> anyhow::Result<Setup> {
        let backend = Backend::new(kind).await;
        let dir = std::env::temp_dir().join(format!(
            "plume-bench-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir)?;
        let mut env = backend.env.clone();
        env.push((
            "PLUME_DATA_DIR".into(),
            dir.join("data").display().to_string(),
        ));
        env.push(("RUST_LOG".into(), "warn".into()));
        // The bench's one key sends far more than the default per-key rate.
        env.push(("PLUME_RATE_LIMIT_PER_MINUTE".into(), "0".into()));
        let label = match (kind, nodes) {
            (Kind::Sqlite, _) => "SQLite + disk".to_string(),
            (Kind::Postgres, 1) => "PostgreSQL + S3, 1 node".to_string(),
            (Kind::Postgres, n) => format!("PostgreSQL + S3, {n} nodes"),
        };
        let mut setup = Setup {
            label,
            server: server.clone(),
            dir,
            env,
            bases: Vec::new(),
            children: Vec::new(),
            _backend: backend,
        };
        for _ in 0..nodes {
            let port = std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port();
            let child = Command::new(server)
                .arg("serve")
                .envs(setup.env.iter().cloned())
                .env("PLUME_LISTEN", format!("127.0.0.1:{port}"))
                .stderr(Stdio::null())
                .spawn()?;
            setup.children.push(child);
            setup.bases.push(format!("http://127.0.0.1:{port}"));
        }
        Ok(setup)
    }

    fn admin(&self, args: &[&str]) -> anyhow::Result<Value> {
        let out = Command::new(&self.server)
            .arg("admin")
            .args(args)
            .envs(self.env.iter().cloned())
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "admin {args:?}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        Ok(serde_json::from_slice(&out.stdout)?)
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let server = args.server.clone().unwrap_or_else(|| {
        std::env::current_exe()
            .expect("own path")
            .with_file_name("plume-test-server")
    });
    println!(
        "plume-server benchmark: {} clients, {} s per phase, tasks run {} ms, {} cores",
        args.clients,
        args.seconds,
        args.task_ms,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    let mut setups = vec![(Kind::Sqlite, 1)];
    if args.database == "postgres" {
        setups.extend([(Kind::Postgres, 1), (Kind::Postgres, 2)]);
    }
    for (kind, nodes) in setups {
        let setup = Setup::start(&server, kind, nodes).await?;
        bench(&setup, &args).await?;
    }
    Ok(())
}

async fn bench(setup: &Setup, args: &Args) -> anyhow::Result<()> {
    let (clients, seconds, task_ms) = (args.clients, args.seconds, args.task_ms);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()?;
    for base in &setup.bases {
        let mut up = false;
        for _ in 0..400 {
            if http.get(format!("{base}/healthz")).send().await.is_ok() {
                up = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::ensure!(up, "{} at {base} did not start", setup.label);
    }
    let mut keys = Vec::new();
    for _ in 0..args.users.max(1) {
        let user = setup.admin(&["create-user", "--name", "bench"])?["user_id"]
            .as_str()
            .unwrap_or("1")
            .to_string();
        let key = setup.admin(&["create-key", "--user", &user])?["key"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        setup.admin(&["topup", "--user", &user, "--amount", "1000000000"])?;
        keys.push(key);
    }
    let key = keys[0].clone();
    let prompt = format!("benchmark sleep={task_ms}");
    let body = json!({"category": "Banana2", "content": {"prompt": prompt, "generationConfig": {"imageConfig": {"image_size": "1K"}}}});
    let created: Value = http
        .post(format!("{}/api/open/tasks", setup.bases[0]))
        .bearer_auth(&key)
        .json(&body)
        .send()
        .await?
        .json()
        .await?;
    let id = created["data"]["id"]
        .as_i64()
        .ok_or_else(|| anyhow::anyhow!("create failed: {created}"))?;
    println!("{}:", setup.label);

    // Requests go round-robin over the nodes, as a load balancer would spread them.
    let bases = Arc::new(setup.bases.clone());
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let pick = move || {
        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        bases[i % bases.len()].clone()
    };
    let pick = Arc::new(pick);
    let (h, k, p) = (http.clone(), key.clone(), pick.clone());
    let mut get = run_phase("GET task", clients, seconds, move || {
        let req = h
            .get(format!("{}/api/open/tasks/{id}", p()))
            .bearer_auth(&k);
        async move { matches!(req.send().await, Ok(r) if r.status().is_success()) }
    })
    .await;
    get.report();

    let (h, keys, p) = (http.clone(), Arc::new(keys), pick.clone());
    let turn = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut create = run_phase("create task", clients, seconds, move || {
        let i = turn.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let req = h
            .post(format!("{}/api/open/tasks", p()))
            .bearer_auth(&keys[i % keys.len()])
            .json(&body);
        async move { matches!(req.send().await, Ok(r) if r.status().is_success()) }
    })
    .await;
    create.report();
    Ok(())
}
