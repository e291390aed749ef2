//! `ApiError`: an error code of the contract with its message and field details. Services
//! return it; the HTTP layer turns it into an envelope with the matching status.

use plume_core::{ContentError, ErrorCode};
use serde_json::Value;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub details: Option<Value>,
    /// Overrides the code's usual HTTP status (413 for an over-long body).
    pub http_status: Option<u16>,
    /// Seconds for a `Retry-After` header.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            details: None,
            http_status: None,
            retry_after: None,
        }
    }

    /// A VALIDATION_ERROR naming one field.
    pub fn field(field: &str, reason: impl Into<String>) -> ApiError {
        let reason = reason.into();
        ApiError {
            details: Some(serde_json::json!({ field: reason })),
            ..ApiError::new(ErrorCode::ValidationError, format!("{field}: {reason}"))
        }
    }

    pub fn not_found(what: &str) -> ApiError {
        ApiError::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    /// Logs the cause and answers INTERNAL_ERROR without leaking it.
    pub fn internal(cause: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %cause, "internal error");
        ApiError::new(ErrorCode::InternalError, "internal error")
    }

    pub fn status(&self) -> u16 {
        self.http_status.unwrap_or_else(|| self.code.http_status())
    }
}

impl From<ContentError> for ApiError {
    fn from(e: ContentError) -> ApiError {
        ApiError {
            details: Some(e.details_json()),
            ..ApiError::new(ErrorCode::ValidationError, e.message())
        }
    }
}

impl From<crate::db::DbError> for ApiError {
    fn from(e: crate::db::DbError) -> ApiError {
        match e {
            crate::db::DbError::Retryable => ApiError::new(
                ErrorCode::ConcurrentModification,
                "the database is busy with a conflicting change; retry",
            ),
            crate::db::DbError::Unavailable(cause) => {
                tracing::error!(error = %cause, "database unavailable");
                ApiError {
                    http_status: Some(503),
                    retry_after: Some(5),
                    ..ApiError::new(
                        ErrorCode::InternalError,
                        "the database is unavailable; retry shortly",
                    )
                }
            }
            crate::db::DbError::Other(cause) => ApiError::internal(cause),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}
