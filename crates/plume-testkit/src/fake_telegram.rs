//! A fake Telegram Bot API on loopback, enough for OpenClaw's bundled Telegram channel
//! (OPENCLAW.md): `getMe`, `deleteWebhook`, `setMyCommands`, `getUpdates` (a short long poll
//! with no updates) and the send methods, whose multipart bodies are recorded: the chat id,
//! the caption or text, and the media file's bytes.

use axum::extract::{Multipart, Path, State};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One message OpenClaw sent through the fake.
#[derive(Debug, Clone)]
pub struct Sent {
    pub method: String,
    pub chat_id: String,
    /// `caption` for media, `text` for plain messages.
    pub text: String,
    /// The media part's file name and bytes.
    pub file: Option<(String, Vec<u8>)>,
}

#[derive(Default)]
struct TelegramState {
    sent: Mutex<Vec<Sent>>,
    calls: Mutex<Vec<String>>,
}

pub struct FakeTelegram {
    pub api_root: String,
    state: Arc<TelegramState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeTelegram {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeTelegram {
    pub async fn start() -> FakeTelegram {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let api_root = format!("http://{}", listener.local_addr().expect("addr"));
        let state = Arc::new(TelegramState::default());
        let app = axum::Router::new()
            .route("/{bot}/{method}", axum::routing::any(handle))
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeTelegram {
            api_root,
            state,
            task,
        }
    }

    pub fn sent(&self) -> Vec<Sent> {
        self.state.sent.lock().unwrap().clone()
    }

    /// Every Bot API method called, in order.
    pub fn calls(&self) -> Vec<String> {
        self.state.calls.lock().unwrap().clone()
    }
}

fn ok(result: Value) -> Response {
    axum::Json(json!({"ok": true, "result": result})).into_response()
}

async fn handle(
    State(state): State<Arc<TelegramState>>,
    Path((_bot, method)): Path<(String, String)>,
    request: axum::extract::Request,
) -> Response {
    state.calls.lock().unwrap().push(method.clone());
    match method.as_str() {
        "getMe" => ok(
            json!({"id": 123456, "is_bot": true, "first_name": "Plume Test", "username": "plume_test_bot",
                             "can_join_groups": true, "can_read_all_group_messages": false, "supports_inline_queries": false}),
        ),
        "getUpdates" => {
            tokio::time::sleep(Duration::from_millis(500)).await;
            ok(json!([]))
        }
        "sendPhoto" | "sendVideo" | "sendMessage" | "sendDocument" | "sendAnimation" => {
            let (parts, body) = request.into_parts();
            let content_type = parts
                .headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let mut sent = Sent {
                method: method.clone(),
                chat_id: String::new(),
                text: String::new(),
                file: None,
            };
            if content_type.starts_with("multipart/form-data") {
                let request = axum::extract::Request::from_parts(parts, body);
                let Ok(mut form) =
                    <Multipart as axum::extract::FromRequest<()>>::from_request(request, &()).await
                else {
                    return ok(json!(true));
                };
                while let Ok(Some(field)) = form.next_field().await {
                    let name = field.name().unwrap_or("").to_string();
                    let file_name = field.file_name().map(String::from);
                    let bytes = field.bytes().await.unwrap_or_default().to_vec();
                    match (name.as_str(), file_name) {
                        ("chat_id", _) => {
                            sent.chat_id = String::from_utf8_lossy(&bytes).to_string()
                        }
                        ("caption" | "text", _) => {
                            sent.text = String::from_utf8_lossy(&bytes).to_string()
                        }
                        (_, Some(file)) => sent.file = Some((file, bytes)),
                        _ => {}
                    }
                }
            } else {
                let bytes = axum::body::to_bytes(body, 16 * 1024 * 1024)
                    .await
                    .unwrap_or_default();
                let v: Value = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                    Value::Object(
                        url::form_urlencoded::parse(&bytes)
                            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
                            .collect(),
                    )
                });
                sent.chat_id = v
                    .get("chat_id")
                    .map(|c| {
                        c.as_str()
                            .map(String::from)
                            .unwrap_or_else(|| c.to_string())
                    })
                    .unwrap_or_default();
                sent.text = v
                    .get("caption")
                    .or_else(|| v.get("text"))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
            }
            let chat: Value = sent
                .chat_id
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or_else(|_| Value::String(sent.chat_id.clone()));
            state.sent.lock().unwrap().push(sent);
            ok(
                json!({"message_id": 1001, "chat": {"id": chat, "type": "private"}, "date": chrono_now()}),
            )
        }
        _ => ok(json!(true)),
    }
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
