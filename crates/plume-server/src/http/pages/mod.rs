//! The portal's HTML pages: server-rendered with maud (escaped by construction), one small
//! script for copy buttons and live task status, one stylesheet, both served from this
//! binary. Every page works without the script; forms post back here with the session's
//! CSRF token, and every answer carries a strict Content-Security-Policy.

mod account;
mod admin;
mod tasks;

use super::session::PortalUser;
use super::AppState;
use crate::error::ApiError;
use crate::portal::{Role, Session};
use axum::extract::{FromRequestParts, OriginalUri};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup, DOCTYPE};
use plume_core::ErrorCode;
use sha2::{Digest, Sha256};

const CSS: &str = include_str!("../assets/portal.css");
const JS: &str = include_str!("../assets/portal.js");

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(account::home))
        .route("/signup", get(account::signup_page).post(account::signup))
        .route("/login", get(account::login_page).post(account::login))
        .route("/logout", post(account::logout))
        .route("/keys", get(account::keys_page).post(account::create_key))
        .route("/keys/{id}/disable", post(account::disable_key))
        .route("/credits", get(account::credits_page))
        .route("/credits/redeem", post(account::redeem))
        .route("/tasks", get(tasks::gallery))
        .route("/tasks/{id}", get(tasks::task_page))
        .route("/tasks/{id}/thumb", get(tasks::thumb))
        .route("/try", get(tasks::try_page).post(tasks::try_submit))
        .route("/admin", get(admin::overview))
        .route("/admin/users", get(admin::users))
        .route("/admin/users/{id}/topup", post(admin::topup))
        .route("/admin/users/{id}/disable", post(admin::disable))
        .route(
            "/admin/codes",
            get(admin::codes_page).post(admin::issue_codes),
        )
        .route("/assets/portal.css", get(|| asset(CSS, "text/css")))
        .route("/assets/portal.js", get(|| asset(JS, "text/javascript")))
}

async fn asset(body: &'static str, mime: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&format!("{mime}; charset=utf-8"))
            .unwrap_or(HeaderValue::from_static("text/plain")),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// Where result images and videos may load from: this server, and the file store's public
/// base when results are served from a bucket's CDN.
fn csp(service: &AppState) -> String {
    let mut media = vec!["'self'".to_string()];
    for base in [&service.config.public_base, &service.config.s3.public_base] {
        if let Ok(url) = url::Url::parse(base) {
            let origin = url.origin().ascii_serialization();
            if origin != "null" && !media.contains(&origin) {
                media.push(origin);
            }
        }
    }
    let media = media.join(" ");
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src {media} data:; \
         media-src {media}; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
         base-uri 'none'"
    )
}

/// Adds the security headers every page carries.
fn secure(service: &AppState, mut response: Response) -> Response {
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&csp(service)) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A whole page: the header with the signed-in user's navigation, then `body`.
pub fn page(
    service: &AppState,
    status: StatusCode,
    title: &str,
    user: Option<&Session>,
    body: Markup,
) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Plume Platform" }
                link rel="stylesheet" href="/assets/portal.css";
                link rel="icon" href="data:,";
                script src="/assets/portal.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/" { "Plume" }
                    @if let Some(user) = user {
                        nav aria-label="Main" {
                            a href="/tasks" { "Tasks" }
                            a href="/try" { "Try it" }
                            a href="/keys" { "Keys" }
                            a href="/credits" { "Credits" }
                            @if user.role == Role::Admin { a href="/admin" { "Admin" } }
                        }
                        form.signout method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(user.csrf_token);
                            span.who { (user.email) }
                            button type="submit" { "Sign out" }
                        }
                    } @else {
                        nav aria-label="Main" {
                            a href="/login" { "Sign in" }
                            a href="/signup" { "Create account" }
                        }
                    }
                }
                main id="main" { h1 { (title) } (body) }
            }
        }
    };
    secure(
        service,
        (status, axum::response::Html(markup.into_string())).into_response(),
    )
}

/// An error or notice box; `role=alert` so screen readers announce it.
pub fn alert(message: &str) -> Markup {
    html! { p.alert role="alert" { (message) } }
}

pub fn notice(message: &str) -> Markup {
    html! { p.notice role="status" { (message) } }
}

/// A field's error message (from an [`ApiError`]'s details, else its message).
pub fn error_text(e: &ApiError) -> String {
    e.message.clone()
}

pub fn not_found_page(service: &AppState, user: Option<&Session>) -> Response {
    page(
        service,
        StatusCode::NOT_FOUND,
        "Not found",
        user,
        html! { p { "There is nothing here. " a href="/" { "Back to the start" } "." } },
    )
}

/// A signed-in user for a page: a visitor without a session is sent to sign in and back.
pub struct PageUser(pub PortalUser);

impl FromRequestParts<AppState> for PageUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, service: &AppState) -> Result<Self, Response> {
        match PortalUser::from_request_parts(parts, service).await {
            Ok(user) => Ok(PageUser(user)),
            Err(e) if e.code == ErrorCode::Unauthorized => {
                let here = OriginalUri::from_request_parts(parts, service)
                    .await
                    .map(|u| u.0.path().to_string())
                    .unwrap_or_else(|_| "/".into());
                let next = if parts.method == axum::http::Method::GET {
                    here
                } else {
                    "/".into()
                };
                Err(Redirect::to(&format!("/login?next={}", encode(&next))).into_response())
            }
            Err(e) => Err(e.into_response()),
        }
    }
}

/// An admin for a page; anyone else gets the not-found page.
pub struct PageAdmin(pub PortalUser);

impl FromRequestParts<AppState> for PageAdmin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, service: &AppState) -> Result<Self, Response> {
        match PortalUser::from_request_parts(parts, service).await {
            Ok(user) if user.session.role == Role::Admin => Ok(PageAdmin(user)),
            Ok(user) => Err(not_found_page(service, Some(&user.session))),
            Err(e) if e.code == ErrorCode::Unauthorized => Err(not_found_page(service, None)),
            Err(e) => Err(e.into_response()),
        }
    }
}

/// Checks a form's CSRF token against the session's.
pub fn check_csrf(user: &PortalUser, given: Option<&String>) -> Result<(), ApiError> {
    let given = given.map(String::as_str).unwrap_or("");
    if Sha256::digest(given.as_bytes()) != Sha256::digest(user.session.csrf_token.as_bytes()) {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "this form has expired or came from another site; reload the page and try again",
        ));
    }
    Ok(())
}

/// Percent-encodes a query value.
pub fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// A local path to go back to after sign-in; anything else goes home.
pub fn safe_next(next: Option<&String>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.clone(),
        _ => "/".into(),
    }
}

/// A time as the pages show it: `2026-11-29 08:14 UTC`.
pub fn when(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}
