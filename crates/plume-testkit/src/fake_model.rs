//! A scripted OpenAI-compatible chat model on loopback, so the real OpenClaw can run a whole
//! agent turn offline (OPENCLAW.md, "Driving a whole agent turn offline"). OpenClaw is pointed
//! at it as a custom provider (`"api": "openai-completions"`, `baseUrl` = [`ScriptedModel::base_url`]).
//!
//! Every `POST /v1/chat/completions` body is recorded, and the reply is whatever the test's
//! script returns for it: one tool call or a text answer, streamed as Server-Sent Events the
//! way OpenAI streams them (or as one JSON object when `stream` is false). The script sees the
//! request through [`ModelRequest`], which knows OpenClaw's habits: the user message it appends
//! after tool results (`<<<BEGIN_OPENCLAW_INTERNAL_CONTEXT>>>`) is not the user speaking.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

/// Marks the user-role messages OpenClaw writes itself (after tool results).
pub const INTERNAL_CONTEXT: &str = "<<<BEGIN_OPENCLAW_INTERNAL_CONTEXT>>>";

/// What the scripted model answers.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Call one tool with these JSON arguments.
    Tool { name: String, arguments: Value },
    /// Answer with text, which ends the turn.
    Text(String),
}

impl Reply {
    /// A call of OpenClaw's `exec` tool.
    pub fn exec(command: impl Into<String>) -> Reply {
        Reply::Tool {
            name: "exec".into(),
            arguments: json!({"command": command.into()}),
        }
    }
}

/// One chat-completions request, as the script sees it.
#[derive(Debug, Clone)]
pub struct ModelRequest {
    pub body: Value,
}

/// The text of a message's `content`: a string, or the text parts of an array.
pub fn content_text(message: &Value) -> String {
    match &message["content"] {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

impl ModelRequest {
    pub fn messages(&self) -> &[Value] {
        self.body["messages"].as_array().map_or(&[], Vec::as_slice)
    }

    /// The system (or developer) prompt.
    pub fn system(&self) -> String {
        self.messages()
            .iter()
            .filter(|m| m["role"] == "system" || m["role"] == "developer")
            .map(content_text)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Index of the last message the user wrote (not OpenClaw's internal context).
    fn user_index(&self) -> Option<usize> {
        self.messages()
            .iter()
            .rposition(|m| m["role"] == "user" && !content_text(m).contains(INTERNAL_CONTEXT))
    }

    /// The text of the last message the user wrote.
    pub fn user_text(&self) -> String {
        self.user_index()
            .map(|i| content_text(&self.messages()[i]))
            .unwrap_or_default()
    }

    /// The results of the tools called since the user last spoke, oldest first.
    pub fn tool_results(&self) -> Vec<String> {
        let from = self.user_index().map_or(0, |i| i + 1);
        self.messages()[from..]
            .iter()
            .filter(|m| m["role"] == "tool")
            .map(content_text)
            .collect()
    }

    /// Names of the tools offered.
    pub fn tool_names(&self) -> Vec<String> {
        self.body["tools"]
            .as_array()
            .map(|tools| {
                tools
                    .iter()
                    .filter_map(|t| t["function"]["name"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }
}

type Script = dyn Fn(&ModelRequest) -> Reply + Send + Sync;

struct ModelState {
    script: Box<Script>,
    requests: Mutex<Vec<Value>>,
    replies: Mutex<Vec<Reply>>,
}

pub struct ScriptedModel {
    /// `http://127.0.0.1:<port>/v1`
    pub base_url: String,
    state: Arc<ModelState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ScriptedModel {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ScriptedModel {
    pub async fn start(
        script: impl Fn(&ModelRequest) -> Reply + Send + Sync + 'static,
    ) -> ScriptedModel {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base_url = format!("http://{}/v1", listener.local_addr().expect("addr"));
        let state = Arc::new(ModelState {
            script: Box::new(script),
            requests: Mutex::new(Vec::new()),
            replies: Mutex::new(Vec::new()),
        });
        let app = axum::Router::new()
            .route("/v1/chat/completions", axum::routing::post(complete))
            .route("/v1/models", axum::routing::get(models))
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        ScriptedModel {
            base_url,
            state,
            task,
        }
    }

    /// Every request body received, in order.
    pub fn requests(&self) -> Vec<ModelRequest> {
        let requests = self.state.requests.lock().unwrap();
        requests
            .iter()
            .map(|body| ModelRequest { body: body.clone() })
            .collect()
    }

    /// Every reply given, in order (one per request).
    pub fn replies(&self) -> Vec<Reply> {
        self.state.replies.lock().unwrap().clone()
    }

    /// The `models.providers` entry of `openclaw.json` for this model, named `id`.
    pub fn provider_config(&self, id: &str) -> Value {
        json!({
            "baseUrl": self.base_url,
            "apiKey": "scripted-model-key",
            "api": "openai-completions",
            "models": [{
                "id": id, "name": "Scripted test model", "reasoning": false,
                "input": ["text", "image"],
                "cost": {"input": 0, "output": 0, "cacheRead": 0, "cacheWrite": 0},
                "contextWindow": 128000, "maxTokens": 4096
            }]
        })
    }
}

async fn models() -> Response {
    axum::Json(json!({"object": "list", "data": [{"id": "scripted", "object": "model"}]}))
        .into_response()
}

async fn complete(State(state): State<Arc<ModelState>>, body: axum::body::Bytes) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return (axum::http::StatusCode::BAD_REQUEST, "not JSON").into_response();
    };
    state.requests.lock().unwrap().push(body.clone());
    let stream = body["stream"].as_bool().unwrap_or(false);
    let model = body["model"].as_str().unwrap_or("scripted").to_string();
    let reply = (state.script)(&ModelRequest { body });
    let n = {
        let mut replies = state.replies.lock().unwrap();
        replies.push(reply.clone());
        replies.len()
    };
    let id = format!("chatcmpl-{n}");
    let (message, finish) = match &reply {
        Reply::Text(text) => (json!({"role": "assistant", "content": text}), "stop"),
        Reply::Tool { name, arguments } => (
            json!({"role": "assistant", "content": null, "tool_calls": [{
                "index": 0, "id": format!("call_{n}"), "type": "function",
                "function": {"name": name, "arguments": arguments.to_string()}
            }]}),
            "tool_calls",
        ),
    };
    let usage = json!({"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15});
    if !stream {
        return axum::Json(json!({
            "id": id, "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": usage,
        }))
        .into_response();
    }
    let chunk = |choices: Value| {
        format!(
            "data: {}\n\n",
            json!({"id": id, "object": "chat.completion.chunk", "created": 0, "model": model, "choices": choices})
        )
    };
    let mut sse = chunk(json!([{"index": 0, "delta": message, "finish_reason": null}]));
    sse += &chunk(json!([{"index": 0, "delta": {}, "finish_reason": finish}]));
    sse += &format!(
        "data: {}\n\n",
        json!({"id": id, "object": "chat.completion.chunk", "created": 0, "model": model, "choices": [], "usage": usage})
    );
    sse += "data: [DONE]\n\n";
    (
        [
            ("content-type", "text/event-stream"),
            ("cache-control", "no-cache"),
        ],
        sse,
    )
        .into_response()
}
