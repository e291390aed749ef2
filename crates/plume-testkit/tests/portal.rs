//! The portal's JSON API against a real server process (on SQLite, and on PostgreSQL + S3
//! with `PLUME_TEST_BACKEND=postgres`): sign-up, sign-in, keys, credits and codes, tasks,
//! the operator's routes, and the cross-site defences. Only what docs/PORTAL.md promises.

mod common;
use common::*;
use serde_json::{json, Value};
use std::time::Duration;

/// A browser-like client: keeps the session cookie it was given.
struct Browser<'a> {
    s: &'a Server,
    cookie: Option<String>,
}

impl<'a> Browser<'a> {
    fn new(s: &'a Server) -> Browser<'a> {
        Browser { s, cookie: None }
    }

    fn keep_cookie(&mut self, r: &reqwest::Response) {
        for v in r.headers().get_all("set-cookie") {
            let v = v.to_str().unwrap();
            assert!(
                v.contains("HttpOnly") && v.contains("SameSite=Strict"),
                "{v}"
            );
            let pair = v.split(';').next().unwrap();
            let (_, token) = pair.split_once('=').unwrap();
            self.cookie = (!token.is_empty()).then(|| pair.to_string());
        }
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> (u16, Value) {
        let req = match &self.cookie {
            Some(c) => req.header("cookie", c),
            None => req,
        };
        let r = req.send().await.unwrap();
        self.keep_cookie(&r);
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn get(&mut self, path: &str) -> (u16, Value) {
        let req = self.s.http.get(self.s.url(path));
        self.send(req).await
    }

    async fn post(&mut self, path: &str, body: &Value) -> (u16, Value) {
        let req = self.s.http.post(self.s.url(path)).json(body);
        self.send(req).await
    }

    async fn signup(&mut self, email: &str) -> Value {
        let r = self
            .post(
                "/api/portal/signup",
                &json!({"email": email, "password": "a long passphrase"}),
            )
            .await;
        assert_eq!(r.0, 200, "{}", r.1);
        r.1["data"].clone()
    }
}

/// An operator made the documented way (`admin create-user --email --admin`), signed in.
async fn operator(s: &Server) -> Browser<'_> {
    let (made, ok) = s.admin_with_input(
        &["create-user", "--email", "ops@example.com", "--admin"],
        "operator passphrase\n",
    );
    assert!(ok, "{made}");
    assert_eq!(made["role"], "admin");
    let mut b = Browser::new(s);
    let r = b
        .post(
            "/api/portal/login",
            &json!({"email": "OPS@example.com", "password": "operator passphrase"}),
        )
        .await;
    assert_eq!(r.0, 200, "{}", r.1);
    assert_eq!(r.1["data"]["role"], "admin");
    b
}

#[tokio::test]
async fn sign_up_sign_in_and_out() {
    let s = Server::start("", &[]).await;
    let mut b = Browser::new(&s);
    let me = b.signup("Ada@Example.com").await;
    assert_eq!(me["email"], "ada@example.com");
    assert_eq!(
        (me["role"].as_str(), me["credits_balance"].as_i64()),
        (Some("user"), Some(0))
    );
    assert_eq!(b.get("/api/portal/me").await.1["data"], me);

    // Taken email, short password, not an email: clear validation errors.
    let mut other = Browser::new(&s);
    for (body, field) in [
        (
            json!({"email": "ada@example.com", "password": "another passphrase"}),
            "email",
        ),
        (
            json!({"email": "bob@example.com", "password": "short"}),
            "password",
        ),
        (
            json!({"email": "bob", "password": "a long passphrase"}),
            "email",
        ),
    ] {
        let r = other.post("/api/portal/signup", &body).await;
        assert_error(&r, 400, "VALIDATION_ERROR");
        assert!(r.1["error"]["details"][field].is_string(), "{}", r.1);
    }

    // Out, then in again; a wrong password is refused.
    let r = b.post("/api/portal/logout", &json!({})).await;
    assert_eq!(r.0, 200, "{}", r.1);
    assert_error(&b.get("/api/portal/me").await, 401, "UNAUTHORIZED");
    let r = b
        .post(
            "/api/portal/login",
            &json!({"email": "ada@example.com", "password": "wrong passphrase"}),
        )
        .await;
    assert_error(&r, 401, "UNAUTHORIZED");
    let r = b
        .post(
            "/api/portal/login",
            &json!({"email": "ada@example.com", "password": "a long passphrase"}),
        )
        .await;
    assert_eq!(r.1["data"]["user_id"], me["user_id"]);
    assert_eq!(b.get("/api/portal/me").await.0, 200);
    // A session cookie made up by a client is no session.
    let mut forged = Browser::new(&s);
    forged.cookie = Some(format!("plume_session={}", "ab".repeat(32)));
    assert_error(&forged.get("/api/portal/me").await, 401, "UNAUTHORIZED");
}

#[tokio::test]
async fn sign_up_closed_or_by_invitation() {
    let closed = Server::start("[portal]\nsignup = \"closed\"\n", &[]).await;
    let r = Browser::new(&closed)
        .post(
            "/api/portal/signup",
            &json!({"email": "a@example.com", "password": "a long passphrase"}),
        )
        .await;
    assert_error(&r, 403, "FORBIDDEN");

    let invite = Server::start(
        "[portal]\nsignup = \"invite\"\ninvite_code = \"friends-2026\"\nsignup_credits = 25\n",
        &[],
    )
    .await;
    let mut b = Browser::new(&invite);
    for code in [Value::Null, json!("guess")] {
        let r = b
            .post(
                "/api/portal/signup",
                &json!({"email": "a@example.com", "password": "a long passphrase", "invite_code": code}),
            )
            .await;
        assert_error(&r, 400, "VALIDATION_ERROR");
        assert!(r.1["error"]["details"]["invite_code"].is_string());
    }
    let r = b
        .post(
            "/api/portal/signup",
            &json!({"email": "a@example.com", "password": "a long passphrase", "invite_code": "friends-2026"}),
        )
        .await;
    assert_eq!(r.0, 200, "{}", r.1);
    assert_eq!(r.1["data"]["credits_balance"], 25);
}

#[tokio::test]
async fn keys_are_shown_once_listed_and_disabled() {
    let s = Server::start("", &[]).await;
    let mut b = Browser::new(&s);
    b.signup("keys@example.com").await;
    let (status, made) = b.post("/api/portal/keys", &json!({})).await;
    assert_eq!(status, 200, "{made}");
    let key = made["data"]["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("plume_sk_"));
    let snippet: Value =
        serde_json::from_str(made["data"]["openclaw_json"].as_str().unwrap()).unwrap();
    assert_eq!(
        snippet["skills"]["entries"]["plume-image"]["apiKey"],
        key.as_str()
    );
    assert_eq!(
        snippet["skills"]["entries"]["plume-image"]["env"]["PLUME_API_BASE"],
        s.base.as_str()
    );
    assert!(made["data"]["env"]
        .as_str()
        .unwrap()
        .contains(&format!("PLUME_API_KEY={key}\n")));

    // The key works on the Open API, and the list then shows it used, never the key itself.
    let (status, _) = s.get(&key, "/api/open/validate").await;
    assert_eq!(status, 200);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let listed = loop {
        let (_, list) = b.get("/api/portal/keys").await;
        let k = list["data"]["keys"][0].clone();
        if !k["last_used_at"].is_null() || std::time::Instant::now() > deadline {
            break list;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let k = &listed["data"]["keys"][0];
    assert!(!k["last_used_at"].is_null(), "{listed}");
    assert_eq!(k["disabled"], false);
    assert!(
        !listed.to_string().contains(&key),
        "the key is never listed"
    );
    assert!(key.starts_with(k["prefix"].as_str().unwrap()));

    let id = made["data"]["id"].as_i64().unwrap();
    let r = b
        .post(&format!("/api/portal/keys/{id}/disable"), &json!({}))
        .await;
    assert_eq!(r.0, 200, "{}", r.1);
    assert_error(&s.create(&key, &banana("a kite")).await, 403, "FORBIDDEN");
    assert_eq!(
        b.get("/api/portal/keys").await.1["data"]["keys"][0]["disabled"],
        true
    );

    // Someone else's key is not found.
    let mut other = Browser::new(&s);
    other.signup("other@example.com").await;
    let r = other
        .post(&format!("/api/portal/keys/{id}/disable"), &json!({}))
        .await;
    assert_error(&r, 404, "NOT_FOUND");
}

#[tokio::test]
async fn codes_credit_once_and_the_ledger_tells_the_story() {
    let s = Server::start("", &[]).await;
    let mut ops = operator(&s).await;
    let (status, issued) = ops
        .post(
            "/api/portal/admin/codes",
            &json!({"count": 2, "amount": 30, "note": "launch"}),
        )
        .await;
    assert_eq!(status, 200, "{issued}");
    let codes: Vec<String> = issued["data"]["codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(codes.len(), 2);

    // Eight users redeem the first code at once: one is credited.
    let mut racers = Vec::new();
    for i in 0..8 {
        let mut b = Browser::new(&s);
        b.signup(&format!("racer{i}@example.com")).await;
        let cookie = b.cookie.clone().unwrap();
        let req = s
            .http
            .post(s.url("/api/portal/redeem"))
            .header("cookie", cookie)
            .json(&json!({"code": codes[0]}));
        racers.push(tokio::spawn(async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }));
    }
    let mut credited = 0;
    for r in racers {
        let (status, body) = r.await.unwrap();
        match status {
            200 => {
                credited += 1;
                assert_eq!(body["data"]["amount"], 30);
            }
            400 => assert!(
                body["message"]
                    .as_str()
                    .unwrap()
                    .contains("already been redeemed"),
                "{body}"
            ),
            _ => panic!("{status} {body}"),
        }
    }
    assert_eq!(credited, 1);

    // The second code, typed loosely, tops up a user who then spends it.
    let mut b = Browser::new(&s);
    let me = b.signup("spender@example.com").await;
    let loose = codes[1].to_lowercase().replace('-', " ");
    let r = b.post("/api/portal/redeem", &json!({"code": loose})).await;
    assert_eq!(r.0, 200, "{}", r.1);
    assert_eq!(r.1["data"]["credits_balance"], 30);
    assert_error(
        &b.post("/api/portal/redeem", &json!({"code": codes[1]}))
            .await,
        400,
        "VALIDATION_ERROR",
    );
    assert_error(
        &b.post(
            "/api/portal/redeem",
            &json!({"code": "PLUME-00000-00000-00000-00000"}),
        )
        .await,
        400,
        "VALIDATION_ERROR",
    );

    let key = b.post("/api/portal/keys", &json!({})).await.1["data"]["key"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, created) = s.create(&key, &banana("a red kite")).await;
    let id = created["data"]["id"].as_i64().unwrap();
    s.wait_terminal(&key, id, Duration::from_secs(30)).await;

    // An operator's top-up carries its reason.
    let user_id = me["user_id"].as_str().unwrap();
    let r = ops
        .post(
            &format!("/api/portal/admin/users/{user_id}/topup"),
            &json!({"amount": 5, "reason": "sorry for the outage"}),
        )
        .await;
    assert_eq!(r.0, 200, "{}", r.1);

    let (_, ledger) = b.get("/api/portal/ledger").await;
    let entries = ledger["data"]["entries"].as_array().unwrap();
    let kinds: Vec<(&str, i64)> = entries
        .iter()
        .map(|e| (e["kind"].as_str().unwrap(), e["amount"].as_i64().unwrap()))
        .collect();
    let cost = created["data"]["credits_cost"].as_i64().unwrap();
    assert_eq!(
        kinds,
        vec![
            ("topup", 5),
            ("capture", cost),
            ("reserve", cost),
            ("topup", 30)
        ]
    );
    assert_eq!(entries[0]["note"], "sorry for the outage");
    assert!(entries[3]["note"]
        .as_str()
        .unwrap()
        .starts_with("top-up code PLUME-"));
    assert_eq!(entries[1]["task_id"], id);
    assert_eq!(ledger["data"]["credits_balance"], 35 - cost);
    assert_eq!(
        b.get("/api/portal/me").await.1["data"]["credits_balance"],
        35 - cost
    );
}

#[tokio::test]
async fn a_user_sees_only_their_own_tasks_and_admin_routes_hide() {
    let s = Server::start("", &[]).await;
    let mut ops = operator(&s).await;
    let mut a = Browser::new(&s);
    let me = a.signup("a@example.com").await;
    let user_id = me["user_id"].as_str().unwrap();
    ops.post(
        &format!("/api/portal/admin/users/{user_id}/topup"),
        &json!({"amount": 100, "reason": "trial"}),
    )
    .await;
    // Try it: a task from the browser session, then its live status.
    let r = a
        .post("/api/portal/tasks", &json!({"category": "Banana2", "content": {"prompt": "sleep=300 a kite", "processing_mode": "text_to_image", "imageUrls": []}}))
        .await;
    assert_eq!(r.0, 200, "{}", r.1);
    let id = r.1["data"]["id"].as_i64().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, t) = a.get(&format!("/api/portal/tasks/{id}?wait=5")).await;
        if t["data"]["status"] == 3 {
            assert!(t["data"]["result"]["imageUrl"].is_string(), "{t}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{t}");
    }
    let (_, list) = a.get("/api/portal/tasks").await;
    assert_eq!(list["data"]["tasks"][0]["id"], id);

    // The gallery's thumbnail: a small JPEG, for the owner only.
    let thumb = |cookie: String| {
        s.http
            .get(s.url(&format!("/tasks/{id}/thumb")))
            .header("cookie", cookie)
            .send()
    };
    let r = thumb(a.cookie.clone().unwrap()).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    let small = image::load_from_memory(&r.bytes().await.unwrap()).unwrap();
    assert!(small.width() <= 480 && small.height() <= 480);

    let mut b = Browser::new(&s);
    b.signup("b@example.com").await;
    assert_eq!(
        thumb(b.cookie.clone().unwrap())
            .await
            .unwrap()
            .status()
            .as_u16(),
        404
    );
    assert_error(
        &b.get(&format!("/api/portal/tasks/{id}")).await,
        404,
        "NOT_FOUND",
    );
    assert_eq!(
        b.get("/api/portal/tasks").await.1["data"]["tasks"],
        json!([])
    );
    assert_eq!(
        b.get("/api/portal/ledger").await.1["data"]["entries"],
        json!([])
    );
    for path in ["/api/portal/admin/users", "/api/portal/admin/overview"] {
        assert_error(&b.get(path).await, 404, "NOT_FOUND");
    }
    assert_error(
        &b.post("/api/portal/admin/codes", &json!({"count": 1, "amount": 1}))
            .await,
        404,
        "NOT_FOUND",
    );

    // The operator sees users, categories and prices; disabling a user ends their session.
    let (_, users) = ops.get("/api/portal/admin/users?q=a%40example").await;
    assert_eq!(users["data"]["users"][0]["email"], "a@example.com");
    let (_, overview) = ops.get("/api/portal/admin/overview").await;
    assert_eq!(overview["data"]["categories"].as_array().unwrap().len(), 7);
    assert!(overview["data"]["prices"]["remove_bg"].is_number());
    let r = ops
        .post(
            &format!("/api/portal/admin/users/{user_id}/disable"),
            &json!({"disabled": true}),
        )
        .await;
    assert_eq!(r.0, 200, "{}", r.1);
    assert_error(&a.get("/api/portal/me").await, 401, "UNAUTHORIZED");
    let r = a
        .post(
            "/api/portal/login",
            &json!({"email": "a@example.com", "password": "a long passphrase"}),
        )
        .await;
    assert_error(&r, 403, "FORBIDDEN");
}

#[tokio::test]
async fn cross_site_requests_and_password_guessing_are_refused() {
    let s = Server::start("", &[]).await;
    let mut b = Browser::new(&s);
    b.signup("victim@example.com").await;
    let cookie = b.cookie.clone().unwrap();

    // Another site's page: refused by Origin, whatever the body.
    let r = s
        .http
        .post(s.url("/api/portal/keys"))
        .header("cookie", &cookie)
        .header("origin", "https://evil.example")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    // A form-encoded or text body (what a cross-site form can send): refused.
    for ct in ["application/x-www-form-urlencoded", "text/plain"] {
        let r = s
            .http
            .post(s.url("/api/portal/keys"))
            .header("cookie", &cookie)
            .header("content-type", ct)
            .body("a=b")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 415, "{ct}");
    }
    // An HTML form without the session's CSRF token: refused, no key made.
    let r = s
        .http
        .post(s.url("/keys"))
        .header("cookie", &cookie)
        .form(&[("csrf", "not-the-token")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(b.get("/api/portal/keys").await.1["data"]["keys"], json!([]));
    // Same-origin requests pass.
    let r = s
        .http
        .post(s.url("/api/portal/keys"))
        .header("cookie", &cookie)
        .header("origin", &s.base)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    // Five wrong passwords lock the account for the window, even for the right one.
    let mut guesser = Browser::new(&s);
    for _ in 0..5 {
        let r = guesser
            .post(
                "/api/portal/login",
                &json!({"email": "victim@example.com", "password": "guess guess guess"}),
            )
            .await;
        assert_error(&r, 401, "UNAUTHORIZED");
    }
    let req = s
        .http
        .post(s.url("/api/portal/login"))
        .json(&json!({"email": "victim@example.com", "password": "a long passphrase"}));
    let r = req.send().await.unwrap();
    assert_eq!(r.status().as_u16(), 429);
    assert!(r.headers().get("retry-after").is_some());
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "RATE_LIMITED");
    assert!(
        body["message"].as_str().unwrap().contains("try again in"),
        "{body}"
    );
    // The existing session is unaffected.
    assert_eq!(b.get("/api/portal/me").await.0, 200);
}

#[tokio::test]
async fn pages_are_served_with_a_strict_policy() {
    let s = Server::start("", &[]).await;
    let r = s.http.get(s.url("/")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"));
    let html = r.text().await.unwrap();
    assert!(
        html.contains("/assets/portal.js") && !html.contains("<script>"),
        "no inline script"
    );
    // Signed-out visitors of a page are sent to sign in and back.
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(s.url("/keys"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(r.headers()["location"], "/login?next=%2Fkeys");
    // Admin pages do not exist for anyone else.
    let mut b = Browser::new(&s);
    b.signup("nosy@example.com").await;
    assert_eq!(b.get("/admin/users").await.0, 404);
    for asset in ["/assets/portal.css", "/assets/portal.js"] {
        assert_eq!(
            s.http
                .get(s.url(asset))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
            200
        );
    }
}

/// Runs one statement on the server's own database, whichever backend it is.
async fn execute_sql(s: &Server, sql: &str) {
    use sqlx::Connection;
    match &s.backend.database_url {
        Some(url) => {
            let mut c = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::query(sql).execute(&mut c).await.unwrap();
        }
        None => {
            let path = s.data_dir().join("plume.db");
            let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                .await
                .unwrap();
            sqlx::query(sql).execute(&mut c).await.unwrap();
        }
    }
}

#[tokio::test]
async fn an_expired_session_signs_nobody_in() {
    let s = Server::start("", &[]).await;
    let mut b = Browser::new(&s);
    b.signup("brief@example.com").await;
    assert_eq!(b.get("/api/portal/me").await.0, 200);
    // Time passes: the session's expiry (session_hours after sign-in) is now behind us.
    execute_sql(&s, "UPDATE portal_sessions SET expires_at = 1").await;
    assert_error(&b.get("/api/portal/me").await, 401, "UNAUTHORIZED");
    let r = b.post("/api/portal/keys", &json!({})).await;
    assert_error(&r, 401, "UNAUTHORIZED");
    // Signing in again starts a new one; "everywhere" ends every session of the user.
    let mut phone = Browser::new(&s);
    for who in [&mut b, &mut phone] {
        let r = who
            .post(
                "/api/portal/login",
                &json!({"email": "brief@example.com", "password": "a long passphrase"}),
            )
            .await;
        assert_eq!(r.0, 200, "{}", r.1);
    }
    let r = b
        .post("/api/portal/logout", &json!({"everywhere": true}))
        .await;
    assert_eq!(r.1["data"]["sessions_ended"], 2, "{}", r.1);
    assert_error(&phone.get("/api/portal/me").await, 401, "UNAUTHORIZED");
}

#[tokio::test]
async fn limits_past_their_edge_are_refused_with_the_limit_named() {
    let s = Server::start("", &[]).await;
    let mut b = Browser::new(&s);
    b.signup("many@example.com").await;
    for _ in 0..50 {
        assert_eq!(b.post("/api/portal/keys", &json!({})).await.0, 200);
    }
    let r = b.post("/api/portal/keys", &json!({})).await;
    assert_error(&r, 400, "VALIDATION_ERROR");
    assert!(
        r.1["message"].as_str().unwrap().contains("at most 50"),
        "{}",
        r.1
    );
    // Disabling one makes room for one.
    let id = b.get("/api/portal/keys").await.1["data"]["keys"][0]["id"]
        .as_i64()
        .unwrap();
    b.post(&format!("/api/portal/keys/{id}/disable"), &json!({}))
        .await;
    assert_eq!(b.post("/api/portal/keys", &json!({})).await.0, 200);

    let mut ops = operator(&s).await;
    for (count, amount) in [(1001, 5), (0, 5), (1, 0), (1, 1_000_000_001)] {
        let r = ops
            .post(
                "/api/portal/admin/codes",
                &json!({"count": count, "amount": amount}),
            )
            .await;
        assert_error(&r, 400, "VALIDATION_ERROR");
    }
    let r = ops
        .post(
            "/api/portal/admin/codes",
            &json!({"count": 1000, "amount": 5}),
        )
        .await;
    assert_eq!(r.1["data"]["codes"].as_array().unwrap().len(), 1000);
}
