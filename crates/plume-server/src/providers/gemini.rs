//! Banana2 / BananaPro through Gemini `generateContent` (PROVIDERS.md §1), and `describe`
//! through a Gemini text model.
//!
//! The call is synchronous: input images go inline as base64, `image_size` and
//! `aspectRatio` map to `imageConfig`, thought parts are skipped, and the MIME type comes from
//! the reply. A 200 without an image is a failure that says why (block reason or finish
//! reason).

use super::config::{load_key, timeout, GeminiConfig, RetryConfig, Secret};
use super::http::{content_policy, exec_error, google_error, Upstream};
use super::media::{b64_decode, b64_encode};
use crate::executor::{ExecContext, ExecError, ExecOutput, Executor};
use async_trait::async_trait;
use plume_core::{Category, ValidatedContent};
use serde_json::{json, Value};
use std::sync::Arc;

/// Finish and block reasons that mean a safety filter refused the request.
const POLICY_REASONS: [&str; 11] = [
    "SAFETY",
    "PROHIBITED_CONTENT",
    "BLOCKLIST",
    "SPII",
    "RECITATION",
    "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT",
    "IMAGE_RECITATION",
    "LANGUAGE",
    "OTHER_POLICY",
    "IMAGE_OTHER_POLICY",
];

struct Shared {
    upstream: Upstream,
    base_url: String,
    key: Result<Secret, String>,
}

impl Shared {
    fn new(config: &GeminiConfig, retry: &RetryConfig) -> anyhow::Result<Shared> {
        Ok(Shared {
            upstream: Upstream::new("Gemini", timeout(config.timeout_seconds), retry)?,
            base_url: config.base_url.trim_end_matches('/').to_string(),
            key: load_key(&config.api_key_env, config.api_key_file.as_ref()),
        })
    }
}

/// The Gemini image client, shared by Banana2 and BananaPro.
#[derive(Clone)]
pub struct GeminiImage {
    shared: Arc<Shared>,
    config: GeminiConfig,
}

/// One category's executor: the client plus its model id.
pub struct GeminiImageExecutor {
    client: GeminiImage,
    model: String,
}

impl GeminiImage {
    pub fn new(config: &GeminiConfig, retry: &RetryConfig) -> anyhow::Result<GeminiImage> {
        Ok(GeminiImage {
            shared: Arc::new(Shared::new(config, retry)?),
            config: config.clone(),
        })
    }

    pub fn for_category(&self, category: Category) -> GeminiImageExecutor {
        let model = if category == Category::BananaPro {
            &self.config.banana_pro_model
        } else {
            &self.config.banana2_model
        };
        GeminiImageExecutor {
            client: self.clone(),
            model: model.clone(),
        }
    }
}

/// The `generateContent` body for image content.
pub fn image_request(content: &ValidatedContent, images: &[(bytes::Bytes, &'static str)]) -> Value {
    let mut parts = vec![json!({"text": content.prompt.clone().unwrap_or_default()})];
    for (bytes, mime) in images {
        parts.push(json!({"inlineData": {"mimeType": mime, "data": b64_encode(bytes)}}));
    }
    let mut image_config =
        json!({"imageSize": content.image_size.clone().unwrap_or_else(|| "2K".into())});
    if let Some(ratio) = &content.aspect_ratio {
        image_config["aspectRatio"] = json!(ratio);
    }
    json!({
        "contents": [{"role": "user", "parts": parts}],
        "generationConfig": {"responseModalities": ["IMAGE"], "imageConfig": image_config},
    })
}

/// The images of a `generateContent` reply, thought parts skipped; or why there are none.
pub fn reply_images(reply: &Value) -> Result<Vec<(Vec<u8>, String)>, ExecError> {
    if let Some(reason) = reply
        .pointer("/promptFeedback/blockReason")
        .and_then(Value::as_str)
    {
        return Err(content_policy("Gemini", reason));
    }
    let candidate = reply.pointer("/candidates/0");
    let finish = candidate
        .and_then(|c| c.get("finishReason"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let parts = candidate
        .and_then(|c| c.pointer("/content/parts"))
        .and_then(Value::as_array);
    let mut images = Vec::new();
    for part in parts.into_iter().flatten() {
        if part.get("thought").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        let Some(inline) = part.get("inlineData").or_else(|| part.get("inline_data")) else {
            continue;
        };
        let data = inline
            .get("data")
            .and_then(Value::as_str)
            .and_then(b64_decode)
            .ok_or_else(|| {
                ExecError::permanent(
                    "UPSTREAM_ERROR",
                    "Gemini returned an image part that is not valid base64",
                )
            })?;
        // Found by fuzzing: `"data": ""` decodes to no bytes at all.
        if data.is_empty() {
            return Err(ExecError::permanent(
                "UPSTREAM_ERROR",
                "Gemini returned an empty image part",
            ));
        }
        let mime = inline
            .get("mimeType")
            .or_else(|| inline.get("mime_type"))
            .and_then(Value::as_str)
            .filter(|m| !m.is_empty())
            .unwrap_or("image/png");
        images.push((data, mime.to_string()));
    }
    if !images.is_empty() {
        return Ok(images);
    }
    if POLICY_REASONS.contains(&finish) || finish.starts_with("IMAGE_") && finish != "IMAGE_OTHER" {
        return Err(content_policy("Gemini", finish));
    }
    let why = if finish.is_empty() {
        "no candidate".to_string()
    } else {
        format!("finish reason {finish}")
    };
    Err(ExecError::retryable(
        "NO_OUTPUT",
        format!("Gemini returned no image ({why}); try again or rephrase the prompt"),
    ))
}

#[async_trait]
impl Executor for GeminiImageExecutor {
    fn readiness(&self) -> Result<(), String> {
        self.client
            .shared
            .key
            .as_ref()
            .map(|_| ())
            .map_err(Clone::clone)
    }

    async fn execute(
        &self,
        content: &ValidatedContent,
        ctx: &ExecContext,
    ) -> Result<ExecOutput, ExecError> {
        let shared = &self.client.shared;
        let key = shared
            .key
            .as_ref()
            .map_err(|e| ExecError::permanent("NOT_CONFIGURED", e.clone()))?;
        let mut images = Vec::new();
        for url in &content.image_urls {
            images.push(super::input_image(ctx, url).await?);
        }
        let body = image_request(content, &images);
        let url = format!("{}/models/{}:generateContent", shared.base_url, self.model);
        let reply = shared
            .upstream
            .json(|c| {
                c.post(&url)
                    .header("x-goog-api-key", key.expose())
                    .json(&body)
            })
            .await
            .map_err(|f| exec_error(&shared.upstream, &self.model, f, google_error))?;
        let mut outputs = Vec::new();
        for (bytes, mime) in reply_images(&reply)? {
            outputs.push(ctx.store_image(bytes, &format!("Gemini ({mime})")).await?);
        }
        Ok(ExecOutput::Images { images: outputs })
    }
}

/// `POST /api/open/describe` through a Gemini text model.
pub struct Describer {
    shared: Shared,
    pub model: String,
}

impl Describer {
    pub fn new(config: &GeminiConfig, retry: &RetryConfig) -> anyhow::Result<Describer> {
        Ok(Describer {
            shared: Shared::new(config, retry)?,
            model: config.describe_model.clone().unwrap_or_default(),
        })
    }

    pub fn readiness(&self) -> Result<(), String> {
        self.shared.key.as_ref().map(|_| ()).map_err(Clone::clone)
    }

    /// Describes an image: `(description, tokens used)`.
    pub async fn describe(
        &self,
        image: &[u8],
        mime: &str,
        focus: &str,
    ) -> Result<(String, u64), ExecError> {
        let key = self
            .shared
            .key
            .as_ref()
            .map_err(|e| ExecError::permanent("NOT_CONFIGURED", e.clone()))?;
        let instruction = match focus {
            "style" => "Describe the visual style of this image: medium, palette, lighting, composition. Be concise.",
            "text" => "Transcribe any text visible in this image, then say briefly where it appears.",
            "objects" => "List the main objects and people in this image, with their positions.",
            _ => "Describe this image in a few sentences: subject, setting, style and notable details.",
        };
        let body = json!({
            "contents": [{"role": "user", "parts": [
                {"text": instruction},
                {"inlineData": {"mimeType": mime, "data": b64_encode(image)}},
            ]}],
        });
        let url = format!(
            "{}/models/{}:generateContent",
            self.shared.base_url, self.model
        );
        let reply = self
            .shared
            .upstream
            .json(|c| {
                c.post(&url)
                    .header("x-goog-api-key", key.expose())
                    .json(&body)
            })
            .await
            .map_err(|f| exec_error(&self.shared.upstream, &self.model, f, google_error))?;
        if let Some(reason) = reply
            .pointer("/promptFeedback/blockReason")
            .and_then(Value::as_str)
        {
            return Err(content_policy("Gemini", reason));
        }
        let text: String = reply
            .pointer("/candidates/0/content/parts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|p| p.get("thought").and_then(Value::as_bool) != Some(true))
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("")
            .trim()
            .to_string();
        if text.is_empty() {
            let finish = reply
                .pointer("/candidates/0/finishReason")
                .and_then(Value::as_str)
                .unwrap_or("no candidate");
            return Err(ExecError::retryable(
                "NO_OUTPUT",
                format!("Gemini returned no description ({finish})"),
            ));
        }
        let tokens = reply
            .pointer("/usageMetadata/totalTokenCount")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        Ok((text, tokens))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thought_images_are_skipped_and_blocks_explained() {
        let reply = json!({"candidates": [{"content": {"parts": [
            {"inlineData": {"mimeType": "image/png", "data": b64_encode(b"draft")}, "thought": true},
            {"text": "here you go"},
            {"inlineData": {"mimeType": "image/jpeg", "data": b64_encode(b"final")}},
        ]}, "finishReason": "STOP"}]});
        assert_eq!(
            reply_images(&reply).unwrap(),
            vec![(b"final".to_vec(), "image/jpeg".to_string())]
        );
        let blocked =
            reply_images(&json!({"promptFeedback": {"blockReason": "SAFETY"}})).unwrap_err();
        assert_eq!(blocked.code, "CONTENT_POLICY");
        assert!(blocked.message.contains("SAFETY"));
        let e =
            reply_images(&json!({"candidates": [{"finishReason": "IMAGE_SAFETY"}]})).unwrap_err();
        assert_eq!(e.code, "CONTENT_POLICY");
        let e = reply_images(&json!({"candidates": [{"content": {"parts": [{"text": "no"}]}, "finishReason": "NO_IMAGE"}]})).unwrap_err();
        assert!(e.retryable && e.message.contains("NO_IMAGE"));
    }

    /// The fuzzer's find (fuzz/fuzz_targets/provider_replies.rs): an image part whose data
    /// is empty is an upstream error, not an empty image; an empty MIME type means PNG.
    #[test]
    fn an_empty_image_part_is_an_error_and_an_empty_mime_type_means_png() {
        let reply = json!({"candidates": [{"content": {"parts": [{"text": "here"},
            {"inlineData": {"mimeType": "image/png", "data": ""}}]}, "fintypeeason": "STOP"}]});
        let e = reply_images(&reply).unwrap_err();
        assert_eq!(e.code, "UPSTREAM_ERROR");
        assert!(!e.retryable && e.message.contains("empty"));
        let reply = json!({"candidates": [{"content": {"parts": [
            {"inlineData": {"mimeType": "", "data": b64_encode(b"png")}}]}}]});
        assert_eq!(
            reply_images(&reply).unwrap(),
            vec![(b"png".to_vec(), "image/png".to_string())]
        );
    }
}
