//! What the portal keeps: sign-in logins, sessions, top-up codes, and the per-user listings
//! (keys, ledger, tasks) its pages show. A part of [`Database`](super::Database), which both
//! backends implement in their own `portal.rs`.
//!
//! Invariants, kept by the schema and checked by the tests on both backends:
//! * an email belongs to one login (a unique index on the lower-cased address);
//! * a top-up code credits once: marking it redeemed, the balance and its ledger entry commit
//!   together, and a second redeem finds it taken;
//! * sessions and codes are stored as SHA-256 of the secret, never the secret.

use super::{DbResult, Millis, TaskRecord};
use async_trait::async_trait;

/// A portal role. Admins see the operator pages; everyone else gets 404 there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Role {
        if s == "admin" {
            Role::Admin
        } else {
            Role::User
        }
    }
}

/// A user's sign-in identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    pub user_id: i64,
    pub email: String,
    /// argon2id, as a PHC string.
    pub password_hash: String,
    pub role: Role,
    pub disabled: bool,
}

/// A live session and who it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user_id: i64,
    pub email: String,
    pub role: Role,
    pub csrf_token: String,
    pub expires_at: Millis,
}

/// One API key as the portal lists it (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub id: i64,
    pub prefix: String,
    pub created_at: Millis,
    pub last_used_at: Option<Millis>,
    pub disabled: bool,
}

/// One ledger entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    pub id: i64,
    pub task_id: Option<i64>,
    pub kind: String,
    pub amount: i64,
    pub note: Option<String>,
    pub created_at: Millis,
}

/// One user in the operator's listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSummary {
    pub id: i64,
    pub name: String,
    pub email: Option<String>,
    pub role: Role,
    pub disabled: bool,
    pub balance: Option<i64>,
    pub created_at: Millis,
}

/// What redeeming a top-up code did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeemed {
    Credited { amount: i64, balance: i64 },
    AlreadyUsed,
    Unknown,
}

#[async_trait]
pub trait PortalStore: Send + Sync {
    /// Makes a user with a login, and opens their credits account with `credits` (a ledger
    /// top-up when above zero), in one transaction. `None` when the email is taken.
    async fn create_login(
        &self,
        email: &str,
        password_hash: &str,
        role: Role,
        credits: i64,
    ) -> DbResult<Option<i64>>;
    /// Gives an existing user a login (or replaces its password and role). `false` when the
    /// email belongs to someone else.
    async fn set_login(
        &self,
        user_id: i64,
        email: &str,
        password_hash: &str,
        role: Role,
    ) -> DbResult<bool>;
    async fn login_by_email(&self, email: &str) -> DbResult<Option<Login>>;

    async fn create_session(
        &self,
        token_hash: &str,
        user_id: i64,
        csrf_token: &str,
        expires_at: Millis,
    ) -> DbResult<()>;
    /// The session, when it exists, has not expired at `now` and its user is not disabled.
    async fn session(&self, token_hash: &str, now: Millis) -> DbResult<Option<Session>>;
    async fn delete_session(&self, token_hash: &str) -> DbResult<()>;
    /// Signs a user out everywhere but `keep` (a token hash); returns how many live sessions
    /// ended. Also drops everyone's expired sessions.
    async fn delete_sessions_of(
        &self,
        user_id: i64,
        keep: Option<&str>,
        now: Millis,
    ) -> DbResult<u64>;

    async fn keys_of(&self, user_id: i64) -> DbResult<Vec<KeyInfo>>;
    /// Disables one of the user's keys; `false` when they have no such key.
    async fn disable_key_of(&self, user_id: i64, key_id: i64) -> DbResult<bool>;
    /// Records that a key was used (the caller limits how often).
    async fn touch_key(&self, key_id: i64, now: Millis) -> DbResult<()>;

    /// The user's ledger, newest first, entries with an id below `before` when given.
    async fn ledger_of(
        &self,
        user_id: i64,
        before: Option<i64>,
        limit: i64,
    ) -> DbResult<Vec<LedgerEntry>>;
    /// The user's tasks, newest first, ids below `before` when given.
    async fn tasks_of_user(
        &self,
        user_id: i64,
        before: Option<i64>,
        limit: i64,
    ) -> DbResult<Vec<TaskRecord>>;

    /// Stores top-up codes `(hash, shown prefix)` of `amount` credits each, all or none.
    async fn create_topup_codes(
        &self,
        codes: &[(String, String)],
        amount: i64,
        note: Option<&str>,
    ) -> DbResult<()>;
    /// Credits a code's amount to `user_id`, at most once for all callers together.
    async fn redeem_code(&self, code_hash: &str, user_id: i64, now: Millis) -> DbResult<Redeemed>;

    /// Users whose name, email or id matches `query` (everyone when empty), newest first.
    async fn search_users(&self, query: &str, limit: i64) -> DbResult<Vec<UserSummary>>;
    /// Disables or enables a user; disabling ends their sessions. `false` when no such user.
    async fn set_user_disabled(&self, user_id: i64, disabled: bool) -> DbResult<bool>;
}
