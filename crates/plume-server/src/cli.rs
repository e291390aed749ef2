//! The `plume-server` command line: `serve` and the operator's `admin` commands.
//!
//! [`main_with`] takes the executors so that a build with more of them (the test harness, a
//! deployment with providers) reuses the same commands.

use crate::accounts::Admin;
use crate::config::Config;
use crate::executor::Executors;
use crate::service::Service;
use crate::worker::{run_workers, Shutdown};
use clap::{Parser, Subcommand};
use plume_core::Envelope;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tokio::sync::watch;

#[derive(Parser)]
#[command(
    name = "plume-server",
    version,
    about = "The self-hostable Plume Open API: keys, credits, a durable task queue and file storage.",
    long_about = "The self-hostable Plume Open API.\n\n\
        Runs with no setup: `plume-server serve` listens on 127.0.0.1:8080 and keeps its SQLite \
        database and files under ./data. Create an account with the admin commands:\n\n  \
        plume-server admin create-user --name alice      -> {\"user_id\": \"1\", ...}\n  \
        plume-server admin create-user --email ops@example.com --admin < password.txt\n  \
        plume-server admin create-key --user 1           -> {\"key\": \"plume_sk_...\"}  (shown once)\n  \
        plume-server admin topup --user 1 --amount 100\n\n\
        Settings come from --config FILE (TOML) and the environment: PLUME_LISTEN, \
        PLUME_DATA_DIR, PLUME_PUBLIC_BASE, PLUME_ADMIN_TOKEN, PLUME_FETCH_ALLOW_HOSTS.\n\n\
        Several nodes share one PostgreSQL database and one S3-compatible bucket: \
        PLUME_DATABASE_URL=postgres://… and PLUME_STORAGE_URL=s3://BUCKET with PLUME_S3_ENDPOINT, \
        PLUME_S3_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (docs/DEPLOYMENT.md)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API and run the task workers until SIGINT/SIGTERM.
    Serve {
        /// TOML configuration file (see docs/CONFIGURATION.md); PLUME_* variables override it.
        #[arg(long, env = "PLUME_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Run a local model on a file, without the HTTP layer (for operators and benchmarks).
    Vision {
        #[arg(long, env = "PLUME_CONFIG", global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: VisionCommand,
    },
    /// Create or upgrade the database schema, then exit (serve does this at start too).
    Migrate {
        #[arg(long, env = "PLUME_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Copy a whole install to another database and store: every user, key, task, ledger
    /// entry and file, ids kept. Stop the servers first; the target database must be empty.
    ///
    /// Example: plume-server migrate-store --from sqlite://./data/plume.db --to postgres://postgres@db/plume
    ///          --from-storage file://./data/files --to-storage s3://plume
    /// The S3 settings (PLUME_S3_ENDPOINT, AWS_ACCESS_KEY_ID, …) apply to whichever side is s3://.
    MigrateStore {
        #[arg(long, env = "PLUME_CONFIG")]
        config: Option<PathBuf>,
        /// Database to read: sqlite://PATH or postgres://…
        #[arg(long)]
        from: String,
        /// Database to write (empty): sqlite://PATH or postgres://…
        #[arg(long)]
        to: String,
        /// File store to read: file://PATH or s3://BUCKET[/PREFIX]; files are not copied when omitted.
        #[arg(long, requires = "to_storage")]
        from_storage: Option<String>,
        /// File store to write: file://PATH or s3://BUCKET[/PREFIX].
        #[arg(long, requires = "from_storage")]
        to_storage: Option<String>,
    },
    /// Operator commands that work on the database directly; each prints one JSON object.
    Admin {
        #[arg(long, env = "PLUME_CONFIG", global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Subcommand)]
enum VisionCommand {
    /// Cut out the subject: a PNG with the matte as alpha.
    RemoveBg { input: PathBuf, output: PathBuf },
    /// Remove watermarks; --region x,y,w,h (repeatable) forces an area.
    RemoveWatermark {
        input: PathBuf,
        output: PathBuf,
        #[arg(long = "region", value_parser = parse_region)]
        regions: Vec<[u64; 4]>,
    },
}

fn parse_region(text: &str) -> Result<[u64; 4], String> {
    let parts: Vec<u64> = text
        .split(',')
        .map(|p| p.trim().parse::<u64>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("{text:?} is not x,y,w,h"))?;
    match parts.as_slice() {
        [x, y, w, h] if *w > 0 && *h > 0 => Ok([*x, *y, *w, *h]),
        _ => Err(format!("{text:?} is not x,y,w,h with w and h above 0")),
    }
}

fn run_vision(
    config: Option<PathBuf>,
    command: VisionCommand,
) -> Result<serde_json::Value, String> {
    let config = Config::from_process(config.as_deref()).map_err(|e| format!("{e:#}"))?;
    let vision = plume_vision::Vision::new(config.vision());
    let read =
        |p: &PathBuf| std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()));
    let started = std::time::Instant::now();
    let (output, bytes, width, height, inference, extra) = match command {
        VisionCommand::RemoveBg { input, output } => {
            vision.matte_ready()?;
            let data = read(&input)?;
            let (result, inference) = plume_vision::runtime::with_inference_time(|| {
                plume_vision::matte::remove_background(&vision, &data)
            });
            let (png, w, h) = result.map_err(|e| e.to_string())?;
            (output, png, w, h, inference, serde_json::json!({}))
        }
        VisionCommand::RemoveWatermark {
            input,
            output,
            regions,
        } => {
            vision.text_ready()?;
            let data = read(&input)?;
            let (result, inference) = plume_vision::runtime::with_inference_time(|| {
                plume_vision::watermark::remove_watermark(&vision, &data, &regions)
            });
            let removal = result.map_err(|e| e.to_string())?;
            let accepted: Vec<serde_json::Value> = removal
                .candidates
                .iter()
                .map(|c| serde_json::json!({"region": [c.rect.x, c.rect.y, c.rect.w, c.rect.h], "score": c.score, "reasons": c.reasons, "removed": c.accepted}))
                .collect();
            let extra =
                serde_json::json!({"masked_pixels": removal.masked_pixels, "candidates": accepted});
            (
                output,
                removal.bytes,
                removal.width,
                removal.height,
                inference,
                extra,
            )
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    std::fs::write(&output, &bytes)
        .map_err(|e| format!("cannot write {}: {e}", output.display()))?;
    let mut out = serde_json::json!({
        "output": output.display().to_string(), "width": width, "height": height,
        "seconds": seconds, "inference_seconds": inference.as_secs_f64(),
    });
    if let (Some(o), Some(e)) = (out.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    Ok(out)
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create a user: {"user_id": ...}. With --email the user can sign in to the portal; the
    /// password is read from stdin (one line), so it stays out of the shell history. --admin
    /// makes an operator, who sees the portal's admin pages.
    CreateUser {
        /// A name for a user without a portal login (API keys only).
        #[arg(long, required_unless_present = "email")]
        name: Option<String>,
        /// The email the user signs in with.
        #[arg(long)]
        email: Option<String>,
        /// Make this user an operator (needs --email).
        #[arg(long, requires = "email")]
        admin: bool,
    },
    /// Create an API key for a user: {"key": ...}. The key is shown only this once.
    CreateKey {
        #[arg(long)]
        user: String,
    },
    /// Disable an API key; requests with it then answer FORBIDDEN.
    DisableKey {
        #[arg(long)]
        key: String,
    },
    /// Add credits to a user's account (opening it on the first top-up).
    Topup {
        #[arg(long)]
        user: String,
        #[arg(long, allow_negative_numbers = true)]
        amount: i64,
    },
    /// Show a user's balance and ledger totals.
    Balance {
        #[arg(long)]
        user: String,
    },
    /// List recent tasks, newest first.
    Tasks {
        /// 1-6 or a name: initialized, processing, success, failed, timeout, cancelled.
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
}

/// Runs the command line with the given executors; `main` of every build calls this.
pub fn main_with(executors: Executors) -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("plume-server: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::Serve { config } => {
            init_logging("info");
            match runtime.block_on(serve_with(config, executors)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("plume-server: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Vision { config, command } => {
            init_logging("warn");
            match run_vision(config, command) {
                Ok(json) => {
                    println!("{json}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    let env = Envelope::failure(plume_core::ErrorCode::ValidationError, e, None);
                    println!("{}", serde_json::to_value(env).unwrap_or_default());
                    ExitCode::FAILURE
                }
            }
        }
        Command::Migrate { config } => {
            init_logging("warn");
            report(runtime.block_on(crate::migrate::schema(config)))
        }
        Command::MigrateStore {
            config,
            from,
            to,
            from_storage,
            to_storage,
        } => {
            init_logging("info");
            let storage = from_storage.zip(to_storage);
            report(runtime.block_on(crate::migrate::store(config, &from, &to, storage)))
        }
        Command::Admin { config, command } => {
            init_logging("warn");
            let (json, success) = runtime.block_on(admin(config, command));
            println!("{json}");
            if success {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// Prints a command's JSON answer, or its error on one line.
fn report(result: anyhow::Result<serde_json::Value>) -> ExitCode {
    match result {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("plume-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

async fn admin(config: Option<PathBuf>, command: AdminCommand) -> (serde_json::Value, bool) {
    let fail = |code: plume_core::ErrorCode, message: String| {
        (
            serde_json::to_value(Envelope::failure(code, message, None)).unwrap_or_default(),
            false,
        )
    };
    let config = match Config::from_process(config.as_deref()) {
        Ok(c) => c,
        Err(e) => return fail(plume_core::ErrorCode::ValidationError, format!("{e:#}")),
    };
    let db = match crate::service::open_database(&config).await {
        Ok(db) => db,
        Err(e) => return fail(plume_core::ErrorCode::InternalError, format!("{e:#}")),
    };
    let admin = Admin { db: db.as_ref() };
    let result = match command {
        AdminCommand::CreateUser {
            email: Some(email),
            admin: is_admin,
            ..
        } => {
            let mut password = String::new();
            if let Err(e) = std::io::stdin().read_line(&mut password) {
                return fail(
                    plume_core::ErrorCode::ValidationError,
                    format!("cannot read the password from stdin: {e}"),
                );
            }
            let password = password.trim_end_matches(['\r', '\n']);
            admin.create_login(&email, password, is_admin).await
        }
        AdminCommand::CreateUser { name, .. } => {
            admin.create_user(name.as_deref().unwrap_or("")).await
        }
        AdminCommand::CreateKey { user } => admin.create_key(&user).await,
        AdminCommand::DisableKey { key } => admin.disable_key(&key).await,
        AdminCommand::Topup { user, amount } => admin.topup(&user, amount).await,
        AdminCommand::Balance { user } => admin.balance(&user).await,
        AdminCommand::Tasks { status, limit } => admin.tasks(status.as_deref(), limit).await,
    };
    match result {
        Ok(json) => (json, true),
        Err(e) => {
            let env = Envelope::failure(e.code, e.message, e.details);
            (serde_json::to_value(env).unwrap_or_default(), false)
        }
    }
}

async fn serve_with(config_file: Option<PathBuf>, executors: Executors) -> anyhow::Result<()> {
    let config = Config::from_process(config_file.as_deref())?;
    serve(config, executors).await
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Serves the API and runs the workers until a shutdown signal, then drains within the
/// configured grace period.
pub async fn serve(config: Config, executors: Executors) -> anyhow::Result<()> {
    let addr = config.listen_addr()?;
    let grace = Duration::from_secs_f64(config.queue.shutdown_grace_seconds.max(0.0));
    let service = Service::open(config, executors).await?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    let unavailable: Vec<&str> = plume_core::Category::ALL
        .into_iter()
        .filter(|c| service.executors.ready(*c).is_err())
        .map(|c| c.as_str())
        .collect();
    tracing::info!(
        listen = %listener.local_addr()?,
        public_base = %service.config.public_base,
        database = %crate::service::redact_password(&service.config.database_url()),
        storage = %service.config.storage_url(),
        "plume-server ready"
    );
    if !unavailable.is_empty() {
        tracing::info!(
            "categories without an executor (CATEGORY_UNAVAILABLE): {}",
            unavailable.join(", ")
        );
    }
    let (stop_claiming_tx, stop_claiming) = watch::channel(false);
    let (stop_running_tx, stop_running) = watch::channel(false);
    let workers = tokio::spawn(run_workers(
        service.clone(),
        Shutdown {
            stop_claiming,
            stop_running,
        },
    ));
    let (http_stop_tx, http_stop) = watch::channel(false);
    let app = crate::http::router(service.clone());
    let mut http_stop_wait = http_stop.clone();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = http_stop_wait.wait_for(|v| *v).await;
        })
        .await
    });
    shutdown_signal().await;
    tracing::info!(
        "shutting down: no new tasks are claimed; running tasks have {grace:?} to finish"
    );
    let _ = stop_claiming_tx.send(true);
    let _ = http_stop_tx.send(true);
    let drain = async {
        let _ = workers.await;
        let _ = server.await;
    };
    tokio::pin!(drain);
    tokio::select! {
        _ = &mut drain => {}
        _ = tokio::time::sleep(grace) => {
            let _ = stop_running_tx.send(true);
            // Interrupted tasks release their leases; give that a moment, then leave.
            let _ = tokio::time::timeout(Duration::from_secs(5), &mut drain).await;
        }
    }
    drop(http_stop);
    tracing::info!("stopped");
    Ok(())
}
