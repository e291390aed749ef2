//! [`PortalStore`] on SQLite: logins, sessions, top-up codes and the per-user listings.
//! Writes that must hold together (a user with their login and account; a code with its
//! credit) take the one writer with `BEGIN IMMEDIATE`.

use super::{db_err, SqliteDatabase};
use crate::db::portal::*;
use crate::db::rows::{
    key_info_from_row, ledger_entry_from_row, login_from_row, session_from_row, task_from_row,
    user_summary_from_row,
};
use crate::db::{DbResult, Millis, TaskRecord};
use async_trait::async_trait;
use sqlx::Row;

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

#[async_trait]
impl PortalStore for SqliteDatabase {
    async fn create_login(
        &self,
        email: &str,
        password_hash: &str,
        role: Role,
        credits: i64,
    ) -> DbResult<Option<i64>> {
        let now = crate::db::now_millis();
        let mut tx = self
            .write
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db_err)?;
        let taken: Option<i64> =
            sqlx::query_scalar("SELECT user_id FROM portal_logins WHERE email = ?1")
                .bind(email)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_err)?;
        if taken.is_some() {
            return Ok(None);
        }
        let user_id: i64 =
            sqlx::query_scalar("INSERT INTO users (name, created_at) VALUES (?1, ?2) RETURNING id")
                .bind(email)
                .bind(now)
                .fetch_one(&mut *tx)
                .await
                .map_err(db_err)?;
        sqlx::query(
            "INSERT INTO portal_logins (user_id, email, password_hash, role, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .bind(user_id)
        .bind(email)
        .bind(password_hash)
        .bind(role.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        sqlx::query(
            "INSERT INTO credit_accounts (user_id, balance, updated_at) VALUES (?1, ?2, ?3)",
        )
        .bind(user_id)
        .bind(credits)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        if credits > 0 {
            sqlx::query(
                "INSERT INTO ledger (user_id, kind, amount, created_at, note) VALUES (?1, 'topup', ?2, ?3, 'welcome credits')",
            )
            .bind(user_id)
            .bind(credits)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(Some(user_id))
    }

    async fn set_login(
        &self,
        user_id: i64,
        email: &str,
        password_hash: &str,
        role: Role,
    ) -> DbResult<bool> {
        let done = sqlx::query(
            "INSERT INTO portal_logins (user_id, email, password_hash, role, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (user_id) DO UPDATE SET email = excluded.email, password_hash = excluded.password_hash, role = excluded.role",
        )
        .bind(user_id)
        .bind(email)
        .bind(password_hash)
        .bind(role.as_str())
        .bind(crate::db::now_millis())
        .execute(&self.write)
        .await;
        match done {
            Ok(_) => Ok(true),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(db_err(e)),
        }
    }

    async fn login_by_email(&self, email: &str) -> DbResult<Option<Login>> {
        let row = sqlx::query(
            "SELECT l.user_id, l.email, l.password_hash, l.role, u.disabled
             FROM portal_logins l JOIN users u ON u.id = l.user_id WHERE l.email = ?1",
        )
        .bind(email)
        .fetch_optional(&self.read)
        .await
        .map_err(db_err)?;
        row.as_ref().map(login_from_row).transpose()
    }

    async fn create_session(
        &self,
        token_hash: &str,
        user_id: i64,
        csrf_token: &str,
        expires_at: Millis,
    ) -> DbResult<()> {
        sqlx::query(
            "INSERT INTO portal_sessions (token_hash, user_id, csrf_token, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(csrf_token)
        .bind(crate::db::now_millis())
        .bind(expires_at)
        .execute(&self.write)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn session(&self, token_hash: &str, now: Millis) -> DbResult<Option<Session>> {
        let row = sqlx::query(
            "SELECT s.user_id, s.csrf_token, s.expires_at, l.email, l.role
             FROM portal_sessions s JOIN users u ON u.id = s.user_id JOIN portal_logins l ON l.user_id = s.user_id
             WHERE s.token_hash = ?1 AND s.expires_at > ?2 AND u.disabled = 0",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.read)
        .await
        .map_err(db_err)?;
        row.as_ref().map(session_from_row).transpose()
    }

    async fn delete_session(&self, token_hash: &str) -> DbResult<()> {
        sqlx::query("DELETE FROM portal_sessions WHERE token_hash = ?1")
            .bind(token_hash)
            .execute(&self.write)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn delete_sessions_of(
        &self,
        user_id: i64,
        keep: Option<&str>,
        now: Millis,
    ) -> DbResult<u64> {
        let done = sqlx::query(
            "DELETE FROM portal_sessions WHERE user_id = ?1 AND token_hash IS NOT ?2 AND expires_at > ?3",
        )
            .bind(user_id)
            .bind(keep)
            .bind(now)
            .execute(&self.write)
            .await
            .map_err(db_err)?;
        // Everyone's expired sessions go too: they would never sign anyone in again.
        sqlx::query("DELETE FROM portal_sessions WHERE expires_at <= ?1")
            .bind(now)
            .execute(&self.write)
            .await
            .map_err(db_err)?;
        Ok(done.rows_affected())
    }

    async fn keys_of(&self, user_id: i64) -> DbResult<Vec<KeyInfo>> {
        let rows = sqlx::query(
            "SELECT id, key_prefix, created_at, last_used_at, disabled FROM api_keys WHERE user_id = ?1 ORDER BY id DESC",
        )
        .bind(user_id)
        .fetch_all(&self.read)
        .await
        .map_err(db_err)?;
        rows.iter().map(key_info_from_row).collect()
    }

    async fn disable_key_of(&self, user_id: i64, key_id: i64) -> DbResult<bool> {
        let done = sqlx::query("UPDATE api_keys SET disabled = 1 WHERE id = ?1 AND user_id = ?2")
            .bind(key_id)
            .bind(user_id)
            .execute(&self.write)
            .await
            .map_err(db_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn touch_key(&self, key_id: i64, now: Millis) -> DbResult<()> {
        sqlx::query("UPDATE api_keys SET last_used_at = ?2 WHERE id = ?1")
            .bind(key_id)
            .bind(now)
            .execute(&self.write)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn ledger_of(
        &self,
        user_id: i64,
        before: Option<i64>,
        limit: i64,
    ) -> DbResult<Vec<LedgerEntry>> {
        let rows = sqlx::query(
            "SELECT id, task_id, kind, amount, note, created_at FROM ledger
             WHERE user_id = ?1 AND (?2 IS NULL OR id < ?2) ORDER BY id DESC LIMIT ?3",
        )
        .bind(user_id)
        .bind(before)
        .bind(limit)
        .fetch_all(&self.read)
        .await
        .map_err(db_err)?;
        rows.iter().map(ledger_entry_from_row).collect()
    }

    async fn tasks_of_user(
        &self,
        user_id: i64,
        before: Option<i64>,
        limit: i64,
    ) -> DbResult<Vec<TaskRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM tasks WHERE user_id = ?1 AND (?2 IS NULL OR id < ?2) ORDER BY id DESC LIMIT ?3",
        )
        .bind(user_id)
        .bind(before)
        .bind(limit)
        .fetch_all(&self.read)
        .await
        .map_err(db_err)?;
        rows.iter().map(task_from_row).collect()
    }

    async fn create_topup_codes(
        &self,
        codes: &[(String, String)],
        amount: i64,
        note: Option<&str>,
    ) -> DbResult<()> {
        let now = crate::db::now_millis();
        let mut tx = self
            .write
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db_err)?;
        for (hash, prefix) in codes {
            sqlx::query(
                "INSERT INTO topup_codes (code_hash, code_prefix, amount, note, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .bind(hash)
            .bind(prefix)
            .bind(amount)
            .bind(note)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn redeem_code(&self, code_hash: &str, user_id: i64, now: Millis) -> DbResult<Redeemed> {
        let mut tx = self
            .write
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db_err)?;
        let taken = sqlx::query(
            "UPDATE topup_codes SET redeemed_by = ?2, redeemed_at = ?3
             WHERE code_hash = ?1 AND redeemed_by IS NULL RETURNING amount, code_prefix",
        )
        .bind(code_hash)
        .bind(user_id)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        let Some(row) = taken else {
            let exists: Option<i64> =
                sqlx::query_scalar("SELECT id FROM topup_codes WHERE code_hash = ?1")
                    .bind(code_hash)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_err)?;
            return Ok(if exists.is_some() {
                Redeemed::AlreadyUsed
            } else {
                Redeemed::Unknown
            });
        };
        let amount: i64 = row.try_get("amount").map_err(db_err)?;
        let prefix: String = row.try_get("code_prefix").map_err(db_err)?;
        let balance: i64 = sqlx::query_scalar(
            "INSERT INTO credit_accounts (user_id, balance, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (user_id) DO UPDATE SET balance = balance + excluded.balance, updated_at = excluded.updated_at
             RETURNING balance",
        )
        .bind(user_id)
        .bind(amount)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        sqlx::query(
            "INSERT INTO ledger (user_id, kind, amount, created_at, note) VALUES (?1, 'topup', ?2, ?3, ?4)",
        )
        .bind(user_id)
        .bind(amount)
        .bind(now)
        .bind(format!("top-up code {prefix}…"))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(Redeemed::Credited { amount, balance })
    }

    async fn search_users(&self, query: &str, limit: i64) -> DbResult<Vec<UserSummary>> {
        let pattern = format!("%{}%", query.replace(['%', '_'], ""));
        let rows = sqlx::query(
            "SELECT u.id, u.name, u.disabled, u.created_at, l.email, l.role, c.balance
             FROM users u LEFT JOIN portal_logins l ON l.user_id = u.id LEFT JOIN credit_accounts c ON c.user_id = u.id
             WHERE ?1 = '%%' OR u.name LIKE ?1 OR l.email LIKE ?1 OR CAST(u.id AS TEXT) = ?2
             ORDER BY u.id DESC LIMIT ?3",
        )
        .bind(&pattern)
        .bind(query)
        .bind(limit)
        .fetch_all(&self.read)
        .await
        .map_err(db_err)?;
        rows.iter().map(user_summary_from_row).collect()
    }

    async fn set_user_disabled(&self, user_id: i64, disabled: bool) -> DbResult<bool> {
        let mut tx = self
            .write
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db_err)?;
        let done = sqlx::query("UPDATE users SET disabled = ?2 WHERE id = ?1")
            .bind(user_id)
            .bind(i64::from(disabled))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if disabled {
            sqlx::query("DELETE FROM portal_sessions WHERE user_id = ?1")
                .bind(user_id)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(done.rows_affected() > 0)
    }
}
