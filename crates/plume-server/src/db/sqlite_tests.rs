//! The invariants of `db/mod.rs` against a real SQLite file.
use super::*;
use serde_json::json;

async fn open(tag: &str) -> (SqliteDatabase, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("plume-db-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    (SqliteDatabase::open(&dir.join("t.db")).await.unwrap(), dir)
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
        idempotency: None,
        deadline_at: now_millis() + 60_000,
    }
}

#[tokio::test]
async fn status_and_ledger_move_together_once() {
    let (db, dir) = open("ledger").await;
    let user = db.create_user("u").await.unwrap();
    assert_eq!(
        db.create_task(new_task(user, 10), now_millis())
            .await
            .unwrap(),
        CreateOutcome::NoAccount
    );
    db.topup(user, 25).await.unwrap();
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
        .claim(Category::Banana2, "a", now + 1000, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (claimed.id, claimed.status, claimed.attempts),
        (task.id, TaskStatus::Processing, 1)
    );
    assert!(
        db.claim(Category::Banana2, "b", now + 1000, now)
            .await
            .unwrap()
            .is_none(),
        "leased"
    );
    assert!(!db.renew(task.id, "b", now + 5000).await.unwrap());
    assert!(db.renew(task.id, "a", now + 5000).await.unwrap());
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

    // The unique index refuses a second entry of the same kind for a task.
    let again = sqlx::query("INSERT INTO ledger (user_id, task_id, kind, amount, created_at) VALUES (?1, ?2, 'refund', 10, 0)")
        .bind(user)
        .bind(task.id)
        .execute(&db.write)
        .await;
    assert!(again.is_err());
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
    let now = now_millis();
    db.claim(Category::Banana2, "a", now - 1, now)
        .await
        .unwrap()
        .unwrap();
    let retaken = db
        .claim(Category::Banana2, "b", now + 1000, now)
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
    drop(db);
    std::fs::remove_dir_all(dir).unwrap();
}
