//! The content table of API.md, category by category, mode by mode, image count by count.

use super::*;
use crate::build::{build_content, BuildOptions};
use serde_json::json;

const URL: &str = "https://files.example.com/a.png";

fn urls(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("https://files.example.com/{i}.png"))
        .collect()
}

fn field_of(result: Result<ValidatedContent, ContentError>) -> String {
    result
        .expect_err("expected a validation error")
        .details
        .keys()
        .next()
        .unwrap()
        .clone()
}

/// (category, mode, images accepted (inclusive range)) for every mode of the table.
fn table() -> Vec<(Category, &'static str, usize, usize)> {
    vec![
        (Category::Banana2, "text_to_image", 0, 0),
        (Category::Banana2, "image_to_image", 1, 10),
        (Category::Banana2, "multi_image_blend", 2, 10),
        (Category::BananaPro, "text_to_image", 0, 0),
        (Category::BananaPro, "image_to_image", 1, 10),
        (Category::BananaPro, "multi_image_blend", 2, 10),
        (Category::Seedream, "text_to_image", 0, 0),
        (Category::Seedream, "image_to_image", 1, 10),
        (Category::Seedance2, "text_to_video", 0, 0),
        (Category::Seedance2, "first_frame", 1, 1),
        (Category::Seedance2, "first_last_frame", 2, 2),
        (Category::Seedance2, "universal_reference", 1, 4),
    ]
}

#[test]
fn every_mode_accepts_exactly_its_image_counts() {
    for (category, mode, min, max) in table() {
        for n in 0..=12 {
            let content = json!({"prompt": "a cat", "processing_mode": mode, "imageUrls": urls(n)});
            let result = validate_content(category, &content);
            if (min..=max).contains(&n) {
                let ok = result.unwrap_or_else(|e| panic!("{category} {mode} {n}: {e}"));
                assert_eq!(ok.mode.unwrap().as_str(), mode);
                assert_eq!(ok.image_urls.len(), n);
            } else {
                assert_eq!(field_of(result), "imageUrls", "{category} {mode} {n}");
            }
        }
    }
}

#[test]
fn veo_slots() {
    for (slots, mode, ok) in [
        (json!(null), "text_to_video", true),
        (json!(["", "", ""]), "text_to_video", true),
        (json!([URL, "", ""]), "text_to_video", false),
        (json!(["", "", ""]), "image_to_video", false),
        (json!([URL, "", ""]), "image_to_video", true),
        (json!(["", URL, ""]), "image_to_video", true),
        (json!([URL, URL, URL]), "image_to_video", true),
        (json!([URL]), "image_to_video", false),
        (json!([URL, "", "", ""]), "image_to_video", false),
    ] {
        let content = json!({"prompt": "p", "processing_mode": mode, "imageUrls": slots});
        let result = validate_content(Category::Veo, &content);
        assert_eq!(result.is_ok(), ok, "{slots} {mode}: {result:?}");
    }
    let v = validate_content(
        Category::Veo,
        &json!({"prompt": "p", "imageUrls": ["", URL, ""]}),
    )
    .unwrap();
    assert_eq!(v.mode, Some(ProcessingMode::ImageToVideo));
    assert_eq!(v.veo_slots, Some([None, Some(URL.to_string()), None]));
    assert_eq!(v.duration_seconds, Some(6));
    assert_eq!(v.video_model.as_deref(), Some("veo3.1-fast"));
}

#[test]
fn editing_categories_take_exactly_one_image() {
    for category in [Category::RemoveBg, Category::RemoveWatermark] {
        for n in 0..4 {
            let result = validate_content(category, &json!({"imageUrls": urls(n)}));
            assert_eq!(result.is_ok(), n == 1, "{category} {n}");
        }
        let field = field_of(validate_content(
            category,
            &json!({"imageUrls": [URL], "processing_mode": "image_to_image"}),
        ));
        assert_eq!(field, "processing_mode");
    }
    let v = validate_content(
        Category::RemoveWatermark,
        &json!({"imageUrls": [URL], "regions": [[0, 0, 10, 20]]}),
    )
    .unwrap();
    assert_eq!(v.regions, vec![[0, 0, 10, 20]]);
    assert_eq!(
        field_of(validate_content(
            Category::RemoveBg,
            &json!({"imageUrls": [URL], "regions": [[0, 0, 1, 1]]})
        )),
        "regions"
    );
}

#[test]
fn modes_default_from_the_images() {
    let d = |c, v: Value| validate_content(c, &v).unwrap().mode.unwrap();
    assert_eq!(
        d(Category::Banana2, json!({"prompt": "p"})),
        ProcessingMode::TextToImage
    );
    assert_eq!(
        d(
            Category::Banana2,
            json!({"prompt": "p", "imageUrls": [URL]})
        ),
        ProcessingMode::ImageToImage
    );
    assert_eq!(
        d(
            Category::Seedance2,
            json!({"prompt": "p", "imageUrls": [URL]})
        ),
        ProcessingMode::FirstFrame
    );
    assert_eq!(
        d(Category::Seedance2, json!({"prompt": "p"})),
        ProcessingMode::TextToVideo
    );
}

#[test]
fn bad_values_of_every_field() {
    let cases: Vec<(Category, Value, &str)> = vec![
        (Category::Banana2, json!("text"), "content"),
        (Category::Banana2, json!({}), "prompt"),
        (Category::Banana2, json!({"prompt": "   "}), "prompt"),
        (Category::Banana2, json!({"prompt": 5}), "prompt"),
        (
            Category::Banana2,
            json!({"prompt": "x".repeat(5001)}),
            "prompt",
        ),
        (
            Category::Banana2,
            json!({"prompt": "p", "processing_mode": "text_to_video"}),
            "processing_mode",
        ),
        (
            Category::Banana2,
            json!({"prompt": "p", "processing_mode": 3}),
            "processing_mode",
        ),
        (
            Category::Seedream,
            json!({"prompt": "p", "processing_mode": "multi_image_blend", "imageUrls": urls(2)}),
            "processing_mode",
        ),
        (
            Category::Banana2,
            json!({"prompt": "p", "imageUrls": "https://x/y.png"}),
            "imageUrls",
        ),
        (
            Category::Banana2,
            json!({"prompt": "p", "imageUrls": [5]}),
            "imageUrls[0]",
        ),
        (
            Category::Banana2,
            json!({"prompt": "p", "imageUrls": [""]}),
            "imageUrls[0]",
        ),
        (
            Category::Banana2,
            json!({"prompt": "p", "imageUrls": ["ftp://x/y.png"]}),
            "imageUrls[0]",
        ),
        (
            Category::Banana2,
            json!({"prompt": "p", "imageUrls": ["/etc/passwd"]}),
            "imageUrls[0]",
        ),
        (
            Category::Banana2,
            json!({"prompt": "p", "imageUrls": [format!("https://h/{}", "a".repeat(2100))]}),
            "imageUrls[0]",
        ),
        (
            Category::Banana2,
            json!({"prompt": "p", "generationConfig": 1}),
            "generationConfig",
        ),
        (
            Category::Banana2,
            json!({"prompt": "p", "generationConfig": {"responseModalities": ["TEXT"]}}),
            "generationConfig.responseModalities",
        ),
        (
            Category::Banana2,
            json!({"prompt": "p", "generationConfig": {"imageConfig": {"image_size": "8K"}}}),
            "generationConfig.imageConfig.image_size",
        ),
        (
            Category::Banana2,
            json!({"prompt": "p", "generationConfig": {"imageConfig": {"aspectRatio": "7:3"}}}),
            "generationConfig.imageConfig.aspectRatio",
        ),
        (
            Category::Seedream,
            json!({"prompt": "p", "generationConfig": {"imageConfig": {"image_size": "2k"}}}),
            "generationConfig.imageConfig.image_size",
        ),
        (
            Category::Banana2,
            json!({"prompt": "p", "videoConfig": {"model": "veo3.1-fast"}}),
            "videoConfig",
        ),
        (Category::Veo, json!({"imageUrls": ["", "", ""]}), "prompt"),
        (
            Category::Veo,
            json!({"prompt": "p", "videoConfig": {"model": "veo2"}}),
            "videoConfig.model",
        ),
        (
            Category::Veo,
            json!({"prompt": "p", "videoConfig": {"aspectRatio": "1:1"}}),
            "videoConfig.aspectRatio",
        ),
        (
            Category::Veo,
            json!({"prompt": "p", "videoConfig": {"durationSeconds": 5}}),
            "videoConfig.durationSeconds",
        ),
        (
            Category::Veo,
            json!({"prompt": "p", "videoConfig": {"durationSeconds": "6"}}),
            "videoConfig.durationSeconds",
        ),
        (
            Category::Veo,
            json!({"prompt": "p", "generationConfig": {}}),
            "generationConfig",
        ),
        (
            Category::Seedance2,
            json!({"prompt": "p", "videoConfig": {"model": "seedance2-7s"}}),
            "videoConfig.model",
        ),
        (
            Category::Seedance2,
            json!({"prompt": "p", "videoConfig": {"model": "seedance2-5s", "durationSeconds": 10}}),
            "videoConfig.durationSeconds",
        ),
        (
            Category::Seedance2,
            json!({"prompt": "p", "videoConfig": {"aspectRatio": "2:1"}}),
            "videoConfig.aspectRatio",
        ),
        (
            Category::Seedance2,
            json!({"prompt": "p", "imageUrls": [URL, ""]}),
            "imageUrls[1]",
        ),
        (
            Category::RemoveWatermark,
            json!({"imageUrls": [URL], "regions": [[0, 0, 0, 5]]}),
            "regions[0]",
        ),
        (
            Category::RemoveWatermark,
            json!({"imageUrls": [URL], "regions": [[-1, 0, 5, 5]]}),
            "regions[0]",
        ),
        (
            Category::RemoveWatermark,
            json!({"imageUrls": [URL], "regions": [[0, 0, 5]]}),
            "regions[0]",
        ),
        (
            Category::RemoveWatermark,
            json!({"imageUrls": [URL], "regions": {"x": 1}}),
            "regions",
        ),
        (
            Category::RemoveWatermark,
            json!({"imageUrls": [URL], "regions": vec![[0, 0, 1, 1]; 33]}),
            "regions",
        ),
    ];
    for (category, content, field) in cases {
        let got = field_of(validate_content(category, &content));
        assert_eq!(got, field, "{category} {content}");
    }
}

#[test]
fn prompt_is_trimmed_and_counted_in_characters() {
    let v = validate_content(Category::Banana2, &json!({"prompt": "  画一只猫  "})).unwrap();
    assert_eq!(v.prompt.as_deref(), Some("画一只猫"));
    assert!(validate_content(Category::Banana2, &json!({"prompt": "猫".repeat(5000)})).is_ok());
}

#[test]
fn built_content_follows_the_client_rules() {
    let opts = |f: fn(&mut BuildOptions)| {
        let mut o = BuildOptions {
            prompt: Some("a cat".into()),
            ..Default::default()
        };
        f(&mut o);
        o
    };
    let c = build_content(Category::Banana2, &opts(|_| {})).unwrap();
    assert_eq!(
        c,
        json!({"prompt": "a cat", "processing_mode": "text_to_image", "imageUrls": [],
               "generationConfig": {"responseModalities": ["IMAGE"], "imageConfig": {"image_size": "2K", "aspectRatio": "9:16"}}})
    );
    let c = build_content(
        Category::Seedream,
        &opts(|o| o.image_urls = vec![URL.into()]),
    )
    .unwrap();
    assert_eq!(c["processing_mode"], "image_to_image");
    assert_eq!(
        c["generationConfig"],
        json!({"imageConfig": {"image_size": "2K"}})
    );
    let c = build_content(
        Category::Veo,
        &opts(|o| o.last_frame_url = Some(URL.into())),
    )
    .unwrap();
    assert_eq!(c["processing_mode"], "image_to_video");
    assert_eq!(c["imageUrls"], json!(["", URL, ""]));
    assert_eq!(
        c["videoConfig"],
        json!({"model": "veo3.1-fast", "aspectRatio": "9:16", "durationSeconds": 6})
    );
    let c = build_content(Category::Veo, &opts(|_| {})).unwrap();
    assert_eq!(c["processing_mode"], "text_to_video");
    assert_eq!(c["imageUrls"], json!(["", "", ""]));
    let c = build_content(
        Category::Seedance2,
        &opts(|o| {
            o.image_urls = vec![URL.into()];
            o.duration = Some(10)
        }),
    )
    .unwrap();
    assert_eq!(c["processing_mode"], "first_frame");
    assert_eq!(
        c["videoConfig"],
        json!({"model": "seedance2-10s", "aspectRatio": "9:16"})
    );
    let c = build_content(
        Category::Seedance2,
        &opts(|o| o.model = Some("seedance2-15s".into())),
    )
    .unwrap();
    assert_eq!(c["videoConfig"]["model"], "seedance2-15s");
    let c = build_content(
        Category::RemoveBg,
        &opts(|o| o.image_urls = vec![URL.into()]),
    )
    .unwrap();
    assert_eq!(c, json!({"imageUrls": [URL]}));
    // The builder refuses what the validator refuses.
    assert!(build_content(Category::RemoveBg, &opts(|_| {})).is_err());
    assert!(build_content(Category::Seedance2, &opts(|o| o.duration = Some(7))).is_err());
    assert!(build_content(Category::Banana2, &opts(|o| o.prompt = None)).is_err());
}
