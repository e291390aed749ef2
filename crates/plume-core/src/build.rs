//! Building task content from the client's `create` options (CLIENT.md, `create`).
//!
//! The rules here are the client's defaults (modes from the images given, `2K` and `9:16`,
//! veo's three slots, seedance's model from the duration). Whatever is built is then checked
//! by [`validate_content`], the server's own rule.

use crate::category::Category;
use crate::content::{
    validate_content, ContentError, DEFAULT_ASPECT_RATIO, DEFAULT_IMAGE_SIZE,
    DEFAULT_SEEDANCE_MODEL, DEFAULT_VEO_DURATION, DEFAULT_VEO_MODEL,
};
use serde_json::{json, Map, Value};

/// What the client's `create` options say, before they become content. Local files must
/// already be uploaded: every URL here is an http(s) URL.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    pub prompt: Option<String>,
    pub processing_mode: Option<String>,
    pub image_urls: Vec<String>,
    pub first_frame_url: Option<String>,
    pub last_frame_url: Option<String>,
    pub reference_url: Option<String>,
    pub image_size: Option<String>,
    pub aspect_ratio: Option<String>,
    pub duration: Option<u64>,
    pub model: Option<String>,
    pub regions: Vec<[u64; 4]>,
}

fn non_empty(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Builds `content` from the client's options (CLIENT.md, `create`) and validates it.
pub fn build_content(category: Category, opts: &BuildOptions) -> Result<Value, ContentError> {
    let mut content = Map::new();
    if let Some(prompt) = non_empty(&opts.prompt) {
        content.insert("prompt".into(), Value::String(prompt));
    }
    let images: Vec<String> = opts
        .image_urls
        .iter()
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty())
        .collect();
    let mode = non_empty(&opts.processing_mode);
    match category {
        Category::Banana2 | Category::BananaPro | Category::Seedream => {
            let default = if images.is_empty() {
                "text_to_image"
            } else {
                "image_to_image"
            };
            content.insert(
                "processing_mode".into(),
                json!(mode.unwrap_or_else(|| default.into())),
            );
            content.insert("imageUrls".into(), json!(images));
            let size = non_empty(&opts.image_size).unwrap_or_else(|| DEFAULT_IMAGE_SIZE.into());
            let config = if category == Category::Seedream {
                let mut image_config = json!({ "image_size": size });
                if let Some(ratio) = non_empty(&opts.aspect_ratio) {
                    image_config["aspectRatio"] = json!(ratio);
                }
                json!({ "imageConfig": image_config })
            } else {
                let ratio =
                    non_empty(&opts.aspect_ratio).unwrap_or_else(|| DEFAULT_ASPECT_RATIO.into());
                json!({
                    "responseModalities": ["IMAGE"],
                    "imageConfig": { "image_size": size, "aspectRatio": ratio },
                })
            };
            content.insert("generationConfig".into(), config);
        }
        Category::RemoveBg | Category::RemoveWatermark => {
            content.remove("prompt");
            content.insert("imageUrls".into(), json!(images));
            if !opts.regions.is_empty() {
                content.insert("regions".into(), json!(opts.regions));
            }
        }
        Category::Veo => {
            if images.len() > 3 {
                return Err(ContentError::single(
                    "imageUrls",
                    "veo takes at most 3 images: first frame, last frame, reference",
                ));
            }
            let positional = |i: usize| images.get(i).cloned();
            let slots = [
                non_empty(&opts.first_frame_url).or_else(|| positional(0)),
                non_empty(&opts.last_frame_url).or_else(|| positional(1)),
                non_empty(&opts.reference_url).or_else(|| positional(2)),
            ];
            let any = slots.iter().any(Option::is_some);
            let default = if any {
                "image_to_video"
            } else {
                "text_to_video"
            };
            content.insert(
                "processing_mode".into(),
                json!(mode.unwrap_or_else(|| default.into())),
            );
            let slots: Vec<String> = slots.into_iter().map(Option::unwrap_or_default).collect();
            content.insert("imageUrls".into(), json!(slots));
            content.insert(
                "videoConfig".into(),
                json!({
                    "model": non_empty(&opts.model).unwrap_or_else(|| DEFAULT_VEO_MODEL.into()),
                    "aspectRatio": non_empty(&opts.aspect_ratio).unwrap_or_else(|| DEFAULT_ASPECT_RATIO.into()),
                    "durationSeconds": opts.duration.unwrap_or(DEFAULT_VEO_DURATION),
                }),
            );
        }
        Category::Seedance2 => {
            let urls: Vec<String> = [&opts.first_frame_url, &opts.last_frame_url]
                .into_iter()
                .filter_map(non_empty)
                .chain(images)
                .chain(non_empty(&opts.reference_url))
                .collect();
            let default = if urls.is_empty() {
                "text_to_video"
            } else {
                "first_frame"
            };
            content.insert(
                "processing_mode".into(),
                json!(mode.unwrap_or_else(|| default.into())),
            );
            content.insert("imageUrls".into(), json!(urls));
            let model = match (opts.duration, non_empty(&opts.model)) {
                (Some(d), _) => format!("seedance2-{d}s"),
                (None, Some(m)) => m,
                (None, None) => DEFAULT_SEEDANCE_MODEL.into(),
            };
            content.insert(
                "videoConfig".into(),
                json!({
                    "model": model,
                    "aspectRatio": non_empty(&opts.aspect_ratio).unwrap_or_else(|| DEFAULT_ASPECT_RATIO.into()),
                }),
            );
        }
    }
    let content = Value::Object(content);
    validate_content(category, &content)?;
    Ok(content)
}
