//! The database boundary: one trait, [`Database`], over everything the server keeps.
//!
//! Invariants every implementation keeps (and the tests check against the real thing):
//! * a task's status only moves forward, by compare-and-set;
//! * credits move with status in the same transaction: reserve on create, capture on
//!   success, refund in full on failed / timeout / cancelled;
//! * a `(task, kind)` ledger entry is written at most once (a unique index, not a promise);
//! * `balance = topups - reserves + refunds` for every account.
//!
//! Two implementations, each in its own folder and the only place SQL is written:
//! * [`sqlite::SqliteDatabase`], the zero-setup default: one file, one writer;
//! * [`postgres::PgDatabase`], for several nodes: row locks, `FOR UPDATE SKIP LOCKED` claims,
//!   leases timed by the database's clock, `LISTEN/NOTIFY` for task changes.
//!
//! [`open`] picks one from a database URL, so callers never learn which they have.

pub mod portal;
pub mod postgres;
mod rows;
pub mod sqlite;
#[cfg(test)]
mod tests;

use async_trait::async_trait;
use plume_core::{Category, TaskStatus};
pub use portal::PortalStore;
use serde_json::Value;

pub type DbResult<T> = Result<T, DbError>;

#[derive(Debug, Clone, thiserror::Error)]
pub enum DbError {
    /// A conflicting writer won (SQLite busy or locked past the timeout; PostgreSQL
    /// serialization failure 40001, deadlock 40P01, lock not available 55P03): safe to retry.
    #[error("database busy with a conflicting change")]
    Retryable,
    /// The database cannot be reached (connection refused or lost, pool exhausted); requests
    /// fail with 503 until it is back.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Other(#[source] std::sync::Arc<dyn std::error::Error + Send + Sync>),
}

impl DbError {
    pub fn other(message: impl Into<String>) -> DbError {
        DbError::Other(std::sync::Arc::new(std::io::Error::other(message.into())))
    }
}

/// Opens the database a URL names: `sqlite://PATH` (created when missing) or
/// `postgres://…`. Either way the schema is brought up to date first.
pub async fn open(url: &str) -> DbResult<std::sync::Arc<dyn Database>> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        let path = path.split('?').next().unwrap_or(path);
        Ok(std::sync::Arc::new(
            sqlite::SqliteDatabase::open(std::path::Path::new(path)).await?,
        ))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(std::sync::Arc::new(postgres::PgDatabase::open(url).await?))
    } else {
        Err(DbError::other(
            "the database URL must start with sqlite:// or postgres://",
        ))
    }
}

/// What a database tells every node about tasks (PostgreSQL's `LISTEN/NOTIFY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Change {
    /// A task's status or progress changed: wake its `?wait=` readers.
    Task(i64),
    /// A task of this category became runnable: wake its dispatcher.
    Work(Category),
}

/// Changes as they happen, for as long as the stream is held.
pub type Changes = futures::stream::BoxStream<'static, Change>;

pub use crate::time::{now_millis, Millis};

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
    /// Inputs that are this server's own files, by where they sit in `content`: they are read
    /// by key, so a task survives a change of the public base.
    pub input_files: Vec<InputFile>,
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
    pub input_files: Vec<InputFile>,
    /// `(Idempotency-Key, hash of the request)`.
    pub idempotency: Option<(String, String)>,
    pub deadline_at: Millis,
}

/// One of this server's own files named in a task's content: the JSON pointer of the URL
/// string (`/imageUrls/0`) and the file's key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InputFile {
    pub pointer: String,
    pub key: String,
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
    /// The key, or the user it belongs to, is disabled.
    pub disabled: bool,
    pub last_used_at: Option<Millis>,
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
pub trait Database: PortalStore + Send + Sync + 'static {
    // Accounts and keys.
    async fn create_user(&self, name: &str) -> DbResult<i64>;
    async fn user_exists(&self, user_id: i64) -> DbResult<bool>;
    async fn create_key(&self, user_id: i64, key_hash: &str, key_prefix: &str) -> DbResult<i64>;
    async fn find_key(&self, key_hash: &str) -> DbResult<Option<KeyRecord>>;
    /// `false` when no such key exists.
    async fn disable_key(&self, key_hash: &str) -> DbResult<bool>;
    /// Adds credits, opening the account on the first top-up; returns the new balance. The
    /// note (an operator's reason) is kept on the ledger entry.
    async fn topup(&self, user_id: i64, amount: i64, note: Option<&str>) -> DbResult<i64>;
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

    // The queue. Leases are timed by the database's clock, so hosts with skewed clocks never
    // take each other's live leases.
    /// Claims the oldest runnable task of `category` for `lease_ms`: queued, or processing
    /// with a lapsed or released lease and its retry time reached. No task is given to two
    /// claimers at once.
    async fn claim(
        &self,
        category: Category,
        owner: &str,
        lease_ms: i64,
    ) -> DbResult<Option<TaskRecord>>;
    /// Extends a lease by `lease_ms` from now; `false` when the task is no longer ours
    /// (cancelled, timed out, taken).
    async fn renew(&self, id: i64, owner: &str, lease_ms: i64) -> DbResult<bool>;
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

    // Across nodes.
    /// Task changes made by any process, when the backend can tell (`None`: only this
    /// process's own events exist, and waiters fall back to re-reading).
    async fn changes(&self) -> DbResult<Option<Changes>> {
        Ok(None)
    }
    /// Tells every node's [`Database::changes`] about changes this process committed. Only
    /// called on backends whose `changes` gives a stream.
    async fn publish(&self, _changes: &[Change]) -> DbResult<()> {
        Ok(())
    }
    /// Takes one request token from `key_id`'s bucket (`per_minute` a minute, bursts up to
    /// the same) kept in the database, shared by every node: `Some(Ok(()))` when allowed,
    /// `Some(Err(seconds to wait))` when over. `None`: this backend keeps no shared limit
    /// (one process owns the database) and the caller counts in memory.
    async fn take_rate_token(
        &self,
        _key_id: i64,
        _per_minute: u32,
    ) -> DbResult<Option<Result<(), u64>>> {
        Ok(None)
    }

    // Moving between backends (`plume-server migrate-store`).
    /// Every row of every table, in an order that respects foreign keys.
    async fn export(&self) -> DbResult<Export>;
    /// Writes an export into an empty database, keeping ids; refuses a database with users.
    async fn import(&self, export: &Export) -> DbResult<()>;
}

/// A whole database as plain rows, for `migrate-store`. Column names are the schema's.
#[derive(Debug, Clone, Default)]
pub struct Export {
    pub tables: Vec<(&'static str, Vec<serde_json::Map<String, Value>>)>,
}

/// How a column is stored: integers (times are milliseconds), text, or JSON (TEXT in SQLite,
/// JSONB in PostgreSQL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Int,
    Text,
    Json,
}

use Column::{Int, Json, Text};

/// The tables in foreign-key order, with their columns: what `export` and `import` move.
pub const TABLES: &[(&str, &[(&str, Column)])] = &[
    (
        "users",
        &[
            ("id", Int),
            ("name", Text),
            ("created_at", Int),
            ("disabled", Int),
        ],
    ),
    (
        "portal_logins",
        &[
            ("user_id", Int),
            ("email", Text),
            ("password_hash", Text),
            ("role", Text),
            ("created_at", Int),
        ],
    ),
    (
        "api_keys",
        &[
            ("id", Int),
            ("user_id", Int),
            ("key_hash", Text),
            ("key_prefix", Text),
            ("disabled", Int),
            ("created_at", Int),
            ("last_used_at", Int),
        ],
    ),
    (
        "credit_accounts",
        &[("user_id", Int), ("balance", Int), ("updated_at", Int)],
    ),
    (
        "tasks",
        &[
            ("id", Int),
            ("user_id", Int),
            ("category", Text),
            ("task_type", Int),
            ("title", Text),
            ("project_id", Text),
            ("widget_mapping", Json),
            ("content", Json),
            ("status", Int),
            ("progress", Int),
            ("output", Json),
            ("error_code", Text),
            ("error_message", Text),
            ("last_error", Text),
            ("credits_cost", Int),
            ("idempotency_key", Text),
            ("request_hash", Text),
            ("upstream_job", Json),
            ("input_files", Json),
            ("attempts", Int),
            ("lease_owner", Text),
            ("lease_expires_at", Int),
            ("next_attempt_at", Int),
            ("deadline_at", Int),
            ("created_at", Int),
            ("started_at", Int),
            ("finished_at", Int),
        ],
    ),
    (
        "ledger",
        &[
            ("id", Int),
            ("user_id", Int),
            ("task_id", Int),
            ("kind", Text),
            ("amount", Int),
            ("created_at", Int),
            ("note", Text),
        ],
    ),
    (
        "topup_codes",
        &[
            ("id", Int),
            ("code_hash", Text),
            ("code_prefix", Text),
            ("amount", Int),
            ("note", Text),
            ("created_at", Int),
            ("redeemed_by", Int),
            ("redeemed_at", Int),
        ],
    ),
];
