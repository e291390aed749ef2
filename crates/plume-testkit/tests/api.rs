//! Every endpoint's success and failure shapes against a real server process.

mod common;
use common::*;
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test]
async fn authentication_and_validate() {
    let s = Server::start("", &[]).await;
    let u = s.user(120);
    let ok = s.get(&u.key, "/api/open/validate").await;
    assert_eq!(ok.0, 200);
    assert_eq!(ok.1["success"], true);
    assert_eq!(ok.1["code"], "SUCCESS");
    assert_eq!(
        ok.1["data"],
        json!({"valid": true, "user_id": u.id, "credits_balance": 120})
    );

    let r = s
        .http
        .get(s.url("/api/open/validate"))
        .send()
        .await
        .unwrap();
    let got = (r.status().as_u16(), r.json::<Value>().await.unwrap());
    assert_error(&got, 401, "UNAUTHORIZED");
    let r = s
        .http
        .get(s.url("/api/open/validate"))
        .header("Authorization", "Basic abc")
        .send()
        .await
        .unwrap();
    assert_error(
        &(r.status().as_u16(), r.json().await.unwrap()),
        401,
        "UNAUTHORIZED",
    );
    assert_error(
        &s.get("plume_sk_unknown", "/api/open/validate").await,
        401,
        "UNAUTHORIZED",
    );

    let (d, okd) = s.admin(&["disable-key", "--key", &u.key]);
    assert!(okd, "{d}");
    assert_error(&s.get(&u.key, "/api/open/validate").await, 403, "FORBIDDEN");
    assert_error(&s.create(&u.key, &banana("a cat")).await, 403, "FORBIDDEN");
    // The key never appears in the log.
    assert!(!s.log().contains(&u.key));
}

#[tokio::test]
async fn task_lifecycle_get_batch_cancel() {
    let s = Server::start("", &[]).await;
    let u = s.user(1000);
    let other = s.user(100);

    let created = s.create(&u.key, &banana("a cat")).await;
    assert_eq!(created.0, 200, "{}", created.1);
    let data = &created.1["data"];
    let id = data["id"].as_i64().unwrap();
    assert_eq!(data["status"], 1);
    assert_eq!(data["category"], "Banana2");
    assert_eq!(data["credits_cost"], 10);
    assert!(data["created_at"].as_str().unwrap().ends_with('Z'));

    let done = s.wait_terminal(&u.key, id, Duration::from_secs(20)).await;
    assert_eq!(done["status"], 3, "{done}");
    assert_eq!(done["status_text"], "success");
    assert_eq!(done["progress"], 100);
    assert_eq!(done["error"], Value::Null);
    for field in [
        "id",
        "category",
        "status",
        "status_text",
        "title",
        "content",
        "result",
        "error",
        "credits_cost",
        "progress",
        "created_at",
        "started_at",
        "finished_at",
    ] {
        assert!(done.get(field).is_some(), "{field} missing: {done}");
    }
    let result = &done["result"];
    assert_eq!(result["mimeType"], "image/png");
    assert_eq!(
        (result["width"].as_u64(), result["height"].as_u64()),
        (Some(64), Some(48))
    );
    let url = result["imageUrl"].as_str().unwrap();
    assert_eq!(result["imageUrls"], json!([url]));
    assert!(url.starts_with(&format!("{}/files/results/{id}/", s.base)));
    let file = s.http.get(url).send().await.unwrap();
    assert_eq!(file.status(), 200);
    assert_eq!(file.headers()["content-type"], "image/png");
    let bytes = file.bytes().await.unwrap();
    assert_eq!(image::load_from_memory(&bytes).unwrap().width(), 64);

    // A string of digits is a task id too; a non-number or a foreign task is NOT_FOUND.
    assert_eq!(
        s.get(&u.key, &format!("/api/open/tasks/{id}")).await.1["data"]["id"],
        id
    );
    assert_error(
        &s.get(&u.key, "/api/open/tasks/abc").await,
        404,
        "NOT_FOUND",
    );
    assert_error(&s.get(&u.key, "/api/open/tasks/0").await, 404, "NOT_FOUND");
    assert_error(
        &s.get(&u.key, "/api/open/tasks/99999999").await,
        404,
        "NOT_FOUND",
    );
    assert_error(
        &s.get(&other.key, &format!("/api/open/tasks/{id}")).await,
        404,
        "NOT_FOUND",
    );
    assert_error(
        &s.get(&u.key, &format!("/api/open/tasks/{id}?wait=x")).await,
        400,
        "VALIDATION_ERROR",
    );

    // Batch: only the caller's, unknown left out, bounded.
    let slow = s.create(&u.key, &banana("sleep=60000")).await.1["data"]["id"]
        .as_i64()
        .unwrap();
    let foreign = s.create(&other.key, &banana("sleep=10")).await.1["data"]["id"]
        .as_i64()
        .unwrap();
    let batch = s
        .get(
            &u.key,
            &format!("/api/open/tasks/batch?ids={id},{slow},{foreign},424242"),
        )
        .await;
    assert_eq!(batch.0, 200);
    let ids: Vec<i64> = batch.1["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![id, slow]);
    let many: Vec<String> = (1..=101).map(|i| i.to_string()).collect();
    let r = s
        .get(
            &u.key,
            &format!("/api/open/tasks/batch?ids={}", many.join(",")),
        )
        .await;
    assert_error(&r, 400, "VALIDATION_ERROR");
    assert_error(
        &s.get(&u.key, "/api/open/tasks/batch?ids=1,x").await,
        400,
        "VALIDATION_ERROR",
    );
    assert_error(
        &s.get(&u.key, "/api/open/tasks/batch").await,
        400,
        "VALIDATION_ERROR",
    );

    // Cancel: a running task is cancelled and refunded; a terminal one is refused as it is.
    let before = s.balance(&u)["balance"].as_i64().unwrap();
    let c = s
        .post(
            &u.key,
            &format!("/api/open/tasks/{slow}/cancel"),
            &json!({}),
        )
        .await;
    assert_eq!(c.0, 200, "{}", c.1);
    assert_eq!(c.1["data"]["status"], 6);
    assert_eq!(c.1["data"]["error"]["code"], "CANCELLED");
    assert_eq!(c.1["data"]["result"], "cancelled by the user");
    assert_eq!(s.balance(&u)["balance"].as_i64().unwrap(), before + 10);
    assert_error(
        &s.post(
            &u.key,
            &format!("/api/open/tasks/{slow}/cancel"),
            &json!({}),
        )
        .await,
        400,
        "VALIDATION_ERROR",
    );
    assert_error(
        &s.post(&u.key, &format!("/api/open/tasks/{id}/cancel"), &json!({}))
            .await,
        400,
        "VALIDATION_ERROR",
    );
    assert_error(
        &s.post(
            &other.key,
            &format!("/api/open/tasks/{id}/cancel"),
            &json!({}),
        )
        .await,
        404,
        "NOT_FOUND",
    );
    assert_eq!(
        s.balance(&u)["balance"].as_i64().unwrap(),
        before + 10,
        "nothing refunded twice"
    );
}

#[tokio::test]
async fn long_poll_returns_when_the_task_changes() {
    let s = Server::start("", &[]).await;
    let u = s.user(100);
    let id = s.create(&u.key, &banana("sleep=1500")).await.1["data"]["id"]
        .as_i64()
        .unwrap();
    // Wait until it runs, then a long poll must return at completion, well before 30 s.
    let mut status = 1;
    while status == 1 {
        status = s
            .get(&u.key, &format!("/api/open/tasks/{id}?wait=5"))
            .await
            .1["data"]["status"]
            .as_i64()
            .unwrap();
    }
    let started = std::time::Instant::now();
    let r = s
        .get(&u.key, &format!("/api/open/tasks/{id}?wait=30"))
        .await;
    assert_eq!(r.1["data"]["status"], 3, "{}", r.1);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "long poll held {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn request_errors() {
    let s = Server::start("[limits]\njson_body_max_bytes = 4096\n", &[]).await;
    let u = s.user(100);
    let r = s
        .http
        .post(s.url("/api/open/tasks"))
        .bearer_auth(&u.key)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_error(
        &(r.status().as_u16(), r.json().await.unwrap()),
        400,
        "VALIDATION_ERROR",
    );
    let big = json!({"category": "Banana2", "content": {"prompt": "x".repeat(10_000)}});
    let r = s.create(&u.key, &big).await;
    assert_error(&r, 413, "VALIDATION_ERROR");
    assert_error(
        &s.create(&u.key, &json!([1])).await,
        400,
        "VALIDATION_ERROR",
    );
    let r = s.create(&u.key, &json!({"content": {"prompt": "p"}})).await;
    assert_error(&r, 400, "VALIDATION_ERROR");
    assert_eq!(r.1["error"]["details"]["category"], "is required");
    let r = s
        .create(
            &u.key,
            &json!({"category": "style-transfer", "content": {"prompt": "p"}}),
        )
        .await;
    assert_error(&r, 400, "VALIDATION_ERROR");
    assert!(r.1["message"]
        .as_str()
        .unwrap()
        .contains("Banana2 with a style prompt"));
    let r = s.create(&u.key, &json!({"category": "Banana2"})).await;
    assert_eq!(r.1["error"]["details"]["content"], "is required");
    let r = s
        .create(
            &u.key,
            &json!({"category": "Banana2", "title": 5, "content": {"prompt": "p"}}),
        )
        .await;
    assert_eq!(r.1["error"]["details"]["title"], "must be a string");
    let r = s
        .create(
            &u.key,
            &json!({"category": "Banana2", "widget_mapping": [1], "content": {"prompt": "p"}}),
        )
        .await;
    assert_error(&r, 400, "VALIDATION_ERROR");
    let r = s.http.get(s.url("/nope")).send().await.unwrap();
    assert_error(
        &(r.status().as_u16(), r.json().await.unwrap()),
        404,
        "NOT_FOUND",
    );
    assert_eq!(s.balance(&u)["balance"], 100, "nothing charged");
}

#[tokio::test]
async fn credits_account_and_insufficient_credits() {
    let s = Server::start("", &[]).await;
    let none = s.user(0);
    assert_error(
        &s.create(&none.key, &banana("a cat")).await,
        403,
        "CREDITS_ACCOUNT_NOT_FOUND",
    );
    let (b, ok) = s.admin(&["balance", "--user", &none.id]);
    assert!(!ok);
    assert_eq!(b["code"], "CREDITS_ACCOUNT_NOT_FOUND");
    let poor = s.user(9);
    let r = s.create(&poor.key, &banana("a cat")).await;
    assert_error(&r, 402, "INSUFFICIENT_CREDITS");
    assert_eq!(
        r.1["error"]["details"],
        json!({"required": 10, "balance": 9})
    );
    assert_eq!(s.balance(&poor)["balance"], 9);
    let (tasks, _) = s.admin(&["tasks"]);
    assert_eq!(tasks["tasks"], json!([]), "nothing was created");
}

#[tokio::test]
async fn unavailable_categories_charge_nothing() {
    let s = Server::start("", &[("PLUME_TEST_EXECUTORS", "Banana2")]).await;
    let u = s.user(500);
    let r = s
        .create(
            &u.key,
            &json!({"category": "veo", "content": {"prompt": "a wave"}}),
        )
        .await;
    assert_error(&r, 503, "CATEGORY_UNAVAILABLE");
    let r = s
        .post(
            &u.key,
            "/api/open/describe",
            &json!({"image_url": "https://example.com/a.png"}),
        )
        .await;
    assert_error(&r, 503, "CATEGORY_UNAVAILABLE");
    let r = s
        .post(&u.key, "/api/open/describe", &json!({"focus": "general"}))
        .await;
    assert_error(&r, 400, "VALIDATION_ERROR");
    assert_eq!(s.balance(&u)["balance"], 500);
    let ready = s.readyz().await;
    assert_eq!(ready["data"]["ready"], true);
    assert_eq!(ready["data"]["database"], "ok");
    assert_eq!(ready["data"]["storage"], "ok");
    assert_eq!(ready["data"]["categories"]["Banana2"], "ready");
    assert!(ready["data"]["categories"]["veo"]
        .as_str()
        .unwrap()
        .starts_with("unavailable"));
}

#[tokio::test]
async fn the_real_binary_serves_with_no_executor() {
    // Only the port is set: data lands under ./data of the working folder.
    let dir = TempDir::new("plume-zero");
    let port = free_port();
    let mut child = std::process::Command::new(real_server_bin())
        .arg("serve")
        .current_dir(&dir.0)
        .env("PLUME_LISTEN", format!("127.0.0.1:{port}"))
        .env_remove("PLUME_DATA_DIR")
        .env_remove("PLUME_CONFIG")
        .env_remove("PLUME_ADMIN_TOKEN")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let mut up = false;
    for _ in 0..200 {
        if http.get(format!("{base}/healthz")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "plume-server did not start");
    assert!(dir.0.join("data/plume.db").exists());
    let admin = |args: &[&str]| {
        let out = std::process::Command::new(real_server_bin())
            .arg("admin")
            .args(args)
            .current_dir(&dir.0)
            .env_remove("PLUME_DATA_DIR")
            .output()
            .unwrap();
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let user = admin(&["create-user", "--name", "zero"])["user_id"]
        .as_str()
        .unwrap()
        .to_string();
    let key = admin(&["create-key", "--user", &user])["key"]
        .as_str()
        .unwrap()
        .to_string();
    admin(&["topup", "--user", &user, "--amount", "50"]);
    for category in plume_core::Category::ALL {
        let content = match category.kind() {
            plume_core::CategoryKind::Edit => {
                json!({"imageUrls": [format!("{base}/files/uploads/x/y.png")]})
            }
            _ => json!({"prompt": "a cat"}),
        };
        let r = http
            .post(format!("{base}/api/open/tasks"))
            .bearer_auth(&key)
            .json(&json!({"category": category.as_str(), "content": content}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 503, "{category}");
        assert_eq!(
            r.json::<Value>().await.unwrap()["code"],
            "CATEGORY_UNAVAILABLE"
        );
    }
    // Admin over HTTP is off without a token.
    let r = http
        .post(format!("{base}/api/admin/users"))
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(admin(&["balance", "--user", &user])["balance"], 50);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn admin_over_http() {
    let s = Server::start("", &[]).await;
    let post = |path: &str, token: &str, body: Value| {
        let req = s.http.post(s.url(path)).bearer_auth(token).json(&body);
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    assert_error(
        &post("/api/admin/users", "wrong", json!({"name": "a"})).await,
        401,
        "UNAUTHORIZED",
    );
    let u = post("/api/admin/users", ADMIN_TOKEN, json!({"name": "alice"})).await;
    assert_eq!(u.0, 200, "{}", u.1);
    let user = u.1["data"]["user_id"].as_str().unwrap().to_string();
    let k = post("/api/admin/keys", ADMIN_TOKEN, json!({"user_id": user})).await;
    let key = k.1["data"]["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("plume_sk_"));
    assert_error(
        &post("/api/admin/keys", ADMIN_TOKEN, json!({"user_id": "999"})).await,
        404,
        "NOT_FOUND",
    );
    let t = post(
        "/api/admin/topup",
        ADMIN_TOKEN,
        json!({"user_id": user, "amount": 40}),
    )
    .await;
    assert_eq!(t.1["data"]["balance"], 40);
    assert_error(
        &post(
            "/api/admin/topup",
            ADMIN_TOKEN,
            json!({"user_id": user, "amount": -5}),
        )
        .await,
        400,
        "VALIDATION_ERROR",
    );
    let id = s.create(&key, &banana("fail=no")).await.1["data"]["id"]
        .as_i64()
        .unwrap();
    s.wait_terminal(&key, id, Duration::from_secs(20)).await;
    let b = s
        .http
        .get(s.url(&format!("/api/admin/balance?user_id={user}")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(b["data"]["balance"], 40);
    assert_eq!(
        b["data"]["ledger"],
        json!({"topup": 40, "reserve": 10, "capture": 0, "refund": 10})
    );
    let tasks = s
        .http
        .get(s.url("/api/admin/tasks?status=failed"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(tasks["data"]["tasks"][0]["id"], id);
    let r = s
        .http
        .get(s.url("/api/admin/tasks?status=bogus"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let d = post("/api/admin/keys/disable", ADMIN_TOKEN, json!({"key": key})).await;
    assert_eq!(d.0, 200);
    assert_error(&s.get(&key, "/api/open/validate").await, 403, "FORBIDDEN");
    let (cli, ok) = s.admin(&["tasks", "--status", "4"]);
    assert!(ok);
    assert_eq!(cli["tasks"][0]["status_text"], "failed");
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let s = Server::start("[limits]\nrate_limit_per_minute = 3\n", &[]).await;
    let u = s.user(10);
    for _ in 0..3 {
        assert_eq!(s.get(&u.key, "/api/open/validate").await.0, 200);
    }
    let r = s
        .http
        .get(s.url("/api/open/validate"))
        .bearer_auth(&u.key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "RATE_LIMITED");
}

#[tokio::test]
async fn health_and_metrics() {
    let s = Server::start("", &[]).await;
    let u = s.user(100);
    let id = s.create(&u.key, &banana("a cat")).await.1["data"]["id"]
        .as_i64()
        .unwrap();
    s.wait_terminal(&u.key, id, Duration::from_secs(20)).await;
    let h = s.http.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(h.status(), 200);
    let text = s.metrics().await;
    for needle in [
        "plume_http_requests_total{method=\"POST\",route=\"/api/open/tasks\",status=\"200\"} 1",
        "plume_tasks{scope=\"cluster\",category=\"Banana2\",status=\"success\"} 1",
        "plume_task_execution_seconds_count{category=\"Banana2\",outcome=\"success\"} 1",
        "plume_credits_reserved_total{scope=\"cluster\"} 10",
        "plume_credits_captured_total{scope=\"cluster\"} 10",
        "plume_credits_refunded_total{scope=\"cluster\"} 0",
        "# TYPE plume_queue_depth gauge",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
}
