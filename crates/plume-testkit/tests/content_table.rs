//! The content table of API.md through the real API: each category × mode × image count is
//! accepted or refused as the contract says, and a refusal charges nothing.

mod common;
use common::*;
use serde_json::{json, Value};

#[tokio::test]
async fn every_category_mode_and_image_count() {
    let s = Server::start("[queue]\ndefault_concurrency = 4\n", &[]).await;
    let u = s.user(1_000_000);
    let mut urls = Vec::new();
    for _ in 0..11 {
        urls.push(s.upload_url(&u.key, png(12, 12), "i.png").await);
    }
    let table: Vec<(&str, Option<&str>, usize, usize)> = vec![
        ("Banana2", Some("text_to_image"), 0, 0),
        ("Banana2", Some("image_to_image"), 1, 10),
        ("Banana2", Some("multi_image_blend"), 2, 10),
        ("BananaPro", Some("text_to_image"), 0, 0),
        ("BananaPro", Some("image_to_image"), 1, 10),
        ("BananaPro", Some("multi_image_blend"), 2, 10),
        ("seedream", Some("text_to_image"), 0, 0),
        ("seedream", Some("image_to_image"), 1, 10),
        ("seedance2", Some("text_to_video"), 0, 0),
        ("seedance2", Some("first_frame"), 1, 1),
        ("seedance2", Some("first_last_frame"), 2, 2),
        ("seedance2", Some("universal_reference"), 1, 4),
        ("remove-bg", None, 1, 1),
        ("remove-watermark", None, 1, 1),
    ];
    let mut accepted = 0;
    for (category, mode, min, max) in table {
        for n in [0, 1, 2, 3, 4, 5, 10, 11] {
            let mut content = json!({"imageUrls": urls[..n]});
            if let Some(mode) = mode {
                content["processing_mode"] = json!(mode);
                content["prompt"] = json!("sleep=0");
            }
            let r = s
                .create(&u.key, &json!({"category": category, "content": content}))
                .await;
            if (min..=max).contains(&n) {
                assert_eq!(r.0, 200, "{category} {mode:?} {n}: {}", r.1);
                accepted += 1;
            } else {
                assert_error(&r, 400, "VALIDATION_ERROR");
                assert!(
                    r.1["error"]["details"]["imageUrls"].is_string(),
                    "{category} {mode:?} {n}: {}",
                    r.1
                );
            }
        }
    }
    // veo's three slots.
    for (slots, mode, ok) in [
        (json!(["", "", ""]), "text_to_video", true),
        (json!([urls[0], "", ""]), "image_to_video", true),
        (json!(["", "", urls[1]]), "image_to_video", true),
        (json!(["", "", ""]), "image_to_video", false),
        (json!([urls[0]]), "image_to_video", false),
    ] {
        let r = s.create(&u.key, &json!({"category": "veo", "content": {"prompt": "p", "processing_mode": mode, "imageUrls": slots}})).await;
        assert_eq!(r.0 == 200, ok, "veo {slots} {mode}: {}", r.1);
        accepted += usize::from(ok);
    }
    // Bad values of each field name the field.
    let bad: Vec<(Value, &str)> = vec![
        (
            json!({"category": "Banana2", "content": {"prompt": ""}}),
            "prompt",
        ),
        (
            json!({"category": "Banana2", "content": {"prompt": "p", "processing_mode": "blend"}}),
            "processing_mode",
        ),
        (
            json!({"category": "Banana2", "content": {"prompt": "p", "generationConfig": {"imageConfig": {"image_size": "3K"}}}}),
            "generationConfig.imageConfig.image_size",
        ),
        (
            json!({"category": "Banana2", "content": {"prompt": "p", "generationConfig": {"imageConfig": {"aspectRatio": "1:3"}}}}),
            "generationConfig.imageConfig.aspectRatio",
        ),
        (
            json!({"category": "Banana2", "content": {"prompt": "p", "generationConfig": {"responseModalities": ["AUDIO"]}}}),
            "generationConfig.responseModalities",
        ),
        (
            json!({"category": "veo", "content": {"prompt": "p", "videoConfig": {"durationSeconds": 7}}}),
            "videoConfig.durationSeconds",
        ),
        (
            json!({"category": "veo", "content": {"prompt": "p", "videoConfig": {"aspectRatio": "4:3"}}}),
            "videoConfig.aspectRatio",
        ),
        (
            json!({"category": "veo", "content": {"prompt": "p", "videoConfig": {"model": "veo9"}}}),
            "videoConfig.model",
        ),
        (
            json!({"category": "seedance2", "content": {"prompt": "p", "videoConfig": {"model": "seedance2-20s"}}}),
            "videoConfig.model",
        ),
        (
            json!({"category": "remove-watermark", "content": {"imageUrls": [urls[0]], "regions": [[1, 2, 0, 4]]}}),
            "regions[0]",
        ),
        (
            json!({"category": "remove-bg", "content": {"imageUrls": ["file:///etc/passwd"]}}),
            "imageUrls[0]",
        ),
        (
            json!({"category": "remove-bg", "content": {"imageUrls": [format!("{}/files/uploads/20200101/nothing.png", s.base)]}}),
            "content.imageUrls[0]",
        ),
        (
            json!({"category": "remove-bg", "content": {"imageUrls": [format!("{}/files/../plume.db", s.base)]}}),
            "content.imageUrls[0]",
        ),
        (
            json!({"category": "remove-bg", "content": {"imageUrls": ["https://not-allowed.example.com/a.png"]}}),
            "content.imageUrls[0]",
        ),
    ];
    for (body, field) in bad {
        let r = s.create(&u.key, &body).await;
        assert_error(&r, 400, "VALIDATION_ERROR");
        assert!(
            r.1["error"]["details"][field].is_string(),
            "{body}: {}",
            r.1
        );
    }
    let b = s.balance(&u);
    let reserved = b["ledger"]["reserve"].as_i64().unwrap();
    assert_eq!(
        (b["ledger"]["reserve"].as_i64().unwrap() > 0, accepted > 0),
        (true, true)
    );
    assert_eq!(
        b["balance"].as_i64().unwrap(),
        1_000_000 - reserved + b["ledger"]["refund"].as_i64().unwrap()
    );
    let (tasks, _) = s.admin(&["tasks", "--limit", "1000"]);
    assert_eq!(
        tasks["tasks"].as_array().unwrap().len(),
        accepted,
        "only accepted requests made tasks"
    );
}
