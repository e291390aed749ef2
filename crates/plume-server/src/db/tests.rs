//! The invariants of `db/mod.rs`, one suite run against both backends: a real SQLite file
//! and a fresh database on the PostgreSQL at `PLUME_TEST_POSTGRES`
//! (default `postgres://postgres@127.0.0.1:5432`).
use super::*;
use serde_json::json;
use std::sync::Arc;

/// Runs its cleanup when dropped.
pub(crate) struct Guard(Option<Box<dyn FnOnce() + Send>>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(cleanup) = self.0.take() {
            cleanup();
        }
    }
}

/// A SQLite file in a fresh folder.
pub(crate) async fn sqlite(tag: &str) -> (Arc<dyn Database>, Guard) {
    // Unique per call: suites running at once may use the same tag.
    let dir = std::env::temp_dir().join(format!(
        "plume-db-{tag}-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let db = sqlite::SqliteDatabase::open(&dir.join("t.db"))
        .await
        .unwrap();
    let cleanup = move || {
        let _ = std::fs::remove_dir_all(&dir);
    };
    (Arc::new(db), Guard(Some(Box::new(cleanup))))
}

/// A new PostgreSQL database with Plume's schema; dropped again when the guard goes.
pub(crate) async fn postgres() -> (Arc<dyn Database>, Guard) {
    let (url, guard) = empty_postgres().await;
    let db = postgres::PgDatabase::open(&url).await.unwrap();
    (Arc::new(db), guard)
}

/// A new, empty PostgreSQL database (its URL); dropped again when the guard goes.
pub(crate) async fn empty_postgres() -> (String, Guard) {
    use sqlx::Connection;
    let server = std::env::var("PLUME_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let name = format!("plume_unit_{}", rand::random::<u64>() & 0xffff_ffff_ffff);
    let admin = format!("{server}/postgres");
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {server}: {e}"));
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let url = format!("{server}/{name}");
    // Dropped from a plain thread: the test's runtime may be shutting down.
    let cleanup = move || {
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(mut c) = sqlx::PgConnection::connect(&admin).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut c)
                        .await;
                }
            })
        })
        .join();
    };
    (url, Guard(Some(Box::new(cleanup))))
}

fn new_task(user_id: i64, cost: i64) -> NewTask {
    NewTask {
        user_id,
        category: Category::Banana2,
        task_type: None,
        title: None,
        project_id: None,
        widget_mapping: None,
        content: json!({"prompt": "p"}),
        credits_cost: cost,
        input_files: Vec::new(),
        idempotency: None,
        deadline_at: now_millis() + 60_000,
    }
}

/// Runs one suite against both backends.
macro_rules! both {
    ($suite:ident) => {
        mod $suite {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let (db, _guard) = super::sqlite(stringify!($suite)).await;
                super::$suite(db).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let (db, _guard) = super::postgres().await;
                super::$suite(db).await;
            }
        }
    };
}

both!(status_and_ledger_move_together_once);
both!(concurrent_creates_and_claims_stay_exact);
both!(export_then_import_keeps_everything);
both!(more_creates_than_one_batch_holds_stay_exact);

#[path = "portal_tests.rs"]
mod portal_suite;

async fn status_and_ledger_move_together_once(db: Arc<dyn Database>) {
    let user = db.create_user("u").await.unwrap();
    assert_eq!(
        db.create_task(new_task(user, 10), now_millis())
            .await
            .unwrap(),
        CreateOutcome::NoAccount
    );
    db.topup(user, 25, None).await.unwrap();
    let CreateOutcome::Created(task) = db
        .create_task(new_task(user, 10), now_millis())
        .await
        .unwrap()
    else {
        panic!("not created")
    };
    assert_eq!(db.balance(user).await.unwrap(), Some(15));

    // Only the lease holder renews or settles; nobody moves the status backwards.
    let now = now_millis();
    let claimed = db
        .claim(Category::Banana2, "a", 10_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (claimed.id, claimed.status, claimed.attempts),
        (task.id, TaskStatus::Processing, 1)
    );
    assert!(
        db.claim(Category::Banana2, "b", 10_000)
            .await
            .unwrap()
            .is_none(),
        "leased"
    );
    assert!(!db.renew(task.id, "b", 5000).await.unwrap());
    assert!(db.renew(task.id, "a", 5000).await.unwrap());
    let failed = Terminal::failure(TaskStatus::Failed, "X", "boom");
    assert!(!db.finish(task.id, &failed, Some("b"), now).await.unwrap());
    assert!(db.finish(task.id, &failed, Some("a"), now).await.unwrap());
    let success = Terminal {
        status: TaskStatus::Success,
        output: None,
        error_code: None,
        error_message: None,
    };
    assert!(
        !db.finish(task.id, &success, None, now).await.unwrap(),
        "terminal stays terminal"
    );
    assert!(
        !db.finish(task.id, &failed, None, now).await.unwrap(),
        "refunded once"
    );
    assert_eq!(db.balance(user).await.unwrap(), Some(25));
    assert_eq!(
        db.task(task.id).await.unwrap().unwrap().status,
        TaskStatus::Failed
    );

    let t = db.ledger_totals(Some(user)).await.unwrap();
    assert_eq!(
        t,
        LedgerTotals {
            topup: 25,
            reserve: 10,
            capture: 0,
            refund: 10
        }
    );

    // A lapsed lease is claimed again, by anyone.
    let CreateOutcome::Created(second) = db
        .create_task(new_task(user, 5), now_millis())
        .await
        .unwrap()
    else {
        panic!("not created")
    };
    db.claim(Category::Banana2, "a", -1).await.unwrap().unwrap();
    let retaken = db
        .claim(Category::Banana2, "b", 10_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((retaken.id, retaken.attempts), (second.id, 2));
    assert!(db
        .save_upstream_job(second.id, "b", &json!({"job": 1}))
        .await
        .unwrap());
    assert!(!db
        .save_upstream_job(second.id, "a", &json!({"job": 2}))
        .await
        .unwrap());
}

/// 600 creates at once against credit for 300: more than one group commit takes
/// (`sqlite/group.rs` batches at most 256), so the balance check must hold across batches
/// as well as inside one.
async fn more_creates_than_one_batch_holds_stay_exact(db: Arc<dyn Database>) {
    let user = db.create_user("u").await.unwrap();
    db.topup(user, 300, None).await.unwrap();
    let mut creates = Vec::new();
    for _ in 0..600 {
        let db = db.clone();
        creates.push(tokio::spawn(async move {
            db.create_task(new_task(user, 1), now_millis())
                .await
                .unwrap()
        }));
    }
    let (mut created, mut refused) = (0, 0);
    for c in creates {
        match c.await.unwrap() {
            CreateOutcome::Created(_) => created += 1,
            CreateOutcome::Insufficient { .. } => refused += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((created, refused), (300, 300));
    assert_eq!(db.balance(user).await.unwrap(), Some(0));
    let t = db.ledger_totals(Some(user)).await.unwrap();
    assert_eq!((t.topup, t.reserve), (300, 300));
}

/// 40 creates racing against credit for 10 (half of them sharing idempotency keys), then 8
/// claimers racing for the tasks: exact balances, one task per key, no task claimed twice.
async fn concurrent_creates_and_claims_stay_exact(db: Arc<dyn Database>) {
    let user = db.create_user("u").await.unwrap();
    db.topup(user, 100, None).await.unwrap();
    let mut creates = Vec::new();
    for i in 0..40 {
        let db = db.clone();
        creates.push(tokio::spawn(async move {
            let mut t = new_task(user, 10);
            if i % 2 == 0 {
                t.idempotency = Some((format!("key-{}", i % 4), format!("hash-{}", i % 4)));
            }
            db.create_task(t, now_millis()).await.unwrap()
        }));
    }
    let mut created = Vec::new();
    let (mut existing, mut insufficient) = (0, 0);
    for c in creates {
        match c.await.unwrap() {
            CreateOutcome::Created(t) => created.push(t.id),
            CreateOutcome::Existing(_) => existing += 1,
            CreateOutcome::Insufficient { .. } => insufficient += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(created.len(), 10, "credit for exactly 10");
    assert_eq!(db.balance(user).await.unwrap(), Some(0));
    assert!(existing <= 18 && existing + insufficient == 30);
    let t = db.ledger_totals(Some(user)).await.unwrap();
    assert_eq!((t.topup, t.reserve), (100, 100));

    let mut claimers = Vec::new();
    for w in 0..8 {
        let db = db.clone();
        claimers.push(tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(t) = db
                .claim(Category::Banana2, &format!("w{w}"), 60_000)
                .await
                .unwrap()
            {
                got.push(t.id);
            }
            got
        }));
    }
    let mut claimed = Vec::new();
    for c in claimers {
        claimed.extend(c.await.unwrap());
    }
    claimed.sort();
    created.sort();
    assert_eq!(claimed, created, "each task claimed exactly once");
}

/// `migrate-store`'s core: everything read out of one database goes into another unchanged,
/// and the next id continues after the imported ones.
async fn export_then_import_keeps_everything(db: Arc<dyn Database>) {
    let user = db.create_user("u").await.unwrap();
    db.create_key(user, "hash", "plume_sk_ab").await.unwrap();
    db.topup(user, 50, None).await.unwrap();
    let mut t = new_task(user, 10);
    t.input_files = vec![InputFile {
        pointer: "/imageUrls/0".into(),
        key: "uploads/20260101/a.png".into(),
    }];
    t.widget_mapping = Some(json!({"a": [1, 2]}));
    let CreateOutcome::Created(task) = db.create_task(t, now_millis()).await.unwrap() else {
        panic!()
    };
    let claimed = db.claim(Category::Banana2, "w", 60_000).await.unwrap();
    assert!(claimed.is_some());
    let success = Terminal {
        status: TaskStatus::Success,
        output: Some(json!({"images": []})),
        error_code: None,
        error_message: None,
    };
    assert!(db
        .finish(task.id, &success, Some("w"), now_millis())
        .await
        .unwrap());
    let export = db.export().await.unwrap();

    for (target, _guard) in [sqlite("import").await, postgres().await] {
        target.import(&export).await.unwrap();
        assert!(
            target.import(&export).await.is_err(),
            "only into an empty database"
        );
        let copy = target.task(task.id).await.unwrap().unwrap();
        let original = db.task(task.id).await.unwrap().unwrap();
        assert_eq!(copy, original);
        assert_eq!(target.balance(user).await.unwrap(), Some(40));
        assert_eq!(
            target.ledger_totals(None).await.unwrap(),
            db.ledger_totals(None).await.unwrap()
        );
        assert!(target.find_key("hash").await.unwrap().is_some());
        let next = target.create_user("v").await.unwrap();
        assert!(next > user, "ids continue after the imported ones");
    }
}

both!(one_idempotency_key_racing_makes_one_task_and_one_charge);

/// Many creates with one Idempotency-Key at once (on SQLite they meet inside one group
/// commit): one task, one reserve; the rest see it; a different request with the key is a
/// conflict.
async fn one_idempotency_key_racing_makes_one_task_and_one_charge(db: Arc<dyn Database>) {
    let user = db.create_user("u").await.unwrap();
    db.topup(user, 1000, None).await.unwrap();
    let task = |hash: &str| NewTask {
        user_id: user,
        category: Category::Banana2,
        task_type: None,
        title: None,
        project_id: None,
        widget_mapping: None,
        content: json!({"prompt": "p"}),
        credits_cost: 10,
        input_files: Vec::new(),
        idempotency: Some(("key-1".into(), hash.into())),
        deadline_at: now_millis() + 60_000,
    };
    let mut racers = Vec::new();
    for i in 0..40 {
        let db = db.clone();
        let t = task(if i == 39 { "other" } else { "same" });
        racers.push(tokio::spawn(async move {
            loop {
                match db.create_task(t.clone(), now_millis()).await {
                    Err(DbError::Retryable) => continue,
                    other => return other.unwrap(),
                }
            }
        }));
    }
    let (mut created, mut existing, mut conflicts) = (Vec::new(), 0, 0);
    for r in racers {
        match r.await.unwrap() {
            CreateOutcome::Created(t) => created.push(t.id),
            CreateOutcome::Existing(_) => existing += 1,
            CreateOutcome::IdempotencyConflict => conflicts += 1,
            other => panic!("{other:?}"),
        }
    }
    // Whichever request came first made the task; the others saw it (same request) or
    // were refused (the other request).
    assert_eq!(created.len(), 1);
    assert!(
        (existing, conflicts) == (38, 1) || (existing, conflicts) == (0, 39),
        "{existing} existing, {conflicts} conflicts"
    );
    assert_eq!(db.balance(user).await.unwrap(), Some(990));
    assert_eq!(db.ledger_totals(Some(user)).await.unwrap().reserve, 10);
}
