//! The Plume Open API as the client sees it: every answer read as the contract's envelope; a
//! body that is not JSON (a proxy's HTML page) becomes `HTTP_<status>`; a network failure
//! becomes `NETWORK_ERROR`. The key goes only into the Authorization header.

use bytes::Bytes;
use plume_core::TaskView;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

/// A failed call: the contract's code (or `HTTP_<status>`, `NETWORK_ERROR`) and a message.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiFailure {
    pub code: String,
    pub message: String,
    /// The HTTP status, when there was an answer.
    pub status: Option<u16>,
}

impl ApiFailure {
    pub fn new(code: &str, message: impl Into<String>) -> ApiFailure {
        ApiFailure {
            code: code.into(),
            message: message.into(),
            status: None,
        }
    }

    /// The answer will not change (the poller ends the job): the contract's rule, from
    /// `plume-core`.
    pub fn is_permanent(&self) -> bool {
        plume_core::ErrorCode::parse(&self.code).is_some_and(plume_core::ErrorCode::is_permanent)
    }

    pub fn to_json(&self) -> Value {
        json!({"success": false, "code": self.code, "error": self.message})
    }
}

pub struct Api {
    pub base: String,
    key: String,
    http: reqwest::Client,
}

impl Api {
    pub fn new(base: &str, key: &str) -> Api {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            .user_agent(concat!("plume/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client builds");
        Api {
            base: base.trim_end_matches('/').to_string(),
            key: key.to_string(),
            http,
        }
    }

    async fn read(&self, request: reqwest::RequestBuilder) -> Result<Value, ApiFailure> {
        let response = request.bearer_auth(&self.key).send().await.map_err(|e| {
            let mut m = e.to_string();
            if let Some(u) = e.url() {
                m = m.replace(u.as_str(), "");
            }
            ApiFailure::new(
                "NETWORK_ERROR",
                format!(
                    "cannot reach {}: {}",
                    self.base,
                    root_cause(&e).unwrap_or(m)
                ),
            )
        })?;
        let status = response.status().as_u16();
        let text = response.bytes().await.unwrap_or_default();
        let envelope: Option<Value> = serde_json::from_slice(&text)
            .ok()
            .filter(|v: &Value| v.get("success").is_some());
        match envelope {
            Some(env) if env["success"] == true => {
                Ok(env.get("data").cloned().unwrap_or(Value::Null))
            }
            Some(env) => Err(ApiFailure {
                code: env["code"].as_str().unwrap_or("ERROR").to_string(),
                message: env["message"]
                    .as_str()
                    .unwrap_or("request failed")
                    .to_string(),
                status: Some(status),
            }),
            None => Err(ApiFailure {
                code: format!("HTTP_{status}"),
                message: format!(
                    "{} answered HTTP {status} with a body that is not the Plume API's JSON",
                    self.base
                ),
                status: Some(status),
            }),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn validate(&self) -> Result<Value, ApiFailure> {
        self.read(self.http.get(self.url("/api/open/validate")))
            .await
    }

    pub async fn create(
        &self,
        body: &Value,
        idempotency_key: Option<&str>,
    ) -> Result<Value, ApiFailure> {
        let mut request = self.http.post(self.url("/api/open/tasks")).json(body);
        if let Some(k) = idempotency_key {
            request = request.header("Idempotency-Key", k);
        }
        self.read(request).await
    }

    /// One task; with `wait`, the server may hold the answer until the task changes.
    pub async fn task(&self, id: i64, wait: Option<u64>) -> Result<TaskView, ApiFailure> {
        let path = match wait {
            Some(w) if w > 0 => format!("/api/open/tasks/{id}?wait={w}"),
            _ => format!("/api/open/tasks/{id}"),
        };
        self.read(
            self.http
                .get(self.url(&path))
                .timeout(Duration::from_secs(wait.unwrap_or(0) + 60)),
        )
        .await
        .and_then(task_view)
    }

    pub async fn tasks(&self, ids: &[i64]) -> Result<Vec<TaskView>, ApiFailure> {
        let list: Vec<String> = ids.iter().map(i64::to_string).collect();
        let data = self
            .read(
                self.http
                    .get(self.url(&format!("/api/open/tasks/batch?ids={}", list.join(",")))),
            )
            .await?;
        match data {
            Value::Array(items) => items.into_iter().map(task_view).collect(),
            other => Err(ApiFailure::new(
                "BAD_RESPONSE",
                format!("the batch answer is not a list: {other}"),
            )),
        }
    }

    pub async fn cancel(&self, id: i64) -> Result<Value, ApiFailure> {
        self.read(
            self.http
                .post(self.url(&format!("/api/open/tasks/{id}/cancel"))),
        )
        .await
    }

    pub async fn upload(&self, bytes: Vec<u8>, name: &str) -> Result<Value, ApiFailure> {
        let part = reqwest::multipart::Part::bytes(bytes).file_name(name.to_string());
        let form = reqwest::multipart::Form::new().part("file", part);
        self.read(
            self.http
                .post(self.url("/api/open/upload"))
                .multipart(form)
                .timeout(Duration::from_secs(300)),
        )
        .await
    }
}

fn root_cause(e: &dyn std::error::Error) -> Option<String> {
    let mut source = e.source();
    let mut last = None;
    while let Some(s) = source {
        last = Some(s.to_string());
        source = s.source();
    }
    last
}

/// Downloads `url` to `dest` atomically (temporary name in the same folder, then rename),
/// refusing more than `max` bytes. Returns the Content-Type.
pub async fn download(url: &str, dest: &Path, max: u64) -> anyhow::Result<Option<String>> {
    use futures::StreamExt;
    use std::io::Write;
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(15))
        .timeout(Duration::from_secs(600))
        .build()?;
    let response = http.get(url).send().await?.error_for_status()?;
    if response.content_length().is_some_and(|n| n > max) {
        anyhow::bail!("the result is larger than {max} bytes");
    }
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let tmp = crate::store::temp_path(dest);
    let result = async {
        let mut file = std::fs::File::create(&tmp)?;
        let mut written = 0u64;
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk: Bytes = chunk?;
            written += chunk.len() as u64;
            if written > max {
                anyhow::bail!("the result is larger than {max} bytes");
            }
            file.write_all(&chunk)?;
        }
        file.sync_all()?;
        std::fs::rename(&tmp, dest)?;
        Ok(())
    }
    .await;
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map(|_| content_type)
}

/// A task from the API's `data`, or BAD_RESPONSE naming what was wrong with it.
fn task_view(data: Value) -> Result<TaskView, ApiFailure> {
    serde_json::from_value(data).map_err(|e| {
        ApiFailure::new(
            "BAD_RESPONSE",
            format!("the server sent a task that cannot be read: {e}"),
        )
    })
}
