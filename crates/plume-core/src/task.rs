//! [`TaskView`]: a task as the API shows it (`GET /api/open/tasks/{id}`, the batch, cancel).
//! The server serializes it and the client reads it, so the shape exists once.
//!
//! Reading is lenient where the hosted service may differ from this server: the id may be a
//! number or a string of digits, and any field but `id` and `status` may be missing.

use crate::TaskStatus;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskView {
    #[serde(deserialize_with = "task_id")]
    pub id: i64,
    #[serde(default)]
    pub category: String,
    #[serde(rename = "type", default)]
    pub task_type: Option<i64>,
    /// The status code, 1 to 6 (see [`TaskStatus`]).
    pub status: i64,
    #[serde(default)]
    pub status_text: String,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub project_id: Option<String>,
    #[serde(default)]
    pub content: Value,
    /// Output URLs on success, the reason on failure, `null` before.
    #[serde(default)]
    pub result: Value,
    #[serde(default)]
    pub error: Option<TaskError>,
    #[serde(default)]
    pub credits_cost: i64,
    #[serde(default)]
    pub progress: i64,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub finished_at: Option<String>,
}

/// Why a task failed, timed out or was cancelled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskError {
    pub code: String,
    #[serde(default)]
    pub message: String,
}

impl TaskView {
    pub fn status(&self) -> Option<TaskStatus> {
        TaskStatus::from_code(self.status)
    }

    /// Success, failed, timeout or cancelled: nothing will change any more.
    pub fn is_terminal(&self) -> bool {
        self.status().is_some_and(TaskStatus::is_terminal)
    }

    pub fn is_success(&self) -> bool {
        self.status() == Some(TaskStatus::Success)
    }
}

fn task_id<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let value = Value::deserialize(d)?;
    crate::task_id_from_json(&value)
        .ok_or_else(|| serde::de::Error::custom(format!("{value} is not a task id")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_both_id_forms_and_missing_fields() {
        let t: TaskView = serde_json::from_value(json!({"id": "42", "status": 3})).unwrap();
        assert_eq!((t.id, t.is_terminal(), t.is_success()), (42, true, true));
        let t: TaskView = serde_json::from_value(json!({"id": 7, "status": 2})).unwrap();
        assert!(!t.is_terminal());
        assert!(serde_json::from_value::<TaskView>(json!({"id": "x", "status": 1})).is_err());
        let full = TaskView {
            id: 1,
            category: "veo".into(),
            task_type: None,
            status: 4,
            status_text: "failed".into(),
            title: None,
            project_id: None,
            content: json!({"prompt": "p"}),
            result: json!("no"),
            error: Some(TaskError {
                code: "X".into(),
                message: "no".into(),
            }),
            credits_cost: 60,
            progress: 0,
            created_at: "2026-11-28T00:00:00.000Z".into(),
            started_at: None,
            finished_at: None,
        };
        let text = serde_json::to_value(&full).unwrap();
        assert_eq!(text["type"], Value::Null);
        assert_eq!(serde_json::from_value::<TaskView>(text).unwrap(), full);
    }
}
