//! A fake Feishu Open Platform on loopback HTTPS, enough for OpenClaw's Feishu plugin
//! (`@openclaw/feishu`, OPENCLAW.md): the tenant token, bot info, message sends and replies
//! (recorded), image uploads (their bytes recorded), reactions, cards; any other `/open-apis/` call
//! answers `{"code": 0}` and is recorded by path. Inbound messages go the other way: the
//! plugin's webhook server receives them, signed the way Feishu signs
//! ([`FakeFeishu::signed_event`]).

use crate::tls::{test_certificate, TlsListener};
use axum::extract::{Multipart, Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// One message the plugin sent.
#[derive(Debug, Clone)]
pub struct FeishuSent {
    /// `open_id` / `chat_id` it went to (for a reply: the message replied to).
    pub receive_id: String,
    pub msg_type: String,
    /// The parsed `content` JSON.
    pub content: Value,
    /// For an `image` message: the uploaded bytes its `image_key` names.
    pub image: Option<Vec<u8>>,
}

impl FeishuSent {
    /// Every `text` in the content (a `text` message or the runs of a `post`).
    pub fn text(&self) -> String {
        fn walk(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(map) => {
                    if let Some(Value::String(t)) = map.get("text") {
                        out.push(t.clone());
                    }
                    map.values().for_each(|v| walk(v, out));
                }
                Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
                _ => {}
            }
        }
        let mut out = Vec::new();
        walk(&self.content, &mut out);
        out.join("\n")
    }
}

#[derive(Default)]
struct FeishuState {
    sent: Mutex<Vec<FeishuSent>>,
    calls: Mutex<Vec<String>>,
    images: Mutex<HashMap<String, Vec<u8>>>,
}

pub struct FakeFeishu {
    /// `https://127.0.0.1:<port>`, for `channels.feishu.domain`.
    pub domain: String,
    /// The CA to trust (`NODE_EXTRA_CA_CERTS`).
    pub ca_path: PathBuf,
    state: Arc<FeishuState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeFeishu {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeFeishu {
    /// Starts the fake, with its certificate files in `dir`.
    pub async fn start(dir: &std::path::Path) -> anyhow::Result<FakeFeishu> {
        let (ca_path, config) = test_certificate(dir)?;
        let listener = TlsListener::bind(config).await?;
        let domain = format!("https://127.0.0.1:{}", listener.port);
        let state = Arc::new(FeishuState::default());
        let app = axum::Router::new()
            .route("/open-apis/im/v1/messages", axum::routing::post(send))
            .route(
                "/open-apis/im/v1/messages/{id}/reply",
                axum::routing::post(reply),
            )
            .route("/open-apis/im/v1/images", axum::routing::post(upload_image))
            .fallback(other)
            .layer(axum::extract::DefaultBodyLimit::max(30 * 1024 * 1024))
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(FakeFeishu {
            domain,
            ca_path,
            state,
            task,
        })
    }

    pub fn sent(&self) -> Vec<FeishuSent> {
        self.state.sent.lock().unwrap().clone()
    }

    /// Every call, as `METHOD /path`, in order.
    pub fn calls(&self) -> Vec<String> {
        self.state.calls.lock().unwrap().clone()
    }

    /// An `im.message.receive_v1` event (schema 2.0) for a text message `text` from user
    /// `open_id` in a direct chat, as the body and headers Feishu would POST to the plugin's
    /// webhook: `x-lark-signature = sha256(timestamp + nonce + encrypt_key + body)`.
    pub fn signed_event(
        encrypt_key: &str,
        open_id: &str,
        message_id: &str,
        text: &str,
    ) -> (String, Vec<(&'static str, String)>) {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let body = json!({
            "schema": "2.0",
            "header": {
                "event_id": format!("ev-{message_id}"), "event_type": "im.message.receive_v1",
                "create_time": now_ms.to_string(), "token": "", "app_id": "cli_plume_test",
                "tenant_key": "tenant-test"
            },
            "event": {
                "sender": {
                    "sender_id": {"open_id": open_id, "union_id": format!("on_{open_id}"), "user_id": "u_ada"},
                    "sender_type": "user", "tenant_key": "tenant-test"
                },
                "message": {
                    "message_id": message_id, "create_time": now_ms.to_string(),
                    "chat_id": "oc_direct_chat_with_ada", "chat_type": "p2p",
                    "message_type": "text", "content": json!({"text": text}).to_string()
                }
            }
        })
        .to_string();
        let timestamp = (now_ms / 1000).to_string();
        let nonce = format!("nonce-{message_id}");
        let signature = hex::encode(Sha256::digest(
            format!("{timestamp}{nonce}{encrypt_key}{body}").as_bytes(),
        ));
        let headers = vec![
            ("content-type", "application/json".to_string()),
            ("x-lark-request-timestamp", timestamp),
            ("x-lark-request-nonce", nonce),
            ("x-lark-signature", signature),
        ];
        (body, headers)
    }
}

fn ok(data: Value) -> Response {
    axum::Json(json!({"code": 0, "msg": "success", "data": data})).into_response()
}

fn record(state: &FeishuState, receive_id: String, body: &Value) -> Response {
    let msg_type = body["msg_type"].as_str().unwrap_or("").to_string();
    let content: Value = body["content"]
        .as_str()
        .and_then(|c| serde_json::from_str(c).ok())
        .unwrap_or(Value::Null);
    let image = content["image_key"]
        .as_str()
        .and_then(|key| state.images.lock().unwrap().get(key).cloned());
    let mut sent = state.sent.lock().unwrap();
    sent.push(FeishuSent {
        receive_id: receive_id.clone(),
        msg_type: msg_type.clone(),
        content,
        image,
    });
    let message_id = format!("om_sent_{}", sent.len());
    ok(json!({
        "message_id": message_id, "msg_type": msg_type, "chat_id": "oc_direct_chat_with_ada",
        "create_time": "0", "update_time": "0", "deleted": false, "updated": false
    }))
}

async fn send(
    State(state): State<Arc<FeishuState>>,
    Query(query): Query<HashMap<String, String>>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let kind = query.get("receive_id_type").cloned().unwrap_or_default();
    state.calls.lock().unwrap().push(format!(
        "POST /open-apis/im/v1/messages?receive_id_type={kind}"
    ));
    let to = body["receive_id"].as_str().unwrap_or("").to_string();
    record(&state, to, &body)
}

async fn reply(
    State(state): State<Arc<FeishuState>>,
    Path(id): Path<String>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    state
        .calls
        .lock()
        .unwrap()
        .push(format!("POST /open-apis/im/v1/messages/{id}/reply"));
    record(&state, id, &body)
}

async fn upload_image(State(state): State<Arc<FeishuState>>, mut form: Multipart) -> Response {
    state
        .calls
        .lock()
        .unwrap()
        .push("POST /open-apis/im/v1/images".into());
    let mut bytes = None;
    while let Ok(Some(field)) = form.next_field().await {
        if field.name() == Some("image") {
            bytes = field.bytes().await.ok().map(|b| b.to_vec());
        }
    }
    let Some(bytes) = bytes else {
        return axum::Json(json!({"code": 234001, "msg": "no image part"})).into_response();
    };
    let mut images = state.images.lock().unwrap();
    let key = format!("img_v3_test_{}", images.len() + 1);
    images.insert(key.clone(), bytes);
    ok(json!({"image_key": key}))
}

async fn other(State(state): State<Arc<FeishuState>>, request: axum::extract::Request) -> Response {
    let path = request.uri().path().to_string();
    state
        .calls
        .lock()
        .unwrap()
        .push(format!("{} {path}", request.method()));
    match path.as_str() {
        "/open-apis/auth/v3/tenant_access_token/internal"
        | "/open-apis/auth/v3/app_access_token/internal" => axum::Json(json!({
            "code": 0, "msg": "ok", "tenant_access_token": "t-test-tenant-token",
            "app_access_token": "a-test-app-token", "expire": 7200
        }))
        .into_response(),
        "/open-apis/bot/v3/info" => axum::Json(json!({
            "code": 0, "msg": "ok",
            "bot": {"activate_status": 2, "app_name": "Plume Test", "avatar_url": "", "ip_white_list": [], "open_id": "ou_plume_test_bot"}
        }))
        .into_response(),
        p if p.ends_with("/reactions") => ok(json!({"reaction_id": "reaction-1"})),
        // The agent's reply streams into a card (its text goes through card updates).
        "/open-apis/cardkit/v1/cards" => ok(json!({"card_id": "card-1"})),
        _ => ok(json!({})),
    }
}
