//! Users, API keys and credits: key generation and hashing, authentication, rate limits, and
//! the operator's admin operations (shared by `plume-server admin` and `/api/admin/`).

use crate::db::Database;
use crate::error::ApiError;
use plume_core::{ErrorCode, TaskStatus};
use rand::RngCore;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Every key starts with this, so a leaked key is easy to recognise and scan for.
pub const KEY_PREFIX: &str = "plume_sk_";

/// A new random key: the prefix and 192 bits, hex.
pub fn generate_key() -> String {
    let mut bytes = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("{KEY_PREFIX}{}", hex::encode(bytes))
}

/// Keys carry 192 random bits, so one SHA-256 is enough to store them safely: there is
/// nothing to brute-force that a slow hash would protect.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// The key's owner, from an `Authorization: Bearer <key>` header value.
pub async fn authenticate(
    db: &dyn Database,
    header: Option<&str>,
) -> Result<crate::db::KeyRecord, ApiError> {
    let Some(header) = header else {
        return Err(ApiError::new(
            ErrorCode::Unauthorized,
            "missing Authorization: Bearer <api key>",
        ));
    };
    let key = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= 200 && k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::Unauthorized,
                "malformed Authorization header; use Bearer <api key>",
            )
        })?;
    match db.find_key(&hash_key(key)).await? {
        None => Err(ApiError::new(ErrorCode::Unauthorized, "unknown API key")),
        Some(k) if k.disabled => Err(ApiError::new(
            ErrorCode::Forbidden,
            "this API key is disabled",
        )),
        Some(k) => Ok(k),
    }
}

/// A token bucket per key: `per_minute` requests a minute, bursts up to the same number.
/// The buckets live in the database when it can share them between nodes (PostgreSQL), and
/// in this process otherwise (SQLite: one process owns the database).
pub struct RateLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<i64, (f64, Instant)>>,
}

impl RateLimiter {
    pub fn new(per_minute: u32) -> RateLimiter {
        RateLimiter {
            per_minute,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(seconds to wait)` when the key is over its rate.
    pub async fn check(
        &self,
        db: &dyn Database,
        key_id: i64,
    ) -> Result<Result<(), u64>, crate::db::DbError> {
        if self.per_minute == 0 {
            return Ok(Ok(()));
        }
        if let Some(shared) = db.take_rate_token(key_id, self.per_minute).await? {
            return Ok(shared);
        }
        Ok(self.check_local(key_id))
    }

    fn check_local(&self, key_id: i64) -> Result<(), u64> {
        let capacity = f64::from(self.per_minute);
        let per_second = capacity / 60.0;
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() > 100_000 {
            buckets.retain(|_, (_, seen)| now.duration_since(*seen).as_secs() < 120);
        }
        let (tokens, seen) = buckets.entry(key_id).or_insert((capacity, now));
        *tokens = (*tokens + now.duration_since(*seen).as_secs_f64() * per_second).min(capacity);
        *seen = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / per_second).ceil() as u64)
        }
    }
}

/// The operator's operations. Each answers one JSON object.
pub struct Admin<'a> {
    pub db: &'a dyn Database,
}

fn parse_user(user: &str) -> Result<i64, ApiError> {
    user.trim()
        .parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::field("user", "must be a user id (a positive integer)"))
}

impl Admin<'_> {
    async fn existing_user(&self, user: &str) -> Result<i64, ApiError> {
        let id = parse_user(user)?;
        if !self.db.user_exists(id).await? {
            return Err(ApiError::not_found("user"));
        }
        Ok(id)
    }

    pub async fn create_user(&self, name: &str) -> Result<Value, ApiError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(ApiError::field("name", "must be 1 to 100 characters"));
        }
        let id = self.db.create_user(name).await?;
        Ok(json!({ "user_id": id.to_string(), "name": name }))
    }

    /// Creates a user who signs in to the portal with `email` and `password`; an admin sees
    /// the operator pages. The first admin is made this way.
    pub async fn create_login(
        &self,
        email: &str,
        password: &str,
        admin: bool,
    ) -> Result<Value, ApiError> {
        let email = crate::portal::normalize_email(email)?;
        if password.chars().count() < crate::portal::MIN_PASSWORD_CHARS {
            return Err(ApiError::field(
                "password",
                format!(
                    "must be at least {} characters",
                    crate::portal::MIN_PASSWORD_CHARS
                ),
            ));
        }
        let password = password.to_string();
        let hash = tokio::task::spawn_blocking(move || crate::portal::hash_password(&password))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)?;
        let role = if admin {
            crate::portal::Role::Admin
        } else {
            crate::portal::Role::User
        };
        let Some(id) = self.db.create_login(&email, &hash, role, 0).await? else {
            return Err(ApiError::field("email", "is already registered"));
        };
        Ok(json!({ "user_id": id.to_string(), "email": email, "role": role.as_str() }))
    }

    /// Creates a key; the only time the key itself is ever shown.
    pub async fn create_key(&self, user: &str) -> Result<Value, ApiError> {
        let user_id = self.existing_user(user).await?;
        let key = generate_key();
        self.db
            .create_key(user_id, &hash_key(&key), &key[..KEY_PREFIX.len() + 6])
            .await?;
        Ok(json!({ "key": key, "user_id": user_id.to_string() }))
    }

    pub async fn disable_key(&self, key: &str) -> Result<Value, ApiError> {
        if !self.db.disable_key(&hash_key(key.trim())).await? {
            return Err(ApiError::not_found("key"));
        }
        Ok(json!({ "disabled": true }))
    }

    pub async fn topup(&self, user: &str, amount: i64) -> Result<Value, ApiError> {
        if !(1..=1_000_000_000).contains(&amount) {
            return Err(ApiError::field(
                "amount",
                "must be a whole number from 1 to 1000000000",
            ));
        }
        let user_id = self.existing_user(user).await?;
        let balance = self.db.topup(user_id, amount, None).await?;
        Ok(json!({ "user_id": user_id.to_string(), "amount": amount, "balance": balance }))
    }

    pub async fn balance(&self, user: &str) -> Result<Value, ApiError> {
        let user_id = self.existing_user(user).await?;
        let balance = self.db.balance(user_id).await?.ok_or_else(|| {
            ApiError::new(
                ErrorCode::CreditsAccountNotFound,
                "this user has no credits account; top it up to open one",
            )
        })?;
        let t = self.db.ledger_totals(Some(user_id)).await?;
        Ok(json!({
            "user_id": user_id.to_string(),
            "balance": balance,
            "ledger": {"topup": t.topup, "reserve": t.reserve, "capture": t.capture, "refund": t.refund},
        }))
    }

    pub async fn tasks(&self, status: Option<&str>, limit: i64) -> Result<Value, ApiError> {
        let status = match status.map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => Some(TaskStatus::parse(s).ok_or_else(|| {
                ApiError::field(
                    "status",
                    "must be 1-6 or initialized, processing, success, failed, timeout, cancelled",
                )
            })?),
        };
        let tasks = self.db.list_tasks(status, limit.clamp(1, 1000)).await?;
        let rows: Vec<Value> = tasks
            .iter()
            .map(|t| {
                json!({
                    "id": t.id, "user_id": t.user_id.to_string(), "category": t.category.as_str(),
                    "status": t.status.code(), "status_text": t.status.name(), "credits_cost": t.credits_cost,
                    "attempts": t.attempts, "created_at": crate::time::rfc3339(t.created_at),
                    "finished_at": t.finished_at.map(crate::time::rfc3339),
                })
            })
            .collect();
        Ok(json!({ "tasks": rows }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_and_hashed() {
        let a = generate_key();
        assert!(a.starts_with(KEY_PREFIX) && a.len() == KEY_PREFIX.len() + 48);
        assert_ne!(a, generate_key());
        assert_eq!(hash_key(&a).len(), 64);
        assert_ne!(hash_key(&a), a);
    }

    #[test]
    fn rate_limiter_refuses_past_the_rate() {
        let limiter = RateLimiter::new(3);
        assert!(
            limiter.check_local(1).is_ok()
                && limiter.check_local(1).is_ok()
                && limiter.check_local(1).is_ok()
        );
        assert!(limiter.check_local(1).is_err());
        assert!(limiter.check_local(2).is_ok(), "buckets are per key");
    }
}
