//! What happens when a registered task ends, shared by the background poller and `plume
//! check` so both behave the same: download the result, record it, prepare the chat message
//! in the job file, then send it once.
//!
//! A job file leaves only when its delivery is settled. The delivery is written to the job
//! file before `openclaw message send` runs (state `sending`), so a poller killed at any
//! moment resumes every job and never sends one twice.

use crate::api::download;
use crate::deliver::{self, messages, SendOutcome};
use crate::store::{now, now_rfc3339, write_json, Delivery, Job, Store};
use anyhow::Result;
use plume_core::TaskView;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// Largest result we download.
pub const MAX_RESULT_BYTES: u64 = 512 * 1024 * 1024;
/// How long a delivery that certainly sent nothing keeps being retried.
pub const DELIVERY_RETRY_WINDOW: i64 = 600;

fn ext_from(url: &str, content_type: Option<&str>, is_video: bool) -> String {
    let path = url.split(['?', '#']).next().unwrap_or("");
    let from_url = path
        .rsplit('/')
        .next()
        .and_then(|name| name.rsplit_once('.'))
        .map(|(_, e)| e.to_ascii_lowercase());
    if let Some(ext) = from_url.filter(|e| {
        ["png", "jpg", "jpeg", "webp", "gif", "mp4", "mov", "webm"].contains(&e.as_str())
    }) {
        return ext;
    }
    match content_type
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
    {
        "image/png" => "png".into(),
        "image/jpeg" => "jpg".into(),
        "image/webp" => "webp".into(),
        "image/gif" => "gif".into(),
        "video/mp4" => "mp4".into(),
        _ if is_video => "mp4".into(),
        _ => "png".into(),
    }
}

/// Downloads the result of a successful task; `(url, local file or None, is_video)`.
async fn fetch_result(
    store: &Store,
    task_id: i64,
    result: &Value,
) -> (Option<String>, Option<PathBuf>, bool) {
    let video = result.pointer("/parts/0").cloned();
    let is_video = video.is_some();
    let url = match &video {
        Some(part) => part
            .get("videoUrl")
            .and_then(Value::as_str)
            .map(String::from),
        None => result
            .get("imageUrl")
            .and_then(Value::as_str)
            .or_else(|| result.pointer("/imageUrls/0").and_then(Value::as_str))
            .map(String::from),
    };
    let Some(url) = url else {
        return (None, None, is_video);
    };
    // Download under a provisional name, then settle the extension from the answer.
    let provisional = store.result_path(task_id, "part");
    std::fs::create_dir_all(&store.dir).ok();
    let local = match download(&url, &provisional, MAX_RESULT_BYTES).await {
        Ok(content_type) => {
            let dest =
                store.result_path(task_id, &ext_from(&url, content_type.as_deref(), is_video));
            std::fs::rename(&provisional, &dest).ok().map(|_| dest)
        }
        Err(e) => {
            eprintln!("plume: downloading the result of task {task_id} failed: {e:#}");
            None
        }
    };
    if let Some(poster) = video
        .as_ref()
        .and_then(|p| p.get("posterUrl"))
        .and_then(Value::as_str)
    {
        let cover = store.dir.join(format!("result_{task_id}.cover.jpg"));
        if let Err(e) = download(poster, &cover, 32 * 1024 * 1024).await {
            eprintln!("plume: downloading the still of task {task_id} failed: {e:#}");
        }
    }
    (Some(url), local, is_video)
}

/// Prepares the delivery of a terminal task and saves it in the job file.
pub async fn prepare(store: &Store, job: &mut Job, task: &TaskView) -> Result<()> {
    let status = task.status;
    let (message, media) = if task.is_success() {
        let (url, local, is_video) = fetch_result(store, job.task_id, &task.result).await;
        let record = json!({
            "task_id": job.task_id,
            "result_url": url,
            "local_file": local.as_ref().map(|p| p.display().to_string()),
            "media_type": if is_video { "video" } else { "image" },
            "created_at": now_rfc3339(),
        });
        write_json(&store.last_result_path(&job.channel), &record)?;
        if let Some(url) = &url {
            store.register_image(json!({
                "url": url, "local_file": record["local_file"], "task_id": job.task_id, "source": "result",
                "media_type": record["media_type"], "created_at": record["created_at"],
            }))?;
        }
        match (local, url) {
            (Some(file), _) => (
                messages::success(is_video),
                Some(file.display().to_string()),
            ),
            (None, Some(url)) => (messages::download_failed(job.task_id, &url), None),
            (None, None) => (messages::download_failed(job.task_id, "(none)"), None),
        }
    } else {
        let reason = task
            .result
            .as_str()
            .or_else(|| task.error.as_ref().map(|e| e.message.as_str()))
            .filter(|r| !r.is_empty())
            .unwrap_or("no reason given");
        (messages::ended(job.task_id, status, reason), None)
    };
    set_delivery(store, job, message, media)
}

/// Saves a message to deliver (a deadline, a failed query) in the job file, unless the job
/// was removed meanwhile (`plume cancel`): a cancelled watch delivers nothing.
pub fn set_delivery(
    store: &Store,
    job: &mut Job,
    message: String,
    media: Option<String>,
) -> Result<()> {
    let _lock = DeliveryLock::acquire(store)?;
    if !store.job_path(job.task_id).exists() {
        return Ok(());
    }
    job.delivery = Some(Delivery {
        state: "pending".into(),
        message,
        media,
        attempts: 0,
        first_attempt_at: None,
        retry_at: None,
        pid: None,
    });
    store.save_job(job)
}

/// Holds the delivery lock while one delivery is decided and made, so `check` and the
/// poller never send the same job both.
pub struct DeliveryLock(#[allow(dead_code)] std::fs::File);

impl DeliveryLock {
    pub fn acquire(store: &Store) -> Result<DeliveryLock> {
        std::fs::create_dir_all(&store.dir)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(store.dir.join("delivery.lock"))?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)?;
        Ok(DeliveryLock(file))
    }
}

/// Moves a job's delivery forward once; `true` when it is settled and the job file gone.
pub async fn attempt(
    store: &Store,
    task_id: i64,
    openclaw: Option<&Path>,
    log: &mut dyn FnMut(String),
) -> Result<bool> {
    let _lock = DeliveryLock::acquire(store)?;
    // Re-read under the lock: another process may have settled it.
    let Some(mut job) = crate::store::read_json::<Job>(&store.job_path(task_id))? else {
        return Ok(true);
    };
    let Some(mut delivery) = job.delivery.clone() else {
        return Ok(false);
    };
    match delivery.state.as_str() {
        "sending" => {
            // A previous run may have sent it: never again.
            if let Some(pid) = delivery.pid {
                wait_for_exit(pid).await;
            }
            log(format!("task {task_id}: a delivery was under way when the poller stopped; not sending again"));
            store.remove_job(task_id)?;
            return Ok(true);
        }
        "failed" if delivery.retry_at.is_some_and(|t| t > now()) => return Ok(false),
        _ => {}
    }
    let Some(openclaw) = openclaw else {
        log(format!("task {task_id}: openclaw not found; will retry"));
        delivery.state = "failed".into();
        delivery.retry_at = Some(now() + 30);
        let first = *delivery.first_attempt_at.get_or_insert(now());
        job.delivery = Some(delivery);
        if now() - first > DELIVERY_RETRY_WINDOW {
            store.remove_job(task_id)?;
            return Ok(true);
        }
        store.save_job(&job)?;
        return Ok(false);
    };
    delivery.state = "sending".into();
    delivery.attempts += 1;
    delivery.first_attempt_at.get_or_insert(now());
    delivery.pid = None;
    job.delivery = Some(delivery.clone());
    store.save_job(&job)?;
    let media = delivery.media.as_ref().map(PathBuf::from);
    let mut spawned_job = job.clone();
    let outcome = deliver::send(
        openclaw,
        &job.channel,
        &job.target,
        &delivery.message,
        media.as_deref(),
        |pid| {
            if let Some(d) = spawned_job.delivery.as_mut() {
                d.pid = Some(pid);
            }
            let _ = store.save_job(&spawned_job);
        },
    )
    .await;
    match outcome {
        SendOutcome::Sent => {
            log(format!(
                "task {task_id}: delivered to {}:{}",
                job.channel, job.target
            ));
            store.remove_job(task_id)?;
            Ok(true)
        }
        SendOutcome::Settled(why) => {
            log(format!(
                "task {task_id}: delivery settled without retry: {why}"
            ));
            store.remove_job(task_id)?;
            Ok(true)
        }
        SendOutcome::NothingSent(why) => {
            let first = delivery.first_attempt_at.unwrap_or_else(now);
            if now() - first >= DELIVERY_RETRY_WINDOW {
                log(format!(
                    "task {task_id}: giving up delivery after {DELIVERY_RETRY_WINDOW}s: {why}"
                ));
                store.remove_job(task_id)?;
                return Ok(true);
            }
            let backoff = (5i64 << delivery.attempts.min(6)).min(60);
            log(format!(
                "task {task_id}: nothing was sent ({why}); retrying in {backoff}s"
            ));
            delivery.state = "failed".into();
            delivery.retry_at = Some(now() + backoff);
            delivery.pid = None;
            job.delivery = Some(delivery);
            store.save_job(&job)?;
            Ok(false)
        }
    }
}

async fn wait_for_exit(pid: u32) {
    let proc_path = PathBuf::from(format!("/proc/{pid}"));
    for _ in 0..1200 {
        if !proc_path.exists() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::ext_from;

    #[test]
    fn extensions_from_url_or_type() {
        assert_eq!(
            ext_from("http://h/files/results/1/a.png", None, false),
            "png"
        );
        assert_eq!(ext_from("http://h/x.JPG?sig=1", None, false), "jpg");
        assert_eq!(
            ext_from("http://h/download", Some("video/mp4"), true),
            "mp4"
        );
        assert_eq!(
            ext_from("http://h/download", Some("image/webp; q=1"), false),
            "webp"
        );
        assert_eq!(ext_from("http://h/download", None, true), "mp4");
    }
}
