//! SQLite implementation of [`Database`]: the zero-setup backend.
//!
//! One file in WAL mode. Writes go through a pool of exactly one connection and every
//! read-then-write transaction starts with `BEGIN IMMEDIATE`, so in-process writers queue
//! fairly and a writer from another process (the `admin` commands) waits on the busy timeout
//! instead of failing with a snapshot conflict. Reads use their own small pool and never
//! block on writers. `synchronous = FULL`: a committed ledger entry survives power loss.
//! Creates, claims and settles are committed in groups (`group.rs`): one fsync for every
//! such write waiting.

use super::rows::{columns_of, export_row, insert_all, select_all, task_from_row, ReadRow};
use super::*;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, SqlitePool};
use std::path::Path;
use std::time::Duration;

const SCHEMA: &str = include_str!("schema.sql");
const SCHEMA_VERSION: i64 = 3;
const IDEMPOTENCY_WINDOW_MS: i64 = 24 * 3600 * 1000;

mod group;
mod portal;
mod transfer;

pub struct SqliteDatabase {
    read: SqlitePool,
    write: SqlitePool,
    /// Creates, claims and settles, committed in groups by one writer task (`group.rs`).
    writes: group::Writes,
}

fn db_err(e: sqlx::Error) -> DbError {
    match &e {
        sqlx::Error::Database(d) => {
            // Primary codes 5 (BUSY) and 6 (LOCKED), with their extended forms.
            let code: i64 = d.code().and_then(|c| c.parse().ok()).unwrap_or(0);
            if matches!(code & 0xff, 5 | 6) {
                return DbError::Retryable;
            }
            DbError::Other(std::sync::Arc::new(e))
        }
        sqlx::Error::PoolTimedOut => DbError::Retryable,
        _ => DbError::Other(std::sync::Arc::new(e)),
    }
}

fn json_text(v: &Option<Value>) -> Option<String> {
    v.as_ref().map(Value::to_string)
}

fn input_files_text(files: &[InputFile]) -> Option<String> {
    (!files.is_empty()).then(|| serde_json::to_string(files).unwrap_or_default())
}

impl ReadRow for SqliteRow {
    fn int(&self, column: &str) -> DbResult<Option<i64>> {
        self.try_get(column).map_err(db_err)
    }
    fn text(&self, column: &str) -> DbResult<Option<String>> {
        self.try_get(column).map_err(db_err)
    }
    /// JSON is stored as TEXT.
    fn json(&self, column: &str) -> DbResult<Option<Value>> {
        self.text(column)?
            .map(|t| {
                serde_json::from_str(&t)
                    .map_err(|e| DbError::other(format!("column {column}: {e}")))
            })
            .transpose()
    }
}

/// Appends one ledger entry inside the caller's transaction. A task's entry of a kind that
/// already exists violates the unique index and fails the whole transaction.
async fn write_entry(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    user_id: i64,
    task_id: Option<i64>,
    kind: &str,
    amount: i64,
    now: Millis,
) -> DbResult<()> {
    sqlx::query("INSERT INTO ledger (user_id, task_id, kind, amount, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")
        .bind(user_id)
        .bind(task_id)
        .bind(kind)
        .bind(amount)
        .bind(now)
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
    Ok(())
}

impl SqliteDatabase {
    /// Opens (creating when missing) the database file and brings its schema up to date.
    pub async fn open(path: &Path) -> DbResult<SqliteDatabase> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| DbError::other(format!("cannot create {}: {e}", parent.display())))?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone())
            .await
            .map_err(db_err)?;
        let db = SqliteDatabase {
            read: SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(options.read_only(false))
                .await
                .map_err(db_err)?,
            writes: group::Writes::start(write.clone()),
            write,
        };
        db.migrate().await?;
        Ok(db)
    }

    async fn migrate(&self) -> DbResult<()> {
        let mut tx = self
            .write
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db_err)?;
        let version: i64 = sqlx::query_scalar("PRAGMA user_version")
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?;
        if version > SCHEMA_VERSION {
            return Err(DbError::other(format!(
                "database schema version {version} is newer than this server ({SCHEMA_VERSION}); upgrade plume-server"
            )));
        }
        if version == 1 {
            // Version 2 keeps a task's own-file inputs by key (`input_files`).
            sqlx::raw_sql("ALTER TABLE tasks ADD COLUMN input_files TEXT")
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        if (1..=2).contains(&version) {
            // Version 3: the portal's columns on existing tables (its new tables come from
            // the schema below).
            sqlx::raw_sql(
                "ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
                 ALTER TABLE api_keys ADD COLUMN last_used_at INTEGER;
                 ALTER TABLE ledger ADD COLUMN note TEXT;",
            )
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        sqlx::raw_sql(SCHEMA)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        sqlx::raw_sql(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)
    }
}

#[async_trait]
impl Database for SqliteDatabase {
    async fn create_user(&self, name: &str) -> DbResult<i64> {
        sqlx::query_scalar("INSERT INTO users (name, created_at) VALUES (?1, ?2) RETURNING id")
            .bind(name)
            .bind(now_millis())
            .fetch_one(&self.write)
            .await
            .map_err(db_err)
    }

    async fn user_exists(&self, user_id: i64) -> DbResult<bool> {
        let found: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE id = ?1")
            .bind(user_id)
            .fetch_optional(&self.read)
            .await
            .map_err(db_err)?;
        Ok(found.is_some())
    }

    async fn create_key(&self, user_id: i64, key_hash: &str, key_prefix: &str) -> DbResult<i64> {
        sqlx::query_scalar(
            "INSERT INTO api_keys (user_id, key_hash, key_prefix, created_at) VALUES (?1, ?2, ?3, ?4) RETURNING id",
        )
        .bind(user_id)
        .bind(key_hash)
        .bind(key_prefix)
        .bind(now_millis())
        .fetch_one(&self.write)
        .await
        .map_err(db_err)
    }

    async fn find_key(&self, key_hash: &str) -> DbResult<Option<KeyRecord>> {
        let row = sqlx::query(
            "SELECT k.id, k.user_id, k.last_used_at, CASE WHEN k.disabled <> 0 OR u.disabled <> 0 THEN 1 ELSE 0 END AS disabled
             FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.key_hash = ?1",
        )
            .bind(key_hash)
            .fetch_optional(&self.read)
            .await
            .map_err(db_err)?;
        row.map(|r| {
            Ok(KeyRecord {
                key_id: r.try_get("id").map_err(db_err)?,
                user_id: r.try_get("user_id").map_err(db_err)?,
                disabled: r.try_get::<i64, _>("disabled").map_err(db_err)? != 0,
                last_used_at: r.try_get("last_used_at").map_err(db_err)?,
            })
        })
        .transpose()
    }

    async fn disable_key(&self, key_hash: &str) -> DbResult<bool> {
        let done = sqlx::query("UPDATE api_keys SET disabled = 1 WHERE key_hash = ?1")
            .bind(key_hash)
            .execute(&self.write)
            .await
            .map_err(db_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn topup(&self, user_id: i64, amount: i64, note: Option<&str>) -> DbResult<i64> {
        let now = now_millis();
        let mut tx = self
            .write
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db_err)?;
        let balance: i64 = sqlx::query_scalar(
            "INSERT INTO credit_accounts (user_id, balance, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (user_id) DO UPDATE SET balance = balance + excluded.balance, updated_at = excluded.updated_at
             RETURNING balance",
        )
        .bind(user_id)
        .bind(amount)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        sqlx::query("INSERT INTO ledger (user_id, kind, amount, created_at, note) VALUES (?1, 'topup', ?2, ?3, ?4)")
            .bind(user_id)
            .bind(amount)
            .bind(now)
            .bind(note)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(balance)
    }

    async fn balance(&self, user_id: i64) -> DbResult<Option<i64>> {
        sqlx::query_scalar("SELECT balance FROM credit_accounts WHERE user_id = ?1")
            .bind(user_id)
            .fetch_optional(&self.read)
            .await
            .map_err(db_err)
    }

    async fn ledger_totals(&self, user_id: Option<i64>) -> DbResult<LedgerTotals> {
        let rows = sqlx::query(
            "SELECT kind, COALESCE(SUM(amount), 0) AS total FROM ledger WHERE ?1 IS NULL OR user_id = ?1 GROUP BY kind",
        )
        .bind(user_id)
        .fetch_all(&self.read)
        .await
        .map_err(db_err)?;
        let mut totals = LedgerTotals::default();
        for row in rows {
            let kind: String = row.try_get("kind").map_err(db_err)?;
            let total: i64 = row.try_get("total").map_err(db_err)?;
            match kind.as_str() {
                "topup" => totals.topup = total,
                "reserve" => totals.reserve = total,
                "capture" => totals.capture = total,
                "refund" => totals.refund = total,
                _ => {}
            }
        }
        Ok(totals)
    }

    /// Creates wait for the group-commit writer, which commits every create waiting at
    /// that moment in one transaction (`group.rs`).
    async fn create_task(&self, t: NewTask, now: Millis) -> DbResult<CreateOutcome> {
        self.writes.create(t, now).await
    }

    async fn task(&self, id: i64) -> DbResult<Option<TaskRecord>> {
        let row = sqlx::query("SELECT * FROM tasks WHERE id = ?1")
            .bind(id)
            .fetch_optional(&self.read)
            .await
            .map_err(db_err)?;
        row.as_ref().map(task_from_row).transpose()
    }

    async fn tasks_of(&self, user_id: i64, ids: &[i64]) -> DbResult<Vec<TaskRecord>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // The ids go in as one JSON array so the statement stays the same for any count.
        let rows = sqlx::query(
            "SELECT * FROM tasks WHERE user_id = ?1 AND id IN (SELECT value FROM json_each(?2)) ORDER BY id",
        )
        .bind(user_id)
        .bind(serde_json::to_string(ids).unwrap_or_default())
        .fetch_all(&self.read)
        .await
        .map_err(db_err)?;
        rows.iter().map(task_from_row).collect()
    }

    async fn list_tasks(
        &self,
        status: Option<TaskStatus>,
        limit: i64,
    ) -> DbResult<Vec<TaskRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM tasks WHERE ?1 IS NULL OR status = ?1 ORDER BY id DESC LIMIT ?2",
        )
        .bind(status.map(|s| i64::from(s.code())))
        .bind(limit)
        .fetch_all(&self.read)
        .await
        .map_err(db_err)?;
        rows.iter().map(task_from_row).collect()
    }

    /// Settles wait for the group-commit writer (`group.rs`), like creates.
    async fn finish(
        &self,
        id: i64,
        terminal: &Terminal,
        owner: Option<&str>,
        now: Millis,
    ) -> DbResult<bool> {
        debug_assert!(terminal.status.is_terminal());
        self.writes
            .finish(id, terminal.clone(), owner.map(str::to_owned), now)
            .await
    }

    /// Claims wait for the group-commit writer (`group.rs`), like creates.
    async fn claim(
        &self,
        category: Category,
        owner: &str,
        lease_ms: i64,
    ) -> DbResult<Option<TaskRecord>> {
        self.writes
            .claim(category, owner.to_owned(), lease_ms)
            .await
    }

    async fn renew(&self, id: i64, owner: &str, lease_ms: i64) -> DbResult<bool> {
        let lease_until = now_millis() + lease_ms;
        let done = sqlx::query("UPDATE tasks SET lease_expires_at = ?1 WHERE id = ?2 AND lease_owner = ?3 AND status = 2")
            .bind(lease_until)
            .bind(id)
            .bind(owner)
            .execute(&self.write)
            .await
            .map_err(db_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn release(
        &self,
        id: i64,
        owner: &str,
        retry_at: Millis,
        last_error: Option<&str>,
    ) -> DbResult<bool> {
        let done = sqlx::query(
            "UPDATE tasks SET lease_owner = NULL, lease_expires_at = NULL, next_attempt_at = ?1,
                              last_error = COALESCE(?2, last_error)
             WHERE id = ?3 AND lease_owner = ?4 AND status = 2",
        )
        .bind(retry_at)
        .bind(last_error)
        .bind(id)
        .bind(owner)
        .execute(&self.write)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn save_upstream_job(&self, id: i64, owner: &str, job: &Value) -> DbResult<bool> {
        let done = sqlx::query(
            "UPDATE tasks SET upstream_job = ?1 WHERE id = ?2 AND lease_owner = ?3 AND status = 2",
        )
        .bind(job.to_string())
        .bind(id)
        .bind(owner)
        .execute(&self.write)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn set_progress(&self, id: i64, owner: &str, progress: i64) -> DbResult<bool> {
        let done = sqlx::query(
            "UPDATE tasks SET progress = ?1 WHERE id = ?2 AND lease_owner = ?3 AND status = 2",
        )
        .bind(progress.clamp(0, 99))
        .bind(id)
        .bind(owner)
        .execute(&self.write)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn overdue(&self, now: Millis, limit: i64) -> DbResult<Vec<i64>> {
        sqlx::query_scalar(
            "SELECT id FROM tasks WHERE status < 3 AND deadline_at <= ?1 ORDER BY id LIMIT ?2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.read)
        .await
        .map_err(db_err)
    }

    async fn status_counts(&self) -> DbResult<Vec<StatusCount>> {
        let rows = sqlx::query(
            "SELECT category, status, COUNT(*) AS n FROM tasks GROUP BY category, status",
        )
        .fetch_all(&self.read)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                Ok(StatusCount {
                    category: r.try_get("category").map_err(db_err)?,
                    status: r.try_get("status").map_err(db_err)?,
                    count: r.try_get("n").map_err(db_err)?,
                })
            })
            .collect()
    }

    async fn queue_depth(&self, now: Millis) -> DbResult<Vec<(String, i64)>> {
        let rows = sqlx::query(
            "SELECT category, COUNT(*) AS n FROM tasks
             WHERE status = 1 OR (status = 2 AND (lease_owner IS NULL OR lease_expires_at < ?1))
             GROUP BY category",
        )
        .bind(now)
        .fetch_all(&self.read)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("category").map_err(db_err)?,
                    r.try_get("n").map_err(db_err)?,
                ))
            })
            .collect()
    }

    async fn ping(&self) -> DbResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.read)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn export(&self) -> DbResult<Export> {
        self.export_all().await
    }

    async fn import(&self, export: &Export) -> DbResult<()> {
        self.import_all(export).await
    }
}
