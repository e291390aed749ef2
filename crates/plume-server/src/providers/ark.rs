//! seedream and seedance2 through Volcengine Ark / BytePlus ModelArk (PROVIDERS.md §2, §4).
//!
//! seedream is synchronous (`images/generations`); seedance2 is a content-generation task
//! that is created once, saved on the Plume task, and polled until it ends. Input images go
//! as URLs the upstream can fetch, or as data URIs when this server's public base is private.

use super::config::{load_key, timeout, ArkConfig, ImageTransport, RetryConfig, Secret};
use super::http::{ark_error, content_policy, exec_error, is_ark_policy, Upstream};
use super::media::{b64_decode, data_uri, image_info, mp4_duration};
use crate::executor::{ExecContext, ExecError, ExecOutput, Executor, OutputVideo};
use async_trait::async_trait;
use plume_core::{ProcessingMode, ValidatedContent};
use serde_json::{json, Value};
use std::time::Duration;

/// The 2K sizes Ark recommends per aspect ratio (PROVIDERS.md §2.2).
const SIZES_2K: [(&str, &str); 8] = [
    ("1:1", "2048x2048"),
    ("4:3", "2304x1728"),
    ("3:4", "1728x2304"),
    ("16:9", "2560x1440"),
    ("9:16", "1440x2560"),
    ("3:2", "2496x1664"),
    ("2:3", "1664x2496"),
    ("21:9", "3024x1296"),
];

/// The `size` field: a preset without an aspect ratio, else `WxH`, from Ark's 2K table or
/// computed for about `side²` pixels, sides multiples of 16, clamped to Ark's pixel range.
pub fn seedream_size(image_size: &str, aspect_ratio: Option<&str>) -> String {
    let Some(ratio) = aspect_ratio else {
        return image_size.to_string();
    };
    if image_size == "2K" {
        if let Some((_, size)) = SIZES_2K.iter().find(|(r, _)| *r == ratio) {
            return size.to_string();
        }
    }
    let (rw, rh) = ratio
        .split_once(':')
        .and_then(|(w, h)| Some((w.parse::<f64>().ok()?, h.parse::<f64>().ok()?)))
        .unwrap_or((1.0, 1.0));
    let side: f64 = match image_size {
        "1K" => 1024.0,
        "4K" => 4096.0,
        _ => 2048.0,
    };
    let target = (side * side).clamp(1280.0 * 720.0, 4096.0 * 4096.0);
    let round16 = |v: f64| ((v / 16.0).round() * 16.0).max(16.0);
    let mut w = round16((target * rw / rh).sqrt());
    let mut h = round16(w * rh / rw);
    while w * h > 4096.0 * 4096.0 {
        w -= 16.0;
        h = round16(w * rh / rw);
    }
    while w * h < 1280.0 * 720.0 {
        w += 16.0;
        h = round16(w * rh / rw);
    }
    format!("{}x{}", w as u32, h as u32)
}

struct Ark {
    upstream: Upstream,
    base_url: String,
    key: Result<Secret, String>,
    transport: ImageTransport,
}

impl Ark {
    fn new(config: &ArkConfig, retry: &RetryConfig) -> anyhow::Result<Ark> {
        Ok(Ark {
            upstream: Upstream::new("Ark", timeout(config.timeout_seconds), retry)?,
            base_url: config.base_url.trim_end_matches('/').to_string(),
            key: load_key(&config.api_key_env, config.api_key_file.as_ref()),
            transport: config.image_transport,
        })
    }

    fn key(&self) -> Result<&Secret, ExecError> {
        self.key
            .as_ref()
            .map_err(|e| ExecError::permanent("NOT_CONFIGURED", e.clone()))
    }

    /// How the upstream gets an input image: its URL when the upstream can fetch it, else a
    /// data URI of its bytes.
    async fn image_ref(&self, ctx: &ExecContext, url: &str) -> Result<String, ExecError> {
        let as_data = match self.transport {
            ImageTransport::Url => false,
            ImageTransport::DataUri => true,
            ImageTransport::Auto => {
                ctx.fetcher.is_own_url(url) && ctx.fetcher.public_base_is_private()
            }
        };
        if !as_data {
            return Ok(url.to_string());
        }
        let (bytes, mime) = super::input_image(ctx, url).await?;
        Ok(data_uri(&bytes, mime))
    }
}

pub struct Seedream {
    ark: Ark,
    model: String,
}

impl Seedream {
    pub fn new(config: &ArkConfig, retry: &RetryConfig) -> anyhow::Result<Seedream> {
        Ok(Seedream {
            ark: Ark::new(config, retry)?,
            model: config.seedream_model.clone().unwrap_or_default(),
        })
    }
}

#[async_trait]
impl Executor for Seedream {
    fn readiness(&self) -> Result<(), String> {
        self.ark.key.as_ref().map(|_| ()).map_err(Clone::clone)
    }

    async fn execute(
        &self,
        content: &ValidatedContent,
        ctx: &ExecContext,
    ) -> Result<ExecOutput, ExecError> {
        let key = self.ark.key()?;
        let mut images = Vec::new();
        for url in &content.image_urls {
            images.push(self.ark.image_ref(ctx, url).await?);
        }
        let mut body = json!({
            "model": self.model,
            "prompt": content.prompt.clone().unwrap_or_default(),
            "size": seedream_size(content.image_size.as_deref().unwrap_or("2K"), content.aspect_ratio.as_deref()),
            "sequential_image_generation": "disabled",
            "response_format": "b64_json",
            "watermark": false,
        });
        match images.len() {
            0 => {}
            1 => body["image"] = json!(images[0]),
            _ => body["image"] = json!(images),
        }
        let url = format!("{}/images/generations", self.ark.base_url);
        let reply = self
            .ark
            .upstream
            .json(|c| c.post(&url).bearer_auth(key.expose()).json(&body))
            .await
            .map_err(|f| exec_error(&self.ark.upstream, &self.model, f, ark_error))?;
        let items = reply
            .get("data")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut outputs = Vec::new();
        let mut errors = Vec::new();
        for item in &items {
            if let Some(error) = item.get("error").filter(|e| !e.is_null()) {
                let e = ark_error(&json!({ "error": error }));
                errors.push(e);
                continue;
            }
            let bytes = if let Some(b64) = item.get("b64_json").and_then(Value::as_str) {
                b64_decode(b64).ok_or_else(|| {
                    ExecError::permanent("UPSTREAM_ERROR", "Ark returned invalid base64")
                })?
            } else if let Some(url) = item.get("url").and_then(Value::as_str) {
                ctx.fetcher
                    .download(url, &Default::default(), 64 * 1024 * 1024)
                    .await?
                    .to_vec()
            } else {
                continue;
            };
            outputs.push(ctx.store_image(bytes, "Ark").await?);
        }
        if !errors.is_empty() {
            tracing::warn!(
                task = ctx.task_id,
                failed = errors.len(),
                succeeded = outputs.len(),
                "seedream image set partly failed: {errors:?}"
            );
        }
        if outputs.is_empty() {
            return Err(match errors.first() {
                Some(e) if is_ark_policy(&e.code) => content_policy("Ark", &e.code),
                Some(e) => ExecError::permanent(
                    "UPSTREAM_FAILED",
                    format!(
                        "Ark could not generate the image ({}): {}",
                        e.code, e.message
                    ),
                ),
                None => ExecError::retryable("NO_OUTPUT", "Ark returned no image"),
            });
        }
        Ok(ExecOutput::Images { images: outputs })
    }
}

pub struct Seedance {
    ark: Ark,
    model: String,
    poll_interval: Duration,
    max_video_bytes: u64,
}

impl Seedance {
    pub fn new(config: &ArkConfig, retry: &RetryConfig) -> anyhow::Result<Seedance> {
        Ok(Seedance {
            ark: Ark::new(config, retry)?,
            model: config.seedance_model.clone().unwrap_or_default(),
            poll_interval: Duration::from_millis(config.poll_interval_ms.max(10)),
            max_video_bytes: config.max_video_bytes,
        })
    }

    async fn submit(
        &self,
        content: &ValidatedContent,
        ctx: &ExecContext,
        key: &Secret,
    ) -> Result<String, ExecError> {
        let mut items =
            vec![json!({"type": "text", "text": content.prompt.clone().unwrap_or_default()})];
        let roles: Vec<&str> = match content.mode {
            Some(ProcessingMode::FirstFrame) => vec!["first_frame"],
            Some(ProcessingMode::FirstLastFrame) => vec!["first_frame", "last_frame"],
            Some(ProcessingMode::UniversalReference) => {
                vec!["reference_image"; content.image_urls.len()]
            }
            _ => vec![],
        };
        for (url, role) in content.image_urls.iter().zip(roles) {
            let image = self.ark.image_ref(ctx, url).await?;
            items.push(json!({"type": "image_url", "image_url": {"url": image}, "role": role}));
        }
        let mut body = json!({
            "model": self.model,
            "content": items,
            "duration": content.duration_seconds.unwrap_or(5),
            "watermark": false,
        });
        // The frames fix the picture's shape in the frame modes; a ratio would contradict them.
        if matches!(
            content.mode,
            Some(ProcessingMode::TextToVideo) | Some(ProcessingMode::UniversalReference)
        ) {
            if let Some(ratio) = &content.aspect_ratio {
                body["ratio"] = json!(ratio);
            }
        }
        let url = format!("{}/contents/generations/tasks", self.ark.base_url);
        let reply = self
            .ark
            .upstream
            .json(|c| c.post(&url).bearer_auth(key.expose()).json(&body))
            .await
            .map_err(|f| exec_error(&self.ark.upstream, &self.model, f, ark_error))?;
        reply
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| {
                ExecError::permanent(
                    "UPSTREAM_ERROR",
                    "Ark accepted the video task but returned no id",
                )
            })
    }

    async fn finish(&self, task: &Value, ctx: &ExecContext) -> Result<ExecOutput, ExecError> {
        let video_url = task
            .pointer("/content/video_url")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                ExecError::permanent("UPSTREAM_ERROR", "Ark reported success without a video URL")
            })?;
        let video = ctx
            .fetcher
            .download(video_url, &Default::default(), self.max_video_bytes)
            .await?;
        let duration = mp4_duration(&video).ok_or_else(|| {
            ExecError::permanent(
                "UPSTREAM_ERROR",
                "Ark returned a video that is not a readable MP4",
            )
        })?;
        let key = ctx.store_output(video, "mp4").await?;
        let mut poster_key = None;
        if let Some(still) = task
            .pointer("/content/last_frame_url")
            .and_then(Value::as_str)
        {
            match ctx
                .fetcher
                .download(still, &Default::default(), 32 * 1024 * 1024)
                .await
            {
                Ok(bytes) => {
                    if let Some((kind, _, _)) = image_info(&bytes) {
                        poster_key = Some(ctx.store_output(bytes, kind.ext()).await?.to_string());
                    }
                }
                Err(e) => tracing::warn!(task = ctx.task_id, "the still could not be copied: {e}"),
            }
        }
        Ok(ExecOutput::Videos {
            parts: vec![OutputVideo {
                key: key.to_string(),
                duration,
                mime: "video/mp4".into(),
                poster_key,
            }],
        })
    }
}

#[async_trait]
impl Executor for Seedance {
    fn readiness(&self) -> Result<(), String> {
        self.ark.key.as_ref().map(|_| ()).map_err(Clone::clone)
    }

    async fn execute(
        &self,
        content: &ValidatedContent,
        ctx: &ExecContext,
    ) -> Result<ExecOutput, ExecError> {
        let key = self.ark.key()?;
        let id = match ctx
            .upstream_job()
            .and_then(|j| j.get("task_id"))
            .and_then(Value::as_str)
        {
            Some(id) => id.to_string(),
            None => {
                let id = self.submit(content, ctx, key).await?;
                ctx.save_upstream_job(json!({"provider": "ark", "task_id": id}))
                    .await?;
                id
            }
        };
        let url = format!("{}/contents/generations/tasks/{id}", self.ark.base_url);
        loop {
            let task = self
                .ark
                .upstream
                .json(|c| c.get(&url).bearer_auth(key.expose()))
                .await
                .map_err(|f| exec_error(&self.ark.upstream, &self.model, f, ark_error))?;
            match task.get("status").and_then(Value::as_str).unwrap_or("") {
                "succeeded" => return self.finish(&task, ctx).await,
                "failed" => {
                    let e = ark_error(&task);
                    return Err(if is_ark_policy(&e.code) {
                        content_policy("Ark", &e.code)
                    } else {
                        ExecError::permanent(
                            "UPSTREAM_FAILED",
                            format!("Seedance failed ({}): {}", e.code, e.message),
                        )
                    });
                }
                "expired" => {
                    return Err(ExecError::permanent(
                        "UPSTREAM_EXPIRED",
                        "Seedance let the task expire before it finished; please try again",
                    ))
                }
                "cancelled" => {
                    return Err(ExecError::permanent(
                        "UPSTREAM_CANCELLED",
                        "the Seedance task was cancelled upstream",
                    ))
                }
                "running" => ctx.set_progress(50).await,
                _ => ctx.set_progress(5).await,
            }
            tokio::time::sleep(self.poll_interval).await;
        }
    }

    /// Ark cancels only queued tasks; a running one finishes upstream and is discarded here.
    async fn cancelled(&self, upstream_job: Option<&Value>) {
        let (Ok(key), Some(id)) = (
            self.ark.key(),
            upstream_job
                .and_then(|j| j.get("task_id"))
                .and_then(Value::as_str),
        ) else {
            return;
        };
        let url = format!("{}/contents/generations/tasks/{id}", self.ark.base_url);
        if let Err(e) = self
            .ark
            .upstream
            .client
            .delete(&url)
            .bearer_auth(key.expose())
            .send()
            .await
        {
            tracing::warn!(
                upstream_task = id,
                "cancelling the Seedance task failed: {e}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::seedream_size;

    #[test]
    fn sizes() {
        assert_eq!(seedream_size("2K", None), "2K");
        assert_eq!(seedream_size("2K", Some("16:9")), "2560x1440");
        assert_eq!(seedream_size("2K", Some("9:16")), "1440x2560");
        for (size, ratio) in [
            ("1K", "1:1"),
            ("4K", "16:9"),
            ("2K", "5:4"),
            ("1K", "21:9"),
            ("4K", "9:16"),
        ] {
            let text = seedream_size(size, Some(ratio));
            let (w, h) = text.split_once('x').unwrap();
            let (w, h): (u32, u32) = (w.parse().unwrap(), h.parse().unwrap());
            assert!(w % 16 == 0 && h % 16 == 0, "{text}");
            let pixels = u64::from(w) * u64::from(h);
            assert!(
                (1280 * 720..=4096 * 4096).contains(&pixels),
                "{size} {ratio} {text}"
            );
        }
        assert_eq!(seedream_size("1K", Some("1:1")), "1024x1024");
    }
}
