//! A fake Telegram Bot API on loopback, enough for OpenClaw's bundled Telegram channel
//! (OPENCLAW.md): `getMe`, `deleteWebhook`, `setMyCommands`, `getUpdates` (a short long poll
//! that hands out the messages a test queued with [`FakeTelegram::user_says`] or
//! [`FakeTelegram::user_sends_photo`]), `getFile` and the file download for those photos, and
//! the send methods, whose multipart bodies are recorded: the chat id, the caption or text,
//! and the media file's bytes.

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
    /// Updates for `getUpdates`; an update stays until an `offset` past it confirms it.
    updates: Mutex<Vec<Value>>,
    last_update_id: std::sync::atomic::AtomicI64,
    /// Files `getFile` knows, by file id: (file path, bytes).
    files: Mutex<Vec<(String, String, Vec<u8>)>>,
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
            .route("/file/{bot}/{*path}", axum::routing::get(download))
            // Telegram takes photos up to 10 MB and other files up to 50 MB.
            .layer(axum::extract::DefaultBodyLimit::max(50 * 1024 * 1024))
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

    /// Queues a text message from user `chat_id` in a private chat.
    pub fn user_says(&self, chat_id: i64, text: &str) {
        self.push_message(chat_id, json!({"text": text}));
    }

    /// Queues a photo (JPEG bytes) with a caption from user `chat_id` in a private chat; the
    /// bot fetches it with `getFile` and the file download.
    pub fn user_sends_photo(&self, chat_id: i64, jpeg: Vec<u8>, caption: &str) {
        let (width, height) = image_size(&jpeg);
        let mut files = self.state.files.lock().unwrap();
        let n = files.len() + 1;
        let file_id = format!("photo-file-{n}");
        let size = jpeg.len();
        files.push((file_id.clone(), format!("photos/file_{n}.jpg"), jpeg));
        drop(files);
        self.push_message(
            chat_id,
            json!({"caption": caption, "photo": [{
                "file_id": file_id, "file_unique_id": format!("unique-{n}"),
                "width": width, "height": height, "file_size": size
            }]}),
        );
    }

    fn push_message(&self, chat_id: i64, fields: Value) {
        let mut updates = self.state.updates.lock().unwrap();
        let update_id = 9001
            + self
                .state
                .last_update_id
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut message = json!({
            "message_id": update_id,
            "from": {"id": chat_id, "is_bot": false, "first_name": "Ada", "username": "ada_test", "language_code": "en"},
            "chat": {"id": chat_id, "type": "private", "first_name": "Ada", "username": "ada_test"},
            "date": chrono_now(),
        });
        for (k, v) in fields.as_object().into_iter().flatten() {
            message[k] = v.clone();
        }
        updates.push(json!({"update_id": update_id, "message": message}));
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
            let args = arguments(request).await;
            let offset = args["offset"]
                .as_i64()
                .or_else(|| args["offset"].as_str().and_then(|s| s.parse().ok()))
                .unwrap_or(0);
            let pending: Vec<Value> = {
                let mut updates = state.updates.lock().unwrap();
                // An offset confirms every update before it (the Bot API's rule).
                updates.retain(|u| u["update_id"].as_i64().unwrap_or(0) >= offset);
                updates.clone()
            };
            if pending.is_empty() {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            ok(Value::Array(pending))
        }
        "getFile" => {
            let args = arguments(request).await;
            let id = args["file_id"].as_str().unwrap_or("");
            let files = state.files.lock().unwrap();
            match files.iter().find(|(file_id, _, _)| file_id == id) {
                Some((file_id, path, bytes)) => ok(json!({
                    "file_id": file_id, "file_unique_id": format!("u-{file_id}"),
                    "file_size": bytes.len(), "file_path": path
                })),
                None => (
                    axum::http::StatusCode::BAD_REQUEST,
                    axum::Json(json!({"ok": false, "error_code": 400, "description": "Bad Request: invalid file_id"})),
                )
                    .into_response(),
            }
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

/// A request's arguments: JSON body, form body or query string.
async fn arguments(request: axum::extract::Request) -> Value {
    let query = request.uri().query().unwrap_or("").to_string();
    let bytes = axum::body::to_bytes(request.into_body(), 1024 * 1024)
        .await
        .unwrap_or_default();
    if let Ok(v @ Value::Object(_)) = serde_json::from_slice::<Value>(&bytes) {
        return v;
    }
    let form = if bytes.is_empty() {
        query.into_bytes()
    } else {
        bytes.to_vec()
    };
    Value::Object(
        url::form_urlencoded::parse(&form)
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect(),
    )
}

async fn download(
    State(state): State<Arc<TelegramState>>,
    Path((_bot, path)): Path<(String, String)>,
) -> Response {
    state.calls.lock().unwrap().push(format!("file/{path}"));
    let files = state.files.lock().unwrap();
    match files.iter().find(|(_, p, _)| *p == path) {
        Some((_, _, bytes)) => ([("content-type", "image/jpeg")], bytes.clone()).into_response(),
        None => axum::http::StatusCode::NOT_FOUND.into_response(),
    }
}

/// A photo's width and height ((0, 0) when it does not decode).
fn image_size(bytes: &[u8]) -> (u32, u32) {
    image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .ok()
        .and_then(|r| r.into_dimensions().ok())
        .unwrap_or((0, 0))
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
