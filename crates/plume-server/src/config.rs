//! Server configuration: a TOML file, then `PLUME_*` environment overrides, then defaults.
//!
//! `plume-server serve` with no file and no variables must give a working server, so every
//! field has a default and the file may be empty or absent.

pub use crate::blob::s3::{S3Config, Secret};
pub use crate::fetch::FetchConfig;
use anyhow::{bail, Context};
use plume_core::{Category, PriceTable};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on (`PLUME_LISTEN`).
    pub listen: String,
    /// Folder for the SQLite file and the blobs (`PLUME_DATA_DIR`).
    pub data_dir: PathBuf,
    /// `sqlite://PATH` or `postgres://USER@HOST/DB` (`PLUME_DATABASE_URL`); empty means the
    /// SQLite file `plume.db` under `data_dir`.
    pub database_url: String,
    /// `file://PATH` or `s3://BUCKET[/PREFIX]` (`PLUME_STORAGE_URL`); empty means the folder
    /// `files` under `data_dir`.
    pub storage_url: String,
    /// The S3-compatible service behind an `s3://` storage URL.
    pub s3: S3Config,
    /// How long stored files are kept.
    pub retention: RetentionConfig,
    /// Base of the file URLs this server hands out (`PLUME_PUBLIC_BASE`); derived from
    /// `listen` when empty.
    pub public_base: String,
    /// Bearer token guarding `/api/admin/*` (`PLUME_ADMIN_TOKEN`); admin HTTP is off when empty.
    pub admin_token: String,
    pub limits: Limits,
    pub queue: QueueConfig,
    pub fetch: FetchConfig,
    pub prices: PriceTable,
    /// Per-category time limits in seconds, overriding the contract's defaults.
    pub time_limits: BTreeMap<String, u64>,
    /// Upstream providers; a category without one is CATEGORY_UNAVAILABLE.
    pub providers: crate::providers::ProvidersConfig,
    /// The local models behind remove-bg and remove-watermark.
    pub models: ModelsConfig,
    /// The web portal: sign-up, keys, credits, tasks, operator pages.
    pub portal: crate::portal::PortalConfig,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Days an upload is kept; 0 keeps uploads forever.
    pub upload_days: u32,
    /// Days the result files of a finished task are kept; 0 keeps them forever.
    pub result_days: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelsConfig {
    /// Where `scripts/setup-models` put the files (`PLUME_MODELS_DIR`); default
    /// `<data_dir>/models`.
    pub dir: Option<PathBuf>,
    /// `u2netp` (default) or `isnet` (better edges; AGPL-3.0, fetched only on request).
    pub background_model: String,
    /// Most model inferences running at once (each ISNet run holds about 1 GB).
    pub max_concurrent_inferences: usize,
    /// Threads one inference may use.
    pub threads_per_inference: usize,
}

impl Default for ModelsConfig {
    fn default() -> Self {
        ModelsConfig {
            dir: None,
            background_model: "u2netp".into(),
            max_concurrent_inferences: 1,
            threads_per_inference: 2,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    pub upload_max_bytes: u64,
    pub upload_max_pixels: u64,
    /// Largest JSON request body.
    pub json_body_max_bytes: usize,
    /// Requests per minute per API key, in bursts up to the same number
    /// (`PLUME_RATE_LIMIT_PER_MINUTE`); 0 turns rate limiting off.
    pub rate_limit_per_minute: u32,
    /// Most bytes of request headers (names and values together); more answers 431.
    pub header_max_bytes: usize,
    /// Most request headers; more answers 431.
    pub header_max_count: usize,
    /// Longest time a request may take to produce its answer; past it, 503 with
    /// Retry-After. A download already streaming is not cut. Long polls (`?wait=`, at most
    /// 30 s) are held at most this less 3 s.
    pub request_timeout_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueConfig {
    /// Workers per category (how many tasks of it run at once in this process).
    pub default_concurrency: usize,
    pub concurrency: BTreeMap<String, usize>,
    /// How long a claimed task stays ours without renewal.
    pub lease_seconds: f64,
    /// How often the dispatcher looks for work when nothing woke it.
    pub poll_interval_ms: u64,
    /// Attempts of a task whose executor failed with a retryable error.
    pub max_attempts: u32,
    /// First retry delay; doubled per attempt.
    pub retry_backoff_ms: u64,
    /// On shutdown, how long running tasks may take to finish.
    pub shutdown_grace_seconds: f64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./data"),
            database_url: String::new(),
            storage_url: String::new(),
            s3: S3Config::default(),
            retention: RetentionConfig::default(),
            public_base: String::new(),
            admin_token: String::new(),
            limits: Limits::default(),
            queue: QueueConfig::default(),
            fetch: FetchConfig::default(),
            prices: PriceTable::default(),
            time_limits: BTreeMap::new(),
            providers: Default::default(),
            models: ModelsConfig::default(),
            portal: Default::default(),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            upload_max_bytes: 20 * 1024 * 1024,
            upload_max_pixels: 40_000_000,
            json_body_max_bytes: 1024 * 1024,
            rate_limit_per_minute: 1200,
            header_max_bytes: 32 * 1024,
            header_max_count: 100,
            request_timeout_seconds: 120,
        }
    }
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            default_concurrency: 2,
            concurrency: BTreeMap::new(),
            lease_seconds: 30.0,
            poll_interval_ms: 1000,
            max_attempts: 3,
            retry_backoff_ms: 2000,
            shutdown_grace_seconds: 30.0,
        }
    }
}

impl Config {
    /// Reads `file` (when given), applies `PLUME_*` variables from `env`, and checks the result.
    pub fn load(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Config> {
        let config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read config file {}", path.display()))?;
                toml::from_str::<Config>(&text)
                    .with_context(|| format!("config file {} is not valid", path.display()))?
            }
            None => Config::default(),
        };
        config.finish(env)
    }

    /// A config from TOML text (no file), with `PLUME_*` variables from `env`, checked.
    pub fn from_toml(text: &str, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<Config> {
        toml::from_str::<Config>(text)
            .context("the config is not valid")?
            .finish(env)
    }

    /// Applies the `PLUME_*` variables, then checks the whole.
    fn finish(mut self, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<Config> {
        let config = &mut self;
        if let Some(v) = env("PLUME_LISTEN") {
            config.listen = v;
        }
        if let Some(v) = env("PLUME_DATA_DIR") {
            config.data_dir = PathBuf::from(v);
        }
        if let Some(v) = env("PLUME_DATABASE_URL") {
            config.database_url = v;
        }
        if let Some(v) = env("PLUME_STORAGE_URL") {
            config.storage_url = v;
        }
        if let Some(v) = env("PLUME_S3_ENDPOINT") {
            config.s3.endpoint = v;
        }
        if let Some(v) = env("PLUME_S3_REGION") {
            config.s3.region = v;
        }
        if let Some(v) = env("AWS_ACCESS_KEY_ID") {
            config.s3.access_key_id = v;
        }
        if let Some(v) = env("AWS_SECRET_ACCESS_KEY") {
            config.s3.secret_access_key = Secret(v);
        }
        if let Some(v) = env("PLUME_PUBLIC_BASE") {
            config.public_base = v;
        }
        if let Some(v) = env("PLUME_ADMIN_TOKEN") {
            config.admin_token = v;
        }
        if let Some(v) = env("PLUME_MODELS_DIR") {
            config.models.dir = Some(PathBuf::from(v));
        }
        if let Some(v) = env("PLUME_RATE_LIMIT_PER_MINUTE") {
            config.limits.rate_limit_per_minute = v
                .trim()
                .parse()
                .context("PLUME_RATE_LIMIT_PER_MINUTE must be a whole number (0 turns it off)")?;
        }
        if let Some(v) = env("PLUME_PORTAL_SIGNUP") {
            config.portal.signup = match v.as_str() {
                "open" => crate::portal::SignupMode::Open,
                "invite" => crate::portal::SignupMode::Invite,
                "closed" => crate::portal::SignupMode::Closed,
                _ => bail!("PLUME_PORTAL_SIGNUP must be open, invite or closed"),
            };
        }
        if let Some(v) = env("PLUME_PORTAL_INVITE_CODE") {
            config.portal.invite_code = v;
        }
        if let Some(v) = env("PLUME_FETCH_ALLOW_HOSTS") {
            config.fetch.allow_hosts = v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
        }
        config.check()?;
        Ok(self)
    }

    /// Reads the config as `serve` and `admin` do: `--config FILE`, then the process env.
    pub fn from_process(file: Option<&Path>) -> anyhow::Result<Config> {
        Config::load(file, |name| {
            std::env::var(name).ok().filter(|v| !v.is_empty())
        })
    }

    fn check(&mut self) -> anyhow::Result<()> {
        self.listen_addr()?;
        if self.public_base.is_empty() {
            let addr = self.listen_addr()?;
            let host = if addr.ip().is_unspecified() {
                "127.0.0.1".to_string()
            } else {
                addr.ip().to_string()
            };
            let host = if addr.is_ipv6() && !addr.ip().is_unspecified() {
                format!("[{host}]")
            } else {
                host
            };
            self.public_base = format!("http://{host}:{}", addr.port());
        }
        self.public_base = self.public_base.trim_end_matches('/').to_string();
        let base = url::Url::parse(&self.public_base)
            .with_context(|| format!("public_base {:?} is not a URL", self.public_base))?;
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
            bail!("public_base {:?} must be an http(s) URL", self.public_base);
        }
        self.portal.check()?;
        if self.limits.request_timeout_seconds < 5 {
            bail!("limits.request_timeout_seconds must be at least 5");
        }
        if self.limits.header_max_bytes < 1024 || self.limits.header_max_count < 16 {
            bail!("limits.header_max_bytes must be at least 1024 and limits.header_max_count at least 16");
        }
        for name in self.time_limits.keys().chain(self.queue.concurrency.keys()) {
            if Category::parse(name).is_none() {
                bail!("{}", Category::unknown_message(name));
            }
        }
        if self.queue.lease_seconds < 0.2 {
            bail!("queue.lease_seconds must be at least 0.2");
        }
        if self.queue.max_attempts == 0 {
            bail!("queue.max_attempts must be at least 1");
        }
        if self.limits.upload_max_bytes == 0 || self.limits.upload_max_pixels == 0 {
            bail!("upload limits must be above 0");
        }
        let db = self.database_url();
        if !(db.starts_with("sqlite://")
            || db.starts_with("postgres://")
            || db.starts_with("postgresql://"))
        {
            bail!("database_url (PLUME_DATABASE_URL) must start with sqlite:// or postgres://");
        }
        let storage = self.storage_url();
        if let Some(rest) = storage.strip_prefix("s3://") {
            if rest.split('/').next().unwrap_or("").is_empty() {
                bail!("storage_url (PLUME_STORAGE_URL) s3://BUCKET names no bucket");
            }
            if self.s3.access_key_id.is_empty() || self.s3.secret_access_key.0.is_empty() {
                bail!("storage_url is s3://: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or s3.access_key_id and s3.secret_access_key)");
            }
            if !self.s3.endpoint.is_empty() {
                let url = url::Url::parse(&self.s3.endpoint).with_context(|| {
                    format!(
                        "s3.endpoint (PLUME_S3_ENDPOINT) {:?} is not a URL",
                        self.s3.endpoint
                    )
                })?;
                if !matches!(url.scheme(), "http" | "https") {
                    bail!("s3.endpoint (PLUME_S3_ENDPOINT) must be an http(s) URL");
                }
            }
        } else if !storage.starts_with("file://") {
            bail!("storage_url (PLUME_STORAGE_URL) must start with file:// or s3://");
        }
        self.s3.public_base = self.s3.public_base.trim_end_matches('/').to_string();
        if !matches!(self.models.background_model.as_str(), "u2netp" | "isnet") {
            bail!("models.background_model must be u2netp or isnet");
        }
        self.fetch.private_networks()?;
        Ok(())
    }

    pub fn listen_addr(&self) -> anyhow::Result<SocketAddr> {
        self.listen
            .parse()
            .with_context(|| format!("listen address {:?} is not IP:PORT", self.listen))
    }

    /// The database URL in force: the setting, or the SQLite file under the data folder.
    pub fn database_url(&self) -> String {
        if self.database_url.is_empty() {
            format!("sqlite://{}", self.data_dir.join("plume.db").display())
        } else {
            self.database_url.clone()
        }
    }

    /// The storage URL in force: the setting, or the `files` folder under the data folder.
    pub fn storage_url(&self) -> String {
        if self.storage_url.is_empty() {
            format!("file://{}", self.data_dir.join("files").display())
        } else {
            self.storage_url.clone()
        }
    }

    pub fn models_dir(&self) -> PathBuf {
        self.models
            .dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("models"))
    }

    /// The vision configuration the local executors run with.
    pub fn vision(&self) -> plume_vision::VisionConfig {
        plume_vision::VisionConfig {
            models_dir: self.models_dir(),
            matte_model: if self.models.background_model == "isnet" {
                plume_vision::runtime::MatteModel::Isnet
            } else {
                plume_vision::runtime::MatteModel::U2netp
            },
            max_concurrent_inferences: self.models.max_concurrent_inferences.max(1),
            intra_threads: self.models.threads_per_inference.max(1),
        }
    }

    pub fn time_limit(&self, category: Category) -> Duration {
        self.time_limits
            .get(category.as_str())
            .map(|s| Duration::from_secs(*s))
            .unwrap_or_else(|| category.default_time_limit())
    }

    pub fn concurrency(&self, category: Category) -> usize {
        *self
            .queue
            .concurrency
            .get(category.as_str())
            .unwrap_or(&self.queue.default_concurrency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn defaults_give_a_working_server() {
        let c = Config::load(None, no_env).unwrap();
        assert_eq!(c.listen, "127.0.0.1:8080");
        assert_eq!(c.public_base, "http://127.0.0.1:8080");
        assert_eq!(c.database_url(), "sqlite://./data/plume.db");
        assert_eq!(c.storage_url(), "file://./data/files");
        assert_eq!(c.time_limit(Category::Veo), Duration::from_secs(6 * 3600));
    }

    #[test]
    fn env_overrides_the_file() {
        let dir = std::env::temp_dir().join(format!("plume-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:9000\"\nadmin_token = \"file\"\n[prices]\nveo = 70\n[queue.concurrency]\nveo = 4\n").unwrap();
        let env = |name: &str| (name == "PLUME_ADMIN_TOKEN").then(|| "env".to_string());
        let c = Config::load(Some(&file), env).unwrap();
        assert_eq!(c.admin_token, "env");
        assert_eq!(c.public_base, "http://127.0.0.1:9000");
        assert_eq!(c.prices.veo, 70);
        assert_eq!(c.concurrency(Category::Veo), 4);
        assert_eq!(c.concurrency(Category::RemoveBg), 2);
        std::fs::write(&file, "listen = 5\n").unwrap();
        let e = format!("{:#}", Config::load(Some(&file), no_env).unwrap_err());
        assert!(e.contains("c.toml"), "{e}");
        std::fs::write(&file, "[time_limits]\nbanana = 5\n").unwrap();
        assert!(Config::load(Some(&file), no_env).is_err());
        std::fs::write(&file, "lisen = \"x\"\n").unwrap();
        assert!(Config::load(Some(&file), no_env).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
