//! The response envelope and the error codes of the API contract.
//!
//! Every JSON response, success or failure, is one envelope. The HTTP status agrees with the
//! code, but clients read the envelope, so the code is the source of truth and the status is
//! derived from it here, once.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The `code` field of an envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    Success,
    Created,
    ValidationError,
    Unauthorized,
    Forbidden,
    NotFound,
    InsufficientCredits,
    CreditsAccountNotFound,
    ConcurrentModification,
    IdempotencyKeyReused,
    CategoryUnavailable,
    RateLimited,
    UploadFailed,
    InternalError,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 14] = [
        ErrorCode::Success,
        ErrorCode::Created,
        ErrorCode::ValidationError,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::InsufficientCredits,
        ErrorCode::CreditsAccountNotFound,
        ErrorCode::ConcurrentModification,
        ErrorCode::IdempotencyKeyReused,
        ErrorCode::CategoryUnavailable,
        ErrorCode::RateLimited,
        ErrorCode::UploadFailed,
        ErrorCode::InternalError,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Success => "SUCCESS",
            ErrorCode::Created => "CREATED",
            ErrorCode::ValidationError => "VALIDATION_ERROR",
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::InsufficientCredits => "INSUFFICIENT_CREDITS",
            ErrorCode::CreditsAccountNotFound => "CREDITS_ACCOUNT_NOT_FOUND",
            ErrorCode::ConcurrentModification => "CONCURRENT_MODIFICATION",
            ErrorCode::IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            ErrorCode::CategoryUnavailable => "CATEGORY_UNAVAILABLE",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::UploadFailed => "UPLOAD_FAILED",
            ErrorCode::InternalError => "INTERNAL_ERROR",
        }
    }

    pub fn parse(text: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == text)
    }

    /// The HTTP status that goes with the code. `VALIDATION_ERROR` for an over-long body is
    /// 413; the server sets that one case itself.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::Success => 200,
            ErrorCode::Created => 201,
            ErrorCode::ValidationError => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::InsufficientCredits => 402,
            ErrorCode::CreditsAccountNotFound => 403,
            ErrorCode::ConcurrentModification => 409,
            ErrorCode::IdempotencyKeyReused => 422,
            ErrorCode::CategoryUnavailable => 503,
            ErrorCode::RateLimited => 429,
            ErrorCode::UploadFailed => 502,
            ErrorCode::InternalError => 500,
        }
    }

    /// Answers that will not change if the same request is sent again (the poller ends a job
    /// on these instead of retrying).
    pub fn is_permanent(self) -> bool {
        matches!(
            self,
            ErrorCode::NotFound | ErrorCode::Unauthorized | ErrorCode::Forbidden
        )
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One response of the API, success or failure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub success: bool,
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
}

impl Envelope {
    pub fn ok(data: Value) -> Envelope {
        Envelope::ok_with(ErrorCode::Success, data)
    }

    pub fn ok_with(code: ErrorCode, data: Value) -> Envelope {
        Envelope {
            success: true,
            code: code.as_str().to_string(),
            message: "ok".to_string(),
            data: Some(data),
            error: None,
        }
    }

    /// A failure; `details` (field → reason) goes to `error.details` when given.
    pub fn failure(
        code: ErrorCode,
        message: impl Into<String>,
        details: Option<Value>,
    ) -> Envelope {
        Envelope {
            success: false,
            code: code.as_str().to_string(),
            message: message.into(),
            data: None,
            error: Some(
                serde_json::json!({ "details": details.unwrap_or(Value::Object(Default::default())) }),
            ),
        }
    }

    /// The code as a known enum value, if it is one.
    pub fn error_code(&self) -> Option<ErrorCode> {
        ErrorCode::parse(&self.code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_carry_their_status() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
        assert_eq!(ErrorCode::InsufficientCredits.http_status(), 402);
        assert_eq!(ErrorCode::CreditsAccountNotFound.http_status(), 403);
        assert_eq!(ErrorCode::IdempotencyKeyReused.http_status(), 422);
        assert_eq!(ErrorCode::parse("NOPE"), None);
    }

    #[test]
    fn failure_envelope_has_details() {
        let env = Envelope::failure(
            ErrorCode::ValidationError,
            "prompt is required",
            Some(serde_json::json!({"prompt": "required"})),
        );
        let v = serde_json::to_value(&env).unwrap();
        assert_eq!(v["success"], false);
        assert_eq!(v["error"]["details"]["prompt"], "required");
        assert!(v.get("data").is_none());
    }
}
