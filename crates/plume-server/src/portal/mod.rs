//! The Plume Platform: what a signed-in user or an operator can do, without HTTP.
//!
//! Both faces of the portal call these operations: the JSON API under `/api/portal/*`
//! ([`crate::http::portal_api`]) and the HTML pages ([`crate::http::pages`]). Each operation
//! takes the caller's [`Session`] and only ever touches that user's rows; the admin ones
//! are reached only through an admin session.
//!
//! Invariants:
//! * passwords are argon2id hashes; sessions, API keys and top-up codes are stored as
//!   SHA-256 of the secret, and a secret is shown once, when made;
//! * a top-up code credits once (a compare-and-set in the same transaction as the credit);
//! * nothing here logs an email's password, a session token, a key or a code.

mod secrets;
pub mod thumbs;

pub use crate::db::portal::{KeyInfo, LedgerEntry, Redeemed, Role, Session, UserSummary};
pub use secrets::{hash_password, LoginThrottle};

use crate::accounts::{generate_key, hash_key, KEY_PREFIX};
use crate::db::{now_millis, TaskRecord};
use crate::error::ApiError;
use crate::service::Service;
use crate::time::rfc3339;
use plume_core::{Category, ErrorCode};
use serde::Deserialize;
use serde_json::{json, Value};

/// `[portal]` in the server's config.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PortalConfig {
    /// Serve the portal: pages at `/`, JSON at `/api/portal/*`.
    pub enabled: bool,
    /// Who may sign up (`PLUME_PORTAL_SIGNUP`): `open`, `invite` or `closed`.
    pub signup: SignupMode,
    /// The code sign-up asks for in `invite` mode (`PLUME_PORTAL_INVITE_CODE`).
    pub invite_code: String,
    /// Credits a new account starts with.
    pub signup_credits: i64,
    /// How long a session lasts from sign-in.
    pub session_hours: u64,
    /// Failed sign-ins of one account, and from one client address, within
    /// `login_window_minutes` before sign-in is refused for the rest of the window.
    pub login_failures_per_account: u32,
    pub login_failures_per_address: u32,
    pub login_window_minutes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignupMode {
    Open,
    Invite,
    Closed,
}

impl Default for PortalConfig {
    fn default() -> Self {
        PortalConfig {
            enabled: true,
            signup: SignupMode::Open,
            invite_code: String::new(),
            signup_credits: 0,
            session_hours: 24 * 7,
            login_failures_per_account: 5,
            login_failures_per_address: 30,
            login_window_minutes: 15,
        }
    }
}

impl PortalConfig {
    pub fn check(&self) -> anyhow::Result<()> {
        if self.signup == SignupMode::Invite && self.invite_code.trim().is_empty() {
            anyhow::bail!(
                "portal.signup = \"invite\" needs portal.invite_code (PLUME_PORTAL_INVITE_CODE)"
            );
        }
        if !(0..=1_000_000_000).contains(&self.signup_credits) {
            anyhow::bail!("portal.signup_credits must be from 0 to 1000000000");
        }
        if self.session_hours == 0 || self.session_hours > 24 * 366 {
            anyhow::bail!("portal.session_hours must be from 1 to 8784");
        }
        Ok(())
    }
}

pub const MIN_PASSWORD_CHARS: usize = 10;
const MAX_PASSWORD_BYTES: usize = 1024;
/// The most codes one request issues.
pub const MAX_CODES_PER_ISSUE: i64 = 1000;

/// A lower-cased, checked email address.
pub fn normalize_email(email: &str) -> Result<String, ApiError> {
    let email = email.trim().to_lowercase();
    let bad = || ApiError::field("email", "must be an email address, like ada@example.com");
    if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    let (local, domain) = email.rsplit_once('@').ok_or_else(bad)?;
    if local.is_empty() || local.contains('@') || !domain.contains('.') || domain.starts_with('.') {
        return Err(bad());
    }
    Ok(email)
}

fn check_password(password: &str) -> Result<(), ApiError> {
    if password.chars().count() < MIN_PASSWORD_CHARS || password.len() > MAX_PASSWORD_BYTES {
        return Err(ApiError::field(
            "password",
            format!("must be at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    Ok(())
}

/// A session just made: the cookie's token (given to the browser, stored only hashed).
pub struct NewSession {
    pub token: String,
    pub max_age_seconds: u64,
}

/// A key just made: the only time it is seen.
pub struct NewKey {
    pub id: i64,
    pub key: String,
    pub prefix: String,
}

pub struct Portal<'a> {
    pub service: &'a Service,
}

fn config(service: &Service) -> &PortalConfig {
    &service.config.portal
}

impl Portal<'_> {
    async fn hash(&self, password: &str) -> Result<String, ApiError> {
        let password = password.to_string();
        tokio::task::spawn_blocking(move || hash_password(&password))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)
    }

    /// Stores a new session for a user just signed in; the `Session` is built from what we
    /// hold rather than read back.
    async fn start_session(
        &self,
        user_id: i64,
        email: &str,
        role: Role,
    ) -> Result<(Session, NewSession), ApiError> {
        let token = secrets::random_hex(32);
        let csrf_token = secrets::random_hex(16);
        let hours = config(self.service).session_hours;
        let expires_at = now_millis() + (hours as i64) * 3_600_000;
        self.service
            .db
            .create_session(
                &secrets::sha256_hex(&token),
                user_id,
                &csrf_token,
                expires_at,
            )
            .await?;
        let session = Session {
            user_id,
            email: email.to_string(),
            role,
            csrf_token,
            expires_at,
        };
        Ok((
            session,
            NewSession {
                token,
                max_age_seconds: hours * 3600,
            },
        ))
    }

    /// A new account with a login, signed in.
    pub async fn signup(
        &self,
        email: &str,
        password: &str,
        invite_code: Option<&str>,
    ) -> Result<(Session, NewSession), ApiError> {
        let cfg = config(self.service);
        match cfg.signup {
            SignupMode::Closed => {
                return Err(ApiError::new(
                    ErrorCode::Forbidden,
                    "sign-up is closed on this server; ask its operator for an account",
                ))
            }
            SignupMode::Invite => {
                let given = invite_code.unwrap_or("").trim();
                if secrets::sha256_hex(given) != secrets::sha256_hex(cfg.invite_code.trim()) {
                    return Err(ApiError::field(
                        "invite_code",
                        "is required on this server and must match the one you were given",
                    ));
                }
            }
            SignupMode::Open => {}
        }
        let email = normalize_email(email)?;
        check_password(password)?;
        let hash = self.hash(password).await?;
        let Some(user_id) = self
            .service
            .db
            .create_login(&email, &hash, Role::User, cfg.signup_credits)
            .await?
        else {
            return Err(ApiError::field(
                "email",
                "is already registered; sign in instead",
            ));
        };
        tracing::info!(user_id, "portal sign-up");
        self.start_session(user_id, &email, Role::User).await
    }

    /// Signs in, refusing for a while after too many failures of the account or the address.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        address: &str,
    ) -> Result<(Session, NewSession), ApiError> {
        let email = email.trim().to_lowercase();
        let throttle = &self.service.login_throttle;
        if let Err((wait, which)) = throttle.check(&email, address) {
            return Err(ApiError {
                retry_after: Some(wait),
                ..ApiError::new(
                    ErrorCode::RateLimited,
                    format!(
                        "too many failed sign-ins for {which}; try again in {} minute(s)",
                        wait.div_ceil(60)
                    ),
                )
            });
        }
        let login = self.service.db.login_by_email(&email).await?;
        let stored = login.as_ref().map(|l| l.password_hash.clone());
        let given = password.to_string();
        let matches = tokio::task::spawn_blocking(move || {
            secrets::verify_password(&given, stored.as_deref())
        })
        .await
        .map_err(ApiError::internal)?;
        let Some(login) = login.filter(|_| matches) else {
            throttle.failed(&email, address);
            return Err(ApiError::new(
                ErrorCode::Unauthorized,
                "wrong email or password",
            ));
        };
        if login.disabled {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "this account is disabled; ask the operator",
            ));
        }
        throttle.succeeded(&email);
        self.start_session(login.user_id, &login.email, login.role)
            .await
    }

    /// The live session a cookie's token names.
    pub async fn session_of(&self, token: &str) -> Result<Option<Session>, ApiError> {
        if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        Ok(self
            .service
            .db
            .session(&secrets::sha256_hex(token), now_millis())
            .await?)
    }

    pub async fn logout(&self, token: &str) -> Result<(), ApiError> {
        Ok(self
            .service
            .db
            .delete_session(&secrets::sha256_hex(token))
            .await?)
    }

    /// Ends every other session of this user; returns how many.
    pub async fn logout_elsewhere(&self, session: &Session, token: &str) -> Result<u64, ApiError> {
        Ok(self
            .service
            .db
            .delete_sessions_of(
                session.user_id,
                Some(&secrets::sha256_hex(token)),
                now_millis(),
            )
            .await?)
    }

    pub async fn me(&self, session: &Session) -> Result<Value, ApiError> {
        let balance = self.service.db.balance(session.user_id).await?.unwrap_or(0);
        Ok(json!({
            "user_id": session.user_id.to_string(),
            "email": session.email,
            "role": session.role.as_str(),
            "credits_balance": balance,
        }))
    }

    pub async fn keys(&self, session: &Session) -> Result<Vec<KeyInfo>, ApiError> {
        Ok(self.service.db.keys_of(session.user_id).await?)
    }

    pub async fn create_key(&self, session: &Session) -> Result<NewKey, ApiError> {
        const MAX_KEYS: usize = 50;
        let existing = self.service.db.keys_of(session.user_id).await?;
        if existing.iter().filter(|k| !k.disabled).count() >= MAX_KEYS {
            return Err(ApiError::field(
                "keys",
                format!("at most {MAX_KEYS} active keys; disable one first"),
            ));
        }
        let key = generate_key();
        let prefix = key[..KEY_PREFIX.len() + 6].to_string();
        let id = self
            .service
            .db
            .create_key(session.user_id, &hash_key(&key), &prefix)
            .await?;
        Ok(NewKey { id, key, prefix })
    }

    pub async fn disable_key(&self, session: &Session, key_id: i64) -> Result<(), ApiError> {
        if !self
            .service
            .db
            .disable_key_of(session.user_id, key_id)
            .await?
        {
            return Err(ApiError::not_found("key"));
        }
        Ok(())
    }

    pub async fn ledger(
        &self,
        session: &Session,
        before: Option<i64>,
        limit: i64,
    ) -> Result<(i64, Vec<LedgerEntry>), ApiError> {
        let balance = self.service.db.balance(session.user_id).await?.unwrap_or(0);
        let entries = self
            .service
            .db
            .ledger_of(session.user_id, before, limit.clamp(1, 500))
            .await?;
        Ok((balance, entries))
    }

    /// Credits a top-up code; `(amount, new balance)`.
    pub async fn redeem(&self, session: &Session, code: &str) -> Result<(i64, i64), ApiError> {
        let normalized = secrets::normalize_code(code).ok_or_else(|| {
            ApiError::field(
                "code",
                "is not a top-up code (PLUME-XXXXX-XXXXX-XXXXX-XXXXX)",
            )
        })?;
        match self
            .service
            .db
            .redeem_code(
                &secrets::sha256_hex(&normalized),
                session.user_id,
                now_millis(),
            )
            .await?
        {
            Redeemed::Credited { amount, balance } => {
                tracing::info!(user_id = session.user_id, amount, "top-up code redeemed");
                Ok((amount, balance))
            }
            Redeemed::AlreadyUsed => Err(ApiError::field("code", "has already been redeemed")),
            Redeemed::Unknown => Err(ApiError::field("code", "is not a valid top-up code")),
        }
    }

    pub async fn tasks(
        &self,
        session: &Session,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<TaskRecord>, ApiError> {
        Ok(self
            .service
            .db
            .tasks_of_user(session.user_id, before, limit.clamp(1, 200))
            .await?)
    }

    // The operator's side: callers have checked that the session is an admin's.

    pub async fn users(&self, query: &str) -> Result<Vec<UserSummary>, ApiError> {
        let query: String = query.trim().chars().take(100).collect();
        Ok(self.service.db.search_users(&query, 100).await?)
    }

    pub async fn admin_topup(
        &self,
        user_id: i64,
        amount: i64,
        reason: &str,
    ) -> Result<i64, ApiError> {
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > 200 {
            return Err(ApiError::field("reason", "must be 1 to 200 characters"));
        }
        if !(1..=1_000_000_000).contains(&amount) {
            return Err(ApiError::field(
                "amount",
                "must be a whole number from 1 to 1000000000",
            ));
        }
        if !self.service.db.user_exists(user_id).await? {
            return Err(ApiError::not_found("user"));
        }
        Ok(self.service.db.topup(user_id, amount, Some(reason)).await?)
    }

    pub async fn set_user_disabled(&self, user_id: i64, disabled: bool) -> Result<(), ApiError> {
        if !self.service.db.set_user_disabled(user_id, disabled).await? {
            return Err(ApiError::not_found("user"));
        }
        Ok(())
    }

    /// Issues `count` codes of `amount` credits; the codes are returned this once.
    pub async fn issue_codes(
        &self,
        count: i64,
        amount: i64,
        note: Option<&str>,
    ) -> Result<Vec<String>, ApiError> {
        if !(1..=MAX_CODES_PER_ISSUE).contains(&count) {
            return Err(ApiError::field(
                "count",
                format!("must be from 1 to {MAX_CODES_PER_ISSUE}"),
            ));
        }
        if !(1..=1_000_000_000).contains(&amount) {
            return Err(ApiError::field(
                "amount",
                "must be a whole number from 1 to 1000000000",
            ));
        }
        let note = note.map(str::trim).filter(|n| !n.is_empty());
        if note.is_some_and(|n| n.chars().count() > 200) {
            return Err(ApiError::field("note", "must be at most 200 characters"));
        }
        let codes: Vec<String> = (0..count).map(|_| secrets::new_topup_code()).collect();
        let rows: Vec<(String, String)> = codes
            .iter()
            .filter_map(|c| secrets::normalize_code(c))
            .map(|n| (secrets::sha256_hex(&n), secrets::code_prefix(&n)))
            .collect();
        self.service
            .db
            .create_topup_codes(&rows, amount, note)
            .await?;
        tracing::info!(count, amount, "top-up codes issued");
        Ok(codes)
    }

    /// What the operator's overview shows: categories with readiness and price, queue depth,
    /// task counts and recent failures.
    pub async fn overview(&self) -> Result<Value, ApiError> {
        let s = self.service;
        let categories: Vec<Value> = Category::ALL
            .into_iter()
            .map(|c| {
                let ready = s.executors.ready(c);
                json!({
                    "name": c.as_str(),
                    "ready": ready.is_ok(),
                    "reason": ready.err(),
                })
            })
            .collect();
        let depth: serde_json::Map<String, Value> =
            s.db.queue_depth(now_millis())
                .await?
                .into_iter()
                .map(|(c, n)| (c, json!(n)))
                .collect();
        let mut failures = Vec::new();
        for status in [
            plume_core::TaskStatus::Failed,
            plume_core::TaskStatus::Timeout,
        ] {
            failures.extend(s.db.list_tasks(Some(status), 20).await?);
        }
        failures.sort_by_key(|t| std::cmp::Reverse(t.id));
        failures.truncate(20);
        let failures: Vec<Value> = failures
            .iter()
            .map(|t| {
                json!({
                    "id": t.id, "user_id": t.user_id.to_string(), "category": t.category.as_str(),
                    "status_text": t.status.name(), "error_code": t.error_code,
                    "error_message": t.error_message, "finished_at": t.finished_at.map(rfc3339),
                })
            })
            .collect();
        Ok(json!({
            "categories": categories,
            "prices": serde_json::to_value(&s.config.prices).map_err(ApiError::internal)?,
            "queue_depth": depth,
            "recent_failures": failures,
        }))
    }
}

/// The JSON shapes both faces of the portal use.
pub mod views {
    use super::*;

    pub fn key(k: &KeyInfo) -> Value {
        json!({
            "id": k.id, "prefix": k.prefix, "created_at": rfc3339(k.created_at),
            "last_used_at": k.last_used_at.map(rfc3339), "disabled": k.disabled,
        })
    }

    pub fn entry(e: &LedgerEntry) -> Value {
        json!({
            "id": e.id, "kind": e.kind, "amount": e.amount, "task_id": e.task_id,
            "note": e.note, "created_at": rfc3339(e.created_at),
        })
    }

    pub fn user(u: &UserSummary) -> Value {
        json!({
            "user_id": u.id.to_string(), "name": u.name, "email": u.email, "role": u.role.as_str(),
            "disabled": u.disabled, "credits_balance": u.balance, "created_at": rfc3339(u.created_at),
        })
    }

    /// How to use a new key: the `openclaw.json` entry and the `.env` lines, naming this
    /// server as `PLUME_API_BASE`.
    pub fn key_setup(key: &str, api_base: &str) -> (String, String) {
        let snippet = json!({
            "skills": {"entries": {"plume-image": {
                "apiKey": key,
                "env": {"PLUME_API_BASE": api_base},
            }}}
        });
        (
            serde_json::to_string_pretty(&snippet).unwrap_or_default(),
            format!("PLUME_API_KEY={key}\nPLUME_API_BASE={api_base}\n"),
        )
    }
}
