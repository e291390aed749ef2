//! `plume` against a real `plume-server` process: every command, the failures a user can
//! meet, and the original skill's workflows with the content the server received.

#[path = "../../plume-testkit/tests/common/mod.rs"]
mod common;
mod harness;

use harness::*;
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test]
async fn check_config_reads_env_openclaw_json_and_dotenv() {
    let (s, u) = server().await;
    let c = Client::new(&s.base, &u.key);
    assert_eq!(c.run(&["check-config"]).0, "CONFIGURED");
    assert_eq!(c.run(&["check-config", "--verify"]).0, "CONFIGURED");

    let bare = Client::new(&s.base, &u.key).without_env();
    let (word, ok, _) = bare.run(&["check-config"]);
    assert_eq!((word, ok), (json!("NOT_CONFIGURED"), false));
    // openclaw.json (JSON5) with the key under the skill's entry.
    std::fs::write(
        bare.state.join("openclaw.json"),
        format!("{{\n  // written by hand\n  skills: {{ entries: {{ 'plume-image': {{ apiKey: '{}', env: {{ PLUME_API_BASE: '{}', }}, }}, }}, }},\n}}\n", u.key, s.base),
    )
    .unwrap();
    assert_eq!(bare.run(&["check-config", "--verify"]).0, "CONFIGURED");
    // .env comes last: a wrong key there does not override openclaw.json.
    std::fs::write(bare.state.join(".env"), "PLUME_API_KEY=plume_sk_wrong\n").unwrap();
    assert_eq!(bare.run(&["check-config", "--verify"]).0, "CONFIGURED");
    std::fs::remove_file(bare.state.join("openclaw.json")).unwrap();
    std::fs::write(
        bare.state.join(".env"),
        format!(
            "# plume\nPLUME_API_KEY=\"plume_sk_wrong\"\nPLUME_API_BASE={}\n",
            s.base
        ),
    )
    .unwrap();
    let (word, ok, _) = bare.run(&["check-config", "--verify"]);
    assert_eq!((word, ok), (json!("INVALID_KEY"), false));

    let gone = Client::new(&format!("http://127.0.0.1:{}", free_port()), &u.key);
    assert_eq!(gone.run(&["check-config", "--verify"]).0, "UNREACHABLE");

    // A malformed openclaw.json is named in the error.
    std::fs::write(c.state.join("openclaw.json"), "{ skills: ").unwrap();
    let (out, ok, _) = c.run(&["jobs"]);
    assert!(!ok);
    assert_eq!(out["code"], "CONFIG_ERROR");
    assert!(
        out["error"].as_str().unwrap().contains("openclaw.json"),
        "{out}"
    );
    let (word, _, stderr) = c.run(&["check-config"]);
    assert_eq!(word, "NOT_CONFIGURED");
    assert!(stderr.contains("openclaw.json"));
    // The key never appears in what plume prints.
    assert!(!format!("{out}{stderr}").contains(&u.key));
}

#[tokio::test]
async fn transfer_and_create_failures_a_user_can_meet() {
    let (s, u) = server().await;
    let c = Client::new(&s.base, &u.key);
    let photo = c.home.0.join("photo.jpg");
    std::fs::write(&photo, png(30, 20)).unwrap();
    let up = c.ok(&["transfer", "--file", &format!("file://{}", photo.display())]);
    assert_eq!(
        (up["width"].as_u64(), up["height"].as_u64()),
        (Some(30), Some(20))
    );
    assert!(up["image_url"].as_str().unwrap().starts_with(&s.base));
    let registry: Value =
        serde_json::from_slice(&std::fs::read(c.media().join("image_registry.json")).unwrap())
            .unwrap();
    assert_eq!(registry[0]["url"], up["image_url"]);

    let (out, ok, _) = c.run(&["transfer", "--file", "/no/such/file.png"]);
    assert!(!ok);
    assert_eq!(out["code"], "FILE_NOT_FOUND");
    let text = c.home.0.join("notes.png");
    std::fs::write(&text, "just text").unwrap();
    let (out, _, _) = c.run(&["transfer", "--file", text.to_str().unwrap()]);
    assert_eq!(out["code"], "VALIDATION_ERROR");
    assert!(
        out["error"].as_str().unwrap().contains("not a JPEG"),
        "{out}"
    );

    let (out, _, _) = c.run(&["create", "--category", "style-transfer", "--prompt", "x"]);
    assert_eq!(out["code"], "INVALID_CATEGORY");
    assert!(out["error"]
        .as_str()
        .unwrap()
        .contains("Banana2 with a style prompt"));
    let (out, _, _) = c.run(&["create", "--category", "Banana2"]);
    assert_eq!(out["code"], "VALIDATION_ERROR");
    let (out, _, _) = c.run(&[
        "create",
        "--category",
        "Banana2",
        "--prompt",
        "x",
        "--widget-mapping",
        "[1]",
    ]);
    assert_eq!(out["code"], "VALIDATION_ERROR");
    let (out, _, _) = c.run(&[
        "create",
        "--category",
        "remove-bg",
        "--image-url",
        "/no/such.png",
    ]);
    assert_eq!(out["code"], "FILE_NOT_FOUND");

    let (out, _, _) = Client::new(&s.base, &u.key).without_env().run(&[
        "create",
        "--category",
        "Banana2",
        "--prompt",
        "x",
    ]);
    assert_eq!(out["code"], "NOT_CONFIGURED");
    let (out, _, _) = Client::new(&s.base, "plume_sk_bad").run(&[
        "create",
        "--category",
        "Banana2",
        "--prompt",
        "x",
    ]);
    assert_eq!(out["code"], "UNAUTHORIZED");
    let poor = s.user(3);
    let (out, _, _) =
        Client::new(&s.base, &poor.key).run(&["create", "--category", "Banana2", "--prompt", "x"]);
    assert_eq!(out["code"], "INSUFFICIENT_CREDITS");
    let (out, _, _) = Client::new(&format!("http://127.0.0.1:{}", free_port()), &u.key).run(&[
        "create",
        "--category",
        "Banana2",
        "--prompt",
        "x",
    ]);
    assert_eq!(out["code"], "NETWORK_ERROR");
    assert!(out["error"].as_str().unwrap().contains("cannot reach"));

    // A proxy answering with an HTML error page.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let html_base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut sock, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = sock.read(&mut buf).await;
            let body = "<html><body>502 Bad Gateway</body></html>";
            let _ = sock.write_all(format!("HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).as_bytes()).await;
        }
    });
    let html = Client::new(&html_base, &u.key);
    let out = tokio::task::spawn_blocking(move || {
        html.run(&["create", "--category", "Banana2", "--prompt", "x"])
            .0
    })
    .await
    .unwrap();
    assert_eq!(out["code"], "HTTP_502", "{out}");
    assert_eq!(
        s.balance(&u)["balance"],
        10_000,
        "no failure charged anything"
    );
}

#[tokio::test]
async fn the_original_workflows_as_plume_commands() {
    let (s, u) = server().await;
    let c = Client::new(&s.base, &u.key);
    let photo = c.home.0.join("cat.png");
    std::fs::write(&photo, png(24, 24)).unwrap();
    let photo = photo.to_str().unwrap().to_string();
    let id = |v: Value| v["task_id"].as_i64().unwrap();

    // Text to image.
    let t = c.ok(&[
        "create",
        "--category",
        "Banana2",
        "--prompt",
        "a cat in Pixar style",
    ]);
    assert_eq!(
        (t["status"].as_i64(), t["credits_cost"].as_i64()),
        (Some(1), Some(15))
    );
    assert_eq!(
        content_of(&s, &u, id(t)).await,
        json!({"prompt": "a cat in Pixar style", "processing_mode": "text_to_image", "imageUrls": [],
               "generationConfig": {"responseModalities": ["IMAGE"], "imageConfig": {"image_size": "2K", "aspectRatio": "9:16"}}})
    );
    // Image to image from an upload.
    let url = c.ok(&["transfer", "--file", &photo])["image_url"]
        .as_str()
        .unwrap()
        .to_string();
    let t = c.ok(&[
        "create",
        "--category",
        "BananaPro",
        "--prompt",
        "make it watercolour",
        "--image-url",
        &url,
        "--image-size",
        "4K",
        "--aspect-ratio",
        "1:1",
    ]);
    let content = content_of(&s, &u, id(t)).await;
    assert_eq!(content["processing_mode"], "image_to_image");
    assert_eq!(content["imageUrls"], json!([url]));
    assert_eq!(
        content["generationConfig"]["imageConfig"],
        json!({"image_size": "4K", "aspectRatio": "1:1"})
    );
    // Background removal of a local file: uploaded first.
    let t = c.ok(&["create", "--category", "remove-bg", "--image-url", &photo]);
    let content = content_of(&s, &u, id(t)).await;
    assert_eq!(content.as_object().unwrap().len(), 1, "{content}");
    assert!(content["imageUrls"][0]
        .as_str()
        .unwrap()
        .starts_with(&format!("{}/files/uploads/", s.base)));
    // Text to video and image to video.
    let t = c.ok(&["create", "--category", "veo", "--prompt", "waves at dusk"]);
    assert_eq!(
        content_of(&s, &u, id(t)).await,
        json!({"prompt": "waves at dusk", "processing_mode": "text_to_video", "imageUrls": ["", "", ""],
               "videoConfig": {"model": "veo3.1-fast", "aspectRatio": "9:16", "durationSeconds": 6}})
    );
    let t = c.ok(&[
        "create",
        "--category",
        "seedance2",
        "--prompt",
        "the cat jumps",
        "--first-frame-url",
        &url,
        "--duration",
        "10",
    ]);
    let content = content_of(&s, &u, id(t)).await;
    assert_eq!(content["processing_mode"], "first_frame");
    assert_eq!(content["imageUrls"], json!([url]));
    assert_eq!(
        content["videoConfig"],
        json!({"model": "seedance2-10s", "aspectRatio": "9:16"})
    );
    let t = c.ok(&[
        "create",
        "--category",
        "veo",
        "--prompt",
        "zoom in",
        "--first-frame-url",
        &url,
        "--duration",
        "8",
        "--aspect-ratio",
        "16:9",
    ]);
    let content = content_of(&s, &u, id(t)).await;
    assert_eq!(content["imageUrls"], json!([url, "", ""]));
    assert_eq!(content["processing_mode"], "image_to_video");
    // Multi-image blend.
    let other = c.ok(&["transfer", "--file", &photo])["image_url"]
        .as_str()
        .unwrap()
        .to_string();
    let t = c.ok(&[
        "create",
        "--category",
        "Banana2",
        "--prompt",
        "put the hat from image 2 on image 1",
        "--image-urls",
        &format!("{url},{other}"),
        "--processing-mode",
        "multi_image_blend",
    ]);
    let content = content_of(&s, &u, id(t)).await;
    assert_eq!(content["processing_mode"], "multi_image_blend");
    assert_eq!(content["imageUrls"], json!([url, other]));

    // Editing the last result: deliver one, then use `last`.
    let t = c.ok(&["create", "--category", "Banana2", "--prompt", "a dog"]);
    let task = id(t);
    c.ok(&[
        "register",
        "--task-id",
        &task.to_string(),
        "--channel",
        "telegram",
        "--target",
        "42",
    ]);
    c.wait_delivered(1, Duration::from_secs(30));
    let last = c.ok(&["last", "--channel", "telegram"]);
    assert_eq!(last["task_id"], task);
    assert_eq!(last["media_type"], "image");
    let t = c.ok(&[
        "create",
        "--category",
        "Banana2",
        "--prompt",
        "now make it blue",
        "--image-url",
        last["result_url"].as_str().unwrap(),
    ]);
    assert_eq!(
        content_of(&s, &u, id(t)).await["imageUrls"],
        json!([last["result_url"]])
    );
    let (out, ok, _) = c.run(&["last", "--channel", "feishu"]);
    assert!(!ok);
    assert_eq!(out["code"], "NOT_FOUND");
    // Idempotency through the client.
    let a = c.ok(&[
        "create",
        "--category",
        "Banana2",
        "--prompt",
        "once",
        "--idempotency-key",
        "k-1",
    ]);
    let b = c.ok(&[
        "create",
        "--category",
        "Banana2",
        "--prompt",
        "once",
        "--idempotency-key",
        "k-1",
    ]);
    assert_eq!(a["task_id"], b["task_id"]);
}

#[tokio::test]
async fn check_cancel_jobs_poll_and_register_refusals() {
    let (s, u) = server().await;
    let c = Client::new(&s.base, &u.key);
    let done = c.ok(&["create", "--category", "Banana2", "--prompt", "quick"])["task_id"]
        .as_i64()
        .unwrap();
    let polled = c.ok(&["poll", "--task-id", &done.to_string(), "--interval", "1"]);
    assert_eq!(polled["status"], 3);
    let local = polled["local_file"].as_str().unwrap();
    assert!(std::path::Path::new(local).exists());
    let checked = c.ok(&["check", "--task-id", &done.to_string()]);
    assert_eq!(
        (checked["status"].as_i64(), checked.get("delivered")),
        (Some(3), None),
        "not registered: not delivered"
    );

    let slow = c.ok(&["create", "--category", "Banana2", "--prompt", "sleep=60000"])["task_id"]
        .as_i64()
        .unwrap();
    c.ok(&[
        "register",
        "--task-id",
        &slow.to_string(),
        "--channel",
        "telegram",
        "--target",
        "9",
        "--interval",
        "30",
    ]);
    assert_eq!(c.ok(&["jobs"])["jobs"][0]["task_id"], slow);
    let cancelled = c.ok(&["cancel", "--task-id", &slow.to_string(), "--remote"]);
    assert_eq!(cancelled["stopped_polling"], true);
    assert_eq!(cancelled["remote"]["status"], 6);
    assert_eq!(c.ok(&["jobs"])["jobs"], json!([]));
    let (out, ok, _) = c.run(&["cancel", "--task-id", &slow.to_string()]);
    assert!(!ok);
    assert_eq!(out["code"], "NOT_REGISTERED");
    c.wait_poller_gone(Duration::from_secs(40));

    // A registered task that ended is delivered by `check` as the poller would.
    let quick = c.ok(&["create", "--category", "Banana2", "--prompt", "fail=nope"])["task_id"]
        .as_i64()
        .unwrap();
    s.wait_terminal(&u.key, quick, Duration::from_secs(20))
        .await;
    let job = json!({"task_id": quick, "channel": "telegram", "target": "5", "interval": 60, "max_duration": 600,
                     "registered_at": 0, "deadline": 4_000_000_000i64, "category": "Banana2"});
    std::fs::create_dir_all(c.media().join("cron_tasks")).unwrap();
    std::fs::write(
        c.media().join(format!("cron_tasks/{quick}.json")),
        job.to_string(),
    )
    .unwrap();
    let checked = c.ok(&["check", "--task-id", &quick.to_string()]);
    assert_eq!(checked["delivered"], true);
    assert_eq!(c.sent().len(), 1);
    assert_eq!(
        c.sent()[0]["message"],
        format!("❌ Task #{quick} failed\nnope")
    );

    let (out, _, _) = c.run(&["check", "--task-id", "999999"]);
    assert_eq!(out["code"], "NOT_FOUND");
    let (out, _, _) = c.run(&[
        "register",
        "--task-id",
        "999999",
        "--channel",
        "telegram",
        "--target",
        "1",
    ]);
    assert_eq!(out["code"], "NOT_FOUND");
    // Limits and a missing openclaw.
    let limited = Client {
        env: {
            let mut e = c.env.clone();
            e.push(("PLUME_MAX_ACTIVE_POLLS".into(), "1".into()));
            e
        },
        ..Client::new(&s.base, &u.key)
    };
    let a = limited.ok(&["create", "--category", "Banana2", "--prompt", "sleep=60000"])["task_id"]
        .as_i64()
        .unwrap();
    let b = limited.ok(&["create", "--category", "Banana2", "--prompt", "sleep=60000"])["task_id"]
        .as_i64()
        .unwrap();
    limited.ok(&[
        "register",
        "--task-id",
        &a.to_string(),
        "--channel",
        "telegram",
        "--target",
        "1",
    ]);
    let (out, _, _) = limited.run(&[
        "register",
        "--task-id",
        &b.to_string(),
        "--channel",
        "telegram",
        "--target",
        "1",
    ]);
    assert_eq!(out["code"], "TOO_MANY_JOBS");
    limited.ok(&["cancel", "--task-id", &a.to_string(), "--remote"]);
    let nowhere = Client::new(&s.base, &u.key);
    std::fs::remove_file(nowhere.bin_dir.join("openclaw")).unwrap();
    let (out, _, _) = nowhere.run(&[
        "register",
        "--task-id",
        &b.to_string(),
        "--channel",
        "telegram",
        "--target",
        "1",
    ]);
    assert_eq!(out["code"], "OPENCLAW_NOT_FOUND");
}

#[tokio::test]
async fn transfer_a_feishu_image_by_its_key() {
    use axum::routing::{get, post};
    let (s, u) = server().await;
    let image = png(17, 13);
    let served = image.clone();
    let app = axum::Router::new()
        .route(
            "/open-apis/auth/v3/tenant_access_token/internal",
            post(|axum::Json(body): axum::Json<Value>| async move {
                if body == json!({"app_id": "cli_test", "app_secret": "s3cret"}) {
                    axum::Json(json!({"code": 0, "msg": "ok", "tenant_access_token": "t-test", "expire": 7200}))
                } else {
                    axum::Json(json!({"code": 10014, "msg": "app secret invalid"}))
                }
            }),
        )
        .route(
            "/open-apis/im/v1/images/{key}",
            get(move |axum::extract::Path(key): axum::extract::Path<String>, headers: axum::http::HeaderMap| {
                let served = served.clone();
                async move {
                    let authorised = headers.get("authorization").and_then(|v| v.to_str().ok()) == Some("Bearer t-test");
                    if key == "img_v3_abc" && authorised {
                        (axum::http::StatusCode::OK, served)
                    } else {
                        (axum::http::StatusCode::NOT_FOUND, Vec::new())
                    }
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let domain = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let c = Client::new(&s.base, &u.key);
    std::fs::write(
        c.state.join("openclaw.json"),
        format!("{{channels: {{feishu: {{domain: '{domain}', accounts: {{main: {{appId: 'cli_test', appSecret: 's3cret'}}}}}}}}}}"),
    )
    .unwrap();
    // The client runs on a blocking thread: the fake Feishu server needs this runtime.
    let out = tokio::task::spawn_blocking(move || {
        let ok = c.run(&[
            "transfer",
            "--image-key",
            "img_v3_abc",
            "--feishu-account",
            "main",
            "--channel",
            "feishu",
        ]);
        let missing = c.run(&["transfer", "--image-key", "img_v3_missing"]);
        let bad = c.run(&["transfer", "--image-key", "../etc"]);
        (ok, missing, bad)
    })
    .await
    .unwrap();
    let (ok, missing, bad) = out;
    assert!(ok.1, "{}", ok.0);
    assert_eq!(
        (ok.0["width"].as_u64(), ok.0["height"].as_u64()),
        (Some(17), Some(13))
    );
    let stored = s
        .http
        .get(ok.0["image_url"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(stored.to_vec(), image);
    assert_eq!(missing.0["code"], "FEISHU_ERROR");
    assert_eq!(bad.0["code"], "FEISHU_ERROR");
}
