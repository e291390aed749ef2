//! `Service`: everything a request or a worker needs, built once from the configuration.
//! The HTTP handlers and the admin commands are thin layers over its methods, which can be
//! tested without HTTP.

use crate::blob::{BlobStore, DiskBlobStore};
use crate::config::Config;
use crate::db::sqlite::SqliteDatabase;
use crate::db::Database;
use crate::events::TaskEvents;
use crate::executor::Executors;
use crate::fetch::Fetcher;
use crate::metrics::Metrics;
use anyhow::Context;
use std::sync::Arc;

pub struct Service {
    pub config: Arc<Config>,
    pub db: Arc<dyn Database>,
    pub blobs: Arc<dyn BlobStore>,
    pub fetcher: Arc<Fetcher>,
    pub executors: Executors,
    pub events: TaskEvents,
    pub metrics: Metrics,
    pub(crate) rate_limiter: crate::accounts::RateLimiter,
    /// For executors that call upstream providers.
    pub http: reqwest::Client,
}

impl Service {
    /// Opens the SQLite database and the disk blob store under the data folder.
    pub async fn open(config: Config, executors: Executors) -> anyhow::Result<Arc<Service>> {
        let db = SqliteDatabase::open(&config.db_path())
            .await
            .with_context(|| format!("cannot open the database {}", config.db_path().display()))?;
        let blobs = DiskBlobStore::new(config.blob_root()).with_context(|| {
            format!(
                "cannot create the file store {}",
                config.blob_root().display()
            )
        })?;
        Service::with_backends(config, Arc::new(db), Arc::new(blobs), executors)
    }

    pub fn with_backends(
        config: Config,
        db: Arc<dyn Database>,
        blobs: Arc<dyn BlobStore>,
        executors: Executors,
    ) -> anyhow::Result<Arc<Service>> {
        let fetcher = Fetcher::new(&config, blobs.clone())?;
        let rate_limiter = crate::accounts::RateLimiter::new(config.limits.rate_limit_per_minute);
        Ok(Arc::new(Service {
            http: reqwest::Client::builder()
                .user_agent(concat!("plume-server/", env!("CARGO_PKG_VERSION")))
                .build()?,
            config: Arc::new(config),
            db,
            blobs,
            fetcher: Arc::new(fetcher),
            executors,
            events: TaskEvents::default(),
            metrics: Metrics::default(),
            rate_limiter,
        }))
    }

    /// The public URL of a stored file.
    pub fn file_url(&self, key: &str) -> String {
        format!("{}/files/{key}", self.config.public_base)
    }
}
