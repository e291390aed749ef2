//! Task change notifications, for `?wait=` long polling and for waking the dispatcher when
//! work arrives. This process's own changes wake its waiters directly and are queued for the
//! other nodes, which a publisher sends in batches after the change committed
//! ([`crate::db::Database::publish`], PostgreSQL `NOTIFY`); other nodes' changes arrive through
//! [`crate::db::Database::changes`] (`LISTEN`) and are applied with [`TaskEvents::apply`].
//! Notifying outside the writing transaction keeps PostgreSQL's notify-queue lock out of the
//! create and settle transactions. The database stays the truth: a waiter always re-reads the
//! task, and falls back to a slow re-read in case a notification was missed.

use crate::db::Change;
use plume_core::Category;
use std::collections::HashMap;
use std::sync::OnceLock;
use tokio::sync::{broadcast, mpsc, Notify};

pub struct TaskEvents {
    changed: broadcast::Sender<i64>,
    work: HashMap<Category, Notify>,
    /// Where this process's changes go to reach the other nodes (set when the database can
    /// carry them: [`crate::db::Database::publish`]).
    outbound: OnceLock<mpsc::UnboundedSender<Change>>,
}

impl Default for TaskEvents {
    fn default() -> Self {
        TaskEvents {
            changed: broadcast::channel(1024).0,
            work: Category::ALL
                .into_iter()
                .map(|c| (c, Notify::new()))
                .collect(),
            outbound: OnceLock::new(),
        }
    }
}

impl TaskEvents {
    /// A task's status, progress or result changed (here; other nodes are told too).
    pub fn task_changed(&self, id: i64) {
        self.wake_task(id);
        self.publish(Change::Task(id));
    }

    fn wake_task(&self, id: i64) {
        let _ = self.changed.send(id);
    }

    fn publish(&self, change: Change) {
        if let Some(out) = self.outbound.get() {
            let _ = out.send(change);
        }
    }

    /// Sends this process's changes to `out` from now on (see [`crate::db::Database::publish`]).
    pub fn publish_to(&self, out: mpsc::UnboundedSender<Change>) {
        let _ = self.outbound.set(out);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<i64> {
        self.changed.subscribe()
    }

    /// A task of `category` became runnable (here; other nodes are told too).
    pub fn work_arrived(&self, category: Category) {
        self.wake_work(category);
        self.publish(Change::Work(category));
    }

    fn wake_work(&self, category: Category) {
        if let Some(n) = self.work.get(&category) {
            n.notify_one();
        }
    }

    /// A change another process made, as the database reported it: wakes this process only.
    pub fn apply(&self, change: Change) {
        match change {
            Change::Task(id) => self.wake_task(id),
            Change::Work(category) => self.wake_work(category),
        }
    }

    pub async fn wait_for_work(&self, category: Category) {
        if let Some(n) = self.work.get(&category) {
            n.notified().await;
        }
    }
}
