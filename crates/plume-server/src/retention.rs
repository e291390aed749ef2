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
