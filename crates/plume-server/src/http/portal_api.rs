//! `/api/portal/*`: the JSON API behind every portal page (docs/PORTAL.md). Session-cookie
//! auth; the same envelope and error codes as the Open API. Handlers parse and answer; the
//! work is in [`crate::portal::Portal`].

use super::session::{clear_cookie, set_cookie, ClientAddress, PortalAdmin, PortalUser};
use super::{ok, parse_json, AppState};
use crate::error::ApiError;
use crate::portal::{views, Portal};
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use plume_core::TaskView;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;

/// A JSON body, required to be sent as `application/json` (a cross-site HTML form cannot
/// send that type). An empty body reads as `{}`.
pub fn json_body(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Value, ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ApiError {
            http_status: Some(415),
            ..ApiError::field("Content-Type", "must be application/json")
        });
    }
    if matches!(&body, Ok(b) if b.is_empty()) {
        return Ok(json!({}));
    }
    parse_json(body)
}

fn text<'a>(body: &'a Value, name: &str) -> Result<&'a str, ApiError> {
    match body.get(name) {
        Some(Value::String(s)) => Ok(s),
        _ => Err(ApiError::field(name, "is required (a string)")),
    }
}

fn whole(body: &Value, name: &str) -> Result<i64, ApiError> {
    body.get(name)
        .and_then(Value::as_i64)
        .ok_or_else(|| ApiError::field(name, "is required (a whole number)"))
}

fn id_of(raw: &str, what: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::not_found(what))
}

/// `?before=ID&limit=N` paging.
fn paging(q: &HashMap<String, String>, default: i64) -> Result<(Option<i64>, i64), ApiError> {
    let number = |name: &str| -> Result<Option<i64>, ApiError> {
        q.get(name)
            .map(|v| {
                v.trim()
                    .parse::<i64>()
                    .map_err(|_| ApiError::field(name, "must be a whole number"))
            })
            .transpose()
    };
    Ok((number("before")?, number("limit")?.unwrap_or(default)))
}

fn signed_in(service: &AppState, me: Value, new: &crate::portal::NewSession) -> Response {
    let mut response = ok(me);
    response
        .headers_mut()
        .insert(header::SET_COOKIE, set_cookie(service, new));
    response
}

pub async fn signup(
    State(s): State<AppState>,
    _: ClientAddress,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = json_body(&headers, body)?;
    let invite = body.get("invite_code").and_then(Value::as_str);
    let portal = Portal { service: &s };
    let (session, new) = portal
        .signup(text(&body, "email")?, text(&body, "password")?, invite)
        .await?;
    let me = portal.me(&session).await?;
    Ok(signed_in(&s, me, &new))
}

pub async fn login(
    State(s): State<AppState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = json_body(&headers, body)?;
    let portal = Portal { service: &s };
    let (session, new) = portal
        .login(text(&body, "email")?, text(&body, "password")?, &address)
        .await?;
    let me = portal.me(&session).await?;
    Ok(signed_in(&s, me, &new))
}

pub async fn logout(
    State(s): State<AppState>,
    user: PortalUser,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = json_body(&headers, body)?;
    let portal = Portal { service: &s };
    let everywhere = body.get("everywhere").and_then(Value::as_bool) == Some(true);
    let ended = if everywhere {
        portal.logout_elsewhere(&user.session, &user.token).await? + 1
    } else {
        1
    };
    portal.logout(&user.token).await?;
    let mut response = ok(json!({ "signed_out": true, "sessions_ended": ended }));
    response
        .headers_mut()
        .insert(header::SET_COOKIE, clear_cookie(&s));
    Ok(response)
}

pub async fn me(State(s): State<AppState>, user: PortalUser) -> Result<Response, ApiError> {
    Ok(ok(Portal { service: &s }.me(&user.session).await?))
}

pub async fn keys(State(s): State<AppState>, user: PortalUser) -> Result<Response, ApiError> {
    let keys = Portal { service: &s }.keys(&user.session).await?;
    Ok(ok(
        json!({ "keys": keys.iter().map(views::key).collect::<Vec<_>>() }),
    ))
}

pub async fn create_key(
    State(s): State<AppState>,
    user: PortalUser,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    json_body(&headers, body)?;
    let new = Portal { service: &s }.create_key(&user.session).await?;
    let (snippet, env) = views::key_setup(&new.key, &s.config.public_base);
    Ok(ok(json!({
        "id": new.id, "key": new.key, "prefix": new.prefix,
        "api_base": s.config.public_base, "openclaw_json": snippet, "env": env,
    })))
}

pub async fn disable_key(
    State(s): State<AppState>,
    user: PortalUser,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    json_body(&headers, body)?;
    let id = id_of(&id, "key")?;
    Portal { service: &s }
        .disable_key(&user.session, id)
        .await?;
    Ok(ok(json!({ "id": id, "disabled": true })))
}

pub async fn ledger(
    State(s): State<AppState>,
    user: PortalUser,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let (before, limit) = paging(&q, 100)?;
    let (balance, entries) = Portal { service: &s }
        .ledger(&user.session, before, limit)
        .await?;
    Ok(ok(json!({
        "credits_balance": balance,
        "entries": entries.iter().map(views::entry).collect::<Vec<_>>(),
    })))
}

pub async fn redeem(
    State(s): State<AppState>,
    user: PortalUser,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = json_body(&headers, body)?;
    let (amount, balance) = Portal { service: &s }
        .redeem(&user.session, text(&body, "code")?)
        .await?;
    Ok(ok(json!({ "amount": amount, "credits_balance": balance })))
}

pub async fn tasks(
    State(s): State<AppState>,
    user: PortalUser,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let (before, limit) = paging(&q, 50)?;
    let tasks = Portal { service: &s }
        .tasks(&user.session, before, limit)
        .await?;
    let views: Vec<TaskView> = tasks.iter().map(|t| s.task_view(t)).collect();
    Ok(ok(json!({ "tasks": views })))
}

/// One task; `?wait=N` holds until its status or progress changes (live status).
pub async fn task(
    State(s): State<AppState>,
    user: PortalUser,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let id = plume_core::parse_task_id(&id).ok_or_else(|| ApiError::not_found("task"))?;
    let wait = match q.get("wait") {
        None => None,
        Some(w) => Some(
            Duration::from_secs(
                w.trim()
                    .parse::<u64>()
                    .map_err(|_| ApiError::field("wait", "must be whole seconds"))?,
            )
            .min(s.max_wait()),
        ),
    };
    let task = s.get_task(user.session.user_id, id, wait).await?;
    Ok(ok(
        serde_json::to_value(s.task_view(&task)).map_err(ApiError::internal)?
    ))
}

/// Creates a task as the signed-in user: the body is the Open API's create body.
pub async fn create_task(
    State(s): State<AppState>,
    user: PortalUser,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = json_body(&headers, body)?;
    let (task, _) = s.create_task(user.session.user_id, &body, None).await?;
    Ok(ok(
        serde_json::to_value(s.task_view(&task)).map_err(ApiError::internal)?
    ))
}

pub async fn admin_overview(
    State(s): State<AppState>,
    _: PortalAdmin,
) -> Result<Response, ApiError> {
    Ok(ok(Portal { service: &s }.overview().await?))
}

pub async fn admin_users(
    State(s): State<AppState>,
    _: PortalAdmin,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let users = Portal { service: &s }
        .users(q.get("q").map(String::as_str).unwrap_or(""))
        .await?;
    Ok(ok(
        json!({ "users": users.iter().map(views::user).collect::<Vec<_>>() }),
    ))
}

pub async fn admin_topup(
    State(s): State<AppState>,
    PortalAdmin(admin): PortalAdmin,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = json_body(&headers, body)?;
    let id = id_of(&id, "user")?;
    let amount = whole(&body, "amount")?;
    let balance = Portal { service: &s }
        .admin_topup(id, amount, text(&body, "reason")?)
        .await?;
    tracing::info!(
        admin = admin.session.user_id,
        user_id = id,
        amount,
        "operator top-up"
    );
    Ok(ok(
        json!({ "user_id": id.to_string(), "amount": amount, "credits_balance": balance }),
    ))
}

pub async fn admin_disable_user(
    State(s): State<AppState>,
    _: PortalAdmin,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = json_body(&headers, body)?;
    let id = id_of(&id, "user")?;
    let disabled = body
        .get("disabled")
        .map(|v| {
            v.as_bool()
                .ok_or_else(|| ApiError::field("disabled", "must be true or false"))
        })
        .transpose()?
        .unwrap_or(true);
    Portal { service: &s }
        .set_user_disabled(id, disabled)
        .await?;
    Ok(ok(
        json!({ "user_id": id.to_string(), "disabled": disabled }),
    ))
}

pub async fn admin_codes(
    State(s): State<AppState>,
    _: PortalAdmin,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = json_body(&headers, body)?;
    let codes = Portal { service: &s }
        .issue_codes(
            whole(&body, "count")?,
            whole(&body, "amount")?,
            body.get("note").and_then(Value::as_str),
        )
        .await?;
    Ok(ok(
        json!({ "codes": codes, "amount": whole(&body, "amount")? }),
    ))
}

/// Unknown `/api/portal/*` routes answer in the envelope, like the rest of the API.
pub async fn not_found() -> impl IntoResponse {
    ApiError::not_found("route")
}
