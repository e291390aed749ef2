//! Task status: a number on the wire, a small state machine in the server.

use serde::{Deserialize, Serialize};

/// The status of a task. Values are the wire numbers; `>= 3` is terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "u8", try_from = "u8")]
pub enum TaskStatus {
    Queued = 1,
    Processing = 2,
    Success = 3,
    Failed = 4,
    Timeout = 5,
    Cancelled = 6,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 6] = [
        TaskStatus::Queued,
        TaskStatus::Processing,
        TaskStatus::Success,
        TaskStatus::Failed,
        TaskStatus::Timeout,
        TaskStatus::Cancelled,
    ];

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: i64) -> Option<TaskStatus> {
        TaskStatus::ALL
            .into_iter()
            .find(|s| i64::from(s.code()) == code)
    }

    pub fn is_terminal(self) -> bool {
        self.code() >= 3
    }

    /// The short name used in `status_text`, metrics labels and `admin tasks --status`.
    pub fn name(self) -> &'static str {
        match self {
            TaskStatus::Queued => "initialized",
            TaskStatus::Processing => "processing",
            TaskStatus::Success => "success",
            TaskStatus::Failed => "failed",
            TaskStatus::Timeout => "timeout",
            TaskStatus::Cancelled => "cancelled",
        }
    }

    /// Accepts a wire number or a name (`queued` is accepted for `initialized`).
    pub fn parse(text: &str) -> Option<TaskStatus> {
        if let Ok(n) = text.parse::<i64>() {
            return TaskStatus::from_code(n);
        }
        match text.to_ascii_lowercase().as_str() {
            "queued" => Some(TaskStatus::Queued),
            other => TaskStatus::ALL.into_iter().find(|s| s.name() == other),
        }
    }

    /// A status may only move forward: queued → processing → terminal, or queued → terminal.
    pub fn can_move_to(self, next: TaskStatus) -> bool {
        !self.is_terminal() && next > self
    }
}

impl From<TaskStatus> for u8 {
    fn from(s: TaskStatus) -> u8 {
        s.code()
    }
}

impl TryFrom<u8> for TaskStatus {
    type Error = String;
    fn try_from(code: u8) -> Result<Self, Self::Error> {
        TaskStatus::from_code(code.into()).ok_or_else(|| format!("unknown task status {code}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_only_moves_forward() {
        use TaskStatus::*;
        assert!(Queued.can_move_to(Processing));
        assert!(Queued.can_move_to(Cancelled));
        assert!(Processing.can_move_to(Success));
        assert!(!Processing.can_move_to(Queued));
        assert!(!Success.can_move_to(Failed));
        assert!(!Cancelled.can_move_to(Cancelled));
        assert!(Success.is_terminal() && !Processing.is_terminal());
        assert_eq!(TaskStatus::parse("queued"), Some(Queued));
        assert_eq!(TaskStatus::parse("5"), Some(Timeout));
        assert_eq!(TaskStatus::parse("done"), None);
        assert_eq!(serde_json::to_string(&Success).unwrap(), "3");
    }
}
