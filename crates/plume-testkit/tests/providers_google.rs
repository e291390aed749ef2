//! Gemini image, Veo (Gemini API and Vertex AI) and describe against a fake upstream on
//! loopback that speaks their wire formats: the real `plume-server` binary, its real config,
//! the exact requests asserted.

mod common;
mod provider_support;
use common::*;
use plume_server::providers::media::b64_encode;
use plume_testkit::fake_upstream::{Canned, FakeUpstream};
use provider_support::*;
use serde_json::{json, Value};

#[tokio::test]
async fn gemini_image_relays_and_copies_the_result() {
    let fake = FakeUpstream::start().await;
    let s = start(&fake, "").await;
    let u = s.user(1000);
    let input = png(10, 10);
    let url = s.upload_url(&u.key, input.clone(), "in.png").await;
    let body = json!({"category": "Banana2", "content": {"prompt": "a cat in a hat", "imageUrls": [url],
        "generationConfig": {"responseModalities": ["IMAGE"], "imageConfig": {"image_size": "1K", "aspectRatio": "16:9"}}}});
    let t = run(&s, &u.key, body).await;
    assert_eq!(t["status"], 3, "{t}");
    assert_eq!(
        (
            t["result"]["width"].as_u64(),
            t["result"]["height"].as_u64()
        ),
        (Some(32), Some(24))
    );
    assert_eq!(t["result"]["mimeType"], "image/png");
    let copied = s
        .http
        .get(t["result"]["imageUrl"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert!(
        copied.url().as_str().starts_with(&s.base),
        "served from Plume's own storage"
    );
    let reqs = fake.requests("gemini.generate");
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(
        r.path,
        "/v1beta/models/gemini-3.1-flash-image:generateContent"
    );
    assert_eq!(r.headers["x-goog-api-key"], GEMINI_KEY);
    assert_eq!(r.body["contents"][0]["role"], "user");
    assert_eq!(
        r.body["contents"][0]["parts"][0],
        json!({"text": "a cat in a hat"})
    );
    assert_eq!(
        r.body["contents"][0]["parts"][1],
        json!({"inlineData": {"mimeType": "image/png", "data": b64_encode(&input)}})
    );
    assert_eq!(
        r.body["generationConfig"],
        json!({"responseModalities": ["IMAGE"], "imageConfig": {"imageSize": "1K", "aspectRatio": "16:9"}})
    );

    let t = run(
        &s,
        &u.key,
        json!({"category": "BananaPro", "content": {"prompt": "a dog"}}),
    )
    .await;
    assert_eq!(t["status"], 3);
    assert_eq!(
        fake.requests("gemini.generate")[1].path,
        "/v1beta/models/gemini-3-pro-image:generateContent"
    );
    assert!(!s.log().contains(GEMINI_KEY), "the key is never logged");
    ledger_settled(&s, &u);
}

#[tokio::test]
async fn gemini_error_classes() {
    let fake = FakeUpstream::start().await;
    let s = start(&fake, "").await;
    let u = s.user(10_000);
    let banana = |p: &str| json!({"category": "Banana2", "content": {"prompt": p}});
    let google = |code: u16, status: &str, msg: &str| json!({"error": {"code": code, "message": msg, "status": status}});

    let cases: Vec<(Vec<Canned>, i64, Option<&str>)> = vec![
        (
            vec![Canned::status(
                400,
                google(400, "INVALID_ARGUMENT", "aspect ratio not supported"),
            )],
            4,
            Some("INVALID_REQUEST"),
        ),
        (
            vec![Canned::status(
                403,
                google(403, "PERMISSION_DENIED", "API key not valid"),
            )],
            4,
            Some("UPSTREAM_AUTH"),
        ),
        (
            vec![Canned::status(401, google(401, "UNAUTHENTICATED", "no"))],
            4,
            Some("UPSTREAM_AUTH"),
        ),
        (
            vec![Canned::status(
                404,
                google(
                    404,
                    "NOT_FOUND",
                    "models/gemini-3.1-flash-image is not found",
                ),
            )],
            4,
            Some("MODEL_UNAVAILABLE"),
        ),
        (
            vec![Canned::status(
                429,
                google(429, "RESOURCE_EXHAUSTED", "quota"),
            )],
            3,
            None,
        ),
        (
            vec![Canned::status(500, google(500, "INTERNAL", "oops"))],
            3,
            None,
        ),
        (vec![Canned::delayed(1500)], 3, None),
        (
            vec![Canned::status(
                200,
                json!({"promptFeedback": {"blockReason": "SAFETY"}}),
            )],
            4,
            Some("CONTENT_POLICY"),
        ),
        (
            vec![Canned::status(
                200,
                json!({"candidates": [{"finishReason": "IMAGE_SAFETY"}]}),
            )],
            4,
            Some("CONTENT_POLICY"),
        ),
    ];
    for (i, (canned, status, code)) in cases.into_iter().enumerate() {
        fake.clear();
        for c in canned {
            fake.push("gemini.generate", c);
        }
        let t = run(&s, &u.key, banana(&format!("case {i}"))).await;
        assert_eq!(t["status"], status, "case {i}: {t}");
        if let Some(code) = code {
            assert_eq!(t["error"]["code"], code, "case {i}: {t}");
            assert!(!t["result"].as_str().unwrap().contains(GEMINI_KEY));
        }
        if status == 3 {
            assert_eq!(
                fake.count("gemini.generate"),
                2,
                "case {i}: retried once, then succeeded"
            );
        }
    }
    // A 404 names the model and tells the operator what to do.
    fake.push(
        "gemini.generate",
        Canned::status(404, google(404, "NOT_FOUND", "gone")),
    );
    let t = run(&s, &u.key, banana("retired")).await;
    assert!(
        t["result"]
            .as_str()
            .unwrap()
            .contains("gemini-3.1-flash-image"),
        "{t}"
    );

    // Thought images are skipped: only the final image is kept.
    let thought = b64_encode(&plume_testkit::fake_upstream::png(8, 8));
    let last = b64_encode(&plume_testkit::fake_upstream::png(33, 21));
    fake.push(
        "gemini.generate",
        Canned::status(
            200,
            json!({"candidates": [{"content": {"parts": [
        {"inlineData": {"mimeType": "image/png", "data": thought}, "thought": true},
        {"text": "thinking..."},
        {"inlineData": {"mimeType": "image/png", "data": last}},
    ]}, "finishReason": "STOP"}]}),
        ),
    );
    let t = run(&s, &u.key, banana("thoughtful")).await;
    assert_eq!(t["result"]["imageUrls"].as_array().unwrap().len(), 1);
    assert_eq!(
        (
            t["result"]["width"].as_u64(),
            t["result"]["height"].as_u64()
        ),
        (Some(33), Some(21))
    );
    // A permanent timeout: every attempt times out, the task fails and is refunded.
    for _ in 0..6 {
        fake.push("gemini.generate", Canned::delayed(1500));
    }
    let t = run(&s, &u.key, banana("slow")).await;
    assert_eq!(t["status"], 4);
    assert_eq!(t["error"]["code"], "UPSTREAM_TIMEOUT");
    ledger_settled(&s, &u);
}

#[tokio::test]
async fn veo_through_the_gemini_api() {
    let fake = FakeUpstream::start().await;
    let s = start(&fake, &veo_section(&fake)).await;
    let u = s.user(10_000);
    let first = png(14, 14);
    let url = s.upload_url(&u.key, first.clone(), "f.png").await;
    let t = run(
        &s,
        &u.key,
        json!({"category": "veo", "content": {"prompt": "waves", "imageUrls": [url, "", ""],
        "videoConfig": {"model": "veo3.1-fast", "aspectRatio": "16:9", "durationSeconds": 6}}}),
    )
    .await;
    assert_eq!(t["status"], 3, "{t}");
    let part = &t["result"]["parts"][0];
    assert_eq!(part["duration"], 7.5, "read from the MP4, not the request");
    assert_eq!(part["mimeType"], "video/mp4");
    let video = s
        .http
        .get(part["videoUrl"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(
        plume_server::providers::media::mp4_duration(&video),
        Some(7.5)
    );
    let submit = &fake.requests("veo.submit")[0];
    assert_eq!(
        submit.path,
        "/v1beta/models/veo-3.1-fast-generate-preview:predictLongRunning"
    );
    assert_eq!(submit.headers["x-goog-api-key"], GEMINI_KEY);
    assert_eq!(submit.body["instances"][0]["prompt"], "waves");
    assert_eq!(
        submit.body["instances"][0]["image"],
        json!({"bytesBase64Encoded": b64_encode(&first), "mimeType": "image/png"})
    );
    assert_eq!(
        submit.body["parameters"],
        json!({"aspectRatio": "16:9", "durationSeconds": 6, "sampleCount": 1})
    );
    let polls = fake.requests("veo.poll");
    assert!(polls.len() >= 2);
    assert!(
        polls[0]
            .path
            .starts_with("/v1beta/models/veo-3.1-fast-generate-preview/operations/op-"),
        "{}",
        polls[0].path
    );
    let download = &fake.requests("download")[0];
    assert_eq!(download.headers["x-goog-api-key"], GEMINI_KEY);

    // A reference image forces 8 seconds.
    run(
        &s,
        &u.key,
        json!({"category": "veo", "content": {"prompt": "ref", "imageUrls": ["", "", url]}}),
    )
    .await;
    let submit = fake.requests("veo.submit").last().unwrap().clone();
    assert_eq!(submit.body["parameters"]["durationSeconds"], 8);
    assert_eq!(
        submit.body["instances"][0]["referenceImages"][0]["referenceType"],
        "asset"
    );

    // RAI-filtered, an operation error, and a retired model.
    fake.push("veo.poll", Canned::status(200, json!({"name": "x", "done": true, "response": {"generateVideoResponse": {
        "raiMediaFilteredCount": 1, "raiMediaFilteredReasons": ["We encountered an issue with the audio for your prompt. You have not been charged."]}}})));
    let t = run(
        &s,
        &u.key,
        json!({"category": "veo", "content": {"prompt": "filtered"}}),
    )
    .await;
    assert_eq!(t["status"], 4);
    assert_eq!(t["error"]["code"], "CONTENT_POLICY");
    assert!(
        t["result"]
            .as_str()
            .unwrap()
            .contains("issue with the audio"),
        "{t}"
    );
    fake.push("veo.poll", Canned::status(200, json!({"name": "x", "done": true, "error": {"code": 3, "message": "duration must be 8 with 1080p"}})));
    let t = run(
        &s,
        &u.key,
        json!({"category": "veo", "content": {"prompt": "err"}}),
    )
    .await;
    assert_eq!(t["error"]["code"], "UPSTREAM_FAILED");
    assert!(t["result"].as_str().unwrap().contains("duration must be 8"));
    fake.push(
        "veo.submit",
        Canned::status(
            404,
            json!({"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}}),
        ),
    );
    let t = run(
        &s,
        &u.key,
        json!({"category": "veo", "content": {"prompt": "retired"}}),
    )
    .await;
    assert_eq!(t["error"]["code"], "MODEL_UNAVAILABLE");
    fake.push(
        "veo.submit",
        Canned::status(
            429,
            json!({"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}}),
        ),
    );
    let t = run(
        &s,
        &u.key,
        json!({"category": "veo", "content": {"prompt": "busy"}}),
    )
    .await;
    assert_eq!(t["status"], 3);
    ledger_settled(&s, &u);
}

#[tokio::test]
async fn veo_through_vertex_ai_with_a_service_account() {
    let fake = FakeUpstream::start().await;
    let dir = TempDir::new("plume-vertex");
    let key_path = dir.0.join("sa.pem");
    let ok = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&key_path)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(ok.success());
    let credentials = dir.0.join("sa.json");
    std::fs::write(&credentials, json!({"type": "service_account", "project_id": "proj-1", "client_email": "plume@proj-1.iam.gserviceaccount.com",
        "private_key": std::fs::read_to_string(&key_path).unwrap(), "token_uri": format!("{}/token", fake.base)}).to_string()).unwrap();
    let extra = format!(
        "[providers.veo]\nbackend = \"vertex\"\npoll_interval_ms = 50\ntimeout_seconds = 2\n[providers.veo.models]\n\"veo3.1-fast\" = \"veo-3.1-fast-generate-001\"\n[providers.veo.vertex]\nproject = \"proj-1\"\nlocation = \"us-central1\"\ncredentials_file = {credentials:?}\nbase_url = \"{}/v1\"\n",
        fake.base
    );
    let s = start(&fake, &extra).await;
    let u = s.user(1000);
    let t = run(
        &s,
        &u.key,
        json!({"category": "veo", "content": {"prompt": "a lighthouse"}}),
    )
    .await;
    assert_eq!(t["status"], 3, "{t}\n{}", s.log());
    assert_eq!(t["result"]["parts"][0]["duration"], 7.5);
    let token = &fake.requests("token")[0];
    assert!(
        token
            .raw
            .contains("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"),
        "{}",
        token.raw
    );
    let assertion = token.raw.split("assertion=").nth(1).unwrap();
    let parts: Vec<&str> = assertion.split('.').collect();
    assert_eq!(parts.len(), 3, "a signed JWT");
    use base64::Engine;
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1])
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["iss"], "plume@proj-1.iam.gserviceaccount.com");
    assert_eq!(claims["aud"], format!("{}/token", fake.base));
    assert_eq!(
        claims["scope"],
        "https://www.googleapis.com/auth/cloud-platform"
    );
    let submit = &fake.requests("veo.submit")[0];
    assert_eq!(submit.path, "/v1/projects/proj-1/locations/us-central1/publishers/google/models/veo-3.1-fast-generate-001:predictLongRunning");
    assert_eq!(
        submit.headers["authorization"],
        "Bearer ya29.test-access-token"
    );
    let poll = &fake.requests("veo.poll")[0];
    assert_eq!(poll.method, "POST");
    assert!(poll
        .path
        .ends_with("veo-3.1-fast-generate-001:fetchPredictOperation"));
    assert!(poll.body["operationName"]
        .as_str()
        .unwrap()
        .contains("/operations/op-"));
    // The token is cached: one exchange for several calls.
    run(
        &s,
        &u.key,
        json!({"category": "veo", "content": {"prompt": "again"}}),
    )
    .await;
    assert_eq!(fake.count("token"), 1);
}

#[tokio::test]
async fn missing_keys_leave_categories_unavailable_and_describe_works() {
    let fake = FakeUpstream::start().await;
    // Gemini configured with its key; Ark configured but its key is missing.
    let s = Server::start_bin(
        real_server_bin(),
        &config(&fake, ""),
        &[("GEMINI_API_KEY", GEMINI_KEY)],
    )
    .await;
    let u = s.user(100);
    let r = s
        .create(
            &u.key,
            &json!({"category": "seedream", "content": {"prompt": "p"}}),
        )
        .await;
    assert_error(&r, 503, "CATEGORY_UNAVAILABLE");
    assert!(
        r.1["message"]
            .as_str()
            .unwrap()
            .contains("ARK_API_KEY is not set"),
        "{}",
        r.1
    );
    let r = s
        .create(
            &u.key,
            &json!({"category": "veo", "content": {"prompt": "p"}}),
        )
        .await;
    assert_error(&r, 503, "CATEGORY_UNAVAILABLE");
    assert_eq!(s.balance(&u)["balance"], 100);
    let ready: Value = s.readyz().await;
    assert_eq!(ready["data"]["categories"]["Banana2"], "ready");
    assert!(ready["data"]["categories"]["seedance2"]
        .as_str()
        .unwrap()
        .contains("ARK_API_KEY"));

    let url = s.upload_url(&u.key, png(9, 9), "d.png").await;
    let d = s
        .post(
            &u.key,
            "/api/open/describe",
            &json!({"image_url": url, "focus": "general"}),
        )
        .await;
    assert_eq!(d.0, 200, "{}", d.1);
    assert_eq!(
        d.1["data"],
        json!({"description": "A small test picture with a colour gradient.", "model": "gemini-2.5-flash", "tokens_used": 272})
    );
    let r = &fake.requests("gemini.generate")[0];
    assert_eq!(r.path, "/v1beta/models/gemini-2.5-flash:generateContent");
    assert_eq!(
        r.body["contents"][0]["parts"][1]["inlineData"]["mimeType"],
        "image/png"
    );
    let bad = s
        .post(
            &u.key,
            "/api/open/describe",
            &json!({"image_url": url, "focus": "poetry"}),
        )
        .await;
    assert_error(&bad, 400, "VALIDATION_ERROR");
    let foreign = s
        .post(
            &u.key,
            "/api/open/describe",
            &json!({"image_url": "https://elsewhere.example.com/a.png"}),
        )
        .await;
    assert_error(&foreign, 400, "VALIDATION_ERROR");
    assert_eq!(s.balance(&u)["balance"], 100, "describe is free");
}
