//! Group commit for task creates on SQLite.
//!
//! A create is durable before it is answered (`synchronous = FULL`), and on one disk the cost
//! of a create is its fsync. So creates do not each open a transaction: they queue for one
//! writer task, which takes every create waiting at that moment (up to [`MAX_BATCH`]), runs
//! them one after another in a single `BEGIN IMMEDIATE` transaction, commits once, and only
//! then answers each. Inside a batch every create sees the ones before it, so balance checks,
//! 402s and idempotency keys stay exact. If anything in a batch fails, the transaction rolls
//! back and each create of it runs again alone, so one bad request fails only itself.

use super::{create_in, db_err};
use crate::db::{CreateOutcome, DbError, DbResult, Millis, NewTask};
use sqlx::SqlitePool;
use tokio::sync::{mpsc, oneshot};

/// The most creates one transaction commits.
const MAX_BATCH: usize = 256;
/// Creates that may wait for the writer before callers wait to queue.
const QUEUE: usize = 4096;

struct Pending {
    task: NewTask,
    now: Millis,
    reply: oneshot::Sender<DbResult<CreateOutcome>>,
}

/// The queue in front of the create writer.
pub(super) struct Creates {
    queue: mpsc::Sender<Pending>,
}

impl Creates {
    /// Starts the writer on `write` (the pool of the one writing connection).
    pub(super) fn start(write: SqlitePool) -> Creates {
        let (queue, waiting) = mpsc::channel(QUEUE);
        tokio::spawn(writer(write, waiting));
        Creates { queue }
    }

    /// Queues a create and waits until its batch is committed.
    pub(super) async fn create(&self, task: NewTask, now: Millis) -> DbResult<CreateOutcome> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Pending { task, now, reply })
            .await
            .map_err(|_| DbError::Unavailable("the create writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| DbError::other("the create writer dropped a request"))?
    }
}

async fn writer(write: SqlitePool, mut waiting: mpsc::Receiver<Pending>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while waiting.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let pending = std::mem::take(&mut batch);
        match commit(&write, &pending).await {
            Ok(outcomes) => {
                for (p, outcome) in pending.into_iter().zip(outcomes) {
                    let _ = p.reply.send(Ok(outcome));
                }
            }
            Err(e) if pending.len() == 1 => {
                for p in pending {
                    let _ = p.reply.send(Err(e.clone()));
                }
            }
            Err(_) => {
                for p in pending {
                    let alone = commit(&write, std::slice::from_ref(&p)).await;
                    let _ = p.reply.send(alone.map(|mut o| o.remove(0)));
                }
            }
        }
    }
}

/// Runs creates in order in one transaction and commits it: all of them or none.
async fn commit(write: &SqlitePool, pending: &[Pending]) -> DbResult<Vec<CreateOutcome>> {
    let mut tx = write.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
    let mut outcomes = Vec::with_capacity(pending.len());
    for p in pending {
        outcomes.push(create_in(&mut tx, &p.task, p.now).await?);
    }
    tx.commit().await.map_err(db_err)?;
    Ok(outcomes)
}
