//! Group commit for the hot writes on SQLite: task creates, claims and settles.
//!
//! A write is durable before it is answered (`synchronous = FULL`), and on one disk the cost
//! of a write is its fsync. Each task costs three writes on its way through (create, claim,
//! settle), so these do not each open a transaction: they queue for one writer task, which
//! takes every write waiting at that moment (up to [`MAX_BATCH`]), runs them one after
//! another in a single `BEGIN IMMEDIATE` transaction, commits once, and only then answers
//! each. Inside a batch every write sees the ones before it, so balance checks, 402s,
//! idempotency keys and "no task is claimed twice" stay exact. If anything in a batch fails,
//! the transaction rolls back and each write of it runs again alone, so one bad request fails
//! only itself.

use super::{db_err, input_files_text, json_text, write_entry, IDEMPOTENCY_WINDOW_MS};
use crate::db::rows::task_from_row;
use crate::db::{
    now_millis, CreateOutcome, DbError, DbResult, Millis, NewTask, TaskRecord, Terminal,
};
use plume_core::{Category, TaskStatus};
use sqlx::{Row, Sqlite, SqlitePool, Transaction};
use tokio::sync::{mpsc, oneshot};

/// The most writes one transaction commits.
const MAX_BATCH: usize = 256;
/// Writes that may wait for the writer before callers wait to queue.
const QUEUE: usize = 4096;

type Tx<'c> = Transaction<'c, Sqlite>;

/// One write the writer runs, with what it answers.
enum Write {
    Create {
        task: NewTask,
        now: Millis,
        reply: oneshot::Sender<DbResult<CreateOutcome>>,
    },
    Claim {
        category: Category,
        owner: String,
        lease_ms: i64,
        reply: oneshot::Sender<DbResult<Option<TaskRecord>>>,
    },
    Finish {
        id: i64,
        terminal: Terminal,
        owner: Option<String>,
        now: Millis,
        reply: oneshot::Sender<DbResult<bool>>,
    },
}

/// What a write produced, held until its batch is committed.
enum Done {
    Create(CreateOutcome),
    Claim(Option<TaskRecord>),
    Finish(bool),
}

impl Write {
    async fn run(&self, tx: &mut Tx<'_>) -> DbResult<Done> {
        Ok(match self {
            Write::Create { task, now, .. } => Done::Create(create_in(tx, task, *now).await?),
            Write::Claim {
                category,
                owner,
                lease_ms,
                ..
            } => Done::Claim(claim_in(tx, *category, owner, *lease_ms).await?),
            Write::Finish {
                id,
                terminal,
                owner,
                now,
                ..
            } => Done::Finish(finish_in(tx, *id, terminal, owner.as_deref(), *now).await?),
        })
    }

    /// Sends the answer; a caller that went away is no longer waiting for it.
    fn answer(self, result: DbResult<Done>) {
        match self {
            Write::Create { reply, .. } => {
                let _ = reply.send(result.and_then(|d| match d {
                    Done::Create(o) => Ok(o),
                    _ => Err(mismatch()),
                }));
            }
            Write::Claim { reply, .. } => {
                let _ = reply.send(result.and_then(|d| match d {
                    Done::Claim(o) => Ok(o),
                    _ => Err(mismatch()),
                }));
            }
            Write::Finish { reply, .. } => {
                let _ = reply.send(result.and_then(|d| match d {
                    Done::Finish(o) => Ok(o),
                    _ => Err(mismatch()),
                }));
            }
        }
    }
}

fn mismatch() -> DbError {
    DbError::other("the write writer answered with the wrong kind of result")
}

/// The queue in front of the writer.
pub(super) struct Writes {
    queue: mpsc::Sender<Write>,
}

impl Writes {
    /// Starts the writer on `write` (the pool of the one writing connection).
    pub(super) fn start(write: SqlitePool) -> Writes {
        let (queue, waiting) = mpsc::channel(QUEUE);
        tokio::spawn(writer(write, waiting));
        Writes { queue }
    }

    /// Queues a create and waits until its batch is committed.
    pub(super) async fn create(&self, task: NewTask, now: Millis) -> DbResult<CreateOutcome> {
        let (reply, answer) = oneshot::channel();
        self.send(Write::Create { task, now, reply }).await?;
        Self::wait(answer).await
    }

    /// Queues a claim and waits until its batch is committed.
    pub(super) async fn claim(
        &self,
        category: Category,
        owner: String,
        lease_ms: i64,
    ) -> DbResult<Option<TaskRecord>> {
        let (reply, answer) = oneshot::channel();
        self.send(Write::Claim {
            category,
            owner,
            lease_ms,
            reply,
        })
        .await?;
        Self::wait(answer).await
    }

    /// Queues a settle and waits until its batch is committed.
    pub(super) async fn finish(
        &self,
        id: i64,
        terminal: Terminal,
        owner: Option<String>,
        now: Millis,
    ) -> DbResult<bool> {
        let (reply, answer) = oneshot::channel();
        self.send(Write::Finish {
            id,
            terminal,
            owner,
            now,
            reply,
        })
        .await?;
        Self::wait(answer).await
    }

    async fn send(&self, write: Write) -> DbResult<()> {
        self.queue
            .send(write)
            .await
            .map_err(|_| DbError::Unavailable("the database writer has stopped".into()))
    }

    async fn wait<T>(answer: oneshot::Receiver<DbResult<T>>) -> DbResult<T> {
        answer
            .await
            .map_err(|_| DbError::other("the database writer dropped a request"))?
    }
}

async fn writer(write: SqlitePool, mut waiting: mpsc::Receiver<Write>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while waiting.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let pending = std::mem::take(&mut batch);
        match commit(&write, &pending).await {
            Ok(done) => {
                for (w, d) in pending.into_iter().zip(done) {
                    w.answer(Ok(d));
                }
            }
            Err(e) if pending.len() == 1 => {
                for w in pending {
                    w.answer(Err(e.clone()));
                }
            }
            Err(_) => {
                for w in pending {
                    let alone = commit(&write, std::slice::from_ref(&w)).await;
                    w.answer(alone.map(|mut d| d.remove(0)));
                }
            }
        }
    }
}

/// Runs writes in order in one transaction and commits it: all of them or none.
async fn commit(write: &SqlitePool, pending: &[Write]) -> DbResult<Vec<Done>> {
    let mut tx = write.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
    let mut done = Vec::with_capacity(pending.len());
    for w in pending {
        done.push(w.run(&mut tx).await?);
    }
    tx.commit().await.map_err(db_err)?;
    Ok(done)
}

/// One create inside the caller's transaction: the idempotency check, the balance check, the
/// debit, the task row and its `reserve` entry. Nothing is committed here.
async fn create_in(tx: &mut Tx<'_>, t: &NewTask, now: Millis) -> DbResult<CreateOutcome> {
    if let Some((key, hash)) = &t.idempotency {
        // A key older than the window is free again.
        sqlx::query("UPDATE tasks SET idempotency_key = NULL WHERE user_id = ?1 AND idempotency_key = ?2 AND created_at < ?3")
            .bind(t.user_id)
            .bind(key)
            .bind(now - IDEMPOTENCY_WINDOW_MS)
            .execute(&mut **tx)
            .await
            .map_err(db_err)?;
        let existing =
            sqlx::query("SELECT * FROM tasks WHERE user_id = ?1 AND idempotency_key = ?2")
                .bind(t.user_id)
                .bind(key)
                .fetch_optional(&mut **tx)
                .await
                .map_err(db_err)?;
        if let Some(row) = existing {
            let stored: Option<String> = row.try_get("request_hash").map_err(db_err)?;
            let record = task_from_row(&row)?;
            return Ok(if stored.as_deref() == Some(hash.as_str()) {
                CreateOutcome::Existing(record)
            } else {
                CreateOutcome::IdempotencyConflict
            });
        }
    }
    // The debit is the balance check: one statement on the hot path; the balance is read
    // only to explain a refusal.
    let debited: Option<i64> = sqlx::query_scalar(
        "UPDATE credit_accounts SET balance = balance - ?1, updated_at = ?2
         WHERE user_id = ?3 AND balance >= ?1 RETURNING balance",
    )
    .bind(t.credits_cost)
    .bind(now)
    .bind(t.user_id)
    .fetch_optional(&mut **tx)
    .await
    .map_err(db_err)?;
    if debited.is_none() {
        let balance: Option<i64> =
            sqlx::query_scalar("SELECT balance FROM credit_accounts WHERE user_id = ?1")
                .bind(t.user_id)
                .fetch_optional(&mut **tx)
                .await
                .map_err(db_err)?;
        return Ok(match balance {
            None => CreateOutcome::NoAccount,
            Some(balance) => CreateOutcome::Insufficient { balance },
        });
    }
    let (idem_key, idem_hash) = match &t.idempotency {
        Some((k, h)) => (Some(k.as_str()), Some(h.as_str())),
        None => (None, None),
    };
    let row = sqlx::query(
        "INSERT INTO tasks (user_id, category, task_type, title, project_id, widget_mapping, content, status,
                            credits_cost, idempotency_key, request_hash, deadline_at, created_at, input_files)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1, ?8, ?9, ?10, ?11, ?12, ?13) RETURNING *",
    )
    .bind(t.user_id)
    .bind(t.category.as_str())
    .bind(t.task_type)
    .bind(&t.title)
    .bind(&t.project_id)
    .bind(json_text(&t.widget_mapping))
    .bind(t.content.to_string())
    .bind(t.credits_cost)
    .bind(idem_key)
    .bind(idem_hash)
    .bind(t.deadline_at)
    .bind(now)
    .bind(input_files_text(&t.input_files))
    .fetch_one(&mut **tx)
    .await
    .map_err(db_err)?;
    let record = task_from_row(&row)?;
    if t.credits_cost > 0 {
        write_entry(
            tx,
            t.user_id,
            Some(record.id),
            "reserve",
            t.credits_cost,
            now,
        )
        .await?;
    }
    Ok(CreateOutcome::Created(record))
}

/// Claims the oldest runnable task of `category` inside the caller's transaction. One host
/// owns a SQLite file, so its clock is the database's clock; the one writer makes the
/// select-then-update atomic, and a claim later in the same batch sees this one.
async fn claim_in(
    tx: &mut Tx<'_>,
    category: Category,
    owner: &str,
    lease_ms: i64,
) -> DbResult<Option<TaskRecord>> {
    let now = now_millis();
    let lease_until = now + lease_ms;
    let row = sqlx::query(
        "UPDATE tasks SET status = 2, lease_owner = ?1, lease_expires_at = ?2, attempts = attempts + 1,
                          started_at = COALESCE(started_at, ?3)
         WHERE id = (SELECT id FROM tasks
                     WHERE category = ?4 AND status < 3 AND deadline_at > ?3 AND next_attempt_at <= ?3
                       AND (status = 1 OR lease_owner IS NULL OR lease_expires_at < ?3)
                     ORDER BY id LIMIT 1)
         RETURNING *",
    )
    .bind(owner)
    .bind(lease_until)
    .bind(now)
    .bind(category.as_str())
    .fetch_optional(&mut **tx)
    .await
    .map_err(db_err)?;
    row.as_ref().map(task_from_row).transpose()
}

/// Settles a task inside the caller's transaction: its terminal state and, in the same
/// transaction, the capture or refund of its reserve. `false` when it was already terminal,
/// or `owner` no longer holds its lease.
async fn finish_in(
    tx: &mut Tx<'_>,
    id: i64,
    terminal: &Terminal,
    owner: Option<&str>,
    now: Millis,
) -> DbResult<bool> {
    let row = sqlx::query(
        "UPDATE tasks SET status = ?1, output = ?2, error_code = ?3, error_message = ?4, finished_at = ?5,
                          lease_owner = NULL, lease_expires_at = NULL,
                          progress = CASE WHEN ?1 = 3 THEN 100 ELSE progress END
         WHERE id = ?6 AND status < 3 AND (?7 IS NULL OR (lease_owner = ?7 AND status = 2))
         RETURNING user_id, credits_cost",
    )
    .bind(i64::from(terminal.status.code()))
    .bind(json_text(&terminal.output))
    .bind(&terminal.error_code)
    .bind(&terminal.error_message)
    .bind(now)
    .bind(id)
    .bind(owner)
    .fetch_optional(&mut **tx)
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
        write_entry(tx, user_id, Some(id), kind, cost, now).await?;
        if kind == "refund" {
            sqlx::query("UPDATE credit_accounts SET balance = balance + ?1, updated_at = ?2 WHERE user_id = ?3")
                .bind(cost)
                .bind(now)
                .bind(user_id)
                .execute(&mut **tx)
                .await
                .map_err(db_err)?;
        }
    }
    Ok(true)
}
