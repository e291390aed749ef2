//! `plume-server migrate` (create or upgrade the schema) and `migrate-store` (copy a whole
//! install between backends, e.g. SQLite + disk to PostgreSQL + S3, so a single machine can
//! grow without losing its ledger).

use crate::blob::BlobStore;
use crate::config::Config;
use anyhow::Context;
use serde_json::{json, Value};
use std::path::PathBuf;

/// Opens the configured database, which brings its schema up to date.
pub async fn schema(config: Option<PathBuf>) -> anyhow::Result<Value> {
    let config = Config::from_process(config.as_deref())?;
    crate::service::open_database(&config).await?;
    Ok(json!({
        "database": crate::service::redact_password(&config.database_url()),
        "schema": "up to date",
    }))
}

/// Copies every row from `from` to `to` (which must be empty), then, when given, every file
/// from one store to the other. Files are copied first-to-last by key; one that is already in
/// the target with the same size is skipped, so an interrupted copy can be run again.
pub async fn store(
    config: Option<PathBuf>,
    from: &str,
    to: &str,
    storage: Option<(String, String)>,
) -> anyhow::Result<Value> {
    let config = Config::from_process(config.as_deref())?;
    let source = crate::db::open(from)
        .await
        .map_err(|e| anyhow::anyhow!("--from {}: {e}", crate::service::redact_password(from)))?;
    let target = crate::db::open(to)
        .await
        .map_err(|e| anyhow::anyhow!("--to {}: {e}", crate::service::redact_password(to)))?;
    let export = source
        .export()
        .await
        .context("reading the source database")?;
    target
        .import(&export)
        .await
        .context("writing the target database")?;
    let mut rows = serde_json::Map::new();
    for (table, list) in &export.tables {
        rows.insert(table.to_string(), json!(list.len()));
    }
    tracing::info!(?rows, "database copied");
    let mut files = json!(null);
    if let Some((from_storage, to_storage)) = storage {
        let source = crate::blob::open(&from_storage, &config.s3)
            .await
            .with_context(|| format!("--from-storage {from_storage}"))?;
        let target = crate::blob::open(&to_storage, &config.s3)
            .await
            .with_context(|| format!("--to-storage {to_storage}"))?;
        files = copy_files(source.as_ref(), target.as_ref()).await?;
    }
    Ok(json!({ "rows": rows, "files": files }))
}

async fn copy_files(source: &dyn BlobStore, target: &dyn BlobStore) -> anyhow::Result<Value> {
    let (mut copied, mut skipped, mut bytes) = (0u64, 0u64, 0u64);
    for prefix in ["uploads/", "results/"] {
        for item in source.list(prefix).await? {
            if let Some(meta) = target.head(&item.key).await? {
                if meta.size == item.size {
                    skipped += 1;
                    continue;
                }
            }
            let data = source
                .read(&item.key, u64::MAX)
                .await?
                .with_context(|| format!("{} vanished during the copy", item.key))?;
            bytes += data.len() as u64;
            target.put(&item.key, data).await?;
            copied += 1;
            if copied % 500 == 0 {
                tracing::info!(copied, "files copied so far");
            }
        }
    }
    Ok(json!({ "copied": copied, "skipped": skipped, "bytes": bytes }))
}
