//! `Service`: everything a request or a worker needs, built once from the configuration.
//! The HTTP handlers and the admin commands are thin layers over its methods, which can be
//! tested without HTTP.

use crate::blob::BlobStore;
use crate::config::Config;
use crate::db::Database;
use crate::events::TaskEvents;
use crate::executor::Executors;
use crate::fetch::Fetcher;
use crate::metrics::Metrics;
use futures::StreamExt;
use std::sync::Arc;

pub struct Service {
    pub config: Arc<Config>,
    pub db: Arc<dyn Database>,
    pub blobs: Arc<dyn BlobStore>,
    pub fetcher: Arc<Fetcher>,
    pub executors: Executors,
    pub events: Arc<TaskEvents>,
    pub metrics: Metrics,
    pub(crate) rate_limiter: crate::accounts::RateLimiter,
    /// Failed portal sign-ins per account and per address.
    pub(crate) login_throttle: crate::portal::LoginThrottle,
    /// For executors that call upstream providers.
    pub http: reqwest::Client,
    /// Serves `POST /api/open/describe` when a vision-language model is configured.
    pub describer: Option<crate::providers::gemini::Describer>,
    /// The local models, for metrics.
    pub vision: std::sync::OnceLock<Arc<plume_vision::Vision>>,
}

impl Service {
    /// Opens the database and the file store the settings name (SQLite and the data folder
    /// by default). `extra` executors (a test harness's) replace the configured ones for
    /// their categories.
    pub async fn open(config: Config, extra: Executors) -> anyhow::Result<Arc<Service>> {
        let vision = Arc::new(plume_vision::Vision::new(config.vision()));
        let executors = crate::local::executors(vision.clone())
            .merge(crate::providers::executors(&config.providers)?)
            .merge(extra);
        let db = open_database(&config).await?;
        let blobs = crate::blob::open(&config.storage_url(), &config.s3).await?;
        let changes = db
            .changes()
            .await
            .map_err(|e| anyhow::anyhow!("database_url: cannot listen for task changes: {e}"))?;
        let service = Service::with_backends(config, db, blobs, executors)?;
        let _ = service.vision.set(vision);
        if let Some(changes) = changes {
            // Other nodes' task changes wake this node's waiters and dispatchers.
            let events = Arc::downgrade(&service.events);
            tokio::spawn(changes.for_each(move |change| {
                if let Some(events) = events.upgrade() {
                    events.apply(change);
                }
                futures::future::ready(())
            }));
            // This node's changes go out in batches: one NOTIFY transaction for everything
            // that happened while the previous one was being sent.
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            service.events.publish_to(tx);
            let db = service.db.clone();
            tokio::spawn(async move {
                while let Some(first) = rx.recv().await {
                    let mut batch = vec![first];
                    while batch.len() < 1000 {
                        match rx.try_recv() {
                            Ok(change) => batch.push(change),
                            Err(_) => break,
                        }
                    }
                    batch.sort_unstable();
                    batch.dedup();
                    if let Err(e) = db.publish(&batch).await {
                        tracing::warn!(error = %e, "telling other nodes about task changes failed");
                    }
                }
            });
        }
        Ok(service)
    }

    pub fn with_backends(
        config: Config,
        db: Arc<dyn Database>,
        blobs: Arc<dyn BlobStore>,
        executors: Executors,
    ) -> anyhow::Result<Arc<Service>> {
        let fetcher = Fetcher::new(
            &config.fetch,
            &config.public_base,
            &config.s3.public_base,
            config.limits.upload_max_bytes,
            blobs.clone(),
        )?;
        let rate_limiter = crate::accounts::RateLimiter::new(config.limits.rate_limit_per_minute);
        let describer = crate::providers::describer(&config.providers)?;
        let login_throttle = crate::portal::LoginThrottle::new(
            config.portal.login_failures_per_account,
            config.portal.login_failures_per_address,
            std::time::Duration::from_secs(config.portal.login_window_minutes * 60),
        );
        Ok(Arc::new(Service {
            http: reqwest::Client::builder()
                .user_agent(concat!("plume-server/", env!("CARGO_PKG_VERSION")))
                .build()?,
            config: Arc::new(config),
            db,
            blobs,
            fetcher: Arc::new(fetcher),
            executors,
            events: Arc::new(TaskEvents::default()),
            metrics: Metrics::default(),
            rate_limiter,
            login_throttle,
            describer,
            vision: std::sync::OnceLock::new(),
        }))
    }

    /// The longest a `?wait=` long poll is held: the contract's maximum, and always short of
    /// the request timeout.
    pub fn max_wait(&self) -> std::time::Duration {
        let seconds = plume_core::MAX_WAIT_SECONDS
            .min(self.config.limits.request_timeout_seconds.saturating_sub(3));
        std::time::Duration::from_secs(seconds)
    }

    /// The public URL of a stored file: under the CDN in front of the bucket when one is
    /// configured, else `/files/` on this server.
    pub fn file_url(&self, key: &str) -> String {
        if self.config.s3.public_base.is_empty() {
            format!("{}/files/{key}", self.config.public_base)
        } else {
            format!("{}/{key}", self.config.s3.public_base)
        }
    }
}

/// Opens the database the settings name; an error names the setting and hides any password.
pub async fn open_database(config: &Config) -> anyhow::Result<Arc<dyn Database>> {
    let url = config.database_url();
    crate::db::open(&url).await.map_err(|e| {
        anyhow::anyhow!(
            "database_url (PLUME_DATABASE_URL) {}: {e}",
            redact_password(&url)
        )
    })
}

/// `postgres://user:secret@host/db` as `postgres://user:***@host/db`.
pub fn redact_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}
