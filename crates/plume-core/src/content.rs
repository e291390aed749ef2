//! Task content validation: the table in API.md ("Task content").
//!
//! [`validate_content`] is the only implementation of the table: the server calls it on every
//! create, and the client's builder ([`crate::build`]) runs it on what it built, so a client
//! can never build content its own server would refuse.

use crate::category::Category;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Longest prompt, in characters, after trimming.
pub const MAX_PROMPT_CHARS: usize = 5_000;
/// Most input images an image category takes.
pub const MAX_IMAGE_URLS: usize = 10;
/// Most reference images of seedance2's `universal_reference` mode.
pub const MAX_SEEDANCE_REFERENCES: usize = 4;
/// Longest image URL we accept.
pub const MAX_URL_LEN: usize = 2_048;
/// Most forced regions of a remove-watermark task.
pub const MAX_REGIONS: usize = 32;
/// Largest coordinate or size of a region, in pixels.
pub const MAX_REGION_COORD: u64 = 100_000;

pub const IMAGE_SIZES: [&str; 3] = ["1K", "2K", "4K"];
pub const ASPECT_RATIOS: [&str; 10] = [
    "21:9", "16:9", "4:3", "3:2", "1:1", "9:16", "3:4", "2:3", "5:4", "4:5",
];
pub const VEO_ASPECT_RATIOS: [&str; 2] = ["16:9", "9:16"];
pub const VEO_DURATIONS: [u64; 3] = [4, 6, 8];
pub const VEO_MODELS: [&str; 3] = ["veo3.1-fast", "veo3.1", "veo3.1-lite"];
pub const SEEDANCE_MODELS: [&str; 3] = ["seedance2-5s", "seedance2-10s", "seedance2-15s"];

pub const DEFAULT_IMAGE_SIZE: &str = "2K";
pub const DEFAULT_ASPECT_RATIO: &str = "9:16";
pub const DEFAULT_VEO_MODEL: &str = "veo3.1-fast";
pub const DEFAULT_VEO_DURATION: u64 = 6;
pub const DEFAULT_SEEDANCE_MODEL: &str = "seedance2-5s";

/// `processing_mode` values across all categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProcessingMode {
    TextToImage,
    ImageToImage,
    MultiImageBlend,
    TextToVideo,
    ImageToVideo,
    FirstFrame,
    FirstLastFrame,
    UniversalReference,
}

impl ProcessingMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ProcessingMode::TextToImage => "text_to_image",
            ProcessingMode::ImageToImage => "image_to_image",
            ProcessingMode::MultiImageBlend => "multi_image_blend",
            ProcessingMode::TextToVideo => "text_to_video",
            ProcessingMode::ImageToVideo => "image_to_video",
            ProcessingMode::FirstFrame => "first_frame",
            ProcessingMode::FirstLastFrame => "first_last_frame",
            ProcessingMode::UniversalReference => "universal_reference",
        }
    }

    /// The modes a category accepts; empty for the editing categories, which take none.
    pub fn allowed_for(category: Category) -> &'static [ProcessingMode] {
        use ProcessingMode::*;
        match category {
            Category::Banana2 | Category::BananaPro => {
                &[TextToImage, ImageToImage, MultiImageBlend]
            }
            Category::Seedream => &[TextToImage, ImageToImage],
            Category::RemoveBg | Category::RemoveWatermark => &[],
            Category::Veo => &[TextToVideo, ImageToVideo],
            Category::Seedance2 => &[TextToVideo, FirstFrame, FirstLastFrame, UniversalReference],
        }
    }

    /// How many input images the mode takes: (at least, at most).
    pub(crate) fn image_bounds(self) -> (usize, usize) {
        use ProcessingMode::*;
        match self {
            TextToImage | TextToVideo => (0, 0),
            ImageToImage => (1, MAX_IMAGE_URLS),
            MultiImageBlend => (2, MAX_IMAGE_URLS),
            ImageToVideo => (1, 3),
            FirstFrame => (1, 1),
            FirstLastFrame => (2, 2),
            UniversalReference => (1, MAX_SEEDANCE_REFERENCES),
        }
    }
}

/// Content that passed validation, with every default applied. Executors and the price table
/// read this; the raw JSON is kept on the task as the client sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedContent {
    pub category: Category,
    pub mode: Option<ProcessingMode>,
    /// Trimmed; `None` where the category takes no prompt.
    pub prompt: Option<String>,
    /// Every non-empty input image URL, in order (for veo: the set slots, in slot order).
    pub image_urls: Vec<String>,
    /// veo only: `[first_frame, last_frame, reference]`.
    pub veo_slots: Option<[Option<String>; 3]>,
    /// Image categories: `1K`, `2K` or `4K` (default `2K`).
    pub image_size: Option<String>,
    pub aspect_ratio: Option<String>,
    /// Video categories: the model name of the content (`veo3.1-fast`, `seedance2-10s`).
    pub video_model: Option<String>,
    pub duration_seconds: Option<u64>,
    /// remove-watermark only: forced regions `[x, y, w, h]`.
    pub regions: Vec<[u64; 4]>,
}

/// Why content was refused: field path → reason. Never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentError {
    pub details: BTreeMap<String, String>,
}

impl ContentError {
    pub fn single(field: &str, reason: impl Into<String>) -> ContentError {
        let mut details = BTreeMap::new();
        details.insert(field.to_string(), reason.into());
        ContentError { details }
    }

    /// One line naming the first problem, for `message`.
    pub fn message(&self) -> String {
        match self.details.iter().next() {
            Some((field, reason)) => format!("{field}: {reason}"),
            None => "invalid content".to_string(),
        }
    }

    pub fn details_json(&self) -> Value {
        Value::Object(
            self.details
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect(),
        )
    }
}

impl std::fmt::Display for ContentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for ContentError {}

type Checked<T> = Result<T, ContentError>;

fn err<T>(field: &str, reason: impl Into<String>) -> Checked<T> {
    Err(ContentError::single(field, reason))
}

fn optional_str<'a>(
    obj: &'a Map<String, Value>,
    field: &str,
    path: &str,
) -> Checked<Option<&'a str>> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => err(path, "must be a string"),
    }
}

fn optional_object<'a>(
    obj: &'a Map<String, Value>,
    field: &str,
    path: &str,
) -> Checked<Option<&'a Map<String, Value>>> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(_) => err(path, "must be an object"),
    }
}

fn one_of(value: &str, allowed: &[&str], path: &str) -> Checked<String> {
    if allowed.contains(&value) {
        Ok(value.to_string())
    } else {
        err(path, format!("must be one of {}", allowed.join(", ")))
    }
}

/// Checks the syntax of one image URL. Whether the server will fetch it (its own file URL or
/// an allow-listed host) is the server's policy, checked there.
pub fn check_image_url(url: &str, path: &str) -> Result<(), ContentError> {
    if url.len() > MAX_URL_LEN {
        return err(path, format!("URL longer than {MAX_URL_LEN} characters"));
    }
    let rest = if let Some(rest) = url.strip_prefix("https://") {
        rest
    } else if let Some(rest) = url.strip_prefix("http://") {
        rest
    } else {
        return err(path, "must be an http(s) URL");
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty()
        || host.contains('@')
        || url.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return err(path, "is not a valid URL");
    }
    Ok(())
}

fn check_prompt(obj: &Map<String, Value>, required: bool) -> Checked<Option<String>> {
    let Some(raw) = optional_str(obj, "prompt", "prompt")? else {
        return if required {
            err("prompt", "is required")
        } else {
            Ok(None)
        };
    };
    let prompt = raw.trim();
    if prompt.is_empty() {
        return if required {
            err("prompt", "is required and must not be blank")
        } else {
            Ok(None)
        };
    }
    if prompt.chars().count() > MAX_PROMPT_CHARS {
        return err(
            "prompt",
            format!("must be at most {MAX_PROMPT_CHARS} characters"),
        );
    }
    Ok(Some(prompt.to_string()))
}

/// Reads `imageUrls` as a list of strings; `allow_empty` keeps empty strings (veo's slots).
fn image_url_list(obj: &Map<String, Value>, allow_empty: bool) -> Checked<Vec<String>> {
    let list = match obj.get("imageUrls") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(_) => return err("imageUrls", "must be an array of URLs"),
    };
    let mut urls = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let path = format!("imageUrls[{i}]");
        let Value::String(url) = item else {
            return err(&path, "must be a string");
        };
        let url = url.trim();
        if url.is_empty() {
            if !allow_empty {
                return err(&path, "must not be empty");
            }
        } else {
            check_image_url(url, &path)?;
        }
        urls.push(url.to_string());
    }
    Ok(urls)
}

fn check_mode(
    obj: &Map<String, Value>,
    category: Category,
    default: ProcessingMode,
) -> Checked<ProcessingMode> {
    let allowed = ProcessingMode::allowed_for(category);
    match optional_str(obj, "processing_mode", "processing_mode")? {
        None | Some("") => Ok(default),
        Some(name) => allowed
            .iter()
            .copied()
            .find(|m| m.as_str() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = allowed.iter().map(|m| m.as_str()).collect();
                ContentError::single(
                    "processing_mode",
                    format!(
                        "{name:?} is not a mode of {category}; use one of {}",
                        names.join(", ")
                    ),
                )
            }),
    }
}

fn check_image_count(mode: ProcessingMode, count: usize, max_total: usize) -> Checked<()> {
    let (min, max) = mode.image_bounds();
    let max = max.min(max_total);
    if count < min || count > max {
        let want = match (min, max) {
            (0, 0) => "no images".to_string(),
            (a, b) if a == b => format!("exactly {a} image(s)"),
            (a, b) => format!("{a} to {b} images"),
        };
        return err(
            "imageUrls",
            format!("{} takes {want}, got {count}", mode.as_str()),
        );
    }
    Ok(())
}

/// Fields that belong to other categories are refused rather than silently ignored, so a
/// misrouted request fails loudly. Unknown fields are left alone for forward compatibility.
fn refuse_foreign_fields(obj: &Map<String, Value>, category: Category) -> Checked<()> {
    let foreign: &[&str] = match category.kind() {
        crate::CategoryKind::Image => &["videoConfig", "regions"],
        crate::CategoryKind::Video => &["generationConfig", "regions"],
        crate::CategoryKind::Edit if category == Category::RemoveWatermark => {
            &["generationConfig", "videoConfig", "processing_mode"]
        }
        crate::CategoryKind::Edit => &[
            "generationConfig",
            "videoConfig",
            "processing_mode",
            "regions",
        ],
    };
    for field in foreign {
        match obj.get(*field) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s.is_empty() => {}
            Some(_) => return err(field, format!("is not used by {category}")),
        }
    }
    Ok(())
}

/// Validates `content` for `category` against the API contract and applies its defaults.
pub fn validate_content(
    category: Category,
    content: &Value,
) -> Result<ValidatedContent, ContentError> {
    let Value::Object(obj) = content else {
        return err("content", "must be an object");
    };
    refuse_foreign_fields(obj, category)?;
    let mut out = ValidatedContent {
        category,
        mode: None,
        prompt: None,
        image_urls: Vec::new(),
        veo_slots: None,
        image_size: None,
        aspect_ratio: None,
        video_model: None,
        duration_seconds: None,
        regions: Vec::new(),
    };
    match category {
        Category::Banana2 | Category::BananaPro | Category::Seedream => {
            out.prompt = check_prompt(obj, true)?;
            out.image_urls = image_url_list(obj, false)?;
            let default = if out.image_urls.is_empty() {
                ProcessingMode::TextToImage
            } else {
                ProcessingMode::ImageToImage
            };
            let mode = check_mode(obj, category, default)?;
            check_image_count(mode, out.image_urls.len(), MAX_IMAGE_URLS)?;
            out.mode = Some(mode);
            let (size, ratio) = check_generation_config(obj)?;
            out.image_size = Some(size);
            out.aspect_ratio = ratio;
        }
        Category::RemoveBg | Category::RemoveWatermark => {
            out.image_urls = image_url_list(obj, false)?;
            if out.image_urls.len() != 1 {
                return err(
                    "imageUrls",
                    format!(
                        "{category} takes exactly 1 image, got {}",
                        out.image_urls.len()
                    ),
                );
            }
            if category == Category::RemoveWatermark {
                out.regions = check_regions(obj)?;
            }
        }
        Category::Veo => {
            out.prompt = check_prompt(obj, true)?;
            let slots = image_url_list(obj, true)?;
            if !slots.is_empty() && slots.len() != 3 {
                return err("imageUrls", "veo takes 3 slots [first_frame, last_frame, reference]; use \"\" for an unused slot");
            }
            let mut veo_slots: [Option<String>; 3] = Default::default();
            for (slot, url) in veo_slots.iter_mut().zip(&slots) {
                *slot = (!url.is_empty()).then(|| url.clone());
            }
            out.image_urls = veo_slots.iter().flatten().cloned().collect();
            let default = if out.image_urls.is_empty() {
                ProcessingMode::TextToVideo
            } else {
                ProcessingMode::ImageToVideo
            };
            let mode = check_mode(obj, category, default)?;
            check_image_count(mode, out.image_urls.len(), 3)?;
            out.mode = Some(mode);
            out.veo_slots = Some(veo_slots);
            let cfg = optional_object(obj, "videoConfig", "videoConfig")?;
            let field = |name: &str| cfg.and_then(|c| c.get(name)).filter(|v| !v.is_null());
            out.video_model = Some(match field("model") {
                None => DEFAULT_VEO_MODEL.to_string(),
                Some(Value::String(m)) => one_of(m, &VEO_MODELS, "videoConfig.model")?,
                Some(_) => return err("videoConfig.model", "must be a string"),
            });
            out.aspect_ratio = Some(match field("aspectRatio") {
                None => DEFAULT_ASPECT_RATIO.to_string(),
                Some(Value::String(r)) => one_of(r, &VEO_ASPECT_RATIOS, "videoConfig.aspectRatio")?,
                Some(_) => return err("videoConfig.aspectRatio", "must be a string"),
            });
            out.duration_seconds = Some(match field("durationSeconds") {
                None => DEFAULT_VEO_DURATION,
                Some(v) => match v.as_u64() {
                    Some(d) if VEO_DURATIONS.contains(&d) => d,
                    _ => return err("videoConfig.durationSeconds", "must be 4, 6 or 8"),
                },
            });
        }
        Category::Seedance2 => {
            out.prompt = check_prompt(obj, true)?;
            out.image_urls = image_url_list(obj, false)?;
            let default = if out.image_urls.is_empty() {
                ProcessingMode::TextToVideo
            } else {
                ProcessingMode::FirstFrame
            };
            let mode = check_mode(obj, category, default)?;
            check_image_count(mode, out.image_urls.len(), MAX_SEEDANCE_REFERENCES)?;
            out.mode = Some(mode);
            let cfg = optional_object(obj, "videoConfig", "videoConfig")?;
            let field = |name: &str| cfg.and_then(|c| c.get(name)).filter(|v| !v.is_null());
            let model = match field("model") {
                None => None,
                Some(Value::String(m)) => Some(one_of(m, &SEEDANCE_MODELS, "videoConfig.model")?),
                Some(_) => return err("videoConfig.model", "must be a string"),
            };
            let duration = match field("durationSeconds") {
                None => None,
                Some(v) => match v.as_u64() {
                    Some(d @ (5 | 10 | 15)) => Some(d),
                    _ => return err("videoConfig.durationSeconds", "must be 5, 10 or 15"),
                },
            };
            let model = match (model, duration) {
                (Some(m), Some(d)) if seedance_seconds(&m) != d => {
                    return err(
                        "videoConfig.durationSeconds",
                        format!("{d} contradicts model {m}"),
                    )
                }
                (Some(m), _) => m,
                (None, Some(d)) => format!("seedance2-{d}s"),
                (None, None) => DEFAULT_SEEDANCE_MODEL.to_string(),
            };
            out.duration_seconds = Some(seedance_seconds(&model));
            out.video_model = Some(model);
            out.aspect_ratio = Some(match field("aspectRatio") {
                None => DEFAULT_ASPECT_RATIO.to_string(),
                Some(Value::String(r)) => one_of(r, &ASPECT_RATIOS, "videoConfig.aspectRatio")?,
                Some(_) => return err("videoConfig.aspectRatio", "must be a string"),
            });
        }
    }
    Ok(out)
}

pub(crate) fn seedance_seconds(model: &str) -> u64 {
    model
        .strip_prefix("seedance2-")
        .and_then(|s| s.strip_suffix('s'))
        .and_then(|s| s.parse().ok())
        .unwrap_or(5)
}

fn check_generation_config(obj: &Map<String, Value>) -> Checked<(String, Option<String>)> {
    let Some(cfg) = optional_object(obj, "generationConfig", "generationConfig")? else {
        return Ok((DEFAULT_IMAGE_SIZE.to_string(), None));
    };
    match cfg.get("responseModalities") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            let names: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
            match names {
                Some(names)
                    if names.contains(&"IMAGE")
                        && names.iter().all(|n| *n == "IMAGE" || *n == "TEXT") => {}
                _ => {
                    return err(
                        "generationConfig.responseModalities",
                        "must be [\"IMAGE\"] (optionally with \"TEXT\")",
                    )
                }
            }
        }
        Some(_) => return err("generationConfig.responseModalities", "must be an array"),
    }
    let Some(image) = optional_object(cfg, "imageConfig", "generationConfig.imageConfig")? else {
        return Ok((DEFAULT_IMAGE_SIZE.to_string(), None));
    };
    let size = match optional_str(
        image,
        "image_size",
        "generationConfig.imageConfig.image_size",
    )? {
        None => DEFAULT_IMAGE_SIZE.to_string(),
        Some(s) => one_of(s, &IMAGE_SIZES, "generationConfig.imageConfig.image_size")?,
    };
    let ratio = match optional_str(
        image,
        "aspectRatio",
        "generationConfig.imageConfig.aspectRatio",
    )? {
        None => None,
        Some(r) => Some(one_of(
            r,
            &ASPECT_RATIOS,
            "generationConfig.imageConfig.aspectRatio",
        )?),
    };
    Ok((size, ratio))
}

fn check_regions(obj: &Map<String, Value>) -> Checked<Vec<[u64; 4]>> {
    let list = match obj.get("regions") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(_) => return err("regions", "must be an array of [x, y, w, h]"),
    };
    if list.len() > MAX_REGIONS {
        return err("regions", format!("at most {MAX_REGIONS} regions"));
    }
    let mut regions = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let path = format!("regions[{i}]");
        let numbers: Option<Vec<u64>> = item
            .as_array()
            .and_then(|a| a.iter().map(Value::as_u64).collect());
        match numbers.as_deref() {
            Some(&[x, y, w, h])
                if w > 0 && h > 0 && [x, y, w, h].iter().all(|n| *n <= MAX_REGION_COORD) =>
            {
                regions.push([x, y, w, h])
            }
            _ => {
                return err(
                    &path,
                    "must be [x, y, w, h]: non-negative integers with w and h above 0",
                )
            }
        }
    }
    Ok(regions)
}

#[cfg(test)]
#[path = "content_tests.rs"]
mod tests;
