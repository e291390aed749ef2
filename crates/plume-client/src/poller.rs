//! The one background poller per state folder.
//!
//! `register` starts it (`plume __poller`, detached into its own session) unless it is
//! already running; `poller.lock` holds an exclusive lock for as long as it runs and records
//! its pid. It polls each job at that job's interval, in one batch request when several are
//! due and with `?wait=` long polling when only one job is left, backs off on network errors
//! and 5xx answers, and leaves when no job is left.

use crate::api::Api;
use crate::deliver::{find_openclaw, messages};
use crate::outcome::{attempt, prepare, set_delivery};
use crate::settings::Settings;
use crate::store::{now, Job, Store};
use anyhow::{Context, Result};
use plume_core::TaskView;
use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::time::Duration;

/// Longest `?wait=` the poller asks for.
const LONG_POLL_SECONDS: u64 = 25;
/// Longest backoff after network errors.
const MAX_BACKOFF_SECONDS: u64 = 300;

/// Tries to take the poller lock; `None` when another poller holds it.
pub fn try_lock(store: &Store) -> Result<Option<File>> {
    std::fs::create_dir_all(&store.dir)
        .with_context(|| format!("cannot create {}", store.dir.display()))?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(store.lock_path())
        .with_context(|| format!("cannot open {}", store.lock_path().display()))?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(file)),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
        Err(e) => Err(e).context("locking poller.lock"),
    }
}

/// The running poller's pid, or `None` when no poller holds the lock.
pub fn running_pid(store: &Store) -> Result<Option<u32>> {
    if try_lock(store)?.is_some() {
        return Ok(None);
    }
    let mut text = String::new();
    File::open(store.lock_path())?.read_to_string(&mut text)?;
    Ok(Some(text.trim().parse().unwrap_or(0)))
}

/// Starts the poller when jobs wait and none runs (it died: a reboot, an OOM kill, `kill -9`);
/// `Some(pid)` when it started one. Every `plume` command calls this, so the next command
/// after a reboot brings delivery back; `plume jobs --ensure-poller` does it on purpose.
pub fn revive(store: &Store) -> Result<Option<u32>> {
    if store.jobs().is_empty() || running_pid(store)?.is_some() {
        return Ok(None);
    }
    ensure_running(store).map(Some)
}

/// Starts the poller unless one runs; returns its pid.
pub fn ensure_running(store: &Store) -> Result<u32> {
    if let Some(pid) = running_pid(store)? {
        return Ok(pid);
    }
    use std::os::unix::process::CommandExt;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(store.log_path())?;
    let mut cmd = std::process::Command::new(
        std::env::current_exe().context("cannot find the plume executable")?,
    );
    cmd.arg("__poller")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log);
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            rustix::process::setsid()
                .map(|_| ())
                .map_err(std::io::Error::from)
        });
    }
    let mut child = cmd.spawn().context("cannot start the background poller")?;
    // Wait (briefly) until it holds the lock, so what we report next is true.
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while std::time::Instant::now() < deadline {
        if running_pid(store)?.is_some() || child.try_wait()?.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(child.id())
}

fn log_line(text: String) {
    eprintln!("{} {text}", crate::store::now_rfc3339());
}

/// The poller's main loop; returns when no job is left.
pub async fn run(settings: Settings) -> Result<()> {
    let store = Store::new(settings.media_dir());
    let Some(mut lock) = try_lock(&store)? else {
        return Ok(()); // another poller runs
    };
    lock.set_len(0)?;
    lock.rewind()?;
    write!(lock, "{}", std::process::id())?;
    lock.flush()?;
    log_line(format!("poller {} started", std::process::id()));
    let key = settings.api_key.clone().unwrap_or_default();
    let api = Api::new(&settings.api_base, &key);
    let openclaw = find_openclaw();
    let mut next_poll: HashMap<i64, i64> = HashMap::new();
    let mut failures: HashMap<i64, u32> = HashMap::new();
    loop {
        let jobs = store.jobs();
        if jobs.is_empty() {
            // Release, then look once more: a `register` that saw us running may have
            // written a job just now; otherwise it starts a new poller itself.
            drop(lock);
            if store.jobs().is_empty() {
                log_line("no jobs left; poller exits".into());
                return Ok(());
            }
            match try_lock(&store)? {
                Some(l) => lock = l,
                None => return Ok(()),
            }
            continue;
        }
        let mut log = |t: String| log_line(t);
        for job in jobs.iter().filter(|j| j.delivery.is_some()) {
            attempt(&store, job.task_id, openclaw.as_deref(), &mut log).await?;
        }
        let t = now();
        let mut active: Vec<Job> = Vec::new();
        for mut job in jobs.into_iter().filter(|j| j.delivery.is_none()) {
            if t >= job.deadline {
                let message = messages::deadline(job.task_id, t - job.registered_at);
                set_delivery(&store, &mut job, message, None)?;
                attempt(&store, job.task_id, openclaw.as_deref(), &mut log).await?;
            } else {
                active.push(job);
            }
        }
        let due: Vec<&Job> = active
            .iter()
            .filter(|j| next_poll.get(&j.task_id).is_none_or(|n| *n <= t))
            .collect();
        if due.is_empty() {
            let soonest = active
                .iter()
                .filter_map(|j| next_poll.get(&j.task_id))
                .min()
                .copied()
                .unwrap_or(t + 1);
            tokio::time::sleep(Duration::from_secs((soonest - t).clamp(1, 5) as u64)).await;
            continue;
        }
        let answer: Result<Vec<TaskView>, crate::api::ApiFailure> = if active.len() == 1 {
            let job = due[0];
            let wait = LONG_POLL_SECONDS.min((job.deadline - t).max(1) as u64);
            api.task(job.task_id, Some(wait)).await.map(|t| vec![t])
        } else if due.len() == 1 {
            api.task(due[0].task_id, None).await.map(|t| vec![t])
        } else {
            let ids: Vec<i64> = due.iter().map(|j| j.task_id).collect();
            api.tasks(&ids).await
        };
        match answer {
            Ok(tasks) => {
                for job in &due {
                    let task = tasks.iter().find(|t| t.id == job.task_id);
                    failures.remove(&job.task_id);
                    let mut job = (*job).clone();
                    match task {
                        Some(task) if task.is_terminal() => {
                            prepare(&store, &mut job, task).await?;
                            attempt(&store, job.task_id, openclaw.as_deref(), &mut log).await?;
                        }
                        Some(_) => {
                            next_poll.insert(job.task_id, now() + job.interval as i64);
                        }
                        None => {
                            let message = messages::query_failed(
                                job.task_id,
                                "NOT_FOUND",
                                "the server does not know this task",
                            );
                            set_delivery(&store, &mut job, message, None)?;
                            attempt(&store, job.task_id, openclaw.as_deref(), &mut log).await?;
                        }
                    }
                }
            }
            Err(e) if e.is_permanent() => {
                for job in &due {
                    let mut job = (*job).clone();
                    let message = messages::query_failed(job.task_id, &e.code, &e.message);
                    set_delivery(&store, &mut job, message, None)?;
                    attempt(&store, job.task_id, openclaw.as_deref(), &mut log).await?;
                }
            }
            Err(e) => {
                for job in &due {
                    let n = failures.entry(job.task_id).or_insert(0);
                    *n += 1;
                    let backoff = (job.interval.max(1) << (*n).min(8)).min(MAX_BACKOFF_SECONDS);
                    log_line(format!(
                        "task {}: {} ({}); next try in {backoff}s",
                        job.task_id, e.code, e.message
                    ));
                    next_poll.insert(job.task_id, now() + backoff as i64);
                }
            }
        }
    }
}
