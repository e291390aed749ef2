//! Portal sessions over HTTP: the session cookie, the signed-in-user extractors, and the
//! cross-site request checks.
//!
//! The cookie is `HttpOnly; SameSite=Strict` (and `Secure` behind https), so another site's
//! page cannot send it. On top of that, every state-changing request is refused when its
//! `Origin` names another site, the JSON API takes only `application/json` bodies (which a
//! cross-site HTML form cannot send), and HTML forms carry the session's CSRF token.

use super::AppState;
use crate::error::ApiError;
use crate::portal::{NewSession, Portal, Role, Session};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method};
use plume_core::ErrorCode;
use std::net::SocketAddr;

pub const COOKIE: &str = "plume_session";

/// The session token from the request's cookies.
pub fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().to_string())
}

fn secure(service: &AppState) -> &'static str {
    if service.config.public_base.starts_with("https://") {
        "; Secure"
    } else {
        ""
    }
}

pub fn set_cookie(service: &AppState, new: &NewSession) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        new.token,
        new.max_age_seconds,
        secure(service)
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

pub fn clear_cookie(service: &AppState) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
        secure(service)
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The address sign-in failures are counted against.
pub fn client_address(parts: &Parts) -> String {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// `Err` when a state-changing request comes from a page of another site: its `Origin` must
/// name this server (the `Host` it was sent to, or the configured public base).
pub fn check_origin(service: &AppState, parts: &Parts) -> Result<(), ApiError> {
    if matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let Some(origin) = parts.headers.get(header::ORIGIN) else {
        return Ok(()); // not a browser, or a same-origin request of an older browser
    };
    let refused = || {
        ApiError::new(
            ErrorCode::Forbidden,
            "cross-site request refused: the Origin header names another site",
        )
    };
    let origin = origin.to_str().map_err(|_| refused())?;
    let origin_host = url::Url::parse(origin)
        .ok()
        .and_then(|u| {
            u.host_str()
                .map(|h| (h.to_string(), u.port_or_known_default()))
        })
        .ok_or_else(refused)?;
    let host_header = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| url::Url::parse(&format!("http://{h}")).ok())
        .and_then(|u| u.host_str().map(|h| (h.to_string(), u.port())));
    let same_host = host_header.is_some_and(|(host, port)| {
        host == origin_host.0 && (port.is_none() || port == origin_host.1)
    });
    let public = url::Url::parse(&service.config.public_base)
        .ok()
        .and_then(|u| {
            u.host_str()
                .map(|h| (h.to_string(), u.port_or_known_default()))
        });
    if same_host || public.as_ref() == Some(&origin_host) {
        Ok(())
    } else {
        Err(refused())
    }
}

/// A signed-in portal user; answers UNAUTHORIZED without a live session.
pub struct PortalUser {
    pub session: Session,
    /// The cookie's token (for sign-out).
    pub token: String,
}

impl FromRequestParts<AppState> for PortalUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        service: &AppState,
    ) -> Result<PortalUser, ApiError> {
        check_origin(service, parts)?;
        let unauthorized = || {
            ApiError::new(
                ErrorCode::Unauthorized,
                "sign in first (no session, or it expired)",
            )
        };
        let token = cookie_token(&parts.headers).ok_or_else(unauthorized)?;
        let session = Portal { service }
            .session_of(&token)
            .await?
            .ok_or_else(unauthorized)?;
        Ok(PortalUser { session, token })
    }
}

/// A signed-in admin; everyone else is told the route does not exist.
pub struct PortalAdmin(pub PortalUser);

impl FromRequestParts<AppState> for PortalAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        service: &AppState,
    ) -> Result<PortalAdmin, ApiError> {
        match PortalUser::from_request_parts(parts, service).await {
            Ok(user) if user.session.role == Role::Admin => Ok(PortalAdmin(user)),
            Ok(_) => Err(ApiError::not_found("route")),
            Err(e) if e.code == ErrorCode::Unauthorized => Err(ApiError::not_found("route")),
            Err(e) => Err(e),
        }
    }
}

/// The session when there is one, for pages that show either a signed-in or a signed-out
/// view.
pub struct MaybeUser(pub Option<PortalUser>);

impl FromRequestParts<AppState> for MaybeUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        service: &AppState,
    ) -> Result<MaybeUser, ApiError> {
        match PortalUser::from_request_parts(parts, service).await {
            Ok(user) => Ok(MaybeUser(Some(user))),
            Err(e) if e.code == ErrorCode::Unauthorized => Ok(MaybeUser(None)),
            Err(e) => Err(e),
        }
    }
}

/// The client's address, for the sign-in throttle.
pub struct ClientAddress(pub String);

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        service: &AppState,
    ) -> Result<ClientAddress, ApiError> {
        check_origin(service, parts)?;
        Ok(ClientAddress(client_address(parts)))
    }
}
