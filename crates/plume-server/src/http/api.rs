//! `/api/open/*` handlers and the health and metrics endpoints.

use super::{ok, ok_of, parse_json, AppState, Caller};
use crate::error::ApiError;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use plume_core::{ErrorCode, TaskView, MAX_WAIT_SECONDS};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;

fn path_task_id(id: &str) -> Result<i64, ApiError> {
    plume_core::parse_task_id(id).ok_or_else(|| ApiError::not_found("task"))
}

pub async fn create_task(
    State(service): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = parse_json(body)?;
    let idempotency_key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .map_err(|_| ApiError::field("Idempotency-Key", "must be visible ASCII"))?,
        ),
    };
    let (task, _created) = service
        .create_task(caller.user_id, &body, idempotency_key)
        .await?;
    Ok(ok(json!({
        "id": task.id,
        "status": task.status.code(),
        "category": task.category.as_str(),
        "credits_cost": task.credits_cost,
        "created_at": crate::time::rfc3339(task.created_at),
    })))
}

pub async fn get_task(
    State(service): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let id = path_task_id(&id)?;
    let wait = match query.get("wait") {
        None => None,
        Some(w) => {
            let seconds: u64 = w.trim().parse().map_err(|_| {
                ApiError::field(
                    "wait",
                    format!("must be whole seconds, at most {MAX_WAIT_SECONDS}"),
                )
            })?;
            Some(Duration::from_secs(seconds).min(service.max_wait()))
        }
    };
    let task = service.get_task(caller.user_id, id, wait).await?;
    Ok(ok_of(&service.task_view(&task)))
}

pub async fn batch(
    State(service): State<AppState>,
    caller: Caller,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let ids = query.get("ids").map(String::as_str).unwrap_or("");
    let tasks = service.batch(caller.user_id, ids).await?;
    let views: Vec<TaskView> = tasks.iter().map(|t| service.task_view(t)).collect();
    Ok(ok_of(&views))
}

pub async fn cancel_task(
    State(service): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_task_id(&id)?;
    let task = service.cancel_task(caller.user_id, id).await?;
    Ok(ok_of(&service.task_view(&task)))
}

pub(super) fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    let too_large = e.status() == StatusCode::PAYLOAD_TOO_LARGE;
    ApiError {
        http_status: too_large.then_some(413),
        ..ApiError::field(
            "file",
            if too_large {
                "the upload is too large".to_string()
            } else {
                e.body_text()
            },
        )
    }
}

pub async fn upload(
    State(service): State<AppState>,
    _caller: Caller,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<Response, ApiError> {
    let mut multipart = multipart.map_err(|e| {
        ApiError::field(
            "file",
            format!(
                "send multipart/form-data with a part named file ({})",
                e.body_text()
            ),
        )
    })?;
    let max = service.config.limits.upload_max_bytes;
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        if field.name() != Some("file") {
            continue;
        }
        let mut data = BytesMut::new();
        while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
            if data.len() as u64 + chunk.len() as u64 > max {
                return Err(ApiError {
                    http_status: Some(413),
                    ..ApiError::field(
                        "file",
                        format!("the file is larger than the limit of {max} bytes"),
                    )
                });
            }
            data.extend_from_slice(&chunk);
        }
        return Ok(ok(service.upload(data.freeze()).await?));
    }
    Err(ApiError::field("file", "no part named file in the form"))
}

pub async fn validate(
    State(service): State<AppState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    let balance = service.db.balance(caller.user_id).await?;
    Ok(ok(json!({
        "valid": true,
        "user_id": caller.user_id.to_string(),
        "credits_balance": balance.unwrap_or(0),
    })))
}

pub async fn describe(
    State(service): State<AppState>,
    _caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = parse_json(body)?;
    Ok(ok(service.describe(&body).await?))
}

pub async fn healthz() -> Response {
    ok(json!({ "status": "ok" }))
}

pub async fn readyz(State(service): State<AppState>) -> Response {
    let database = service.db.ping().await;
    let storage = service.blobs.check().await;
    let categories: serde_json::Map<String, Value> = plume_core::Category::ALL
        .into_iter()
        .map(|c| {
            let state = match service.executors.ready(c) {
                Ok(_) => "ready".to_string(),
                Err(reason) => format!("unavailable: {reason}"),
            };
            (c.as_str().to_string(), Value::String(state))
        })
        .collect();
    let ready = database.is_ok() && storage.is_ok();
    let data = json!({
        "ready": ready,
        "database": database.as_ref().map(|_| "ok".to_string()).unwrap_or_else(|e| e.to_string()),
        "storage": storage.as_ref().map(|_| "ok".to_string()).unwrap_or_else(|e| e.to_string()),
        "categories": categories,
    });
    if ready {
        ok(data)
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(plume_core::Envelope::failure(
                ErrorCode::InternalError,
                "not ready",
                Some(data),
            )),
        )
            .into_response()
    }
}

pub async fn metrics(State(service): State<AppState>) -> Result<Response, ApiError> {
    let mut text = service.metrics.render(service.db.as_ref()).await?;
    if let Some(vision) = service.vision.get() {
        use std::fmt::Write;
        let _ = writeln!(
            text,
            "# HELP plume_vision_inferences_peak Most local-model inferences that ran at once."
        );
        let _ = writeln!(text, "# TYPE plume_vision_inferences_peak gauge");
        let _ = writeln!(
            text,
            "plume_vision_inferences_peak {}",
            vision.peak_concurrent_inferences()
        );
        let _ = writeln!(
            text,
            "# HELP plume_vision_inferences_limit The configured bound on concurrent inferences."
        );
        let _ = writeln!(text, "# TYPE plume_vision_inferences_limit gauge");
        let _ = writeln!(
            text,
            "plume_vision_inferences_limit {}",
            vision.config.max_concurrent_inferences
        );
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}
