//! The HTTP layer: routes, the envelope, authentication and request metrics. Handlers parse
//! and answer; what they do lives in [`Service`] and [`crate::portal::Portal`]. The portal's
//! HTML pages live in `pages`, its JSON in [`portal_api`], its session cookie in [`session`].

mod admin;
mod api;
mod files;
mod pages;
pub mod portal_api;
pub mod session;

use crate::error::ApiError;
use crate::service::Service;
use axum::extract::{DefaultBodyLimit, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use plume_core::{Envelope, ErrorCode};
use serde_json::Value;
use std::sync::Arc;

pub type AppState = Arc<Service>;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (
            status,
            Json(Envelope::failure(self.code, self.message, self.details)),
        )
            .into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// A success envelope.
pub fn ok(data: Value) -> Response {
    (StatusCode::OK, Json(Envelope::ok(data))).into_response()
}

/// A success envelope around anything the wire types serialize.
pub fn ok_of<T: serde::Serialize>(data: &T) -> Response {
    match serde_json::to_value(data) {
        Ok(value) => ok(value),
        Err(e) => ApiError::internal(e).into_response(),
    }
}

/// Reads a JSON body within the configured limit: 400 for bad JSON, 413 for too much.
pub fn parse_json(
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Value, ApiError> {
    let bytes = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError {
                http_status: Some(413),
                ..ApiError::field("body", "the request body is too large")
            }
        } else {
            ApiError::field("body", rejection.body_text())
        }
    })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::field("body", format!("not valid JSON: {e}")))
}

/// The account behind the request's API key.
pub struct Caller {
    pub user_id: i64,
    pub key_id: i64,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, service: &AppState) -> Result<Caller, ApiError> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let key = crate::accounts::authenticate(service.db.as_ref(), header).await?;
        if let Err(seconds) = service
            .rate_limiter
            .check(service.db.as_ref(), key.key_id)
            .await?
        {
            return Err(ApiError {
                retry_after: Some(seconds),
                ..ApiError::new(
                    ErrorCode::RateLimited,
                    format!("too many requests; retry in {seconds} s"),
                )
            });
        }
        // "Last used" on the portal's key list, refreshed at most once a minute per key so
        // that authenticating stays a read; off the request's path.
        let now = crate::db::now_millis();
        if key.last_used_at.is_none_or(|t| now - t > 60_000) {
            let db = service.db.clone();
            tokio::spawn(async move {
                if let Err(e) = db.touch_key(key.key_id, now).await {
                    tracing::debug!(error = %e, "recording a key's last use failed");
                }
            });
        }
        Ok(Caller {
            user_id: key.user_id,
            key_id: key.key_id,
        })
    }
}

async fn track(State(service): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = request.method().to_string();
    let response = next.run(request).await;
    service
        .metrics
        .record_request(&method, &route, response.status().as_u16());
    response
}

/// The limits every request shares: header size and count, a deadline for the answer, and
/// a `Retry-After` on every 429 and 503, whichever handler (or this guard) made it.
async fn guard(State(service): State<AppState>, request: Request, next: Next) -> Response {
    let limits = &service.config.limits;
    let headers = request.headers();
    let header_bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers.len() > limits.header_max_count || header_bytes > limits.header_max_bytes {
        return ApiError {
            http_status: Some(431),
            ..ApiError::field(
                "headers",
                format!(
                    "too large: at most {} headers and {} bytes of them",
                    limits.header_max_count, limits.header_max_bytes
                ),
            )
        }
        .into_response();
    }
    let deadline = std::time::Duration::from_secs(limits.request_timeout_seconds);
    let mut response = match tokio::time::timeout(deadline, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError {
            http_status: Some(503),
            ..ApiError::new(
                ErrorCode::InternalError,
                format!(
                    "the request took longer than {} s; retry",
                    limits.request_timeout_seconds
                ),
            )
        }
        .into_response(),
    };
    let status = response.status();
    if matches!(status.as_u16(), 429 | 503) && !response.headers().contains_key(header::RETRY_AFTER)
    {
        let seconds: u64 = if status.as_u16() == 429 { 1 } else { 5 };
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        // The rest of the body was never read, so the connection cannot carry another
        // request: say so, or a client reuses it and its next request fails mid-write.
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

async fn fallback() -> ApiError {
    ApiError::not_found("route")
}

pub fn router(service: AppState) -> Router {
    let json_limit = service.config.limits.json_body_max_bytes;
    let upload_limit = usize::try_from(service.config.limits.upload_max_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(64 * 1024);
    Router::new()
        .route("/api/open/tasks", post(api::create_task))
        .route("/api/open/tasks/batch", get(api::batch))
        .route("/api/open/tasks/{id}", get(api::get_task))
        .route("/api/open/tasks/{id}/cancel", post(api::cancel_task))
        .route(
            "/api/open/upload",
            post(api::upload).layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route("/api/open/validate", get(api::validate))
        .route("/api/open/describe", post(api::describe))
        .route("/files/{*key}", get(files::serve_file))
        .route("/healthz", get(api::healthz))
        .route("/readyz", get(api::readyz))
        .route("/metrics", get(api::metrics))
        .route("/api/admin/users", post(admin::create_user))
        .route("/api/admin/keys", post(admin::create_key))
        .route("/api/admin/keys/disable", post(admin::disable_key))
        .route("/api/admin/topup", post(admin::topup))
        .route("/api/admin/balance", get(admin::balance))
        .route("/api/admin/tasks", get(admin::tasks))
        .merge(portal_routes(service.config.portal.enabled))
        .fallback(fallback)
        .layer(DefaultBodyLimit::max(json_limit))
        .layer(axum::middleware::from_fn_with_state(service.clone(), guard))
        .layer(axum::middleware::from_fn_with_state(service.clone(), track))
        .with_state(service)
}

/// The portal: its JSON API and its pages (none of it when `portal.enabled` is false).
fn portal_routes(enabled: bool) -> Router<AppState> {
    use portal_api as p;
    if !enabled {
        return Router::new();
    }
    Router::new()
        .route("/api/portal/signup", post(p::signup))
        .route("/api/portal/login", post(p::login))
        .route("/api/portal/logout", post(p::logout))
        .route("/api/portal/me", get(p::me))
        .route("/api/portal/keys", get(p::keys).post(p::create_key))
        .route("/api/portal/keys/{id}/disable", post(p::disable_key))
        .route("/api/portal/ledger", get(p::ledger))
        .route("/api/portal/redeem", post(p::redeem))
        .route("/api/portal/tasks", get(p::tasks).post(p::create_task))
        .route("/api/portal/tasks/{id}", get(p::task))
        .route("/api/portal/admin/overview", get(p::admin_overview))
        .route("/api/portal/admin/users", get(p::admin_users))
        .route("/api/portal/admin/users/{id}/topup", post(p::admin_topup))
        .route(
            "/api/portal/admin/users/{id}/disable",
            post(p::admin_disable_user),
        )
        .route("/api/portal/admin/codes", post(p::admin_codes))
        .merge(pages::routes())
}
