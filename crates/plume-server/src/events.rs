//! Task change notifications, for `?wait=` long polling and for waking the dispatcher when
//! work arrives. This process's own changes are sent here directly; other nodes' arrive
//! through the database ([`crate::db::Database::changes`], PostgreSQL `LISTEN/NOTIFY`) and
//! are applied with [`TaskEvents::apply`]. The database stays the truth: a waiter always
//! re-reads the task, and falls back to a slow re-read in case a notification was missed.

use plume_core::Category;
use std::collections::HashMap;
use tokio::sync::{broadcast, Notify};

pub struct TaskEvents {
    changed: broadcast::Sender<i64>,
    work: HashMap<Category, Notify>,
}

impl Default for TaskEvents {
    fn default() -> Self {
        TaskEvents {
            changed: broadcast::channel(1024).0,
            work: Category::ALL
                .into_iter()
                .map(|c| (c, Notify::new()))
                .collect(),
        }
    }
}

impl TaskEvents {
    /// A task's status, progress or result changed.
    pub fn task_changed(&self, id: i64) {
        let _ = self.changed.send(id);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<i64> {
        self.changed.subscribe()
    }

    /// A task of `category` became runnable.
    pub fn work_arrived(&self, category: Category) {
        if let Some(n) = self.work.get(&category) {
            n.notify_one();
        }
    }

    /// A change another process made, as the database reported it.
    pub fn apply(&self, change: crate::db::Change) {
        match change {
            crate::db::Change::Task(id) => self.task_changed(id),
            crate::db::Change::Work(category) => self.work_arrived(category),
        }
    }

    pub async fn wait_for_work(&self, category: Category) {
        if let Some(n) = self.work.get(&category) {
            n.notified().await;
        }
    }
}
