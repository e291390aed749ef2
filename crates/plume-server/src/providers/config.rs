//! `[providers.*]` configuration: which upstream serves which category, with what model id,
//! base URL, key and timeouts. Keys come from an environment variable or a file, never from
//! the config text itself, and never reach a log.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProvidersConfig {
    pub gemini: Option<GeminiConfig>,
    pub ark: Option<ArkConfig>,
    pub veo: Option<VeoConfig>,
    pub retry: RetryConfig,
}

/// A key read from `api_key_env` or `api_key_file`; prints as `<redacted>`.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Where a key comes from. `Err` says what is missing, for `/readyz` and CATEGORY_UNAVAILABLE.
pub fn load_key(env: &str, file: Option<&PathBuf>) -> Result<Secret, String> {
    if let Some(path) = file {
        return std::fs::read_to_string(path)
            .map(|k| Secret(k.trim().to_string()))
            .map_err(|e| format!("cannot read the key file {}: {e}", path.display()));
    }
    match std::env::var(env) {
        Ok(k) if !k.trim().is_empty() => Ok(Secret(k.trim().to_string())),
        _ => Err(format!("{env} is not set")),
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryConfig {
    /// Attempts of one upstream call on 429, 5xx, network errors and timeouts.
    pub max_attempts: u32,
    pub base_delay_ms: u64,
    pub max_delay_ms: u64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: 4,
            base_delay_ms: 1000,
            max_delay_ms: 20_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GeminiConfig {
    pub base_url: String,
    pub api_key_env: String,
    pub api_key_file: Option<PathBuf>,
    pub banana2_model: String,
    pub banana_pro_model: String,
    /// The text model behind `POST /api/open/describe`; none turns describe off.
    pub describe_model: Option<String>,
    pub timeout_seconds: u64,
}

impl Default for GeminiConfig {
    fn default() -> Self {
        GeminiConfig {
            base_url: "https://generativelanguage.googleapis.com/v1beta".into(),
            api_key_env: "GEMINI_API_KEY".into(),
            api_key_file: None,
            banana2_model: "gemini-3.1-flash-image".into(),
            banana_pro_model: "gemini-3-pro-image".into(),
            describe_model: Some("gemini-2.5-flash".into()),
            timeout_seconds: 180,
        }
    }
}

/// How input images reach Ark: as our own URLs (the upstream fetches them) or as data URIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageTransport {
    /// URLs when the public base is a public host, data URIs when it is loopback or private.
    Auto,
    Url,
    DataUri,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ArkConfig {
    /// `https://ark.cn-beijing.volces.com/api/v3` (China) or
    /// `https://ark.ap-southeast.bytepluses.com/api/v3` (BytePlus).
    pub base_url: String,
    pub api_key_env: String,
    pub api_key_file: Option<PathBuf>,
    /// Model or endpoint (`ep-…`) id for seedream; none leaves seedream unavailable.
    pub seedream_model: Option<String>,
    /// Model id for seedance2; none leaves seedance2 unavailable.
    pub seedance_model: Option<String>,
    pub image_transport: ImageTransport,
    pub timeout_seconds: u64,
    pub poll_interval_ms: u64,
    /// Largest video we copy, in bytes.
    pub max_video_bytes: u64,
}

impl Default for ArkConfig {
    fn default() -> Self {
        ArkConfig {
            base_url: "https://ark.cn-beijing.volces.com/api/v3".into(),
            api_key_env: "ARK_API_KEY".into(),
            api_key_file: None,
            seedream_model: Some("doubao-seedream-4-0-250828".into()),
            seedance_model: Some("doubao-seedance-2-0-260128".into()),
            image_transport: ImageTransport::Auto,
            timeout_seconds: 120,
            poll_interval_ms: 10_000,
            max_video_bytes: 512 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VeoBackend {
    /// Gemini API `predictLongRunning` with `x-goog-api-key`.
    Gemini,
    /// Vertex AI with service-account credentials and `fetchPredictOperation`.
    Vertex,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VeoConfig {
    pub backend: VeoBackend,
    /// Content model name (`veo3.1-fast`, `veo3.1`, `veo3.1-lite`) → upstream model id.
    pub models: BTreeMap<String, String>,
    /// Gemini API base URL.
    pub base_url: String,
    pub api_key_env: String,
    pub api_key_file: Option<PathBuf>,
    pub vertex: VertexConfig,
    pub timeout_seconds: u64,
    pub poll_interval_ms: u64,
    pub max_video_bytes: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VertexConfig {
    pub project: String,
    pub location: String,
    /// A service-account JSON key file (`type`, `client_email`, `private_key`, `token_uri`).
    pub credentials_file: Option<PathBuf>,
    /// Default: `https://{location}-aiplatform.googleapis.com/v1`.
    pub base_url: Option<String>,
}

impl Default for VertexConfig {
    fn default() -> Self {
        VertexConfig {
            project: String::new(),
            location: "us-central1".into(),
            credentials_file: None,
            base_url: None,
        }
    }
}

impl Default for VeoConfig {
    fn default() -> Self {
        VeoConfig {
            backend: VeoBackend::Gemini,
            models: [
                ("veo3.1-fast", "veo-3.1-fast-generate-preview"),
                ("veo3.1", "veo-3.1-generate-preview"),
                ("veo3.1-lite", "veo-3.1-lite-generate-preview"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            base_url: "https://generativelanguage.googleapis.com/v1beta".into(),
            api_key_env: "GEMINI_API_KEY".into(),
            api_key_file: None,
            vertex: VertexConfig::default(),
            timeout_seconds: 120,
            poll_interval_ms: 10_000,
            max_video_bytes: 512 * 1024 * 1024,
        }
    }
}

pub(crate) fn timeout(seconds: u64) -> Duration {
    Duration::from_secs(seconds.max(1))
}
