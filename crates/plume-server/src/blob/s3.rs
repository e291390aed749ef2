//! Blobs in an S3-compatible bucket (AWS S3, SeaweedFS, MinIO, Ceph RGW…), through the
//! `object_store` crate: several nodes share one bucket, and nothing touches local disk.
//!
//! A PUT is atomic on S3 (a reader sees the old object, none, or the whole new one), ETags
//! come from the service, and ranges are ranged GETs. Requests use path-style addressing,
//! which every S3-compatible service accepts.

use super::*;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as StorePath;
use object_store::{ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload};
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Config {
    /// `http(s)://host:port` of an S3-compatible service (`PLUME_S3_ENDPOINT`); empty means
    /// AWS itself. Requests use path-style addressing.
    pub endpoint: String,
    /// `PLUME_S3_REGION`; default `us-east-1`.
    pub region: String,
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key_id: String,
    /// `AWS_SECRET_ACCESS_KEY`; never printed.
    pub secret_access_key: Secret,
    /// When set, file URLs point here (a CDN in front of the bucket) instead of `/files/` on
    /// this server: `<public_base>/<key>`.
    pub public_base: String,
}

/// A setting that must not reach a log: prints as `<redacted>`.
#[derive(Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() {
            "\"\""
        } else {
            "<redacted>"
        })
    }
}

pub struct S3BlobStore {
    store: AmazonS3,
    /// Prepended to every key (`s3://bucket/prefix` lets installs share a bucket).
    prefix: String,
}

/// The error on one line: S3's own `<Code>` and `<Message>` when the reply carries them
/// (a wrong secret, a missing bucket), else the client's text with its whitespace folded.
fn remote(e: object_store::Error) -> BlobError {
    let text = e.to_string();
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let start = text.find(&open)? + open.len();
        let end = text[start..].find(&format!("</{name}>"))? + start;
        Some(text[start..end].to_string())
    };
    BlobError::Remote(match (tag("Code"), tag("Message")) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code,
        _ => text.split_whitespace().collect::<Vec<_>>().join(" "),
    })
}

fn quoted(etag: Option<String>, meta_fallback: &str) -> String {
    match etag {
        Some(t) if t.starts_with('"') => t,
        Some(t) => format!("\"{t}\""),
        None => format!("\"{meta_fallback}\""),
    }
}

impl S3BlobStore {
    /// `bucket_and_prefix` is what follows `s3://`: `BUCKET` or `BUCKET/PREFIX`.
    pub fn new(bucket_and_prefix: &str, config: &S3Config) -> anyhow::Result<S3BlobStore> {
        let (bucket, prefix) = match bucket_and_prefix.split_once('/') {
            Some((b, p)) => (b, p.trim_matches('/')),
            None => (bucket_and_prefix, ""),
        };
        if !prefix.is_empty() && FileKey::parse(prefix).is_err() {
            anyhow::bail!("storage_url: the prefix {prefix:?} must be [A-Za-z0-9_.-] segments");
        }
        let region = if config.region.is_empty() {
            "us-east-1"
        } else {
            &config.region
        };
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_region(region)
            .with_access_key_id(&config.access_key_id)
            .with_secret_access_key(&config.secret_access_key.0)
            .with_virtual_hosted_style_request(false)
            .with_client_options(
                ClientOptions::new()
                    .with_timeout(Duration::from_secs(60))
                    .with_connect_timeout(Duration::from_secs(5)),
            );
        if !config.endpoint.is_empty() {
            builder = builder
                .with_endpoint(config.endpoint.trim_end_matches('/'))
                .with_allow_http(config.endpoint.starts_with("http://"));
        }
        let store = builder
            .build()
            .map_err(|e| anyhow::anyhow!("storage_url s3://{bucket}: {e}"))?;
        Ok(S3BlobStore {
            store,
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
        })
    }

    fn path(&self, key: &FileKey) -> StorePath {
        StorePath::from(format!("{}{}", self.prefix, key.as_str()))
    }

    fn meta(key: &FileKey, m: &object_store::ObjectMeta) -> BlobMeta {
        BlobMeta {
            size: m.size,
            content_type: key.content_type(),
            etag: quoted(m.e_tag.clone(), &format!("{:x}", m.size)),
        }
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn put(&self, key: &FileKey, bytes: Bytes) -> Result<BlobMeta, BlobError> {
        let size = bytes.len() as u64;
        let done = self
            .store
            .put(&self.path(key), PutPayload::from(bytes))
            .await
            .map_err(remote)?;
        Ok(BlobMeta {
            size,
            content_type: key.content_type(),
            etag: quoted(done.e_tag, &format!("{size:x}")),
        })
    }

    async fn head(&self, key: &FileKey) -> Result<Option<BlobMeta>, BlobError> {
        match self.store.head(&self.path(key)).await {
            Ok(m) => Ok(Some(S3BlobStore::meta(key, &m))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(remote(e)),
        }
    }

    async fn get(
        &self,
        key: &FileKey,
        range: Option<(u64, u64)>,
    ) -> Result<Option<BlobStream>, BlobError> {
        let options = GetOptions {
            range: range.map(|(first, last)| GetRange::Bounded(first..last + 1)),
            ..GetOptions::default()
        };
        match self.store.get_opts(&self.path(key), options).await {
            Ok(result) => Ok(Some(
                result
                    .into_stream()
                    .map_err(|e| std::io::Error::other(e.to_string()))
                    .boxed(),
            )),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(remote(e)),
        }
    }

    async fn read(&self, key: &FileKey, max: u64) -> Result<Option<Bytes>, BlobError> {
        let Some(meta) = self.head(key).await? else {
            return Ok(None);
        };
        if meta.size > max {
            return Err(std::io::Error::other(format!("{key} is larger than {max} bytes")).into());
        }
        match self.store.get(&self.path(key)).await {
            Ok(result) => Ok(Some(result.bytes().await.map_err(remote)?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(remote(e)),
        }
    }

    async fn delete(&self, key: &FileKey) -> Result<(), BlobError> {
        match self.store.delete(&self.path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(remote(e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, BlobError> {
        let full = format!("{}{prefix}", self.prefix);
        // object_store lists by whole segments; filter the last, partial one here.
        let dir = match full.rfind('/') {
            Some(i) => StorePath::from(&full[..i]),
            None => StorePath::from(""),
        };
        let metas: Vec<object_store::ObjectMeta> = self
            .store
            .list(Some(&dir))
            .try_collect()
            .await
            .map_err(remote)?;
        let mut out = Vec::new();
        for m in metas {
            let location = m.location.as_ref();
            let Some(rel) = location.strip_prefix(&self.prefix) else {
                continue;
            };
            if !rel.starts_with(prefix) {
                continue;
            }
            if let Ok(key) = FileKey::parse(rel) {
                out.push(Listed {
                    key,
                    size: m.size,
                    modified: m.last_modified.timestamp_millis(),
                });
            }
        }
        out.sort_by(|a, b| a.key.as_str().cmp(b.key.as_str()));
        Ok(out)
    }

    async fn check(&self) -> Result<(), BlobError> {
        // A HEAD of a key that cannot exist: 404 proves the bucket and the signature are good;
        // a wrong secret answers 403 and a missing bucket 404 with NoSuchBucket, both errors.
        let probe = FileKey::parse("plume-check/absent").expect("valid key");
        match self.store.head(&self.path(&probe)).await {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(remote(e)),
        }
        // HEAD cannot tell a missing bucket from a missing key; a listing can.
        self.store
            .list_with_delimiter(Some(&StorePath::from("plume-check")))
            .await
            .map_err(remote)?;
        Ok(())
    }
}
