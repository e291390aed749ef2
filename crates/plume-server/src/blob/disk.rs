//! Blobs as files under one root folder: the zero-setup store.
//!
//! A write goes to a synced temporary file under `.tmp/` and is renamed into place, so a
//! reader sees the whole file or none.

use super::*;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

/// Blobs as files under one root folder.
pub struct DiskBlobStore {
    root: PathBuf,
}

impl DiskBlobStore {
    pub fn new(root: impl Into<PathBuf>) -> std::io::Result<DiskBlobStore> {
        let root = root.into();
        std::fs::create_dir_all(root.join(".tmp"))?;
        Ok(DiskBlobStore { root })
    }

    fn path(&self, key: &FileKey) -> PathBuf {
        // Safe: a FileKey has only normal, non-hidden segments.
        self.root.join(key.as_str())
    }

    async fn meta_of(path: &Path, key: &FileKey) -> Result<Option<BlobMeta>, BlobError> {
        match tokio::fs::metadata(path).await {
            Ok(m) if m.is_file() => {
                let mtime = m
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map(|d| d.as_nanos())
                    .unwrap_or(0);
                Ok(Some(BlobMeta {
                    size: m.len(),
                    content_type: key.content_type(),
                    etag: format!("\"{:x}-{:x}\"", m.len(), mtime),
                }))
            }
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) if e.raw_os_error() == Some(20) => Ok(None), // ENOTDIR: a segment is a file
            Err(e) => Err(e.into()),
        }
    }
}

#[async_trait]
impl BlobStore for DiskBlobStore {
    async fn put(&self, key: &FileKey, bytes: Bytes) -> Result<BlobMeta, BlobError> {
        let target = self.path(key);
        let tmp = self.root.join(".tmp").join(FileKey::random_name("part"));
        let result = async {
            let mut file = tokio::fs::File::create(&tmp).await?;
            file.write_all(&bytes).await?;
            file.sync_all().await?;
            drop(file);
            if let Some(parent) = target.parent() {
                tokio::fs::create_dir_all(parent).await?;
            }
            tokio::fs::rename(&tmp, &target).await
        }
        .await;
        if let Err(e) = result {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e.into());
        }
        DiskBlobStore::meta_of(&target, key)
            .await?
            .ok_or_else(|| std::io::Error::other("object vanished after write").into())
    }

    async fn head(&self, key: &FileKey) -> Result<Option<BlobMeta>, BlobError> {
        DiskBlobStore::meta_of(&self.path(key), key).await
    }

    async fn get(
        &self,
        key: &FileKey,
        range: Option<(u64, u64)>,
    ) -> Result<Option<BlobStream>, BlobError> {
        let mut file = match tokio::fs::File::open(self.path(key)).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let stream: BlobStream = match range {
            Some((first, last)) => {
                file.seek(std::io::SeekFrom::Start(first)).await?;
                Box::pin(tokio_util::io::ReaderStream::new(
                    file.take(last - first + 1),
                ))
            }
            None => Box::pin(tokio_util::io::ReaderStream::new(file)),
        };
        Ok(Some(stream))
    }

    async fn read(&self, key: &FileKey, max: u64) -> Result<Option<Bytes>, BlobError> {
        let Some(meta) = self.head(key).await? else {
            return Ok(None);
        };
        if meta.size > max {
            return Err(std::io::Error::other(format!("{key} is larger than {max} bytes")).into());
        }
        Ok(Some(Bytes::from(tokio::fs::read(self.path(key)).await?)))
    }

    async fn delete(&self, key: &FileKey) -> Result<(), BlobError> {
        match tokio::fs::remove_file(self.path(key)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, BlobError> {
        let root = self.root.clone();
        let prefix = prefix.to_string();
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            walk(&root, &root, &prefix, &mut out)?;
            out.sort_by(|a, b| a.key.as_str().cmp(b.key.as_str()));
            Ok(out)
        })
        .await
        .map_err(|e| BlobError::Io(std::io::Error::other(e)))?
    }

    async fn check(&self) -> Result<(), BlobError> {
        tokio::fs::metadata(self.root.join(".tmp")).await?;
        Ok(())
    }
}

/// Files under `dir` whose key starts with `prefix`; `.tmp` and other hidden names are skipped.
fn walk(root: &Path, dir: &Path, prefix: &str, out: &mut Vec<Listed>) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(rel) = path.strip_prefix(root) else {
            continue;
        };
        let Some(rel) = rel.to_str() else { continue };
        let Ok(key) = FileKey::parse(rel) else {
            continue;
        };
        let meta = entry.metadata()?;
        if meta.is_dir() {
            // Only descend where the prefix can still match.
            let as_dir = format!("{rel}/");
            if as_dir.starts_with(prefix) || prefix.starts_with(&as_dir) {
                walk(root, &path, prefix, out)?;
            }
        } else if rel.starts_with(prefix) {
            let modified = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0);
            out.push(Listed {
                key,
                size: meta.len(),
                modified,
            });
        }
    }
    Ok(())
}
