//! The portal's invariants (`db/portal.rs`) on both backends: one login per email, sessions
//! that expire and end, a top-up code that credits once however many redeem it at once.
use super::{postgres, sqlite};
use crate::db::portal::*;
use crate::db::*;
use std::sync::Arc;

both!(logins_are_unique_and_sessions_expire);
both!(a_code_credits_once_under_concurrent_redeems);
both!(listings_show_only_the_users_own_rows);

async fn logins_are_unique_and_sessions_expire(db: Arc<dyn Database>) {
    let id = db
        .create_login("ada@example.com", "$argon2id$x", Role::User, 30)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        db.create_login("ada@example.com", "$argon2id$y", Role::Admin, 0)
            .await
            .unwrap(),
        None,
        "an email belongs to one login"
    );
    assert_eq!(db.balance(id).await.unwrap(), Some(30));
    let totals = db.ledger_totals(Some(id)).await.unwrap();
    assert_eq!(totals.topup, 30, "welcome credits are a ledger top-up");
    let login = db.login_by_email("ada@example.com").await.unwrap().unwrap();
    assert_eq!(
        (login.user_id, login.role, login.disabled),
        (id, Role::User, false)
    );

    let now = now_millis();
    db.create_session("live", id, "csrf1", now + 60_000)
        .await
        .unwrap();
    db.create_session("old", id, "csrf2", now - 1)
        .await
        .unwrap();
    db.create_session("other", id, "csrf3", now + 60_000)
        .await
        .unwrap();
    let s = db.session("live", now).await.unwrap().unwrap();
    assert_eq!(
        (s.user_id, s.email.as_str(), s.csrf_token.as_str()),
        (id, "ada@example.com", "csrf1")
    );
    assert_eq!(
        db.session("old", now).await.unwrap(),
        None,
        "an expired session is gone"
    );
    assert_eq!(db.session("live", now + 60_001).await.unwrap(), None);
    // Sign out everywhere else: "other" ends (and the expired one is swept), "live" stays.
    assert_eq!(
        db.delete_sessions_of(id, Some("live"), now).await.unwrap(),
        1
    );
    assert!(db.session("live", now).await.unwrap().is_some());
    assert_eq!(db.session("other", now).await.unwrap(), None);
    // Disabling the user ends their sessions and their keys stop working.
    db.create_key(id, "keyhash", "plume_sk_abcdef")
        .await
        .unwrap();
    assert!(db.set_user_disabled(id, true).await.unwrap());
    assert_eq!(db.session("live", now).await.unwrap(), None);
    assert!(db.find_key("keyhash").await.unwrap().unwrap().disabled);
    assert!(db.set_user_disabled(id, false).await.unwrap());
    assert!(!db.find_key("keyhash").await.unwrap().unwrap().disabled);
    assert!(!db.set_user_disabled(9999, true).await.unwrap());
}

async fn a_code_credits_once_under_concurrent_redeems(db: Arc<dyn Database>) {
    let mut users = Vec::new();
    for i in 0..8 {
        let email = format!("u{i}@example.com");
        users.push(
            db.create_login(&email, "h", Role::User, 0)
                .await
                .unwrap()
                .unwrap(),
        );
    }
    db.create_topup_codes(
        &[("codehash".into(), "PLUME-ABCDE".into())],
        40,
        Some("launch"),
    )
    .await
    .unwrap();
    let mut racers = Vec::new();
    for round in 0..4 {
        for &user in &users {
            let db = db.clone();
            racers.push(tokio::spawn(async move {
                loop {
                    match db.redeem_code("codehash", user, now_millis() + round).await {
                        Err(DbError::Retryable) => continue,
                        other => return other.unwrap(),
                    }
                }
            }));
        }
    }
    let mut credited = Vec::new();
    for r in racers {
        match r.await.unwrap() {
            Redeemed::Credited { amount, balance } => credited.push((amount, balance)),
            Redeemed::AlreadyUsed => {}
            Redeemed::Unknown => panic!("the code exists"),
        }
    }
    assert_eq!(credited, vec![(40, 40)], "exactly one redeem credits");
    let totals = db.ledger_totals(None).await.unwrap();
    assert_eq!(totals.topup, 40);
    let mut balances = 0;
    for &user in &users {
        balances += db.balance(user).await.unwrap().unwrap_or(0);
    }
    assert_eq!(balances, 40);
    assert_eq!(
        db.redeem_code("nosuchcode", users[0], now_millis())
            .await
            .unwrap(),
        Redeemed::Unknown
    );
}

async fn listings_show_only_the_users_own_rows(db: Arc<dyn Database>) {
    let a = db
        .create_login("a@example.com", "h", Role::User, 0)
        .await
        .unwrap()
        .unwrap();
    let b = db
        .create_login("b@example.com", "h", Role::Admin, 0)
        .await
        .unwrap()
        .unwrap();
    let key_a = db.create_key(a, "ha", "plume_sk_aaaaaa").await.unwrap();
    db.create_key(b, "hb", "plume_sk_bbbbbb").await.unwrap();
    assert_eq!(db.keys_of(a).await.unwrap().len(), 1);
    assert!(!db.disable_key_of(b, key_a).await.unwrap(), "not b's key");
    assert!(db.disable_key_of(a, key_a).await.unwrap());
    assert!(db.keys_of(a).await.unwrap()[0].disabled);
    db.touch_key(key_a, 1234).await.unwrap();
    assert_eq!(db.keys_of(a).await.unwrap()[0].last_used_at, Some(1234));

    db.topup(a, 10, Some("welcome back")).await.unwrap();
    db.topup(b, 99, None).await.unwrap();
    let ledger = db.ledger_of(a, None, 10).await.unwrap();
    assert_eq!(ledger.len(), 1);
    assert_eq!(
        (
            ledger[0].kind.as_str(),
            ledger[0].amount,
            ledger[0].note.as_deref()
        ),
        ("topup", 10, Some("welcome back"))
    );
    assert!(db.tasks_of_user(a, None, 10).await.unwrap().is_empty());

    let found = db.search_users("b@ex", 10).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(
        (found[0].id, found[0].role, found[0].balance),
        (b, Role::Admin, Some(99))
    );
    assert_eq!(db.search_users("", 10).await.unwrap().len(), 2);
    assert_eq!(db.search_users(&a.to_string(), 10).await.unwrap()[0].id, a);

    // Portal rows move with migrate-store.
    let export = db.export().await.unwrap();
    let rows = |t: &str| {
        export
            .tables
            .iter()
            .find(|(n, _)| *n == t)
            .map(|(_, r)| r.len())
    };
    assert_eq!(rows("portal_logins"), Some(2));
    assert_eq!(rows("topup_codes"), Some(0));
}

/// Rows of a version 2 install: a user with a key, credits and a ledger entry.
const V2_ROWS: &str = "INSERT INTO users (name, created_at) VALUES ('old', 1);
    INSERT INTO api_keys (user_id, key_hash, key_prefix, created_at) VALUES (1, 'oldhash', 'plume_sk_old', 1);
    INSERT INTO credit_accounts (user_id, balance, updated_at) VALUES (1, 7, 1);
    INSERT INTO ledger (user_id, kind, amount, created_at) VALUES (1, 'topup', 7, 1);";

/// What must hold after a version 2 database is opened by this server.
async fn upgraded_keeps_rows_and_gains_the_portal(db: &dyn Database) {
    let key = db.find_key("oldhash").await.unwrap().unwrap();
    assert_eq!(
        (key.user_id, key.disabled, key.last_used_at),
        (1, false, None)
    );
    assert_eq!(db.balance(1).await.unwrap(), Some(7));
    assert_eq!(db.ledger_of(1, None, 10).await.unwrap()[0].note, None);
    let users = db.search_users("old", 10).await.unwrap();
    assert_eq!((users[0].id, users[0].email.as_deref()), (1, None));
    assert!(db
        .create_login("new@example.com", "h", Role::User, 0)
        .await
        .unwrap()
        .is_some());
    assert!(db
        .set_login(1, "old@example.com", "h", Role::Admin)
        .await
        .unwrap());
    assert_eq!(
        db.login_by_email("old@example.com")
            .await
            .unwrap()
            .unwrap()
            .role,
        Role::Admin
    );
}

#[tokio::test]
async fn a_version_2_sqlite_database_upgrades_in_place() {
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};
    let dir = std::env::temp_dir().join(format!("plume-db-v2-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("t.db");
    let old = SqlitePool::connect_with(
        SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true),
    )
    .await
    .unwrap();
    sqlx::raw_sql(include_str!("testdata/sqlite_v2.sql"))
        .execute(&old)
        .await
        .unwrap();
    sqlx::raw_sql(&format!("PRAGMA user_version = 2; {V2_ROWS}"))
        .execute(&old)
        .await
        .unwrap();
    old.close().await;
    let db = sqlite::SqliteDatabase::open(&path).await.unwrap();
    upgraded_keeps_rows_and_gains_the_portal(&db).await;
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_version_2_postgres_database_upgrades_in_place() {
    use sqlx::Connection;
    let (url, _guard) = super::empty_postgres().await;
    let mut old = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::raw_sql(include_str!("testdata/postgres_v2.sql"))
        .execute(&mut old)
        .await
        .unwrap();
    sqlx::raw_sql(&format!(
        "INSERT INTO plume_schema (version) VALUES (2); {V2_ROWS}"
    ))
    .execute(&mut old)
    .await
    .unwrap();
    old.close().await.unwrap();
    let db = postgres::PgDatabase::open(&url).await.unwrap();
    upgraded_keeps_rows_and_gains_the_portal(&db).await;
}
