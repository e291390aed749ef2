//! Task operations behind the API: create (validate, price, reserve), read (with `?wait=`),
//! batch, cancel, upload, and the rendering of a stored task as the contract's JSON.

use crate::blob::FileKey;
use crate::db::{now_millis, CreateOutcome, InputFile, NewTask, TaskRecord, Terminal};
use crate::error::ApiError;
use crate::executor::ExecOutput;
use crate::service::Service;
use crate::time::rfc3339;
use crate::upload::{inspect_image, ImageLimits};
use bytes::Bytes;
use plume_core::{validate_content, Category, ErrorCode, TaskError, TaskStatus, TaskView};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// Longest `title` and `project_id`, in characters; largest `widget_mapping`, as JSON.
const MAX_TITLE_CHARS: usize = 200;
const MAX_WIDGET_MAPPING_BYTES: usize = 16 * 1024;
const MAX_IDEMPOTENCY_KEY_LEN: usize = 200;

/// The failure `code` a terminal status carries when the executor gave none.
fn default_error_code(status: TaskStatus) -> &'static str {
    match status {
        TaskStatus::Timeout => "TIMEOUT",
        TaskStatus::Cancelled => "CANCELLED",
        _ => "EXECUTION_FAILED",
    }
}

fn optional_text(obj: &Map<String, Value>, field: &str) -> Result<Option<String>, ApiError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= MAX_TITLE_CHARS => Ok(Some(s.clone())),
        Some(Value::Number(n)) if field == "project_id" => Ok(Some(n.to_string())),
        Some(Value::String(_)) => Err(ApiError::field(
            field,
            format!("must be at most {MAX_TITLE_CHARS} characters"),
        )),
        Some(_) => Err(ApiError::field(field, "must be a string")),
    }
}

/// Where in `content` (JSON pointers) the input URLs that are files of ours stand, with their
/// keys: kept as keys, so a queued task still finds its input after the public base changes.
fn own_inputs(
    content: &Value,
    stored: &std::collections::HashMap<&str, FileKey>,
) -> Vec<InputFile> {
    fn walk(value: &Value, pointer: &mut String, found: &mut dyn FnMut(&str, &str)) {
        match value {
            Value::String(s) => found(pointer, s),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let len = pointer.len();
                    pointer.push_str(&format!("/{i}"));
                    walk(item, pointer, found);
                    pointer.truncate(len);
                }
            }
            Value::Object(map) => {
                for (k, item) in map {
                    let len = pointer.len();
                    pointer.push('/');
                    pointer.push_str(&k.replace('~', "~0").replace('/', "~1"));
                    walk(item, pointer, found);
                    pointer.truncate(len);
                }
            }
            _ => {}
        }
    }
    let mut files = Vec::new();
    walk(content, &mut String::new(), &mut |pointer, text| {
        if let Some(key) = stored.get(text) {
            files.push(InputFile {
                pointer: pointer.to_string(),
                key: key.to_string(),
            });
        }
    });
    files
}

impl Service {
    /// Creates a task from a request body. Returns the task and whether it is new (`false`
    /// for a repeated Idempotency-Key).
    pub async fn create_task(
        &self,
        user_id: i64,
        body: &Value,
        idempotency_key: Option<&str>,
    ) -> Result<(TaskRecord, bool), ApiError> {
        let Value::Object(obj) = body else {
            return Err(ApiError::field("body", "must be a JSON object"));
        };
        let category_name = match obj.get("category") {
            Some(Value::String(s)) => s.as_str(),
            None | Some(Value::Null) => return Err(ApiError::field("category", "is required")),
            Some(_) => return Err(ApiError::field("category", "must be a string")),
        };
        let category = Category::parse(category_name)
            .ok_or_else(|| ApiError::field("category", Category::unknown_message(category_name)))?;
        let task_type =
            match obj.get("type") {
                None | Some(Value::Null) => None,
                Some(v) => Some(v.as_i64().filter(|t| (0..=1000).contains(t)).ok_or_else(
                    || ApiError::field("type", "must be a small non-negative integer"),
                )?),
            };
        let title = optional_text(obj, "title")?;
        let project_id = optional_text(obj, "project_id")?;
        let widget_mapping = match obj.get("widget_mapping") {
            None | Some(Value::Null) => None,
            Some(v @ Value::Object(_)) if v.to_string().len() <= MAX_WIDGET_MAPPING_BYTES => {
                Some(v.clone())
            }
            Some(Value::Object(_)) => {
                return Err(ApiError::field(
                    "widget_mapping",
                    format!("must be at most {MAX_WIDGET_MAPPING_BYTES} bytes"),
                ))
            }
            Some(_) => return Err(ApiError::field("widget_mapping", "must be an object")),
        };
        let content = obj
            .get("content")
            .ok_or_else(|| ApiError::field("content", "is required"))?;
        let validated = validate_content(category, content)?;
        if let Err(reason) = self.executors.ready(category) {
            return Err(ApiError::new(
                ErrorCode::CategoryUnavailable,
                format!("{category} is unavailable: {reason}"),
            ));
        }
        // Our own files among the inputs, found while checking them (no second look).
        let mut stored = std::collections::HashMap::new();
        for (i, url) in validated.image_urls.iter().enumerate() {
            let key = self.fetcher.check(url).await.map_err(|e| match e {
                crate::fetch::FetchError::Transient(m) => ApiError::internal(m),
                other => ApiError::field(&format!("content.imageUrls[{i}]"), other.to_string()),
            })?;
            if let Some(key) = key {
                stored.insert(url.as_str(), key);
            }
        }
        let idempotency = match idempotency_key.map(str::trim) {
            None => None,
            Some(k)
                if k.is_empty()
                    || k.len() > MAX_IDEMPOTENCY_KEY_LEN
                    || !k.bytes().all(|b| b.is_ascii_graphic()) =>
            {
                return Err(ApiError::field(
                    "Idempotency-Key",
                    format!("must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} visible ASCII characters"),
                ))
            }
            // serde_json maps are sorted, so equal bodies hash equal whatever their key order.
            Some(k) => Some((
                k.to_string(),
                hex::encode(Sha256::digest(body.to_string().as_bytes())),
            )),
        };
        let now = now_millis();
        let cost = self.config.prices.price(&validated);
        let new = NewTask {
            user_id,
            category,
            task_type,
            title,
            project_id,
            widget_mapping,
            input_files: own_inputs(content, &stored),
            content: content.clone(),
            credits_cost: i64::try_from(cost).map_err(ApiError::internal)?,
            idempotency,
            deadline_at: now + self.config.time_limit(category).as_millis() as i64,
        };
        match self.db.create_task(new, now).await? {
            CreateOutcome::Created(task) => {
                self.events.work_arrived(category);
                Ok((task, true))
            }
            CreateOutcome::Existing(task) => Ok((task, false)),
            CreateOutcome::IdempotencyConflict => Err(ApiError::new(
                ErrorCode::IdempotencyKeyReused,
                "this Idempotency-Key was already used with a different request",
            )),
            CreateOutcome::NoAccount => Err(ApiError::new(
                ErrorCode::CreditsAccountNotFound,
                "this key's user has no credits account; ask the operator to top it up",
            )),
            CreateOutcome::Insufficient { balance } => Err(ApiError {
                details: Some(json!({ "required": cost, "balance": balance })),
                ..ApiError::new(
                    ErrorCode::InsufficientCredits,
                    format!("this task costs {cost} credits; the balance is {balance}"),
                )
            }),
        }
    }

    /// One of the caller's tasks. With `wait`, holds until its status or progress changes or
    /// the time passes.
    pub async fn get_task(
        &self,
        user_id: i64,
        id: i64,
        wait: Option<Duration>,
    ) -> Result<TaskRecord, ApiError> {
        let mut events = self.events.subscribe();
        let task = self.owned_task(user_id, id).await?;
        let Some(wait) = wait.filter(|w| !w.is_zero() && !task.status.is_terminal()) else {
            return Ok(task);
        };
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Events from this process wake us at once; a slow re-read covers other processes.
            let tick = tokio::time::sleep(Duration::from_secs(1));
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return self.owned_task(user_id, id).await,
                _ = tick => {}
                event = events.recv() => match event {
                    Ok(changed) if changed != id => continue,
                    _ => {}
                },
            }
            let now = self.owned_task(user_id, id).await?;
            if now.status != task.status || now.progress != task.progress {
                return Ok(now);
            }
        }
    }

    async fn owned_task(&self, user_id: i64, id: i64) -> Result<TaskRecord, ApiError> {
        match self.db.task(id).await? {
            Some(t) if t.user_id == user_id => Ok(t),
            _ => Err(ApiError::not_found("task")),
        }
    }

    pub async fn batch(&self, user_id: i64, ids: &str) -> Result<Vec<TaskRecord>, ApiError> {
        let mut parsed = Vec::new();
        for part in ids.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let id = plume_core::parse_task_id(part)
                .ok_or_else(|| ApiError::field("ids", format!("{part:?} is not a task id")))?;
            if !parsed.contains(&id) {
                parsed.push(id);
            }
        }
        if parsed.is_empty() {
            return Err(ApiError::field(
                "ids",
                "give at least one task id: ?ids=1,2,3",
            ));
        }
        if parsed.len() > plume_core::MAX_BATCH_IDS {
            return Err(ApiError::field(
                "ids",
                format!("at most {} ids", plume_core::MAX_BATCH_IDS),
            ));
        }
        Ok(self.db.tasks_of(user_id, &parsed).await?)
    }

    /// Cancels a non-terminal task and refunds it. A terminal task is left as it is.
    pub async fn cancel_task(&self, user_id: i64, id: i64) -> Result<TaskRecord, ApiError> {
        let task = self.owned_task(user_id, id).await?;
        if task.status.is_terminal() {
            return Err(ApiError::field(
                "status",
                format!("task {id} is already {}", task.status.name()),
            ));
        }
        let terminal =
            Terminal::failure(TaskStatus::Cancelled, "CANCELLED", "cancelled by the user");
        if !self.db.finish(id, &terminal, None, now_millis()).await? {
            // It finished between our read and the compare-and-set.
            let now = self.owned_task(user_id, id).await?;
            return Err(ApiError::field(
                "status",
                format!("task {id} is already {}", now.status.name()),
            ));
        }
        self.events.task_changed(id);
        crate::retention::collect_orphans(self, id).await;
        if let (Some(executor), Some(job)) = (
            self.executors.get(task.category),
            task.upstream_job.as_ref(),
        ) {
            executor.cancelled(Some(job)).await;
        }
        self.owned_task(user_id, id).await
    }

    /// Checks and stores an uploaded image.
    pub async fn upload(&self, bytes: Bytes) -> Result<Value, ApiError> {
        let limits = ImageLimits {
            max_bytes: self.config.limits.upload_max_bytes,
            max_pixels: self.config.limits.upload_max_pixels,
        };
        let checked = bytes.clone();
        let info = tokio::task::spawn_blocking(move || inspect_image(&checked, limits))
            .await
            .map_err(ApiError::internal)?
            .map_err(|reason| ApiError::field("file", reason))?;
        let key = FileKey::new_upload(info.kind.ext());
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let size = bytes.len();
        self.blobs.put(&key, bytes).await.map_err(|e| {
            tracing::error!(error = %e, "upload write failed");
            ApiError::new(ErrorCode::UploadFailed, "storing the file failed; retry")
        })?;
        Ok(json!({
            "file_key": key.as_str(),
            "file_url": self.file_url(key.as_str()),
            "file_size": size,
            "width": info.width,
            "height": info.height,
            "content_type": info.kind.mime(),
            "sha256": sha256,
        }))
    }

    /// A task's content with its own-file inputs as URLs under today's public base.
    pub fn current_content(&self, task: &TaskRecord) -> Value {
        let mut content = task.content.clone();
        for file in &task.input_files {
            if let Some(slot) = content.pointer_mut(&file.pointer) {
                *slot = Value::String(self.file_url(&file.key));
            }
        }
        content
    }

    /// `result` as the contract shows it: output URLs on success, the reason on failure.
    pub fn render_result(&self, task: &TaskRecord) -> Value {
        match task.status {
            TaskStatus::Success => match task
                .output
                .clone()
                .map(serde_json::from_value::<ExecOutput>)
            {
                Some(Ok(ExecOutput::Images { images })) => {
                    let urls: Vec<String> = images.iter().map(|i| self.file_url(&i.key)).collect();
                    let first = images.first();
                    json!({
                        "imageUrl": urls.first(),
                        "imageUrls": urls,
                        "width": first.map(|i| i.width),
                        "height": first.map(|i| i.height),
                        "mimeType": first.map(|i| i.mime.as_str()),
                    })
                }
                Some(Ok(ExecOutput::Videos { parts })) => {
                    let parts: Vec<Value> = parts
                        .iter()
                        .map(|p| {
                            let mut part = json!({
                                "videoUrl": self.file_url(&p.key), "duration": p.duration, "mimeType": p.mime,
                            });
                            if let Some(poster) = &p.poster_key {
                                part["posterUrl"] = json!(self.file_url(poster));
                            }
                            part
                        })
                        .collect();
                    json!({ "parts": parts })
                }
                _ => Value::Null,
            },
            s if s.is_terminal() => json!(task
                .error_message
                .clone()
                .unwrap_or_else(|| s.name().to_string())),
            _ => Value::Null,
        }
    }

    /// A task as the contract shows it.
    pub fn task_view(&self, task: &TaskRecord) -> TaskView {
        let error = match task.status {
            TaskStatus::Failed | TaskStatus::Timeout | TaskStatus::Cancelled => Some(TaskError {
                code: task
                    .error_code
                    .clone()
                    .unwrap_or_else(|| default_error_code(task.status).into()),
                message: task.error_message.clone().unwrap_or_default(),
            }),
            _ => None,
        };
        TaskView {
            id: task.id,
            category: task.category.as_str().to_string(),
            task_type: task.task_type,
            status: i64::from(task.status.code()),
            status_text: task.status.name().to_string(),
            title: task.title.clone(),
            project_id: task.project_id.clone(),
            content: self.current_content(task),
            result: self.render_result(task),
            error,
            credits_cost: task.credits_cost,
            progress: task.progress,
            created_at: rfc3339(task.created_at),
            started_at: task.started_at.map(rfc3339),
            finished_at: task.finished_at.map(rfc3339),
        }
    }
}
