//! The executor seam: what turns validated content into output files.
//!
//! An executor gets the validated content and an [`ExecContext`] (blob store, image fetcher,
//! an HTTP client, the task's saved upstream job) and returns output files or an
//! [`ExecError`] that says whether a retry could help. Executors never touch credits or
//! status: the worker does, in one transaction, after the executor returns.
//!
//! A long-running upstream job must be saved with [`ExecContext::save_upstream_job`] *before*
//! waiting on it; after a crash the next attempt finds it in [`ExecContext::upstream_job`] and
//! resumes instead of submitting (and paying for) the job again.

use crate::blob::{BlobStore, FileKey};
use crate::db::Database;
use crate::fetch::{FetchError, Fetcher};
use async_trait::async_trait;
use bytes::Bytes;
use plume_core::{Category, ValidatedContent};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// One output image, stored in the blob store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputImage {
    pub key: String,
    pub width: u32,
    pub height: u32,
    pub mime: String,
}

/// One output video, stored in the blob store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputVideo {
    pub key: String,
    pub duration: f64,
    pub mime: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poster_key: Option<String>,
}

/// What a successful execution produced; kept on the task and rendered as `result`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ExecOutput {
    Images { images: Vec<OutputImage> },
    Videos { parts: Vec<OutputVideo> },
}

/// Why an execution failed. `message` is shown to the chat user: make it actionable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecError {
    pub code: String,
    pub message: String,
    pub retryable: bool,
}

impl ExecError {
    /// A failure a retry cannot fix (bad input, content policy, a missing file).
    pub fn permanent(code: &str, message: impl Into<String>) -> ExecError {
        ExecError {
            code: code.into(),
            message: message.into(),
            retryable: false,
        }
    }

    /// A failure a later attempt may not meet (network, 5xx, rate limits).
    pub fn retryable(code: &str, message: impl Into<String>) -> ExecError {
        ExecError {
            code: code.into(),
            message: message.into(),
            retryable: true,
        }
    }
}

impl From<FetchError> for ExecError {
    fn from(e: FetchError) -> ExecError {
        let retryable = e.is_retryable();
        ExecError {
            code: "INPUT_UNAVAILABLE".into(),
            message: e.to_string(),
            retryable,
        }
    }
}

#[async_trait]
pub trait Executor: Send + Sync + 'static {
    async fn execute(
        &self,
        content: &ValidatedContent,
        ctx: &ExecContext,
    ) -> Result<ExecOutput, ExecError>;

    /// `Err(reason)` while the executor cannot run (a model file missing, no key configured):
    /// creates answer CATEGORY_UNAVAILABLE with the reason and `/readyz` lists it.
    fn readiness(&self) -> Result<(), String> {
        Ok(())
    }

    /// Called once when a running task was cancelled, with its saved upstream job, so an
    /// upstream job can be cancelled too. Best effort.
    async fn cancelled(&self, _upstream_job: Option<&Value>) {}
}

/// The executors of one server, by category. A category without one is unavailable.
#[derive(Clone, Default)]
pub struct Executors {
    by_category: HashMap<Category, Arc<dyn Executor>>,
}

impl Executors {
    pub fn new() -> Executors {
        Executors::default()
    }

    pub fn with(mut self, category: Category, executor: Arc<dyn Executor>) -> Executors {
        self.by_category.insert(category, executor);
        self
    }

    /// Adds `other`'s executors, replacing ours for the same category.
    pub fn merge(mut self, other: Executors) -> Executors {
        self.by_category.extend(other.by_category);
        self
    }

    pub fn get(&self, category: Category) -> Option<&Arc<dyn Executor>> {
        self.by_category.get(&category)
    }

    /// The executor when it exists and is ready, else the reason it is unavailable.
    pub fn ready(&self, category: Category) -> Result<&Arc<dyn Executor>, String> {
        let executor = self
            .get(category)
            .ok_or_else(|| format!("this server has no executor configured for {category}"))?;
        executor.readiness()?;
        Ok(executor)
    }
}

/// What an executor may use while it runs one task.
pub struct ExecContext {
    pub task_id: i64,
    /// 1 for the first attempt; higher after a retry or a crash.
    pub attempt: u32,
    pub blobs: Arc<dyn BlobStore>,
    pub fetcher: Arc<Fetcher>,
    /// For upstream provider calls (their base URLs are operator configuration).
    pub http: reqwest::Client,
    pub(crate) db: Arc<dyn Database>,
    pub(crate) events: Arc<crate::events::TaskEvents>,
    pub(crate) owner: String,
    pub(crate) upstream_job: Option<Value>,
    /// The attempt's result writes. Each runs as a task of its own, so abandoning the
    /// attempt (lease lost, deadline, shutdown) does not drop a write half-way; the worker
    /// waits for these before it collects the task's orphan files, or a write still in
    /// flight would land after the sweep and be named by nothing.
    pub(crate) writes: tokio_util::task::TaskTracker,
}

impl ExecContext {
    /// The upstream job a previous attempt saved, if any.
    pub fn upstream_job(&self) -> Option<&Value> {
        self.upstream_job.as_ref()
    }

    /// Saves the upstream job on the task; do this before waiting for the job.
    pub async fn save_upstream_job(&self, job: Value) -> Result<(), ExecError> {
        match self
            .db
            .save_upstream_job(self.task_id, &self.owner, &job)
            .await
        {
            Ok(true) => Ok(()),
            Ok(false) => Err(ExecError::permanent(
                "LEASE_LOST",
                "the task is no longer ours",
            )),
            Err(e) => Err(ExecError::retryable("STORE_ERROR", e.to_string())),
        }
    }

    /// Reports progress, 0 to 99 (100 is set on success); `?wait=` readers wake on it.
    pub async fn set_progress(&self, percent: u8) {
        if let Ok(true) = self
            .db
            .set_progress(self.task_id, &self.owner, i64::from(percent))
            .await
        {
            self.events.task_changed(self.task_id);
        }
    }

    /// Reads an input image named by the content, under the SSRF policy.
    pub async fn fetch_image(&self, url: &str) -> Result<Bytes, ExecError> {
        Ok(self.fetcher.fetch(url).await?)
    }

    /// Stores an output image, typed and sized from its own bytes; `source` names who made it
    /// for the error when the bytes are not an image.
    pub async fn store_image(
        &self,
        bytes: Vec<u8>,
        source: &str,
    ) -> Result<OutputImage, ExecError> {
        let (kind, width, height) = crate::upload::image_info(&bytes).ok_or_else(|| {
            ExecError::permanent(
                "UPSTREAM_ERROR",
                format!("{source} returned data that is not a readable image"),
            )
        })?;
        let key = self.store_output(bytes.into(), kind.ext()).await?;
        Ok(OutputImage {
            key: key.to_string(),
            width,
            height,
            mime: kind.mime().into(),
        })
    }

    /// Stores an output file under `results/<task id>/` and returns its key.
    pub async fn store_output(&self, bytes: Bytes, ext: &str) -> Result<FileKey, ExecError> {
        let key = FileKey::new_result(self.task_id, ext);
        let (blobs, write_key) = (self.blobs.clone(), key.clone());
        let written = self
            .writes
            .spawn(async move { blobs.put(&write_key, bytes).await })
            .await;
        match written {
            Ok(Ok(_)) => Ok(key),
            Ok(Err(e)) => Err(ExecError::retryable(
                "STORE_ERROR",
                format!("storing the result failed: {e}"),
            )),
            Err(e) => Err(ExecError::retryable(
                "STORE_ERROR",
                format!("storing the result stopped: {e}"),
            )),
        }
    }
}
