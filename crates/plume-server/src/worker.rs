//! The durable queue's workers.
//!
//! Per category, a dispatcher claims runnable tasks while it has free slots (the category's
//! concurrency) and runs each one under a lease it renews. Losing the lease (the task was
//! cancelled, timed out, or another worker took it after we stalled) stops the run; its
//! result is then discarded by the compare-and-set in `finish`. A reaper moves tasks past
//! their deadline to status 5 with a refund. On shutdown nothing new is claimed; running
//! tasks get a grace period, then their leases are released so the next start resumes them.

use crate::db::{now_millis, TaskRecord, Terminal};
use crate::executor::{ExecContext, ExecError, ExecOutput};
use crate::service::Service;
use plume_core::{validate_content, Category, TaskStatus};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

/// How long an abandoned attempt's result writes get to finish before the orphan sweep runs
/// anyway (the S3 client's own request timeout is 60 s).
const RESULT_WRITE_GRACE: Duration = Duration::from_secs(60);

/// Stops the workers: first `stop_claiming`, then `stop_running` after the grace period.
pub struct Shutdown {
    pub stop_claiming: watch::Receiver<bool>,
    pub stop_running: watch::Receiver<bool>,
}

async fn flipped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await;
}

fn owner_id() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "local".into());
    format!(
        "{host}-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

/// Runs the dispatchers and the reaper until shutdown; returns when every run has ended.
pub async fn run_workers(service: Arc<Service>, shutdown: Shutdown) {
    let owner = Arc::new(owner_id());
    let mut set = JoinSet::new();
    for category in Category::ALL {
        if service.executors.get(category).is_none() {
            continue;
        }
        set.spawn(dispatch(
            service.clone(),
            category,
            owner.clone(),
            shutdown.stop_claiming.clone(),
            shutdown.stop_running.clone(),
        ));
    }
    set.spawn(reap(service.clone(), shutdown.stop_claiming.clone()));
    set.spawn(crate::retention::run(
        service.clone(),
        shutdown.stop_claiming.clone(),
    ));
    while set.join_next().await.is_some() {}
}

async fn dispatch(
    service: Arc<Service>,
    category: Category,
    owner: Arc<String>,
    mut stop_claiming: watch::Receiver<bool>,
    stop_running: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(service.config.concurrency(category).max(1)));
    let poll = Duration::from_millis(service.config.queue.poll_interval_ms.max(10));
    let lease = Duration::from_secs_f64(service.config.queue.lease_seconds);
    let mut running = JoinSet::new();
    loop {
        if *stop_claiming.borrow() {
            break;
        }
        let permit = tokio::select! {
            biased;
            _ = flipped(&mut stop_claiming) => break,
            p = slots.clone().acquire_owned() => p.expect("semaphore never closes"),
        };
        match service
            .db
            .claim(category, &owner, lease.as_millis() as i64)
            .await
        {
            Ok(Some(task)) => {
                service.events.task_changed(task.id);
                let (service, owner, stop) = (service.clone(), owner.clone(), stop_running.clone());
                running.spawn(async move {
                    run_one(&service, task, &owner, stop).await;
                    drop(permit);
                });
                continue;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(%category, error = %e, "claiming a task failed"),
        }
        drop(permit);
        while running.try_join_next().is_some() {}
        tokio::select! {
            _ = service.events.wait_for_work(category) => {}
            _ = tokio::time::sleep(poll) => {}
            _ = flipped(&mut stop_claiming) => break,
        }
    }
    while running.join_next().await.is_some() {}
}

enum Ending {
    Done(Result<ExecOutput, ExecError>),
    LeaseLost,
    Deadline,
    Shutdown,
}

async fn run_one(
    service: &Service,
    task: TaskRecord,
    owner: &str,
    mut stop_running: watch::Receiver<bool>,
) {
    let id = task.id;
    let category = task.category;
    let attempt = u32::try_from(task.attempts).unwrap_or(u32::MAX);
    let max_attempts = service.config.queue.max_attempts;
    // Crash-resumes count as attempts too, so a task that kills its worker every time ends.
    if attempt > max_attempts {
        let message = format!("gave up after {max_attempts} attempts");
        settle(
            service,
            id,
            owner,
            Terminal::failure(TaskStatus::Failed, "ATTEMPTS_EXHAUSTED", message),
        )
        .await;
        return;
    }
    let content = match validate_content(category, &service.current_content(&task)) {
        Ok(c) => c,
        Err(e) => {
            settle(
                service,
                id,
                owner,
                Terminal::failure(TaskStatus::Failed, "INVALID_CONTENT", e.message()),
            )
            .await;
            return;
        }
    };
    let Some(executor) = service.executors.get(category).cloned() else {
        return;
    };
    let ctx = ExecContext {
        task_id: id,
        attempt,
        blobs: service.blobs.clone(),
        fetcher: service.fetcher.clone(),
        http: service.http.clone(),
        db: service.db.clone(),
        events: service.events.clone(),
        owner: owner.to_string(),
        upstream_job: task.upstream_job.clone(),
        writes: tokio_util::task::TaskTracker::new(),
    };
    let lease = Duration::from_secs_f64(service.config.queue.lease_seconds);
    let until_deadline =
        Duration::from_millis(u64::try_from(task.deadline_at - now_millis()).unwrap_or(0));
    let started = Instant::now();
    let ending = {
        let execution = executor.execute(&content, &ctx);
        tokio::pin!(execution);
        let renewals = async {
            loop {
                tokio::time::sleep(lease / 3).await;
                match service.db.renew(id, owner, lease.as_millis() as i64).await {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(e) => tracing::warn!(task = id, error = %e, "lease renewal failed"),
                }
            }
        };
        tokio::select! {
            result = &mut execution => Ending::Done(result),
            _ = renewals => Ending::LeaseLost,
            _ = tokio::time::sleep(until_deadline) => Ending::Deadline,
            _ = flipped(&mut stop_running) => Ending::Shutdown,
        }
    };
    // An abandoned attempt may still be writing a result (a first write to a new bucket can
    // take seconds): let it land before anything looks for orphan files.
    ctx.writes.close();
    if tokio::time::timeout(RESULT_WRITE_GRACE, ctx.writes.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            task = id,
            "a result write of an abandoned attempt is still running"
        );
    }
    let seconds = started.elapsed().as_secs_f64();
    let record = |outcome| {
        service
            .metrics
            .record_execution(category.as_str(), outcome, seconds)
    };
    match ending {
        Ending::Done(Ok(output)) => {
            record("success");
            let terminal = Terminal {
                status: TaskStatus::Success,
                output: serde_json::to_value(&output).ok(),
                error_code: None,
                error_message: None,
            };
            settle(service, id, owner, terminal).await;
        }
        Ending::Done(Err(e)) if e.retryable && attempt < max_attempts => {
            record("retry");
            let backoff = service
                .config
                .queue
                .retry_backoff_ms
                .saturating_mul(1 << (attempt - 1).min(10));
            tracing::info!(task = id, attempt, error = %e.message, "retrying after {backoff} ms");
            let _ = service
                .db
                .release(id, owner, now_millis() + backoff as i64, Some(&e.message))
                .await;
        }
        Ending::Done(Err(e)) => {
            record("failure");
            settle(
                service,
                id,
                owner,
                Terminal::failure(TaskStatus::Failed, &e.code, e.message),
            )
            .await;
        }
        Ending::LeaseLost => {
            record("abandoned");
            if let Ok(Some(now)) = service.db.task(id).await {
                if now.status == TaskStatus::Cancelled {
                    executor.cancelled(now.upstream_job.as_ref()).await;
                }
            }
            crate::retention::collect_orphans(service, id).await;
        }
        Ending::Deadline => {
            record("timeout");
            let message = format!("processing exceeded the {category} time limit");
            settle(
                service,
                id,
                owner,
                Terminal::failure(TaskStatus::Timeout, "TIMEOUT", message),
            )
            .await;
        }
        Ending::Shutdown => {
            record("interrupted");
            // Give it back now so the next start does not wait for the lease to lapse.
            if let Ok(true) = service.db.release(id, owner, now_millis(), None).await {
                // Another node may take it at once.
                service.events.work_arrived(category);
            }
        }
    }
}

/// Writes a terminal status (with its ledger entry) while we hold the lease.
async fn settle(service: &Service, id: i64, owner: &str, terminal: Terminal) {
    match service
        .db
        .finish(id, &terminal, Some(owner), now_millis())
        .await
    {
        Ok(true) => service.events.task_changed(id),
        Ok(false) => tracing::info!(
            task = id,
            "task was settled elsewhere (cancelled or timed out)"
        ),
        // The lease lapses and another attempt settles it; no ledger entry was written.
        Err(e) => {
            tracing::error!(task = id, error = %e, "settling a task failed");
            return;
        }
    }
    // Files of earlier attempts, or all of ours when the settle lost, belong to no result.
    crate::retention::collect_orphans(service, id).await;
}

/// Moves tasks past their deadline to status 5, refunded.
async fn reap(service: Arc<Service>, mut stop: watch::Receiver<bool>) {
    let every = Duration::from_millis(service.config.queue.poll_interval_ms.clamp(100, 5000));
    loop {
        match service.db.overdue(now_millis(), 100).await {
            Ok(ids) => {
                for id in ids {
                    let terminal = Terminal::failure(
                        TaskStatus::Timeout,
                        "TIMEOUT",
                        "the task did not finish within its time limit",
                    );
                    match service.db.finish(id, &terminal, None, now_millis()).await {
                        Ok(true) => {
                            service.events.task_changed(id);
                            // A crashed attempt may have left files behind.
                            crate::retention::collect_orphans(&service, id).await;
                        }
                        Ok(false) => {}
                        Err(e) => tracing::warn!(task = id, error = %e, "timing out a task failed"),
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "looking for overdue tasks failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = flipped(&mut stop) => return,
        }
    }
}

#[cfg(test)]
#[path = "worker_tests.rs"]
mod tests;
