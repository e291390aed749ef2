//! Retention: uploads and result files older than `retention.upload_days` /
//! `retention.result_days` are deleted, so the store does not grow forever. Off (0 days) by
//! default. Every node may run it: deleting is idempotent, and the age comes from the store's
//! own modification time, so it works the same on disk and in a bucket.

use crate::blob::BlobStore;
use crate::service::Service;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How often the store is swept.
const EVERY: Duration = Duration::from_secs(3600);
const DAY_MS: i64 = 24 * 3600 * 1000;

pub async fn run(service: Arc<Service>, mut stop: watch::Receiver<bool>) {
    let retention = service.config.retention.clone();
    if retention.upload_days == 0 && retention.result_days == 0 {
        return;
    }
    loop {
        let now = crate::db::now_millis();
        for (prefix, days) in [
            ("uploads/", retention.upload_days),
            ("results/", retention.result_days),
        ] {
            if days == 0 {
                continue;
            }
            match sweep(
                service.blobs.as_ref(),
                prefix,
                now - i64::from(days) * DAY_MS,
            )
            .await
            {
                Ok(0) => {}
                Ok(n) => tracing::info!(prefix, deleted = n, "retention: old files deleted"),
                Err(e) => tracing::warn!(prefix, error = %e, "retention sweep failed"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
    }
}

/// Deletes the objects under `prefix` last modified before `cutoff`; how many.
pub async fn sweep(
    store: &dyn BlobStore,
    prefix: &str,
    cutoff: i64,
) -> Result<usize, crate::blob::BlobError> {
    let mut deleted = 0;
    for item in store.list(prefix).await? {
        if item.modified < cutoff {
            store.delete(&item.key).await?;
            deleted += 1;
        }
    }
    Ok(deleted)
}

/// Deletes a terminal task's files that its result does not name: the outputs of an attempt
/// that crashed before settling, or of one whose settle lost to a cancel or the deadline.
/// The result's files (and their gallery thumbnails) stay. A task still running is left
/// alone: its worker may be writing.
pub async fn collect_orphans(service: &Service, task_id: i64) {
    let task = match service.db.task(task_id).await {
        Ok(Some(t)) if t.status.is_terminal() => t,
        _ => return,
    };
    let mut keep: Vec<String> = Vec::new();
    if task.status == plume_core::TaskStatus::Success {
        if let Some(Ok(output)) = task
            .output
            .clone()
            .map(serde_json::from_value::<crate::executor::ExecOutput>)
        {
            match output {
                crate::executor::ExecOutput::Images { images } => {
                    keep.extend(images.into_iter().map(|i| i.key))
                }
                crate::executor::ExecOutput::Videos { parts } => {
                    for p in parts {
                        keep.push(p.key);
                        keep.extend(p.poster_key);
                    }
                }
            }
        }
    }
    let kept = |key: &str| {
        keep.iter()
            .any(|k| k == key || crate::portal::thumbs::thumb_name(k) == key)
    };
    let listed = match service.blobs.list(&format!("results/{task_id}/")).await {
        Ok(listed) => listed,
        Err(e) => {
            tracing::warn!(task = task_id, error = %e, "listing a task's files failed");
            return;
        }
    };
    for file in listed {
        if kept(file.key.as_str()) {
            continue;
        }
        match service.blobs.delete(&file.key).await {
            Ok(()) => tracing::info!(task = task_id, key = %file.key, "orphan result file deleted"),
            Err(e) => tracing::warn!(task = task_id, error = %e, "deleting an orphan file failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blob::{DiskBlobStore, FileKey};
    use bytes::Bytes;

    #[tokio::test]
    async fn sweeps_only_what_is_old_and_under_the_prefix() {
        let dir = std::env::temp_dir().join(format!("plume-retention-{}", std::process::id()));
        let store = DiskBlobStore::new(&dir).unwrap();
        let upload = FileKey::new_upload("png");
        let result = FileKey::new_result(7, "png");
        for key in [&upload, &result] {
            store.put(key, Bytes::from_static(b"x")).await.unwrap();
        }
        let now = crate::db::now_millis();
        assert_eq!(sweep(&store, "uploads/", now - DAY_MS).await.unwrap(), 0);
        assert_eq!(sweep(&store, "uploads/", now + 1000).await.unwrap(), 1);
        assert!(store.head(&upload).await.unwrap().is_none());
        assert!(
            store.head(&result).await.unwrap().is_some(),
            "other prefix kept"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
