//! The commands. Each returns the JSON object `main` prints and whether it succeeded.

use crate::api::{Api, ApiFailure};
use crate::outcome::{attempt, prepare};
use crate::poller;
use crate::settings::Settings;
use crate::store::{now, now_rfc3339, read_json, Job, Store};
use plume_core::TaskView;
use plume_core::{build_content, BuildOptions, Category};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

pub type Output = (Value, bool);

pub fn fail(code: &str, message: impl Into<String>) -> Output {
    (
        json!({"success": false, "code": code, "error": message.into()}),
        false,
    )
}

fn api_fail(e: ApiFailure) -> Output {
    (e.to_json(), false)
}

pub fn api(settings: &Settings) -> Result<Api, Output> {
    match &settings.api_key {
        Some(key) => Ok(Api::new(&settings.api_base, key)),
        None => Err(fail(
            "NOT_CONFIGURED",
            "PLUME_API_KEY is not configured: set it in the skill's settings (skills.entries.plume-image in openclaw.json) or in ~/.openclaw/.env; never paste it in chat",
        )),
    }
}

/// Uploads a local image and records it in the image registry.
pub async fn upload_file(
    api: &Api,
    store: &Store,
    path: &str,
    channel: Option<&str>,
) -> Result<Value, Output> {
    let path = path.strip_prefix("file://").unwrap_or(path);
    let bytes = std::fs::read(path)
        .map_err(|e| fail("FILE_NOT_FOUND", format!("cannot read {path}: {e}")))?;
    let name = Path::new(path)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("image");
    upload_bytes(api, store, bytes, name, channel).await
}

async fn upload_bytes(
    api: &Api,
    store: &Store,
    bytes: Vec<u8>,
    name: &str,
    channel: Option<&str>,
) -> Result<Value, Output> {
    let data = api.upload(bytes, name).await.map_err(api_fail)?;
    let url = data["file_url"].clone();
    let _ = store.register_image(
        json!({"url": url, "file_key": data["file_key"], "source": "upload",
                                        "channel": channel, "created_at": now_rfc3339()}),
    );
    Ok(json!({
        "success": true, "image_url": url, "file_key": data["file_key"], "file_size": data["file_size"],
        "width": data["width"], "height": data["height"],
    }))
}

pub async fn transfer(
    settings: &Settings,
    file: Option<String>,
    image_key: Option<String>,
    account: Option<String>,
    channel: Option<String>,
) -> Output {
    let api = match api(settings) {
        Ok(a) => a,
        Err(o) => return o,
    };
    let store = Store::new(settings.media_dir());
    let result = match (file, image_key) {
        (Some(path), None) => upload_file(&api, &store, &path, channel.as_deref()).await,
        (None, Some(key)) => {
            match crate::feishu::download_image(&settings.openclaw, account.as_deref(), &key).await
            {
                Ok(bytes) => {
                    upload_bytes(
                        &api,
                        &store,
                        bytes,
                        &format!("{key}.img"),
                        channel.as_deref(),
                    )
                    .await
                }
                Err(e) => Err(fail("FEISHU_ERROR", format!("{e:#}"))),
            }
        }
        _ => Err(fail(
            "VALIDATION_ERROR",
            "give exactly one of --file PATH or --image-key KEY",
        )),
    };
    match result {
        Ok(v) => (v, true),
        Err(o) => o,
    }
}

fn is_local(url: &str) -> bool {
    !(url.starts_with("http://") || url.starts_with("https://"))
}

pub struct CreateArgs {
    pub category: String,
    pub options: BuildOptions,
    pub title: Option<String>,
    pub project_id: Option<String>,
    pub widget_mapping: Option<String>,
    pub idempotency_key: Option<String>,
}

pub async fn create(settings: &Settings, mut args: CreateArgs) -> Output {
    let Some(category) = Category::parse(&args.category) else {
        return fail(
            "INVALID_CATEGORY",
            Category::unknown_message(&args.category),
        );
    };
    let widget_mapping = match args
        .widget_mapping
        .as_deref()
        .map(serde_json::from_str::<Value>)
    {
        None => None,
        Some(Ok(v @ Value::Object(_))) => Some(v),
        Some(_) => return fail("VALIDATION_ERROR", "--widget-mapping must be a JSON object"),
    };
    let api = match api(settings) {
        Ok(a) => a,
        Err(o) => return o,
    };
    let store = Store::new(settings.media_dir());
    // Local paths are uploaded first; the content then names their URLs.
    let o = &mut args.options;
    for url in o.image_urls.iter_mut().chain(
        [
            &mut o.first_frame_url,
            &mut o.last_frame_url,
            &mut o.reference_url,
        ]
        .into_iter()
        .flatten(),
    ) {
        if !url.trim().is_empty() && is_local(url) {
            match upload_file(&api, &store, url.trim(), None).await {
                Ok(up) => *url = up["image_url"].as_str().unwrap_or_default().to_string(),
                Err(o) => return o,
            }
        }
    }
    let content = match build_content(category, &args.options) {
        Ok(c) => c,
        Err(e) => return fail("VALIDATION_ERROR", e.message()),
    };
    let mut body = json!({"category": category.as_str(), "content": content});
    if let Some(t) = args.title {
        body["title"] = json!(t);
    }
    if let Some(p) = args.project_id {
        body["project_id"] = json!(p);
    }
    if let Some(w) = widget_mapping {
        body["widget_mapping"] = w;
    }
    match api.create(&body, args.idempotency_key.as_deref()).await {
        Ok(data) => {
            let id = plume_core::task_id_from_json(&data["id"]).unwrap_or(0);
            let _ = store.record_category(id, category.as_str());
            (
                json!({"success": true, "task_id": id, "status": data["status"], "credits_cost": data["credits_cost"]}),
                true,
            )
        }
        Err(e) => api_fail(e),
    }
}

pub struct RegisterArgs {
    pub task_id: i64,
    pub channel: String,
    pub target: String,
    pub interval: Option<u64>,
    pub max_duration: Option<u64>,
}

pub async fn register(settings: &Settings, args: RegisterArgs) -> Output {
    if crate::deliver::find_openclaw().is_none() {
        return fail("OPENCLAW_NOT_FOUND", "the openclaw command cannot be found (set OPENCLAW_BIN or put it on PATH); results could not be delivered");
    }
    if args.channel.trim().is_empty() || args.target.trim().is_empty() {
        return fail(
            "VALIDATION_ERROR",
            "--channel and --target must not be empty",
        );
    }
    let store = Store::new(settings.media_dir());
    if store.job_path(args.task_id).exists() {
        return fail(
            "ALREADY_REGISTERED",
            format!("task {} is already registered", args.task_id),
        );
    }
    let limit: usize = std::env::var("PLUME_MAX_ACTIVE_POLLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    if store.jobs().len() >= limit {
        return fail("TOO_MANY_JOBS", format!("{limit} tasks are already being watched (PLUME_MAX_ACTIVE_POLLS); wait for one to finish"));
    }
    // The category picks the defaults: from `create`'s record, else from the server.
    let category = match store.category_of(args.task_id) {
        Some(c) => Some(c),
        None => match api(settings) {
            Ok(api) => match api.task(args.task_id, None).await {
                Ok(task) => Some(task.category),
                Err(e) if e.is_permanent() => return api_fail(e),
                Err(_) => None,
            },
            Err(o) => return o,
        },
    };
    let parsed = category.as_deref().and_then(Category::parse);
    let interval = args
        .interval
        .unwrap_or_else(|| {
            parsed
                .map(|c| c.default_poll_interval().as_secs())
                .unwrap_or(5)
        })
        .max(1);
    let max_duration = args
        .max_duration
        .unwrap_or_else(|| {
            parsed
                .map(|c| c.default_time_limit().as_secs())
                .unwrap_or(1800)
        })
        .max(1);
    let t = now();
    let job = Job {
        task_id: args.task_id,
        channel: args.channel,
        target: args.target,
        interval,
        max_duration,
        registered_at: t,
        deadline: t + max_duration as i64,
        category,
        delivery: None,
    };
    if let Err(e) = store.save_job(&job) {
        return fail("STORAGE_ERROR", format!("{e:#}"));
    }
    match poller::ensure_running(&store) {
        Ok(pid) => (
            json!({"success": true, "task_id": job.task_id, "pid": pid,
                   "message": format!("Task #{} is being watched; the result will be sent to this chat when it is ready.", job.task_id)}),
            true,
        ),
        Err(e) => {
            let _ = store.remove_job(job.task_id);
            fail("POLLER_ERROR", format!("{e:#}"))
        }
    }
}

fn task_summary(task: &TaskView) -> Value {
    json!({
        "success": true, "task_id": task.id, "category": task.category, "status": task.status,
        "status_text": task.status_text, "progress": task.progress, "result": task.result, "error": task.error,
    })
}

pub async fn check(settings: &Settings, task_id: i64) -> Output {
    let api = match api(settings) {
        Ok(a) => a,
        Err(o) => return o,
    };
    let task = match api.task(task_id, None).await {
        Ok(t) => t,
        Err(e) => return api_fail(e),
    };
    let mut out = task_summary(&task);
    let store = Store::new(settings.media_dir());
    let terminal = task.is_terminal();
    if let (true, Ok(Some(mut job))) = (terminal, read_json::<Job>(&store.job_path(task_id))) {
        let mut log = |t: String| eprintln!("plume: {t}");
        let mut handled = job.delivery.is_some();
        if !handled {
            handled = prepare(&store, &mut job, &task).await.is_ok();
        }
        let settled = handled
            && attempt(
                &store,
                task_id,
                crate::deliver::find_openclaw().as_deref(),
                &mut log,
            )
            .await
            .unwrap_or(false);
        out["delivered"] = json!(settled);
    }
    (out, true)
}

pub async fn cancel(settings: &Settings, task_id: i64, remote: bool) -> Output {
    let store = Store::new(settings.media_dir());
    let stopped = {
        // Under the delivery lock, so the poller cannot be halfway through delivering it.
        let _lock = match crate::outcome::DeliveryLock::acquire(&store) {
            Ok(l) => l,
            Err(e) => return fail("STORAGE_ERROR", format!("{e:#}")),
        };
        let job: Option<Job> = read_json(&store.job_path(task_id)).ok().flatten();
        if job
            .as_ref()
            .and_then(|j| j.delivery.as_ref())
            .is_some_and(|d| d.state == "sending")
        {
            return fail(
                "DELIVERING",
                format!("task {task_id}'s result is being delivered right now"),
            );
        }
        job.is_some() && store.remove_job(task_id).is_ok()
    };
    let mut out = json!({"success": true, "task_id": task_id, "stopped_polling": stopped});
    if remote {
        let api = match api(settings) {
            Ok(a) => a,
            Err(o) => return o,
        };
        match api.cancel(task_id).await {
            Ok(task) => {
                out["remote"] =
                    json!({"status": task["status"], "status_text": task["status_text"]})
            }
            Err(e) => {
                return (
                    json!({"success": false, "task_id": task_id, "stopped_polling": stopped, "code": e.code, "error": e.message}),
                    false,
                )
            }
        }
    } else if !stopped {
        return fail(
            "NOT_REGISTERED",
            format!("task {task_id} is not being watched"),
        );
    }
    (out, true)
}

/// `plume jobs`: the watched tasks and the poller. `revived` says whether this command
/// already restarted a dead poller (and how that went).
pub fn jobs(
    settings: &Settings,
    ensure_poller: bool,
    revived: Option<Result<u32, String>>,
) -> Output {
    let store = Store::new(settings.media_dir());
    if ensure_poller {
        if let Some(Err(e)) = &revived {
            return fail("POLLER_ERROR", e.clone());
        }
        if settings.api_key.is_none() && !store.jobs().is_empty() {
            return fail(
                "NOT_CONFIGURED",
                "no PLUME_API_KEY: the poller cannot query the server",
            );
        }
    }
    let pid = poller::running_pid(&store).ok().flatten();
    let list: Vec<Value> = store
        .jobs()
        .iter()
        .map(|j| {
            json!({"task_id": j.task_id, "channel": j.channel, "target": j.target, "category": j.category,
                   "interval": j.interval, "deadline_in": j.deadline - now(),
                   "delivery": j.delivery.as_ref().map(|d| d.state.clone())})
        })
        .collect();
    (
        json!({"success": true, "poller_running": pid.is_some(), "poller_pid": pid,
               "poller_started": matches!(revived, Some(Ok(_))), "jobs": list}),
        true,
    )
}

pub async fn poll(settings: &Settings, task_id: i64, interval: u64, max_attempts: u64) -> Output {
    use std::io::IsTerminal;
    let api = match api(settings) {
        Ok(a) => a,
        Err(o) => return o,
    };
    let tty = std::io::stderr().is_terminal();
    let mut attempts = 0;
    let task = loop {
        attempts += 1;
        match api.task(task_id, Some(interval.min(25))).await {
            Ok(t) if t.is_terminal() => break t,
            Ok(t) if tty => eprint!("\rtask {task_id}: {} {}%   ", t.status_text, t.progress),
            Ok(_) => {}
            Err(e) if e.is_permanent() => return api_fail(e),
            Err(e) => eprintln!("plume: {} ({}); retrying", e.code, e.message),
        }
        if attempts >= max_attempts {
            return fail(
                "TIMEOUT",
                format!("task {task_id} did not finish within {max_attempts} polls"),
            );
        }
        tokio::time::sleep(Duration::from_secs(interval.max(1))).await;
    };
    if tty {
        eprintln!();
    }
    let mut out = task_summary(&task);
    if task.is_success() {
        let store = Store::new(settings.media_dir());
        let url = task
            .result
            .pointer("/imageUrl")
            .or_else(|| task.result.pointer("/parts/0/videoUrl"))
            .and_then(Value::as_str);
        if let Some(url) = url {
            let provisional = store.result_path(task_id, "part");
            match crate::api::download(url, &provisional, crate::outcome::MAX_RESULT_BYTES).await {
                Ok(ct) => {
                    let ext = match ct.as_deref().unwrap_or("") {
                        t if t.starts_with("video/") => "mp4",
                        "image/jpeg" => "jpg",
                        "image/webp" => "webp",
                        _ => "png",
                    };
                    let dest = store.result_path(task_id, ext);
                    let _ = std::fs::rename(&provisional, &dest);
                    out["local_file"] = json!(dest.display().to_string());
                }
                Err(e) => out["download_error"] = json!(format!("{e:#}")),
            }
            out["result_url"] = json!(url);
        }
    }
    (out, true)
}

pub fn last(settings: &Settings, channel: &str) -> Output {
    let store = Store::new(settings.media_dir());
    match read_json::<Value>(&store.last_result_path(channel)) {
        Ok(Some(mut v)) => {
            v["success"] = json!(true);
            (v, true)
        }
        Ok(None) => fail(
            "NOT_FOUND",
            format!("no result has been delivered on channel {channel} yet"),
        ),
        Err(e) => fail("STORAGE_ERROR", format!("{e:#}")),
    }
}
