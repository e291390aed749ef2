//! `plume`: the plume-image skill's tool. An OpenClaw agent runs it to turn a chat request
//! into a Plume task, hand the task to a background poller, and get the result delivered to
//! the chat. Every command prints one JSON object on stdout (`check-config` prints one word);
//! logs go to stderr; the exit status is 0 on success and 1 otherwise.

mod adopt;
mod api;
mod commands;
mod deliver;
mod feishu;
mod outcome;
mod poller;
mod settings;
mod store;

use clap::{Parser, Subcommand};
use plume_core::BuildOptions;
use serde_json::Value;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "plume",
    version,
    about = "Create Plume image and video tasks from an OpenClaw chat and deliver the results.",
    long_about = "Create Plume image and video tasks from an OpenClaw chat and deliver the results.\n\n\
        The usual flow, as the plume-image skill runs it:\n\n  \
        plume check-config                                   # CONFIGURED or NOT_CONFIGURED\n  \
        plume transfer --file ./photo.jpg                    # upload a local image -> image_url\n  \
        plume create --category Banana2 --prompt \"a cat in Pixar style\" --image-url URL\n  \
        plume register --task-id 1042 --channel telegram --target 123456789\n\n\
        `register` returns at once; a background poller waits for the task and sends the result \
        with `openclaw message send`. Settings: PLUME_API_KEY and PLUME_API_BASE from the \
        environment, then openclaw.json (skills.entries.plume-image), then .env in the OpenClaw \
        state folder ($OPENCLAW_STATE_DIR or ~/.openclaw)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print CONFIGURED or NOT_CONFIGURED; with --verify also check the key with the server
    /// (INVALID_KEY, UNREACHABLE).
    CheckConfig {
        #[arg(long)]
        verify: bool,
    },
    /// Upload an image (a local file, or a Feishu message image by its key) and print its URL.
    Transfer {
        /// A local image path (a leading file:// is fine).
        #[arg(long, conflicts_with = "image_key")]
        file: Option<String>,
        /// A Feishu image key, downloaded with the Feishu app credentials in openclaw.json.
        #[arg(long)]
        image_key: Option<String>,
        /// Which Feishu account of openclaw.json to use.
        #[arg(long)]
        feishu_account: Option<String>,
        /// The chat channel the image came from (recorded with it).
        #[arg(long)]
        channel: Option<String>,
    },
    /// Create a task. Local image paths are uploaded first.
    ///
    /// Categories: Banana2, BananaPro (Gemini image), seedream, remove-bg, remove-watermark,
    /// veo, seedance2. For style transfer use Banana2 with a style prompt.
    Create(Box<CreateOpts>),
    /// Hand a task to the background poller, which delivers the result to the chat.
    Register {
        #[arg(long)]
        task_id: i64,
        /// The OpenClaw channel (telegram, feishu, qqbot, ...).
        #[arg(long)]
        channel: String,
        /// The chat or user to deliver to.
        #[arg(long)]
        target: String,
        /// Seconds between polls (default: by category).
        #[arg(long)]
        interval: Option<u64>,
        /// Give up after this many seconds (default: the category's time limit).
        #[arg(long)]
        max_duration: Option<u64>,
    },
    /// Query a task once; a finished, registered task is delivered as the poller would.
    Check {
        #[arg(long)]
        task_id: i64,
    },
    /// Stop watching a task; with --remote also cancel it on the server (refunded).
    Cancel {
        #[arg(long)]
        task_id: i64,
        #[arg(long)]
        remote: bool,
    },
    /// List watched tasks and whether the poller runs.
    ///
    /// Every plume command restarts a poller that died while tasks were watched; run
    /// `plume jobs --ensure-poller` at login or boot (a systemd user unit, cron @reboot) so
    /// results finished while the machine was down are delivered without a new task.
    Jobs {
        /// Start the poller if jobs wait and none runs; exit 1 if it cannot be started.
        #[arg(long)]
        ensure_poller: bool,
    },
    /// Poll a task in the foreground and download its result (for debugging).
    Poll {
        #[arg(long)]
        task_id: i64,
        #[arg(long, default_value_t = 5)]
        interval: u64,
        #[arg(long, default_value_t = 720)]
        max_attempts: u64,
    },
    /// Print the newest result delivered on a channel.
    Last {
        #[arg(long)]
        channel: String,
    },
    /// The background poller itself (started by register).
    #[command(name = "__poller", hide = true)]
    Poller,
}

/// `plume create` options.
#[derive(clap::Args)]
struct CreateOpts {
    /// Banana2, BananaPro, seedream, remove-bg, remove-watermark, veo or seedance2.
    #[arg(long)]
    category: String,
    /// What to make or change (required except for remove-bg and remove-watermark).
    #[arg(long)]
    prompt: Option<String>,
    /// text_to_image, image_to_image, multi_image_blend; text_to_video, image_to_video;
    /// first_frame, first_last_frame, universal_reference (defaults follow the images given).
    #[arg(long)]
    processing_mode: Option<String>,
    /// One input image (URL or local path).
    #[arg(long)]
    image_url: Option<String>,
    /// Several input images, comma-separated.
    #[arg(long, value_delimiter = ',')]
    image_urls: Vec<String>,
    /// Video: the first frame (veo slot 1, seedance2 first_frame).
    #[arg(long)]
    first_frame_url: Option<String>,
    /// Video: the last frame (veo slot 2, seedance2 first_last_frame).
    #[arg(long)]
    last_frame_url: Option<String>,
    /// Video: a reference image (veo slot 3, seedance2 universal_reference).
    #[arg(long)]
    reference_url: Option<String>,
    /// 1K, 2K (default) or 4K.
    #[arg(long)]
    image_size: Option<String>,
    /// 21:9, 16:9, 4:3, 3:2, 1:1, 9:16 (default), 3:4, 2:3, 5:4, 4:5.
    #[arg(long)]
    aspect_ratio: Option<String>,
    /// Video seconds: veo 4, 6 or 8; seedance2 5, 10 or 15.
    #[arg(long)]
    duration: Option<u64>,
    /// Video model: veo3.1-fast (default), veo3.1, veo3.1-lite; seedance2-5s/10s/15s.
    #[arg(long)]
    model: Option<String>,
    /// A title stored with the task.
    #[arg(long)]
    title: Option<String>,
    /// A project id stored with the task.
    #[arg(long)]
    project_id: Option<String>,
    /// A JSON object passed through to the server.
    #[arg(long)]
    widget_mapping: Option<String>,
    /// Retrying with the same key never creates or charges twice.
    #[arg(long)]
    idempotency_key: Option<String>,
}

fn print(output: (Value, bool)) -> ExitCode {
    println!("{}", output.0);
    if output.1 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            return print(commands::fail(
                "INTERNAL_ERROR",
                format!("cannot start: {e}"),
            ))
        }
    };
    let settings = match settings::Settings::load() {
        Ok(s) => s,
        Err(e) => {
            if matches!(cli.command, Command::CheckConfig { .. }) {
                eprintln!("plume: {e:#}");
                println!("NOT_CONFIGURED");
                return ExitCode::FAILURE;
            }
            return print(commands::fail("CONFIG_ERROR", format!("{e:#}")));
        }
    };
    // A poller that died (reboot, OOM, kill -9) comes back with the next command.
    let mut revived = None;
    if !matches!(cli.command, Command::Poller) && settings.api_key.is_some() {
        let store = store::Store::new(settings.media_dir());
        // Calls of the OpenClaw plugin whose gateway died become jobs the poller delivers.
        match adopt::adopt_orphans(&settings, &store) {
            Ok(0) => {}
            Ok(n) => eprintln!("plume: {n} result(s) of OpenClaw calls lost by a gateway restart will be delivered"),
            Err(e) => eprintln!("plume: cannot adopt the OpenClaw plugin's lost calls: {e:#}"),
        }
        match poller::revive(&store) {
            Ok(Some(pid)) => {
                eprintln!("plume: the background poller was not running; restarted it (pid {pid})");
                revived = Some(Ok(pid));
            }
            Ok(None) => {}
            Err(e) => {
                eprintln!("plume: cannot restart the background poller: {e:#}");
                revived = Some(Err(format!("{e:#}")));
            }
        }
    }
    runtime.block_on(async move {
        match cli.command {
            Command::CheckConfig { verify } => {
                let word = match (&settings.api_key, verify) {
                    (None, _) => "NOT_CONFIGURED",
                    (Some(_), false) => "CONFIGURED",
                    (Some(key), true) => {
                        match api::Api::new(&settings.api_base, key).validate().await {
                            Ok(_) => "CONFIGURED",
                            Err(e) if e.code == "UNAUTHORIZED" || e.code == "FORBIDDEN" => {
                                "INVALID_KEY"
                            }
                            Err(e) => {
                                eprintln!("plume: {} ({})", e.message, e.code);
                                "UNREACHABLE"
                            }
                        }
                    }
                };
                println!("{word}");
                if word == "CONFIGURED" {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                }
            }
            Command::Transfer {
                file,
                image_key,
                feishu_account,
                channel,
            } => {
                print(commands::transfer(&settings, file, image_key, feishu_account, channel).await)
            }
            Command::Create(opts) => {
                let CreateOpts {
                    category,
                    prompt,
                    processing_mode,
                    image_url,
                    image_urls,
                    first_frame_url,
                    last_frame_url,
                    reference_url,
                    image_size,
                    aspect_ratio,
                    duration,
                    model,
                    title,
                    project_id,
                    widget_mapping,
                    idempotency_key,
                } = *opts;
                let options = BuildOptions {
                    prompt,
                    processing_mode,
                    image_urls: image_url
                        .into_iter()
                        .chain(image_urls)
                        .filter(|u| !u.trim().is_empty())
                        .collect(),
                    first_frame_url,
                    last_frame_url,
                    reference_url,
                    image_size,
                    aspect_ratio,
                    duration,
                    model,
                    regions: Vec::new(),
                };
                let args = commands::CreateArgs {
                    category,
                    options,
                    title,
                    project_id,
                    widget_mapping,
                    idempotency_key,
                };
                print(commands::create(&settings, args).await)
            }
            Command::Register {
                task_id,
                channel,
                target,
                interval,
                max_duration,
            } => {
                let args = commands::RegisterArgs {
                    task_id,
                    channel,
                    target,
                    interval,
                    max_duration,
                };
                print(commands::register(&settings, args).await)
            }
            Command::Check { task_id } => print(commands::check(&settings, task_id).await),
            Command::Cancel { task_id, remote } => {
                print(commands::cancel(&settings, task_id, remote).await)
            }
            Command::Jobs { ensure_poller } => {
                print(commands::jobs(&settings, ensure_poller, revived))
            }
            Command::Poll {
                task_id,
                interval,
                max_attempts,
            } => print(commands::poll(&settings, task_id, interval, max_attempts).await),
            Command::Last { channel } => print(commands::last(&settings, &channel)),
            Command::Poller => match poller::run(settings).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("{} poller stopped: {e:#}", store::now_rfc3339());
                    ExitCode::FAILURE
                }
            },
        }
    })
}
