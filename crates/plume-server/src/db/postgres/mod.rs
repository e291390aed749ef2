//! PostgreSQL implementation of [`Database`]: several nodes on one database.
//!
//! What SQLite gets from having one writer, this gets from row locks under READ COMMITTED:
//! * create locks the user's credit account row (`SELECT … FOR UPDATE`) before it checks the
//!   idempotency key and the balance, so racing creates of one user queue on that row and the
//!   second sees what the first committed; a unique-index violation on the key is still read
//!   back as the existing task, never reported as an internal error;
//! * settle is an `UPDATE … WHERE status < 3 [AND lease_owner = …]`: PostgreSQL re-checks the
//!   condition after taking the row lock, so only one settler wins;
//! * claim picks its row with `FOR UPDATE SKIP LOCKED` and repeats the runnable conditions in
//!   the outer `UPDATE`, so no task is handed to two nodes; leases are timed by
//!   `plume_now_ms()`, the database's clock;
//! * create runs in one round trip (`plume_create_task`, a function in the schema), so the
//!   account row lock is held only while the database itself works;
//! * each node `NOTIFY`s its task changes in batches after they commit ([`PgDatabase::publish`]),
//!   and `LISTEN`s for the others' ([`PgDatabase::changes`]).

use super::rows::{columns_of, export_row, insert_all, select_all, task_from_row, ReadRow};
use super::*;
use futures::StreamExt;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions, PgRow};
use sqlx::types::Json;
use sqlx::{PgPool, Row};
use std::time::Duration;

const SCHEMA: &str = include_str!("schema.sql");
const SCHEMA_VERSION: i64 = 3;
const IDEMPOTENCY_WINDOW_MS: i64 = 24 * 3600 * 1000;
/// Any constant: the advisory lock that keeps two nodes from migrating at once.
const MIGRATION_LOCK: i64 = 0x706c756d65;
const CHANNEL: &str = "plume_tasks";

mod notify;
mod portal;
mod transfer;

pub struct PgDatabase {
    pool: PgPool,
}

fn db_err(e: sqlx::Error) -> DbError {
    match &e {
        sqlx::Error::Database(d) => match d.code().as_deref() {
            // serialization_failure, deadlock_detected, lock_not_available
            Some("40001" | "40P01" | "55P03") => DbError::Retryable,
            // admin_shutdown, crash_shutdown, cannot_connect_now, too_many_connections
            Some("57P01" | "57P02" | "57P03" | "53300") => DbError::Unavailable(e.to_string()),
            _ => DbError::Other(std::sync::Arc::new(e)),
        },
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => DbError::Unavailable(e.to_string()),
        _ => DbError::Other(std::sync::Arc::new(e)),
    }
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.code().as_deref() == Some("23505"))
}

impl ReadRow for PgRow {
    fn int(&self, column: &str) -> DbResult<Option<i64>> {
        self.try_get(column).map_err(db_err)
    }
    fn text(&self, column: &str) -> DbResult<Option<String>> {
        self.try_get(column).map_err(db_err)
    }
    /// JSON is stored as JSONB.
    fn json(&self, column: &str) -> DbResult<Option<Value>> {
        let v: Option<Json<Value>> = self.try_get(column).map_err(db_err)?;
        Ok(v.map(|j| j.0))
    }
}

fn json_bind(v: &Option<Value>) -> Option<Json<&Value>> {
    v.as_ref().map(Json)
}

async fn write_entry(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    user_id: i64,
    task_id: Option<i64>,
    kind: &str,
    amount: i64,
    now: Millis,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO ledger (user_id, task_id, kind, amount, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
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

impl PgDatabase {
    /// Connects and brings the schema up to date. Two nodes starting together take turns.
    pub async fn open(url: &str) -> DbResult<PgDatabase> {
        let options: PgConnectOptions = url.parse().map_err(db_err)?;
        // One direct connection first: its error says why (refused, unknown database, bad
        // password) where the pool would only say it timed out.
        {
            use sqlx::Connection;
            let first = tokio::time::timeout(
                Duration::from_secs(10),
                sqlx::PgConnection::connect_with(&options),
            )
            .await
            .map_err(|_| DbError::Unavailable("no answer within 10 s".into()))?
            .map_err(db_err)?;
            let _ = first.close().await;
        }
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await
            .map_err(db_err)?;
        let db = PgDatabase { pool };
        db.migrate().await?;
        Ok(db)
    }

    async fn migrate(&self) -> DbResult<()> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let exists: bool = sqlx::query_scalar("SELECT to_regclass('plume_schema') IS NOT NULL")
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?;
        let version: Option<i64> = if exists {
            sqlx::query_scalar("SELECT MAX(version) FROM plume_schema")
                .fetch_one(&mut *tx)
                .await
                .map_err(db_err)?
        } else {
            None
        };
        if version.unwrap_or(0) > SCHEMA_VERSION {
            return Err(DbError::other(format!(
                "database schema version {} is newer than this server ({SCHEMA_VERSION}); upgrade plume-server",
                version.unwrap_or(0)
            )));
        }
        // The schema is idempotent (IF NOT EXISTS, OR REPLACE): applying it on every start keeps
        // its functions in step with this binary.
        sqlx::raw_sql(SCHEMA)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if version != Some(SCHEMA_VERSION) {
            sqlx::query("DELETE FROM plume_schema")
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            sqlx::query("INSERT INTO plume_schema (version) VALUES ($1)")
                .bind(SCHEMA_VERSION)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)
    }

    /// The task an earlier create stored under this idempotency key (read after a unique
    /// violation): the same task when the request matches, a conflict when it does not.
    async fn existing_by_key(
        &self,
        user_id: i64,
        key: &str,
        hash: &str,
    ) -> DbResult<CreateOutcome> {
        let row = sqlx::query("SELECT * FROM tasks WHERE user_id = $1 AND idempotency_key = $2")
            .bind(user_id)
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?
            .ok_or(DbError::Retryable)?;
        let stored: Option<String> = row.try_get("request_hash").map_err(db_err)?;
        let record = task_from_row(&row)?;
        Ok(if stored.as_deref() == Some(hash) {
            CreateOutcome::Existing(record)
        } else {
            CreateOutcome::IdempotencyConflict
        })
    }
}

#[async_trait]
impl Database for PgDatabase {
    async fn create_user(&self, name: &str) -> DbResult<i64> {
        sqlx::query_scalar("INSERT INTO users (name, created_at) VALUES ($1, $2) RETURNING id")
            .bind(name)
            .bind(now_millis())
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)
    }

    async fn user_exists(&self, user_id: i64) -> DbResult<bool> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)")
            .bind(user_id)
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)
    }

    async fn create_key(&self, user_id: i64, key_hash: &str, key_prefix: &str) -> DbResult<i64> {
        sqlx::query_scalar(
            "INSERT INTO api_keys (user_id, key_hash, key_prefix, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(user_id)
        .bind(key_hash)
        .bind(key_prefix)
        .bind(now_millis())
        .fetch_one(&self.pool)
        .await
        .map_err(db_err)
    }

    async fn find_key(&self, key_hash: &str) -> DbResult<Option<KeyRecord>> {
        let row = sqlx::query(
            "SELECT k.id, k.user_id, k.last_used_at, CASE WHEN k.disabled <> 0 OR u.disabled <> 0 THEN 1::BIGINT ELSE 0::BIGINT END AS disabled
             FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.key_hash = $1",
        )
            .bind(key_hash)
            .fetch_optional(&self.pool)
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
        let done = sqlx::query("UPDATE api_keys SET disabled = 1 WHERE key_hash = $1")
            .bind(key_hash)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn topup(&self, user_id: i64, amount: i64, note: Option<&str>) -> DbResult<i64> {
        let now = now_millis();
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let balance: i64 = sqlx::query_scalar(
            "INSERT INTO credit_accounts (user_id, balance, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (user_id) DO UPDATE SET balance = credit_accounts.balance + EXCLUDED.balance,
                                                 updated_at = EXCLUDED.updated_at
             RETURNING balance",
        )
        .bind(user_id)
        .bind(amount)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        sqlx::query("INSERT INTO ledger (user_id, kind, amount, created_at, note) VALUES ($1, 'topup', $2, $3, $4)")
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
        sqlx::query_scalar("SELECT balance FROM credit_accounts WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)
    }

    async fn ledger_totals(&self, user_id: Option<i64>) -> DbResult<LedgerTotals> {
        let rows = sqlx::query(
            "SELECT kind, COALESCE(SUM(amount), 0)::BIGINT AS total FROM ledger
             WHERE $1::BIGINT IS NULL OR user_id = $1 GROUP BY kind",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
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

    async fn create_task(&self, t: NewTask, now: Millis) -> DbResult<CreateOutcome> {
        let (idem_key, idem_hash) = match &t.idempotency {
            Some((k, h)) => (Some(k.as_str()), Some(h.as_str())),
            None => (None, None),
        };
        let input_files = (!t.input_files.is_empty()).then_some(Json(&t.input_files));
        // One statement, one implicit transaction: see plume_create_task in schema.sql.
        let answer = sqlx::query(
            "SELECT out_outcome, out_balance, out_task
             FROM plume_create_task($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(t.user_id)
        .bind(t.category.as_str())
        .bind(t.task_type)
        .bind(&t.title)
        .bind(&t.project_id)
        .bind(json_bind(&t.widget_mapping))
        .bind(Json(&t.content))
        .bind(t.credits_cost)
        .bind(idem_key)
        .bind(idem_hash)
        .bind(t.deadline_at)
        .bind(now)
        .bind(input_files)
        .bind(IDEMPOTENCY_WINDOW_MS)
        .fetch_one(&self.pool)
        .await;
        let row = match answer {
            Ok(row) => row,
            Err(e) if is_unique_violation(&e) && t.idempotency.is_some() => {
                // Another create with this key committed between our lock and insert (it
                // can only be the same user's, which the lock orders; kept as a safety net).
                let (key, hash) = t.idempotency.as_ref().expect("checked above");
                return self.existing_by_key(t.user_id, key, hash).await;
            }
            Err(e) => return Err(db_err(e)),
        };
        let outcome: String = row.try_get("out_outcome").map_err(db_err)?;
        let balance: Option<i64> = row.try_get("out_balance").map_err(db_err)?;
        let task_id: Option<i64> = row.try_get("out_task").map_err(db_err)?;
        let stored = |id: Option<i64>| async move {
            let id = id.ok_or_else(|| DbError::other("plume_create_task returned no task"))?;
            self.task(id)
                .await?
                .ok_or_else(|| DbError::other(format!("task {id} vanished after create")))
        };
        Ok(match outcome.as_str() {
            "created" => {
                let id = task_id.ok_or_else(|| DbError::other("created without an id"))?;
                // Everything the row holds is known here; no second round trip.
                CreateOutcome::Created(TaskRecord {
                    id,
                    user_id: t.user_id,
                    category: t.category,
                    task_type: t.task_type,
                    title: t.title,
                    project_id: t.project_id,
                    widget_mapping: t.widget_mapping,
                    content: t.content,
                    status: TaskStatus::Queued,
                    progress: 0,
                    output: None,
                    error_code: None,
                    error_message: None,
                    credits_cost: t.credits_cost,
                    upstream_job: None,
                    input_files: t.input_files,
                    attempts: 0,
                    created_at: now,
                    started_at: None,
                    finished_at: None,
                    deadline_at: t.deadline_at,
                })
            }
            "existing" => CreateOutcome::Existing(stored(task_id).await?),
            "conflict" => CreateOutcome::IdempotencyConflict,
            "no_account" => CreateOutcome::NoAccount,
            "insufficient" => CreateOutcome::Insufficient {
                balance: balance.unwrap_or(0),
            },
            other => return Err(DbError::other(format!("plume_create_task said {other}"))),
        })
    }

    async fn task(&self, id: i64) -> DbResult<Option<TaskRecord>> {
        let row = sqlx::query("SELECT * FROM tasks WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.as_ref().map(task_from_row).transpose()
    }

    async fn tasks_of(&self, user_id: i64, ids: &[i64]) -> DbResult<Vec<TaskRecord>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows =
            sqlx::query("SELECT * FROM tasks WHERE user_id = $1 AND id = ANY($2) ORDER BY id")
                .bind(user_id)
                .bind(ids)
                .fetch_all(&self.pool)
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
            "SELECT * FROM tasks WHERE $1::BIGINT IS NULL OR status = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(status.map(|s| i64::from(s.code())))
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(task_from_row).collect()
    }

    async fn finish(
        &self,
        id: i64,
        terminal: &Terminal,
        owner: Option<&str>,
        now: Millis,
    ) -> DbResult<bool> {
        debug_assert!(terminal.status.is_terminal());
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let row = sqlx::query(
            "UPDATE tasks SET status = $1, output = $2, error_code = $3, error_message = $4, finished_at = $5,
                              lease_owner = NULL, lease_expires_at = NULL,
                              progress = CASE WHEN $1 = 3 THEN 100 ELSE progress END
             WHERE id = $6 AND status < 3 AND ($7::TEXT IS NULL OR (lease_owner = $7 AND status = 2))
             RETURNING user_id, credits_cost",
        )
        .bind(i64::from(terminal.status.code()))
        .bind(json_bind(&terminal.output))
        .bind(&terminal.error_code)
        .bind(&terminal.error_message)
        .bind(now)
        .bind(id)
        .bind(owner)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        let Some(row) = row else {
            return Ok(false);
        };
        let user_id: i64 = row.try_get("user_id").map_err(db_err)?;
        let cost: i64 = row.try_get("credits_cost").map_err(db_err)?;
        if cost > 0 {
            let kind = if terminal.status == TaskStatus::Success {
                "capture"
            } else {
                "refund"
            };
            write_entry(&mut tx, user_id, Some(id), kind, cost, now).await?;
            if kind == "refund" {
                sqlx::query(
                    "UPDATE credit_accounts SET balance = balance + $1, updated_at = $2 WHERE user_id = $3",
                )
                .bind(cost)
                .bind(now)
                .bind(user_id)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            }
        }
        tx.commit().await.map_err(db_err)?;
        Ok(true)
    }

    async fn claim(
        &self,
        category: Category,
        owner: &str,
        lease_ms: i64,
    ) -> DbResult<Option<TaskRecord>> {
        // The inner SELECT skips rows another node is claiming; the outer WHERE repeats the
        // runnable test because under READ COMMITTED the row may have changed since.
        let row = sqlx::query(
            "UPDATE tasks SET status = 2, lease_owner = $1, lease_expires_at = plume_now_ms() + $2,
                              attempts = attempts + 1, started_at = COALESCE(started_at, plume_now_ms())
             WHERE id = (SELECT id FROM tasks
                         WHERE category = $3 AND status < 3 AND deadline_at > plume_now_ms()
                           AND next_attempt_at <= plume_now_ms()
                           AND (status = 1 OR lease_owner IS NULL OR lease_expires_at < plume_now_ms())
                         ORDER BY id LIMIT 1
                         FOR UPDATE SKIP LOCKED)
               AND status < 3
               AND (status = 1 OR lease_owner IS NULL OR lease_expires_at < plume_now_ms())
             RETURNING *",
        )
        .bind(owner)
        .bind(lease_ms)
        .bind(category.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.as_ref().map(task_from_row).transpose()
    }

    async fn renew(&self, id: i64, owner: &str, lease_ms: i64) -> DbResult<bool> {
        let done = sqlx::query(
            "UPDATE tasks SET lease_expires_at = plume_now_ms() + $1
             WHERE id = $2 AND lease_owner = $3 AND status = 2",
        )
        .bind(lease_ms)
        .bind(id)
        .bind(owner)
        .execute(&self.pool)
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
            "UPDATE tasks SET lease_owner = NULL, lease_expires_at = NULL, next_attempt_at = $1,
                              last_error = COALESCE($2, last_error)
             WHERE id = $3 AND lease_owner = $4 AND status = 2",
        )
        .bind(retry_at)
        .bind(last_error)
        .bind(id)
        .bind(owner)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn save_upstream_job(&self, id: i64, owner: &str, job: &Value) -> DbResult<bool> {
        let done = sqlx::query(
            "UPDATE tasks SET upstream_job = $1 WHERE id = $2 AND lease_owner = $3 AND status = 2",
        )
        .bind(Json(job))
        .bind(id)
        .bind(owner)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn set_progress(&self, id: i64, owner: &str, progress: i64) -> DbResult<bool> {
        let done = sqlx::query(
            "UPDATE tasks SET progress = $1 WHERE id = $2 AND lease_owner = $3 AND status = 2",
        )
        .bind(progress.clamp(0, 99))
        .bind(id)
        .bind(owner)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn overdue(&self, now: Millis, limit: i64) -> DbResult<Vec<i64>> {
        sqlx::query_scalar(
            "SELECT id FROM tasks WHERE status < 3 AND deadline_at <= $1 ORDER BY id LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)
    }

    async fn status_counts(&self) -> DbResult<Vec<StatusCount>> {
        let rows = sqlx::query(
            "SELECT category, status, COUNT(*) AS n FROM tasks GROUP BY category, status",
        )
        .fetch_all(&self.pool)
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
             WHERE status = 1 OR (status = 2 AND (lease_owner IS NULL OR lease_expires_at < $1))
             GROUP BY category",
        )
        .bind(now)
        .fetch_all(&self.pool)
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
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn changes(&self) -> DbResult<Option<Changes>> {
        self.listen().await.map(Some)
    }

    async fn publish(&self, changes: &[Change]) -> DbResult<()> {
        self.notify(changes).await
    }

    async fn take_rate_token(
        &self,
        key_id: i64,
        per_minute: u32,
    ) -> DbResult<Option<Result<(), u64>>> {
        let capacity = f64::from(per_minute);
        // The bucket refills at capacity/minute by the database's clock; a token is taken only
        // when a whole one is there.
        let row = sqlx::query(
            "INSERT INTO rate_buckets (key_id, tokens, allowed, updated_at)
             VALUES ($1, $2 - 1, TRUE, plume_now_ms())
             ON CONFLICT (key_id) DO UPDATE SET
               allowed = LEAST($2, rate_buckets.tokens + (plume_now_ms() - rate_buckets.updated_at) * $2 / 60000.0) >= 1,
               tokens = LEAST($2, rate_buckets.tokens + (plume_now_ms() - rate_buckets.updated_at) * $2 / 60000.0)
                        - CASE WHEN LEAST($2, rate_buckets.tokens + (plume_now_ms() - rate_buckets.updated_at) * $2 / 60000.0) >= 1
                               THEN 1 ELSE 0 END,
               updated_at = plume_now_ms()
             RETURNING tokens, allowed",
        )
        .bind(key_id)
        .bind(capacity)
        .fetch_one(&self.pool)
        .await
        .map_err(db_err)?;
        let allowed: bool = row.try_get("allowed").map_err(db_err)?;
        let tokens: f64 = row.try_get("tokens").map_err(db_err)?;
        Ok(Some(if allowed {
            Ok(())
        } else {
            Err(((1.0 - tokens) * 60.0 / capacity).ceil().max(1.0) as u64)
        }))
    }

    async fn export(&self) -> DbResult<Export> {
        self.export_all().await
    }

    async fn import(&self, export: &Export) -> DbResult<()> {
        self.import_all(export).await
    }
}
