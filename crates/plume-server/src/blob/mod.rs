//! The blob store: uploads and results, addressed by validated [`FileKey`]s.
//!
//! [`BlobStore`] is the seam between local disk ([`disk::DiskBlobStore`]) and S3-compatible
//! storage ([`s3::S3BlobStore`]); [`open`] picks one from the storage URL, so callers never
//! learn which they have. Keys are unguessable and immutable once written, so an ETag never
//! has to change.

pub mod disk;
pub mod s3;

pub use disk::DiskBlobStore;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use rand::RngCore;
use std::sync::Arc;

/// Longest key we accept.
pub const MAX_KEY_LEN: usize = 200;

/// A storage key: `/`-separated segments of `[A-Za-z0-9_.-]`, no segment empty, starting
/// with a dot, or `..`. By construction it cannot name anything outside the store's root.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileKey(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid file key: {0}")]
pub struct KeyError(pub &'static str);

impl FileKey {
    pub fn parse(key: &str) -> Result<FileKey, KeyError> {
        if key.is_empty() || key.len() > MAX_KEY_LEN {
            return Err(KeyError("empty or too long"));
        }
        for segment in key.split('/') {
            if segment.is_empty() {
                return Err(KeyError("empty segment or absolute path"));
            }
            if segment.starts_with('.') {
                return Err(KeyError("segment starts with a dot"));
            }
            if !segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
            {
                return Err(KeyError("character outside [A-Za-z0-9_.-/]"));
            }
        }
        Ok(FileKey(key.to_string()))
    }

    fn random_name(ext: &str) -> String {
        let mut bytes = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut bytes);
        format!("{}.{ext}", hex::encode(bytes))
    }

    /// A fresh key for an upload: `uploads/YYYYMMDD/<128 random bits>.<ext>`.
    pub fn new_upload(ext: &str) -> FileKey {
        let day = chrono::Utc::now().format("%Y%m%d");
        FileKey(format!("uploads/{day}/{}", FileKey::random_name(ext)))
    }

    /// A fresh key for a task's output: `results/<task id>/<128 random bits>.<ext>`.
    pub fn new_result(task_id: i64, ext: &str) -> FileKey {
        FileKey(format!("results/{task_id}/{}", FileKey::random_name(ext)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn content_type(&self) -> &'static str {
        content_type_for(self.0.rsplit('.').next().unwrap_or(""))
    }
}

impl std::fmt::Display for FileKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub fn content_type_for(ext: &str) -> &'static str {
    match ext.to_ascii_lowercase().as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "mp4" => "video/mp4",
        _ => "application/octet-stream",
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobMeta {
    pub size: u64,
    pub content_type: &'static str,
    /// A strong ETag, quotes included.
    pub etag: String,
}

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("storage I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("object storage error: {0}")]
    Remote(String),
}

/// One stored object, as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub key: FileKey,
    pub size: u64,
    /// Milliseconds since the Unix epoch.
    pub modified: i64,
}

pub type BlobStream = BoxStream<'static, std::io::Result<Bytes>>;

#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Stores `bytes` under `key` atomically: a reader sees the whole object or none.
    async fn put(&self, key: &FileKey, bytes: Bytes) -> Result<BlobMeta, BlobError>;
    async fn head(&self, key: &FileKey) -> Result<Option<BlobMeta>, BlobError>;
    /// Streams the object, or the inclusive byte range `(first, last)` of it, which the
    /// caller has checked against `head`.
    async fn get(
        &self,
        key: &FileKey,
        range: Option<(u64, u64)>,
    ) -> Result<Option<BlobStream>, BlobError>;
    /// Reads a whole object into memory, refusing one larger than `max` bytes.
    async fn read(&self, key: &FileKey, max: u64) -> Result<Option<Bytes>, BlobError>;
    /// Removes an object; removing one that is not there is not an error.
    async fn delete(&self, key: &FileKey) -> Result<(), BlobError>;
    /// Every object whose key starts with `prefix` (a whole segment path such as `uploads/`).
    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, BlobError>;
    /// A round trip that proves the store is reachable and the credentials work.
    async fn check(&self) -> Result<(), BlobError>;
}

/// Opens the store a storage URL names: `file://PATH` or `s3://BUCKET[/PREFIX]` (with the
/// S3 settings).
pub async fn open(url: &str, s3_config: &s3::S3Config) -> anyhow::Result<Arc<dyn BlobStore>> {
    use anyhow::Context;
    if let Some(path) = url.strip_prefix("file://") {
        let store = DiskBlobStore::new(path)
            .with_context(|| format!("storage_url: cannot create the file store {path}"))?;
        return Ok(Arc::new(store));
    }
    if let Some(rest) = url.strip_prefix("s3://") {
        let store = s3::S3BlobStore::new(rest, s3_config)?;
        store.check().await.map_err(|e| {
            anyhow::anyhow!(
                "storage_url {url}: the bucket cannot be used with these settings \
                 (PLUME_S3_ENDPOINT, PLUME_S3_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY): {e}"
            )
        })?;
        return Ok(Arc::new(store));
    }
    anyhow::bail!("storage_url must start with file:// or s3://")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cannot_escape_the_root() {
        for good in ["uploads/20261124/ab12.png", "results/7/x.mp4", "a"] {
            assert!(FileKey::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a/./b",
            "a//b",
            "a/",
            ".tmp/x",
            "a\\b",
            "a%2Fb",
            "a b",
            "ü",
            "a/..",
            "..",
        ] {
            assert!(FileKey::parse(bad).is_err(), "{bad:?}");
        }
        assert!(FileKey::parse(&"a".repeat(MAX_KEY_LEN + 1)).is_err());
        let k = FileKey::new_upload("png");
        assert!(FileKey::parse(k.as_str()).is_ok());
        assert_eq!(k.content_type(), "image/png");
    }

    #[tokio::test]
    async fn writes_are_whole_and_ranges_read_back() {
        use futures::StreamExt;
        let dir = std::env::temp_dir().join(format!("plume-blob-{}", std::process::id()));
        let store = DiskBlobStore::new(&dir).unwrap();
        let key = FileKey::new_result(1, "mp4");
        assert!(store.head(&key).await.unwrap().is_none());
        let meta = store
            .put(&key, Bytes::from_static(b"0123456789"))
            .await
            .unwrap();
        assert_eq!(meta.size, 10);
        assert_eq!(meta.content_type, "video/mp4");
        let mut body = Vec::new();
        let mut s = store.get(&key, Some((2, 5))).await.unwrap().unwrap();
        while let Some(chunk) = s.next().await {
            body.extend_from_slice(&chunk.unwrap());
        }
        assert_eq!(body, b"2345");
        assert!(store.read(&key, 5).await.is_err());
        assert_eq!(
            std::fs::read_dir(dir.join(".tmp")).unwrap().count(),
            0,
            "no temp file left"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
