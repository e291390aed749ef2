//! A fake of the upstream providers on loopback, speaking their documented wire formats
//! (PROVIDERS.md): Gemini `generateContent` and `predictLongRunning` with operation polling and
//! file download, Vertex AI `fetchPredictOperation` and the OAuth token endpoint, and Ark's
//! image generation and content-generation tasks.
//!
//! It records every request (method, path, headers, JSON body) so tests can assert exactly
//! what Plume sent, answers with sensible successes by default, and takes scripted answers
//! per route (`push`) for errors, delays and odd replies. `hold` keeps long-running jobs
//! running until released, and submissions are counted per route.

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use plume_server::providers::media::{b64_encode, minimal_mp4};
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Value,
    pub raw: String,
}

/// A scripted answer: status, JSON body, and how long to wait before answering.
#[derive(Debug, Clone)]
pub struct Canned {
    pub status: u16,
    pub body: Value,
    pub delay_ms: u64,
}

impl Canned {
    pub fn status(status: u16, body: Value) -> Canned {
        Canned {
            status,
            body,
            delay_ms: 0,
        }
    }
    pub fn delayed(ms: u64) -> Canned {
        Canned {
            status: 0,
            body: Value::Null,
            delay_ms: ms,
        }
    }
}

#[derive(Default)]
struct FakeState {
    base: String,
    records: Mutex<Vec<Recorded>>,
    queues: Mutex<HashMap<&'static str, VecDeque<Canned>>>,
    polls: Mutex<HashMap<String, usize>>,
    counter: Mutex<u64>,
    hold: AtomicBool,
    video_ms: Mutex<u32>,
}

pub struct FakeUpstream {
    pub base: String,
    state: Arc<FakeState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A small PNG of the given size.
pub fn png(w: u32, h: u32) -> Vec<u8> {
    let img =
        image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 9) as u8, (y * 5) as u8, 200]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("png encodes");
    out.into_inner()
}

fn route_of(method: &str, path: &str) -> &'static str {
    match (method, path) {
        ("POST", p) if p.ends_with(":generateContent") => "gemini.generate",
        ("POST", p) if p.ends_with(":predictLongRunning") => "veo.submit",
        ("POST", p) if p.ends_with(":fetchPredictOperation") => "veo.poll",
        ("GET", p) if p.contains("/operations/") => "veo.poll",
        ("POST", "/token") => "token",
        ("POST", p) if p.ends_with("/images/generations") => "ark.images",
        ("POST", p) if p.ends_with("/contents/generations/tasks") => "ark.submit",
        ("GET", p) if p.contains("/contents/generations/tasks/") => "ark.poll",
        ("DELETE", p) if p.contains("/contents/generations/tasks/") => "ark.delete",
        ("GET", p) if p.starts_with("/dl/") => "download",
        _ => "unknown",
    }
}

impl FakeUpstream {
    pub async fn start() -> FakeUpstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let state = Arc::new(FakeState {
            base: base.clone(),
            video_ms: Mutex::new(7500),
            ..Default::default()
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeUpstream { base, state, task }
    }

    /// Queues a scripted answer for a route (`gemini.generate`, `veo.submit`, `veo.poll`,
    /// `token`, `ark.images`, `ark.submit`, `ark.poll`, `ark.delete`, `download`).
    pub fn push(&self, route: &'static str, canned: Canned) {
        self.state
            .queues
            .lock()
            .unwrap()
            .entry(route)
            .or_default()
            .push_back(canned);
    }

    /// While held, long-running jobs stay running.
    pub fn hold(&self, on: bool) {
        self.state.hold.store(on, Ordering::SeqCst);
    }

    /// The duration of the MP4s the download route serves.
    pub fn set_video_ms(&self, ms: u32) {
        *self.state.video_ms.lock().unwrap() = ms;
    }

    pub fn requests(&self, route: &str) -> Vec<Recorded> {
        self.state
            .records
            .lock()
            .unwrap()
            .iter()
            .filter(|r| route_of(&r.method, &r.path) == route)
            .cloned()
            .collect()
    }

    pub fn count(&self, route: &str) -> usize {
        self.requests(route).len()
    }

    pub fn clear(&self) {
        self.state.records.lock().unwrap().clear();
    }
}

fn next_id(state: &FakeState) -> u64 {
    let mut c = state.counter.lock().unwrap();
    *c += 1;
    *c
}

fn json_response(status: u16, body: Value) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
        axum::Json(body),
    )
        .into_response()
}

async fn handle(State(state): State<Arc<FakeState>>, request: Request) -> Response {
    let method = request.method().to_string();
    let path = request.uri().path().to_string();
    let headers: HashMap<String, String> = request
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let body: Bytes = axum::body::to_bytes(request.into_body(), 64 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let raw = String::from_utf8_lossy(&body).to_string();
    let json_body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    state.records.lock().unwrap().push(Recorded {
        method: method.clone(),
        path: path.clone(),
        headers,
        body: json_body.clone(),
        raw,
    });
    let route = route_of(&method, &path);
    let canned = state
        .queues
        .lock()
        .unwrap()
        .get_mut(route)
        .and_then(VecDeque::pop_front);
    if let Some(c) = canned {
        if c.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(c.delay_ms)).await;
        }
        if c.status != 0 {
            return json_response(c.status, c.body);
        }
    }
    default_answer(&state, route, &path, &json_body)
}

fn default_answer(state: &FakeState, route: &str, path: &str, body: &Value) -> Response {
    let base = &state.base;
    match route {
        "gemini.generate" if body.get("generationConfig").is_none() => json_response(
            200,
            json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "A small test picture with a colour gradient."}]}, "finishReason": "STOP"}],
                   "usageMetadata": {"promptTokenCount": 260, "candidatesTokenCount": 12, "totalTokenCount": 272}}),
        ),
        "gemini.generate" => json_response(
            200,
            json!({"candidates": [{"content": {"role": "model", "parts": [
                {"text": "Here is the image."},
                {"inlineData": {"mimeType": "image/png", "data": b64_encode(&png(32, 24))}},
            ]}, "finishReason": "STOP"}], "usageMetadata": {"totalTokenCount": 1300}}),
        ),
        "veo.submit" => {
            let model = path
                .rsplit('/')
                .next()
                .unwrap_or("")
                .split(':')
                .next()
                .unwrap_or("");
            json_response(
                200,
                json!({"name": format!("models/{model}/operations/op-{}", next_id(state))}),
            )
        }
        "veo.poll" => {
            let op = match body.get("operationName").and_then(Value::as_str) {
                Some(name) => name.to_string(),
                None => path.trim_start_matches('/').to_string(),
            };
            let n = {
                let mut polls = state.polls.lock().unwrap();
                let n = polls.entry(op.clone()).or_default();
                *n += 1;
                *n
            };
            if n < 2 || state.hold.load(Ordering::SeqCst) {
                return json_response(
                    200,
                    json!({"name": op, "metadata": {"@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningMetadata"}}),
                );
            }
            let id = op.rsplit('/').next().unwrap_or("op");
            if path.ends_with(":fetchPredictOperation") {
                let video = minimal_mp4(*state.video_ms.lock().unwrap());
                json_response(
                    200,
                    json!({"name": op, "done": true, "response": {
                    "@type": "type.googleapis.com/cloud.ai.large_models.vision.GenerateVideoResponse",
                    "videos": [{"bytesBase64Encoded": b64_encode(&video), "mimeType": "video/mp4"}]}}),
                )
            } else {
                json_response(
                    200,
                    json!({"name": op, "done": true, "response": {
                    "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse",
                    "generateVideoResponse": {"generatedSamples": [{"video": {"uri": format!("{base}/dl/{id}.mp4?alt=media")}}]}}}),
                )
            }
        }
        "token" => json_response(
            200,
            json!({"access_token": "ya29.test-access-token", "expires_in": 3599, "token_type": "Bearer"}),
        ),
        "ark.images" => json_response(
            200,
            json!({"model": body.get("model"), "created": 1757321139,
                   "data": [{"b64_json": b64_encode(&png(40, 30)), "size": "40x30"}],
                   "usage": {"generated_images": 1, "output_tokens": 4, "total_tokens": 4}}),
        ),
        "ark.submit" => json_response(200, json!({"id": format!("cgt-{}", next_id(state))})),
        "ark.poll" => {
            let id = path.rsplit('/').next().unwrap_or("").to_string();
            let n = {
                let mut polls = state.polls.lock().unwrap();
                let n = polls.entry(id.clone()).or_default();
                *n += 1;
                *n
            };
            let status = match n {
                1 => "queued",
                _ if state.hold.load(Ordering::SeqCst) => "running",
                2 => "running",
                _ => "succeeded",
            };
            let mut task = json!({"id": id, "model": "doubao-seedance-2-0-260128", "status": status, "error": null,
                                  "created_at": 1760000000, "updated_at": 1760000090});
            if status == "succeeded" {
                task["content"] = json!({"video_url": format!("{base}/dl/{id}.mp4"), "last_frame_url": format!("{base}/dl/{id}-last.png")});
                task["duration"] = json!(5);
                task["usage"] = json!({"completion_tokens": 108900, "total_tokens": 108900});
            }
            json_response(200, task)
        }
        "ark.delete" => json_response(200, json!({})),
        "download" if path.ends_with(".png") => {
            ([("content-type", "image/png")], png(20, 36)).into_response()
        }
        "download" => (
            [("content-type", "video/mp4")],
            minimal_mp4(*state.video_ms.lock().unwrap()),
        )
            .into_response(),
        _ => json_response(
            404,
            json!({"error": {"code": 404, "message": format!("no route {path}"), "status": "NOT_FOUND"}}),
        ),
    }
}
