//! The request loop every provider shares, and the mapping of upstream failures to
//! [`ExecError`]s.
//!
//! One upstream call is retried on 429, 5xx, network errors and timeouts with exponential
//! backoff and full jitter, bounded by `[providers.retry]` (a `Retry-After` is honoured up to
//! the cap). Anything else is final. A failure that is still retryable after the last attempt
//! goes back to the queue as a retryable `ExecError`; a long-running job's saved id makes the
//! next attempt resume it.

use super::config::RetryConfig;
use crate::executor::ExecError;
use bytes::Bytes;
use rand::Rng;
use serde_json::Value;
use std::time::Duration;

#[derive(Debug, Clone)]
pub enum Failure {
    /// The upstream answered with a non-success status.
    Status {
        status: u16,
        body: Value,
    },
    Network(String),
    Timeout,
    /// A success status whose body we cannot read.
    BadBody(String),
}

impl Failure {
    fn retryable(&self) -> bool {
        match self {
            Failure::Status { status, .. } => *status == 429 || *status >= 500,
            Failure::Network(_) | Failure::Timeout => true,
            Failure::BadBody(_) => false,
        }
    }
}

pub struct Upstream {
    /// For messages: "Gemini", "Ark", "Vertex AI".
    pub name: &'static str,
    pub client: reqwest::Client,
    retry: RetryConfig,
}

impl Upstream {
    pub fn new(
        name: &'static str,
        timeout: Duration,
        retry: &RetryConfig,
    ) -> anyhow::Result<Upstream> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(15))
            .user_agent(concat!("plume-server/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Upstream {
            name,
            client,
            retry: retry.clone(),
        })
    }

    fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let cap = Duration::from_millis(self.retry.max_delay_ms);
        if let Some(wait) = retry_after {
            return wait.min(cap);
        }
        let exp = self
            .retry
            .base_delay_ms
            .saturating_mul(1u64 << (attempt - 1).min(16));
        let ceiling = exp.min(self.retry.max_delay_ms).max(1);
        Duration::from_millis(rand::thread_rng().gen_range(ceiling / 2..=ceiling))
    }

    async fn send_once(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<(u16, Bytes, Option<Duration>), Failure> {
        let response = request.send().await.map_err(|e| {
            if e.is_timeout() {
                Failure::Timeout
            } else {
                Failure::Network(without_url(&e))
            }
        })?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = response.bytes().await.map_err(|e| {
            if e.is_timeout() {
                Failure::Timeout
            } else {
                Failure::Network(without_url(&e))
            }
        })?;
        Ok((status, body, retry_after))
    }

    /// Sends the request `build` makes (once per attempt) and reads a JSON answer.
    pub async fn json(
        &self,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<Value, Failure> {
        let attempts = self.retry.max_attempts.max(1);
        let mut attempt = 1;
        loop {
            let outcome = match self.send_once(build(&self.client)).await {
                Ok((status, body, _)) if (200..300).contains(&status) => {
                    return serde_json::from_slice(&body).map_err(|e| {
                        Failure::BadBody(format!(
                            "{} answered with a body that is not JSON: {e}",
                            self.name
                        ))
                    });
                }
                Ok((status, body, retry_after)) => {
                    let body = serde_json::from_slice(&body).unwrap_or_else(|_| {
                        Value::String(String::from_utf8_lossy(&body).chars().take(500).collect())
                    });
                    (Failure::Status { status, body }, retry_after)
                }
                Err(f) => (f, None),
            };
            let (failure, retry_after) = outcome;
            if !failure.retryable() || attempt >= attempts {
                return Err(failure);
            }
            let wait = self.delay(attempt, retry_after);
            tracing::info!(
                upstream = self.name,
                attempt,
                ?wait,
                "retrying after {failure:?}"
            );
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}

/// reqwest's errors print the URL, which can carry a key in its query: print the cause
/// chain with the URL left out.
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    match e.url() {
        Some(url) => text.replace(url.as_str(), "<url>"),
        None => text,
    }
}

/// The code and message of an upstream error body, as the provider's envelope has them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamError {
    pub code: String,
    pub message: String,
}

/// Google's RPC status envelope, `{"error": {code, message, status}}`, sometimes wrapped in a
/// one-element array.
pub fn google_error(body: &Value) -> UpstreamError {
    let error = match body {
        Value::Array(items) => items.first().and_then(|i| i.get("error")),
        other => other.get("error"),
    };
    UpstreamError {
        code: error
            .and_then(|e| e.get("status"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        message: error
            .and_then(|e| e.get("message"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| body.as_str().unwrap_or("").to_string()),
    }
}

/// Ark's envelope, `{"error": {code, message, param, type}}`.
pub fn ark_error(body: &Value) -> UpstreamError {
    let error = body.get("error");
    UpstreamError {
        code: error
            .and_then(|e| e.get("code"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        message: error
            .and_then(|e| e.get("message"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| body.as_str().unwrap_or("").to_string()),
    }
}

/// Whether an Ark error code is a content-moderation refusal.
pub fn is_ark_policy(code: &str) -> bool {
    code.contains("SensitiveContent")
}

/// The failure a chat user sees when a safety filter refused the request.
pub fn content_policy(provider: &str, reason: &str) -> ExecError {
    ExecError::permanent(
        "CONTENT_POLICY",
        format!(
            "{provider}'s safety filter blocked this request ({reason}). Rephrase the prompt or use a different image; the credits were refunded."
        ),
    )
}

/// Maps a final upstream failure to the task's failure.
pub fn exec_error(
    upstream: &Upstream,
    model: &str,
    failure: Failure,
    parse: fn(&Value) -> UpstreamError,
) -> ExecError {
    let name = upstream.name;
    match failure {
        Failure::Timeout => ExecError::retryable(
            "UPSTREAM_TIMEOUT",
            format!("{name} did not answer in time; the task will be retried"),
        ),
        Failure::Network(e) => ExecError::retryable(
            "UPSTREAM_UNREACHABLE",
            format!("{name} could not be reached ({e})"),
        ),
        Failure::BadBody(e) => ExecError::permanent("UPSTREAM_ERROR", e),
        Failure::Status { status, body } => {
            let e = parse(&body);
            let detail = if e.code.is_empty() {
                format!("HTTP {status}")
            } else {
                e.code.clone()
            };
            match status {
                429 => ExecError::retryable(
                    "UPSTREAM_BUSY",
                    format!(
                        "{name} is rate-limiting this server ({detail}); please try again later"
                    ),
                ),
                s if s >= 500 => ExecError::retryable(
                    "UPSTREAM_ERROR",
                    format!("{name} had an internal error ({detail}): {}", e.message),
                ),
                401 | 403 => {
                    tracing::error!(upstream = name, %detail, "the provider refused this server's credentials");
                    ExecError::permanent(
                        "UPSTREAM_AUTH",
                        format!("{name} refused this server's credentials or account ({detail}); the operator must check the provider key and account"),
                    )
                }
                404 => {
                    tracing::error!(
                        upstream = name,
                        model,
                        "model not found upstream: retired or mistyped id"
                    );
                    ExecError::permanent(
                        "MODEL_UNAVAILABLE",
                        format!("{name} does not serve model {model} ({detail}); it may have been retired, so the operator must update the model id"),
                    )
                }
                _ if is_ark_policy(&e.code) => content_policy(name, &e.code),
                _ => ExecError::permanent(
                    "INVALID_REQUEST",
                    format!("{name} refused the request ({detail}): {}", e.message),
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn error_envelopes() {
        let g = google_error(
            &json!([{"error": {"code": 404, "message": "models/x is not found", "status": "NOT_FOUND"}}]),
        );
        assert_eq!(
            g,
            UpstreamError {
                code: "NOT_FOUND".into(),
                message: "models/x is not found".into()
            }
        );
        let a = ark_error(
            &json!({"error": {"code": "InputTextSensitiveContentDetected", "message": "no"}}),
        );
        assert!(is_ark_policy(&a.code));
        assert_eq!(google_error(&json!("bad gateway")).message, "bad gateway");
    }

    #[test]
    fn backoff_is_bounded_and_jittered() {
        let up = Upstream::new(
            "T",
            Duration::from_secs(1),
            &RetryConfig {
                max_attempts: 5,
                base_delay_ms: 100,
                max_delay_ms: 400,
            },
        )
        .unwrap();
        for attempt in 1..10 {
            let d = up.delay(attempt, None);
            assert!(d <= Duration::from_millis(400), "{d:?}");
        }
        assert_eq!(
            up.delay(1, Some(Duration::from_secs(60))),
            Duration::from_millis(400)
        );
    }
}
