//! Task change notifications inside one process, for `?wait=` long polling and for waking
//! the dispatcher when work arrives. The database stays the truth: a waiter always re-reads
//! the task, and falls back to a slow re-read in case an event came from another process.

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

    pub async fn wait_for_work(&self, category: Category) {
        if let Some(n) = self.work.get(&category) {
            n.notified().await;
        }
    }
}
