//! `/api/admin/*`: the operator's commands over HTTP, guarded by the configured operator
//! token. With no token configured the admin API does not exist (404).

use super::{ok, parse_json, AppState};
use crate::accounts::Admin;
use crate::error::ApiError;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::Response;
use bytes::Bytes;
use plume_core::ErrorCode;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

pub struct Operator;

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        service: &AppState,
    ) -> Result<Operator, ApiError> {
        let token = &service.config.admin_token;
        if token.is_empty() {
            return Err(ApiError::not_found("route"));
        }
        let given = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        // Compare digests so the time taken says nothing about the token.
        if Sha256::digest(given.as_bytes()) != Sha256::digest(token.as_bytes()) {
            return Err(ApiError::new(
                ErrorCode::Unauthorized,
                "admin API: missing or wrong operator token",
            ));
        }
        Ok(Operator)
    }
}

fn text_field<'a>(body: &'a Value, name: &str) -> Result<&'a str, ApiError> {
    match body.get(name) {
        Some(Value::String(s)) => Ok(s),
        _ => Err(ApiError::field(name, "is required (a string)")),
    }
}

/// A user id given as a number or a string of digits.
fn user_field(body: &Value) -> Result<String, ApiError> {
    match body.get("user_id") {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        _ => Err(ApiError::field("user_id", "is required")),
    }
}

pub async fn create_user(
    State(s): State<AppState>,
    _: Operator,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = parse_json(body)?;
    let admin = Admin { db: s.db.as_ref() };
    if body.get("email").is_some() {
        let role = body.get("role").and_then(Value::as_str).unwrap_or("user");
        if !matches!(role, "user" | "admin") {
            return Err(ApiError::field("role", "must be user or admin"));
        }
        return Ok(ok(admin
            .create_login(
                text_field(&body, "email")?,
                text_field(&body, "password")?,
                role == "admin",
            )
            .await?));
    }
    Ok(ok(admin.create_user(text_field(&body, "name")?).await?))
}

pub async fn create_key(
    State(s): State<AppState>,
    _: Operator,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = parse_json(body)?;
    Ok(ok(Admin { db: s.db.as_ref() }
        .create_key(&user_field(&body)?)
        .await?))
}

pub async fn disable_key(
    State(s): State<AppState>,
    _: Operator,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = parse_json(body)?;
    Ok(ok(Admin { db: s.db.as_ref() }
        .disable_key(text_field(&body, "key")?)
        .await?))
}

pub async fn topup(
    State(s): State<AppState>,
    _: Operator,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = parse_json(body)?;
    let amount = body
        .get("amount")
        .and_then(Value::as_i64)
        .ok_or_else(|| ApiError::field("amount", "is required (a whole number)"))?;
    Ok(ok(Admin { db: s.db.as_ref() }
        .topup(&user_field(&body)?, amount)
        .await?))
}

pub async fn balance(
    State(s): State<AppState>,
    _: Operator,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let user = q
        .get("user_id")
        .ok_or_else(|| ApiError::field("user_id", "is required"))?;
    Ok(ok(Admin { db: s.db.as_ref() }.balance(user).await?))
}

pub async fn tasks(
    State(s): State<AppState>,
    _: Operator,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let limit = match q.get("limit") {
        None => 100,
        Some(l) => l
            .parse()
            .map_err(|_| ApiError::field("limit", "must be a whole number"))?,
    };
    Ok(ok(Admin { db: s.db.as_ref() }
        .tasks(q.get("status").map(String::as_str), limit)
        .await?))
}
