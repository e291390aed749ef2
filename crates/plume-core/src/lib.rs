//! The Plume wire contract, in one place.
//!
//! Both `plume` (the skill's client) and `plume-server` use this crate, so every rule of
//! `docs/spec/API.md` exists exactly once:
//!
//! * [`envelope`]: the `{"success", "code", "message", ...}` envelope and the error codes with
//!   their HTTP statuses;
//! * [`status`]: the six task statuses and which of them are terminal;
//! * [`category`]: the seven categories with their time limits and poll defaults;
//! * [`content`]: how a server *validates* task content, and [`build`]: how a client builds it;
//! * [`price`]: the default price table (every number is configuration);
//! * [`task`]: [`TaskView`], a task as the API shows it;
//! * [`catalog`]: the categories and their limits as JSON, for code outside Rust.

pub mod build;
pub mod catalog;
pub mod category;
pub mod content;
pub mod envelope;
pub mod price;
pub mod status;
pub mod task;

pub use build::{build_content, BuildOptions};
pub use category::{Category, CategoryKind};
pub use content::{validate_content, ContentError, ProcessingMode, ValidatedContent};
pub use envelope::{Envelope, ErrorCode};
pub use price::PriceTable;
pub use status::TaskStatus;
pub use task::{TaskError, TaskView};

/// The hosted service's base URL, the client's default for `PLUME_API_BASE`.
pub const HOSTED_API_BASE: &str = "https://design.useplume.app";

/// Largest task id a JSON number carries exactly (2^53 - 1).
pub const MAX_TASK_ID: i64 = (1 << 53) - 1;

/// Most ids one `GET /api/open/tasks/batch` may name.
pub const MAX_BATCH_IDS: usize = 100;

/// Longest `?wait=` a server honours, in seconds.
pub const MAX_WAIT_SECONDS: u64 = 30;

/// Parses a task id as the contract allows it: a JSON number or a string of digits, positive
/// and below 2^53. Anything else is `None` (a path segment that is not such a number is
/// NOT_FOUND).
pub fn parse_task_id(text: &str) -> Option<i64> {
    if text.is_empty() || text.len() > 16 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let id: i64 = text.parse().ok()?;
    (1..=MAX_TASK_ID).contains(&id).then_some(id)
}

/// Reads a task id from a JSON value that may be a number or a string of digits.
pub fn task_id_from_json(value: &serde_json::Value) -> Option<i64> {
    match value {
        serde_json::Value::Number(n) => n.as_i64().filter(|id| (1..=MAX_TASK_ID).contains(id)),
        serde_json::Value::String(s) => parse_task_id(s),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn task_ids_are_positive_integers_below_2_pow_53() {
        assert_eq!(parse_task_id("1042"), Some(1042));
        assert_eq!(parse_task_id("9007199254740991"), Some(MAX_TASK_ID));
        for bad in [
            "",
            "0",
            "-1",
            "+1",
            "1.0",
            "abc",
            "9007199254740992",
            "1e3",
            " 1",
        ] {
            assert_eq!(parse_task_id(bad), None, "{bad:?}");
        }
        assert_eq!(task_id_from_json(&json!(7)), Some(7));
        assert_eq!(task_id_from_json(&json!("7")), Some(7));
        assert_eq!(task_id_from_json(&json!(7.5)), None);
        assert_eq!(task_id_from_json(&json!(null)), None);
    }
}
