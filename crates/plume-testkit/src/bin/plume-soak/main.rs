//! `scripts/soak`: plume-server under mixed load for a bounded time, with `kill -9` and a
//! restart every few minutes, then a check of everything that must still hold.
//!
//! Traffic (loopback only): creates through the scripted executor with random outcomes
//! (success, retryable and permanent failures, slow tasks, results stored late, upstream
//! jobs), long polls, batch queries, uploads, cancels and bad requests. At the end, with the
//! server stopped, it asserts from the database and the file store: every task terminal;
//! each task executed once per attempt; `balance = topups − reserves + refunds` for every
//! account, and every terminal task captured or refunded exactly once; no result file that
//! no result names; RSS flat after warm-up; no error in the server's log; no answer a client
//! should not get (5xx outside a restart). Exit 0 only when every check holds.
//!
//! `--backend postgres` runs the same soak on a new PostgreSQL database and a new bucket on
//! an S3-compatible server (`plume_testkit::backends`: `PLUME_TEST_POSTGRES`, and the
//! `PLUME_TEST_S3_*` settings or a `scripts/s3-server` of its own), and checks from there.

mod checks;
mod traffic;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use plume_testkit::backends::{self, Backend};
use serde_json::Value;
use std::collections::HashSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use traffic::{Client, Tally};

#[derive(Parser)]
#[command(about = "Soak plume-server: mixed load with kill -9 restarts, then invariant checks")]
struct Args {
    /// How long the load runs.
    #[arg(long, default_value_t = 600)]
    seconds: u64,
    /// A kill -9 and restart of the server this often (at least once per run).
    #[arg(long, default_value_t = 180)]
    kill_every: u64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// The server binary (default: plume-test-server beside this one).
    #[arg(long)]
    server: Option<PathBuf>,
    /// Where the server keeps its state: SQLite + a folder, or PostgreSQL + S3.
    #[arg(long, value_enum, default_value_t = Stores::Sqlite)]
    backend: Stores,
    /// Server processes sharing the backend, each killed in turn (more than one needs
    /// `--backend postgres`: SQLite is single-node).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=8))]
    nodes: u16,
}

#[derive(Clone, Copy, ValueEnum)]
enum Stores {
    /// SQLite and a folder under the run's directory.
    Sqlite,
    /// A new PostgreSQL database and a new S3 bucket (dropped afterwards when every check holds).
    Postgres,
}

struct Server {
    bin: PathBuf,
    dir: PathBuf,
    /// The backend's settings (database and storage URLs, S3 credentials); none for SQLite.
    env: Vec<(String, String)>,
    port: u16,
    /// This node's log (stderr of each of its processes).
    log: PathBuf,
    child: Option<Child>,
    /// (seconds since this process started, RSS in KiB), per process.
    rss: Vec<Vec<(f64, u64)>>,
    started: Instant,
}

impl Server {
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.args(args)
            .env("PLUME_CONFIG", self.dir.join("config.toml"))
            .env("PLUME_DATA_DIR", self.dir.join("data"))
            .env("PLUME_LISTEN", format!("127.0.0.1:{}", self.port))
            .env("PLUME_TEST_EXEC_LOG", self.dir.join("executions.log"))
            .env("PLUME_TEST_UPSTREAM_DIR", self.dir.join("upstream"))
            .env("PLUME_RATE_LIMIT_PER_MINUTE", "0")
            // Warnings and errors unless the caller asks for more (RUST_LOG=info).
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }

    fn start(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = self
            .command(&["serve"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting the server")?;
        self.child = Some(child);
        self.rss.push(Vec::new());
        self.started = Instant::now();
        Ok(())
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn terminate(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let _ = c.wait();
        }
    }

    fn sample_rss(&mut self) {
        let Some(pid) = self.child.as_ref().map(Child::id) else {
            return;
        };
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        if let Some(kb) = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
        {
            let t = self.started.elapsed().as_secs_f64();
            if let Some(samples) = self.rss.last_mut() {
                samples.push((t, kb));
            }
        }
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn admin(&self, args: &[&str]) -> anyhow::Result<Value> {
        let out = self.command(&[&["admin"], args].concat()).output()?;
        anyhow::ensure!(
            out.status.success(),
            "admin {args:?}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        Ok(serde_json::from_slice(&out.stdout)?)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(18099)
}

async fn wait_up(http: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    for _ in 0..600 {
        if http.get(format!("{base}/healthz")).send().await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("the server at {base} did not start")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.nodes > 1 && matches!(args.backend, Stores::Sqlite) {
        anyhow::bail!(
            "--nodes {} needs --backend postgres: SQLite is single-node",
            args.nodes
        );
    }
    let bin = args.server.clone().unwrap_or_else(|| {
        std::env::current_exe()
            .expect("own path")
            .with_file_name("plume-test-server")
    });
    let dir = std::env::temp_dir().join(format!("plume-soak-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("upstream"))?;
    std::fs::write(
        dir.join("config.toml"),
        "[queue]\ndefault_concurrency = 4\nlease_seconds = 3.0\nmax_attempts = 3\nretry_backoff_ms = 200\npoll_interval_ms = 200\n",
    )?;
    let backend = Backend::new(match args.backend {
        Stores::Sqlite => backends::Kind::Sqlite,
        Stores::Postgres => backends::Kind::Postgres,
    })
    .await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let mut nodes = Vec::new();
    for i in 0..args.nodes {
        let mut node = Server {
            bin: bin.clone(),
            dir: dir.clone(),
            env: backend.env.clone(),
            port: free_port(),
            log: dir.join(format!("server-{i}.log")),
            child: None,
            rss: Vec::new(),
            started: Instant::now(),
        };
        node.start()?;
        wait_up(&http, &node.base()).await?;
        nodes.push(node);
    }
    let bases: Vec<String> = nodes.iter().map(Server::base).collect();
    let base = bases[0].clone();
    let server = &nodes[0];
    let mut keys = Vec::new();
    for i in 0..4 {
        let user = server.admin(&["create-user", "--name", &format!("soak{i}")])?;
        let id = user["user_id"].as_str().unwrap_or("0").to_string();
        keys.push(
            server.admin(&["create-key", "--user", &id])?["key"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
        server.admin(&["topup", "--user", &id, "--amount", "100000000"])?;
    }
    let client = Arc::new(Client {
        http: http.clone(),
        bases: bases.clone(),
        keys,
        tasks: Mutex::new(Vec::new()),
        tally: Tally::default(),
        restarting: bases.iter().map(|_| AtomicBool::new(false)).collect(),
        created: AtomicU64::new(0),
    });
    println!(
        "soak: {} s of load from {} clients, kill -9 every {} s, {} on {}",
        args.seconds,
        args.clients,
        args.kill_every,
        bases.join(" "),
        match &backend.bucket {
            Some(bucket) => format!("PostgreSQL + S3 bucket {bucket}"),
            None => "SQLite + disk".to_string(),
        }
    );
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for _ in 0..args.clients {
        let (client, stop) = (client.clone(), stop.clone());
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                client.one_request().await;
                if client.restarting.iter().any(|r| r.load(Ordering::Relaxed)) {
                    // Nobody is listening: do not spin.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }));
    }
    // Kill at least once, half-way through a short run.
    let kill_every = args.kill_every.min(args.seconds / 2).max(1);
    let started = Instant::now();
    let mut next_kill = started + Duration::from_secs(kill_every);
    let mut kills = 0;
    while started.elapsed() < Duration::from_secs(args.seconds) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        nodes.iter_mut().for_each(Server::sample_rss);
        if Instant::now() >= next_kill {
            // The nodes are killed in turn; the others keep serving meanwhile.
            let victim = kills % nodes.len();
            client.restarting[victim].store(true, Ordering::SeqCst);
            let node = &mut nodes[victim];
            node.kill9();
            kills += 1;
            node.start()?;
            wait_up(&http, &node.base()).await?;
            // In-flight requests of the dead process may still be failing for a moment.
            tokio::time::sleep(Duration::from_secs(2)).await;
            client.restarting[victim].store(false, Ordering::SeqCst);
            next_kill = Instant::now() + Duration::from_secs(kill_every);
            println!(
                "  {:>4} s: killed node {victim} with -9 and restarted it",
                started.elapsed().as_secs()
            );
        }
    }
    stop.store(true, Ordering::Relaxed);
    for l in load {
        let _ = l.await;
    }

    // Let every task end (a slow one takes seconds; retries back off). The load can outrun
    // the workers, so a backlog drains for as long as tasks keep ending; only a queue that
    // stops moving for a minute is given up on (and fails the "every task terminal" check).
    let tasks: Vec<(i64, usize)> = client.tasks.lock().unwrap().clone();
    let drained = Instant::now();
    let mut pending: HashSet<i64> = tasks.iter().map(|(id, _)| *id).collect();
    let mut moved = Instant::now();
    while !pending.is_empty() && moved.elapsed() < Duration::from_secs(60) {
        let before = pending.len();
        for chunk in tasks.chunks(100) {
            for user in 0..client.keys.len() {
                let ids: Vec<String> = chunk
                    .iter()
                    .filter(|(id, owner)| *owner == user && pending.contains(id))
                    .map(|(id, _)| id.to_string())
                    .collect();
                if ids.is_empty() {
                    continue;
                }
                let r = http
                    .get(format!("{base}/api/open/tasks/batch?ids={}", ids.join(",")))
                    .bearer_auth(&client.keys[user])
                    .send()
                    .await?
                    .json::<Value>()
                    .await?;
                for t in r["data"].as_array().into_iter().flatten() {
                    if t["status"].as_i64().unwrap_or(0) >= 3 {
                        pending.remove(&t["id"].as_i64().unwrap_or(0));
                    }
                }
            }
        }
        if pending.len() < before {
            moved = Instant::now();
        }
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    println!(
        "after the load: {:.0} s for the queue to drain, {} tasks still open",
        drained.elapsed().as_secs_f64(),
        pending.len()
    );
    nodes.iter_mut().for_each(Server::terminate);

    // Where the nodes kept their state, read the way the server reads its settings.
    let data_dir = dir.join("data").display().to_string();
    let config = plume_server::Config::from_toml("", |name| {
        backend
            .env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .or_else(|| (name == "PLUME_DATA_DIR").then(|| data_dir.clone()))
    })?;
    let stores = checks::Stores {
        database_url: config.database_url(),
        storage_url: config.storage_url(),
        s3: config.s3.clone(),
    };
    let rss: Vec<_> = nodes.iter().map(|n| n.rss.clone()).collect();
    let checks = checks::run(&dir, &stores, &rss, &client.tally).await?;
    println!("\n{:<14} {:<20} {:>8}", "request", "answer", "count");
    for ((kind, outcome), n) in client.tally.counts.lock().unwrap().iter() {
        println!("{kind:<14} {outcome:<20} {n:>8}");
    }
    println!(
        "\n{} creates answered with a task, {} kill -9 restarts, {} s\n",
        client.created.load(Ordering::Relaxed),
        kills,
        started.elapsed().as_secs()
    );
    let mut all_ok = true;
    for c in &checks {
        all_ok &= c.ok;
        println!(
            "{} {:<38} {}",
            if c.ok { "ok  " } else { "FAIL" },
            c.name,
            c.detail
        );
    }
    if all_ok {
        let _ = std::fs::remove_dir_all(&dir);
        println!("\nsoak: every check holds");
        Ok(())
    } else {
        println!(
            "\nsoak: checks failed; the run's files are in {}",
            dir.display()
        );
        if let (Some(url), Some(bucket)) = (&backend.database_url, &backend.bucket) {
            // Kept for a look: the database is dropped only when every check holds.
            println!("soak: the database is {url}, the bucket {bucket}");
            std::mem::forget(backend);
        }
        std::process::exit(1)
    }
}
