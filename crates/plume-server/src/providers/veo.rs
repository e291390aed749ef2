//! veo through the Gemini API (`predictLongRunning` + operation polling + download) or,
//! configured instead, Vertex AI (service-account token, `fetchPredictOperation`)
//! (PROVIDERS.md §3).
//!
//! The operation's name is saved on the task before the first poll, so a restarted worker
//! resumes polling the same operation instead of paying for a new video.

use super::config::{load_key, timeout, RetryConfig, Secret, VeoBackend, VeoConfig};
use super::http::{content_policy, exec_error, google_error, Upstream};
use super::media::{b64_decode, b64_encode, mp4_duration};
use super::vertex_auth::TokenSource;
use crate::executor::{ExecContext, ExecError, ExecOutput, Executor, OutputVideo};
use async_trait::async_trait;
use bytes::Bytes;
use plume_core::ValidatedContent;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

pub struct Veo {
    backend: VeoBackend,
    upstream: Upstream,
    models: BTreeMap<String, String>,
    base_url: String,
    key: Result<Secret, String>,
    vertex: Result<TokenSource, String>,
    vertex_prefix: String,
    poll_interval: Duration,
    max_video_bytes: u64,
}

/// An image in the SDK's wire form.
fn image_object(bytes: &[u8], mime: &str) -> Value {
    json!({"bytesBase64Encoded": b64_encode(bytes), "mimeType": mime})
}

impl Veo {
    pub fn new(config: &VeoConfig, retry: &RetryConfig) -> anyhow::Result<Veo> {
        let vertex = &config.vertex;
        let vertex_base = vertex
            .base_url
            .clone()
            .unwrap_or_else(|| format!("https://{}-aiplatform.googleapis.com/v1", vertex.location));
        let (name, key, tokens) = match config.backend {
            VeoBackend::Gemini => (
                "Gemini",
                load_key(&config.api_key_env, config.api_key_file.as_ref()),
                Err("not used".into()),
            ),
            VeoBackend::Vertex => {
                let tokens = match (&vertex.credentials_file, vertex.project.is_empty()) {
                    (_, true) => Err("providers.veo.vertex.project is not set".to_string()),
                    (None, _) => {
                        Err("providers.veo.vertex.credentials_file is not set".to_string())
                    }
                    (Some(path), _) => TokenSource::from_file(path),
                };
                ("Vertex AI", Err("not used".into()), tokens)
            }
        };
        Ok(Veo {
            backend: config.backend,
            upstream: Upstream::new(name, timeout(config.timeout_seconds), retry)?,
            models: config.models.clone(),
            base_url: config.base_url.trim_end_matches('/').to_string(),
            key,
            vertex: tokens,
            vertex_prefix: format!(
                "{}/projects/{}/locations/{}/publishers/google/models",
                vertex_base.trim_end_matches('/'),
                vertex.project,
                vertex.location
            ),
            poll_interval: Duration::from_millis(config.poll_interval_ms.max(10)),
            max_video_bytes: config.max_video_bytes,
        })
    }

    fn model_for(&self, content: &ValidatedContent) -> Result<String, ExecError> {
        let name = content.video_model.as_deref().unwrap_or("veo3.1-fast");
        self.models.get(name).cloned().ok_or_else(|| {
            ExecError::permanent(
                "MODEL_UNAVAILABLE",
                format!("this server has no upstream model configured for {name}"),
            )
        })
    }

    /// Authorisation for one request.
    fn auth(&self, request: reqwest::RequestBuilder, token: &str) -> reqwest::RequestBuilder {
        match self.backend {
            VeoBackend::Gemini => request.header("x-goog-api-key", token),
            VeoBackend::Vertex => request.bearer_auth(token),
        }
    }

    async fn credential(&self) -> Result<String, ExecError> {
        match self.backend {
            VeoBackend::Gemini => Ok(self
                .key
                .as_ref()
                .map_err(|e| ExecError::permanent("NOT_CONFIGURED", e.clone()))?
                .expose()
                .to_string()),
            VeoBackend::Vertex => {
                let tokens = self
                    .vertex
                    .as_ref()
                    .map_err(|e| ExecError::permanent("NOT_CONFIGURED", e.clone()))?;
                tokens.token(&self.upstream).await
            }
        }
    }

    async fn request_body(
        &self,
        content: &ValidatedContent,
        ctx: &ExecContext,
    ) -> Result<Value, ExecError> {
        let mut instance = json!({"prompt": content.prompt.clone().unwrap_or_default()});
        let slots = content.veo_slots.clone().unwrap_or_default();
        let mut duration = content.duration_seconds.unwrap_or(6);
        if let Some(url) = &slots[0] {
            let (bytes, mime) = super::input_image(ctx, url).await?;
            instance["image"] = image_object(&bytes, mime);
        }
        if let Some(url) = &slots[1] {
            let (bytes, mime) = super::input_image(ctx, url).await?;
            instance["lastFrame"] = image_object(&bytes, mime);
        }
        if let Some(url) = &slots[2] {
            let (bytes, mime) = super::input_image(ctx, url).await?;
            instance["referenceImages"] =
                json!([{"image": image_object(&bytes, mime), "referenceType": "asset"}]);
            duration = 8; // Veo takes reference images only with 8-second videos
        }
        Ok(json!({
            "instances": [instance],
            "parameters": {
                "aspectRatio": content.aspect_ratio.clone().unwrap_or_else(|| "9:16".into()),
                "durationSeconds": duration,
                "sampleCount": 1,
            },
        }))
    }

    async fn submit(
        &self,
        content: &ValidatedContent,
        ctx: &ExecContext,
        model: &str,
    ) -> Result<String, ExecError> {
        let body = self.request_body(content, ctx).await?;
        let url = match self.backend {
            VeoBackend::Gemini => format!("{}/models/{model}:predictLongRunning", self.base_url),
            VeoBackend::Vertex => format!("{}/{model}:predictLongRunning", self.vertex_prefix),
        };
        let credential = self.credential().await?;
        let auth = self.auth(self.upstream.client.post(&url), &credential);
        let reply = self
            .upstream
            .json(|_| auth.try_clone().expect("a JSON request clones").json(&body))
            .await
            .map_err(|f| exec_error(&self.upstream, model, f, google_error))?;
        reply
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| {
                ExecError::permanent(
                    "UPSTREAM_ERROR",
                    format!(
                        "{} accepted the video but returned no operation",
                        self.upstream.name
                    ),
                )
            })
    }

    async fn poll(&self, operation: &str, model: &str) -> Result<Value, ExecError> {
        let credential = self.credential().await?;
        let request = match self.backend {
            VeoBackend::Gemini => self
                .upstream
                .client
                .get(format!("{}/{operation}", self.base_url)),
            VeoBackend::Vertex => self
                .upstream
                .client
                .post(format!(
                    "{}/{model}:fetchPredictOperation",
                    self.vertex_prefix
                ))
                .json(&json!({"operationName": operation})),
        };
        let request = self.auth(request, &credential);
        self.upstream
            .json(|_| request.try_clone().expect("a simple request clones"))
            .await
            .map_err(|f| exec_error(&self.upstream, model, f, google_error))
    }

    /// The video of a finished operation, or why there is none.
    async fn video(&self, done: &Value, ctx: &ExecContext) -> Result<Bytes, ExecError> {
        let name = self.upstream.name;
        if let Some(error) = done.get("error").filter(|e| !e.is_null()) {
            let message = error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("no reason given");
            return Err(ExecError::permanent(
                "UPSTREAM_FAILED",
                format!("{name} could not make the video: {message}"),
            ));
        }
        let response = done.get("response").cloned().unwrap_or(Value::Null);
        let result = response
            .get("generateVideoResponse")
            .cloned()
            .unwrap_or(response);
        let filtered = result
            .get("raiMediaFilteredCount")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let reasons: Vec<&str> = result
            .get("raiMediaFilteredReasons")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let video = result
            .pointer("/generatedSamples/0/video")
            .or_else(|| result.pointer("/videos/0"))
            .cloned();
        let Some(video) = video else {
            if filtered > 0 || !reasons.is_empty() {
                let reason = if reasons.is_empty() {
                    "filtered".to_string()
                } else {
                    reasons.join(" ")
                };
                return Err(content_policy(name, &reason));
            }
            return Err(ExecError::permanent(
                "NO_OUTPUT",
                format!("{name} finished without a video"),
            ));
        };
        if let Some(b64) = video
            .get("encodedVideo")
            .or_else(|| video.get("bytesBase64Encoded"))
            .and_then(Value::as_str)
        {
            return b64_decode(b64).map(Bytes::from).ok_or_else(|| {
                ExecError::permanent(
                    "UPSTREAM_ERROR",
                    format!("{name} returned a video that is not valid base64"),
                )
            });
        }
        if let Some(uri) = video.get("uri").and_then(Value::as_str) {
            let mut headers = reqwest::header::HeaderMap::new();
            if self.backend == VeoBackend::Gemini {
                let key = self.credential().await?;
                headers.insert(
                    "x-goog-api-key",
                    reqwest::header::HeaderValue::from_str(&key).map_err(|_| {
                        ExecError::permanent(
                            "NOT_CONFIGURED",
                            "the key is not a valid header value",
                        )
                    })?,
                );
            }
            return Ok(ctx
                .fetcher
                .download(uri, &headers, self.max_video_bytes)
                .await?);
        }
        Err(ExecError::permanent(
            "UPSTREAM_ERROR",
            format!("{name} stored the video in Cloud Storage (gcsUri); configure Veo without a storageUri"),
        ))
    }
}

#[async_trait]
impl Executor for Veo {
    fn readiness(&self) -> Result<(), String> {
        match self.backend {
            VeoBackend::Gemini => self.key.as_ref().map(|_| ()).map_err(Clone::clone),
            VeoBackend::Vertex => self.vertex.as_ref().map(|_| ()).map_err(Clone::clone),
        }
    }

    async fn execute(
        &self,
        content: &ValidatedContent,
        ctx: &ExecContext,
    ) -> Result<ExecOutput, ExecError> {
        let saved = ctx.upstream_job().cloned();
        let (operation, model) = match saved
            .as_ref()
            .and_then(|j| Some((j.get("operation")?.as_str()?, j.get("model")?.as_str()?)))
        {
            Some((op, model)) => (op.to_string(), model.to_string()),
            None => {
                let model = self.model_for(content)?;
                let operation = self.submit(content, ctx, &model).await?;
                ctx.save_upstream_job(
                    json!({"provider": "veo", "operation": operation, "model": model}),
                )
                .await?;
                (operation, model)
            }
        };
        ctx.set_progress(5).await;
        let done = loop {
            let state = self.poll(&operation, &model).await?;
            if state.get("done").and_then(Value::as_bool) == Some(true) {
                break state;
            }
            ctx.set_progress(50).await;
            tokio::time::sleep(self.poll_interval).await;
        };
        let video = self.video(&done, ctx).await?;
        let duration = mp4_duration(&video).ok_or_else(|| {
            ExecError::permanent(
                "UPSTREAM_ERROR",
                format!(
                    "{} returned a video that is not a readable MP4",
                    self.upstream.name
                ),
            )
        })?;
        let key = ctx.store_output(video, "mp4").await?;
        Ok(ExecOutput::Videos {
            parts: vec![OutputVideo {
                key: key.to_string(),
                duration,
                mime: "video/mp4".into(),
                poster_key: None,
            }],
        })
    }
}
