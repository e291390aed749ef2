//! The categories and their limits as one JSON document, for code outside Rust.
//!
//! The OpenClaw provider plugin (`integrations/openclaw-plugin/`) declares its capabilities
//! (sizes, aspect ratios, input-image counts, durations, models) from this document instead
//! of a hand-written copy: `cargo run -p plume-core --example catalog` writes it to
//! `integrations/openclaw-plugin/src/catalog.json`, and a test here fails when that file no
//! longer matches these tables.

use crate::category::{Category, CategoryKind};
use crate::content::{
    seedance_seconds, ProcessingMode, ASPECT_RATIOS, DEFAULT_ASPECT_RATIO, DEFAULT_IMAGE_SIZE,
    DEFAULT_SEEDANCE_MODEL, DEFAULT_VEO_DURATION, DEFAULT_VEO_MODEL, IMAGE_SIZES, MAX_PROMPT_CHARS,
    SEEDANCE_MODELS, VEO_ASPECT_RATIOS, VEO_DURATIONS, VEO_MODELS,
};
use serde_json::{json, Value};

/// How many input images a category takes across its processing modes: (at least, at most).
/// The editing categories (no modes) take exactly one.
fn input_images(category: Category) -> (usize, usize) {
    let modes = ProcessingMode::allowed_for(category);
    if modes.is_empty() {
        return (1, 1);
    }
    let min = modes.iter().map(|m| m.image_bounds().0).min().unwrap_or(0);
    let max = modes.iter().map(|m| m.image_bounds().1).max().unwrap_or(0);
    (min, max)
}

fn category_entry(category: Category) -> Value {
    let (min_images, max_images) = input_images(category);
    let modes: Vec<&str> = ProcessingMode::allowed_for(category)
        .iter()
        .map(|m| m.as_str())
        .collect();
    let mut entry = json!({
        "kind": match category.kind() {
            CategoryKind::Image => "image",
            CategoryKind::Edit => "edit",
            CategoryKind::Video => "video",
        },
        "prompt": category.kind() != CategoryKind::Edit,
        "minInputImages": min_images,
        "maxInputImages": max_images,
        "processingModes": modes,
        "timeLimitSeconds": category.default_time_limit().as_secs(),
        "pollIntervalSeconds": category.default_poll_interval().as_secs(),
    });
    match category {
        Category::Banana2 | Category::BananaPro | Category::Seedream => {
            entry["sizes"] = json!(IMAGE_SIZES);
            entry["aspectRatios"] = json!(ASPECT_RATIOS);
            entry["defaultSize"] = json!(DEFAULT_IMAGE_SIZE);
            // seedream keeps the model's own ratio unless one is asked for.
            if category != Category::Seedream {
                entry["defaultAspectRatio"] = json!(DEFAULT_ASPECT_RATIO);
            }
        }
        Category::Veo => {
            entry["aspectRatios"] = json!(VEO_ASPECT_RATIOS);
            entry["defaultAspectRatio"] = json!(DEFAULT_ASPECT_RATIO);
            entry["durations"] = json!(VEO_DURATIONS);
            entry["defaultDuration"] = json!(DEFAULT_VEO_DURATION);
            entry["models"] = json!(VEO_MODELS);
            entry["defaultModel"] = json!(DEFAULT_VEO_MODEL);
        }
        Category::Seedance2 => {
            let durations: Vec<u64> = SEEDANCE_MODELS
                .iter()
                .map(|m| seedance_seconds(m))
                .collect();
            entry["aspectRatios"] = json!(ASPECT_RATIOS);
            entry["defaultAspectRatio"] = json!(DEFAULT_ASPECT_RATIO);
            entry["durations"] = json!(durations);
            entry["defaultDuration"] = json!(seedance_seconds(DEFAULT_SEEDANCE_MODEL));
            entry["models"] = json!(SEEDANCE_MODELS);
            entry["defaultModel"] = json!(DEFAULT_SEEDANCE_MODEL);
        }
        Category::RemoveBg | Category::RemoveWatermark => {}
    }
    entry
}

/// The catalog: every category with its limits, and the API's general limits.
pub fn catalog() -> Value {
    let categories: serde_json::Map<String, Value> = Category::ALL
        .iter()
        .map(|c| (c.as_str().to_string(), category_entry(*c)))
        .collect();
    json!({
        "hostedApiBase": crate::HOSTED_API_BASE,
        "maxPromptChars": MAX_PROMPT_CHARS,
        "maxWaitSeconds": crate::MAX_WAIT_SECONDS,
        "categories": categories,
    })
}

/// The catalog as the plugin keeps it: pretty JSON with a trailing newline.
pub fn catalog_text() -> String {
    let mut text = serde_json::to_string_pretty(&catalog()).expect("JSON");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plugin_catalog_matches_these_tables() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../integrations/openclaw-plugin/src/catalog.json"
        );
        let kept = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            kept == catalog_text(),
            "{path} is out of date: run `cargo run -p plume-core --example catalog`"
        );
    }

    #[test]
    fn editing_categories_take_one_image_and_no_prompt() {
        let c = catalog();
        for name in ["remove-bg", "remove-watermark"] {
            assert_eq!(c["categories"][name]["minInputImages"], 1);
            assert_eq!(c["categories"][name]["maxInputImages"], 1);
            assert_eq!(c["categories"][name]["prompt"], false);
        }
        assert_eq!(c["categories"]["Banana2"]["maxInputImages"], 10);
        assert_eq!(
            c["categories"]["seedance2"]["durations"],
            json!([5, 10, 15])
        );
    }
}
