//! The database boundary: one trait, [`Database`], over everything the server keeps.
//!
//! Invariants every implementation keeps (and the tests check against the real thing):
//! * a task's status only moves forward, by compare-and-set;
//! * credits move with status in the same transaction: reserve on create, capture on
//!   success, refund in full on failed / timeout / cancelled;
//! * a `(task, kind)` ledger entry is written at most once (a unique index, not a promise);
//! * `balance = topups - reserves + refunds` for every account.
//!
//! SQLite is the zero-setup implementation ([`sqlite::SqliteDatabase`]); the trait is the seam
//! where PostgreSQL plugs in.

pub mod sqlite;

use async_trait::async_trait;
use plume_core::{Category, TaskStatus};
use serde_json::Value;

pub type DbResult<T> = Result<T, DbError>;

#[derive(Debug, Clone, thiserror::Error)]
pub enum DbError {
    /// A conflicting writer held the database past the busy timeout; safe to retry.
    #[error("database busy")]
    Busy,
    #[error("database error: {0}")]
    Other(String),
}

/// Milliseconds since the Unix epoch: how every time is stored.
pub type Millis = i64;

pub fn now_millis() -> Millis {
    chrono::Utc::now().timestamp_millis()
}

/// One task as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRecord {
    pub id: i64,
    pub user_id: i64,
    pub category: Category,
    pub task_type: Option<i64>,
    pub title: Option<String>,
    pub project_id: Option<String>,
    pub widget_mapping: Option<Value>,
    /// The content as the client sent it.
    pub content: Value,
    pub status: TaskStatus,
    pub progress: i64,
    /// What the executor produced (file keys, sizes); rendered to `result` on read.
    pub output: Option<Value>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub credits_cost: i64,
    /// An executor's saved upstream job, so a restart resumes it instead of paying again.
    pub upstream_job: Option<Value>,
    pub attempts: i64,
    pub created_at: Millis,
    pub started_at: Option<Millis>,
    pub finished_at: Option<Millis>,
    pub deadline_at: Millis,
}

/// What `create_task` stores.
#[derive(Debug, Clone)]
pub struct NewTask {
    pub user_id: i64,
    pub category: Category,
    pub task_type: Option<i64>,
    pub title: Option<String>,
    pub project_id: Option<String>,
    pub widget_mapping: Option<Value>,
    pub content: Value,
    pub credits_cost: i64,
    /// `(Idempotency-Key, hash of the request)`.
    pub idempotency: Option<(String, String)>,
    pub deadline_at: Millis,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CreateOutcome {
    Created(TaskRecord),
    /// The same Idempotency-Key with the same request: the first task, nothing charged.
    Existing(TaskRecord),
    /// The same Idempotency-Key with a different request.
    IdempotencyConflict,
    NoAccount,
    Insufficient {
        balance: i64,
    },
}

/// A terminal status with what goes with it.
#[derive(Debug, Clone)]
pub struct Terminal {
    pub status: TaskStatus,
    pub output: Option<Value>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

impl Terminal {
    /// A failed, timed-out or cancelled ending with its reason.
    pub fn failure(status: TaskStatus, code: &str, message: impl Into<String>) -> Terminal {
        Terminal {
            status,
            output: None,
            error_code: Some(code.into()),
            error_message: Some(message.into()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    pub key_id: i64,
    pub user_id: i64,
    pub disabled: bool,
}

/// Sums of ledger amounts by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LedgerTotals {
    pub topup: i64,
    pub reserve: i64,
    pub capture: i64,
    pub refund: i64,
}

/// One row of the operator's task listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusCount {
    pub category: String,
    pub status: i64,
    pub count: i64,
}

#[async_trait]
pub trait Database: Send + Sync + 'static {
    // Accounts and keys.
    async fn create_user(&self, name: &str) -> DbResult<i64>;
    async fn user_exists(&self, user_id: i64) -> DbResult<bool>;
    async fn create_key(&self, user_id: i64, key_hash: &str, key_prefix: &str) -> DbResult<i64>;
    async fn find_key(&self, key_hash: &str) -> DbResult<Option<KeyRecord>>;
    /// `false` when no such key exists.
    async fn disable_key(&self, key_hash: &str) -> DbResult<bool>;
    /// Adds credits, opening the account on the first top-up; returns the new balance.
    async fn topup(&self, user_id: i64, amount: i64) -> DbResult<i64>;
    /// `None` when the user has no credits account.
    async fn balance(&self, user_id: i64) -> DbResult<Option<i64>>;
    /// Ledger sums for one user, or for everyone.
    async fn ledger_totals(&self, user_id: Option<i64>) -> DbResult<LedgerTotals>;

    // Tasks.
    /// Stores a task and reserves its credits in one transaction.
    async fn create_task(&self, task: NewTask, now: Millis) -> DbResult<CreateOutcome>;
    async fn task(&self, id: i64) -> DbResult<Option<TaskRecord>>;
    /// The caller's tasks among `ids`, in id order; others are left out.
    async fn tasks_of(&self, user_id: i64, ids: &[i64]) -> DbResult<Vec<TaskRecord>>;
    async fn list_tasks(&self, status: Option<TaskStatus>, limit: i64)
        -> DbResult<Vec<TaskRecord>>;
    /// Moves a non-terminal task to a terminal status with its ledger entry. With `owner`, only
    /// while that worker holds the task's lease. `false` when the compare-and-set lost.
    async fn finish(
        &self,
        id: i64,
        terminal: &Terminal,
        owner: Option<&str>,
        now: Millis,
    ) -> DbResult<bool>;

    // The queue.
    /// Claims the oldest runnable task of `category`: queued, or processing with a lapsed or
    /// released lease and its retry time reached.
    async fn claim(
        &self,
        category: Category,
        owner: &str,
        lease_until: Millis,
        now: Millis,
    ) -> DbResult<Option<TaskRecord>>;
    /// Extends a lease; `false` when the task is no longer ours (cancelled, timed out, taken).
    async fn renew(&self, id: i64, owner: &str, lease_until: Millis) -> DbResult<bool>;
    /// Gives a task back to the queue, to be claimed again at `retry_at`.
    async fn release(
        &self,
        id: i64,
        owner: &str,
        retry_at: Millis,
        last_error: Option<&str>,
    ) -> DbResult<bool>;
    async fn save_upstream_job(&self, id: i64, owner: &str, job: &Value) -> DbResult<bool>;
    async fn set_progress(&self, id: i64, owner: &str, progress: i64) -> DbResult<bool>;
    /// Ids of non-terminal tasks past their deadline.
    async fn overdue(&self, now: Millis, limit: i64) -> DbResult<Vec<i64>>;
    async fn status_counts(&self) -> DbResult<Vec<StatusCount>>;
    /// Queued and waiting-for-retry tasks, per category.
    async fn queue_depth(&self, now: Millis) -> DbResult<Vec<(String, i64)>>;
    /// A cheap round trip, for `/readyz`.
    async fn ping(&self) -> DbResult<()>;
}
