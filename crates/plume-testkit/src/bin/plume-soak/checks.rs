//! The soak's checks, read from the database and the file store once the server has stopped.

use crate::traffic::Tally;
use anyhow::Context;
use serde_json::Value;
use sqlx::{Connection, Row};
use std::collections::{HashMap, HashSet};
use std::path::Path;

pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
}

/// Where the stopped server kept its state: the database and the file store it was given.
pub struct Stores {
    /// `sqlite://PATH` or `postgres://…`.
    pub database_url: String,
    /// `file://PATH` or `s3://BUCKET`, with the S3 settings for the latter.
    pub storage_url: String,
    pub s3: plume_server::config::S3Config,
}

/// The database the checks read, either backend; both take the same SQL (every column is
/// BIGINT or cast to TEXT).
enum Db {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

/// One task as the checks need it.
struct TaskRow {
    id: i64,
    status: i64,
    attempts: i64,
    output: Option<String>,
}

/// Runs `$body` with `$c` bound to whichever connection `$db` holds.
macro_rules! with_conn {
    ($db:expr, |$c:ident| $body:expr) => {
        match $db {
            Db::Sqlite($c) => $body,
            Db::Postgres($c) => $body,
        }
    };
}

impl Db {
    async fn open(url: &str) -> anyhow::Result<Db> {
        Ok(if url.starts_with("postgres") {
            Db::Postgres(sqlx::PgConnection::connect(url).await?)
        } else {
            Db::Sqlite(sqlx::SqliteConnection::connect(url).await?)
        })
    }

    async fn tasks(&mut self) -> anyhow::Result<Vec<TaskRow>> {
        const SQL: &str = "SELECT id, status, attempts, CAST(output AS TEXT) AS output FROM tasks";
        Ok(with_conn!(self, |c| sqlx::query(SQL)
            .fetch_all(c)
            .await?
            .iter()
            .map(|r| TaskRow {
                id: r.get("id"),
                status: r.get("status"),
                attempts: r.get("attempts"),
                output: r.get("output"),
            })
            .collect()))
    }

    /// Rows of BIGINT columns.
    async fn numbers(&mut self, sql: &str, columns: usize) -> anyhow::Result<Vec<Vec<i64>>> {
        Ok(with_conn!(self, |c| sqlx::query(sql)
            .fetch_all(c)
            .await?
            .iter()
            .map(|r| (0..columns).map(|i| r.get::<i64, _>(i)).collect())
            .collect()))
    }
}

/// Every check, in the order they are printed. `rss` holds (seconds, KiB) samples per
/// node, per process of that node.
pub async fn run(
    dir: &Path,
    stores: &Stores,
    rss: &[Vec<Vec<(f64, u64)>>],
    tally: &Tally,
) -> anyhow::Result<Vec<Check>> {
    // The checks, from the database and the store, with the server stopped.
    let mut db = Db::open(&stores.database_url)
        .await
        .context("opening the database")?;
    let mut checks = Vec::new();
    let rows = db.tasks().await?;
    let not_terminal: Vec<i64> = rows.iter().filter(|r| r.status < 3).map(|r| r.id).collect();
    checks.push(Check {
        name: "every task terminal",
        ok: not_terminal.is_empty(),
        detail: format!(
            "{} tasks, not terminal: {:?}",
            rows.len(),
            &not_terminal[..not_terminal.len().min(10)]
        ),
    });
    let mut executions: HashMap<i64, Vec<i64>> = HashMap::new();
    for line in std::fs::read_to_string(dir.join("executions.log"))
        .unwrap_or_default()
        .lines()
    {
        let mut parts = line
            .split_whitespace()
            .map(|p| p.parse::<i64>().unwrap_or(-1));
        if let (Some(task), Some(attempt)) = (parts.next(), parts.next()) {
            executions.entry(task).or_default().push(attempt);
        }
    }
    let mut twice = Vec::new();
    for r in &rows {
        let (id, attempts) = (r.id, r.attempts);
        let mut ran = executions.remove(&id).unwrap_or_default();
        ran.sort_unstable();
        let expected: Vec<i64> = (1..=attempts).collect();
        // A kill -9 between the claim and the executor's first line loses the record, never
        // adds one: at most once per attempt, and never an attempt that was not claimed.
        let dup = ran.windows(2).any(|w| w[0] == w[1]) || ran.iter().any(|a| !expected.contains(a));
        if dup {
            twice.push(id);
        }
    }
    checks.push(Check {
        name: "each task executed once per attempt",
        ok: twice.is_empty() && executions.is_empty(),
        detail: format!(
            "double or unclaimed runs: {:?}",
            &twice[..twice.len().min(10)]
        ),
    });
    // PostgreSQL sums BIGINTs as NUMERIC: cast back.
    let ledger = db
        .numbers(
            "SELECT c.user_id, c.balance,
                CAST(COALESCE(SUM(CASE WHEN l.kind = 'topup' THEN l.amount END), 0) AS BIGINT),
                CAST(COALESCE(SUM(CASE WHEN l.kind = 'reserve' THEN l.amount END), 0) AS BIGINT),
                CAST(COALESCE(SUM(CASE WHEN l.kind = 'refund' THEN l.amount END), 0) AS BIGINT)
             FROM credit_accounts c LEFT JOIN ledger l ON l.user_id = c.user_id
             GROUP BY c.user_id, c.balance",
            5,
        )
        .await?;
    let off: Vec<String> = ledger
        .iter()
        .filter(|r| r[1] != r[2] - r[3] + r[4])
        .map(|r| format!("user {}", r[0]))
        .collect();
    let unsettled = db
        .numbers(
            "SELECT COUNT(*) FROM tasks t WHERE t.status >= 3 AND t.credits_cost > 0 AND
               (SELECT COUNT(*) FROM ledger l
                WHERE l.task_id = t.id AND l.kind IN ('capture', 'refund')) <> 1",
            1,
        )
        .await?[0][0];
    checks.push(Check {
        name: "ledger adds up",
        ok: off.is_empty() && unsettled == 0,
        detail: format!(
            "{} accounts; off: {off:?}; terminal tasks not settled exactly once: {unsettled}",
            ledger.len()
        ),
    });
    let mut named: HashSet<String> = HashSet::new();
    for r in &rows {
        if let Some(v) = r
            .output
            .as_deref()
            .and_then(|o| serde_json::from_str::<Value>(o).ok())
        {
            for img in v["images"].as_array().into_iter().flatten() {
                named.insert(img["key"].as_str().unwrap_or_default().to_string());
            }
        }
    }
    let store = plume_server::blob::open(&stores.storage_url, &stores.s3)
        .await
        .context("opening the file store")?;
    let files: Vec<String> = store
        .list("results/")
        .await
        .context("listing result files")?
        .into_iter()
        .map(|l| l.key.as_str().to_string())
        .collect();
    let leaked: Vec<&String> = files.iter().filter(|f| !named.contains(*f)).collect();
    checks.push(Check {
        name: "no result file leaked",
        ok: leaked.is_empty(),
        detail: format!(
            "{} result files; orphans: {:?}",
            files.len(),
            &leaked[..leaked.len().min(5)]
        ),
    });
    let (mut rss_ok, mut rss_detail) = (true, Vec::new());
    for (node, processes) in rss.iter().enumerate() {
        let (ok, detail) = rss_flat(processes);
        rss_ok &= ok;
        rss_detail.push(if rss.len() > 1 {
            format!("node {node}: {detail}")
        } else {
            detail
        });
    }
    checks.push(Check {
        name: "RSS flat after warm-up",
        ok: rss_ok,
        detail: rss_detail.join("; "),
    });
    let mut log = String::new();
    for entry in std::fs::read_dir(dir)?.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with("server") && name.ends_with(".log") {
            log += &std::fs::read_to_string(entry.path()).unwrap_or_default();
        }
    }
    let errors: Vec<&str> = log.lines().filter(|l| l.contains("ERROR")).collect();
    checks.push(Check {
        name: "no error in the server log",
        ok: errors.is_empty(),
        detail: format!("{} error lines; first: {:?}", errors.len(), errors.first()),
    });
    let unexpected = tally.unexpected.lock().unwrap().clone();
    checks.push(Check {
        name: "no unexpected answer",
        ok: unexpected.is_empty(),
        detail: format!("{:?}", &unexpected[..unexpected.len().min(5)]),
    });

    Ok(checks)
}

/// Whether one node's RSS stayed flat: its last process long enough to judge may not keep
/// growing after warm-up (its first quarter).
fn rss_flat(processes: &[Vec<(f64, u64)>]) -> (bool, String) {
    let samples = processes
        .iter()
        .rev()
        .find(|s| s.len() >= 8)
        .cloned()
        .unwrap_or_default();
    if samples.len() < 8 {
        return (true, "too short a run to judge".to_string());
    }
    let quarter = samples.len() / 4;
    let warm = samples[quarter].1;
    let end_max = samples[samples.len() / 2..]
        .iter()
        .map(|s| s.1)
        .max()
        .unwrap_or(0);
    (
        end_max <= warm + warm / 2 + 32 * 1024,
        format!(
            "{} MiB after warm-up, at most {} MiB later",
            warm / 1024,
            end_max / 1024
        ),
    )
}
