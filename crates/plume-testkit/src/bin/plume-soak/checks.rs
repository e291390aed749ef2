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

/// The file store's result files, as keys (`results/<task>/<name>`).
fn result_files(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let results = root.join("results");
    for task in std::fs::read_dir(&results).into_iter().flatten().flatten() {
        for file in std::fs::read_dir(task.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = file.file_name().to_string_lossy().to_string();
            if name.starts_with('.') {
                continue; // a write in progress of the disk store
            }
            out.push(format!(
                "results/{}/{name}",
                task.file_name().to_string_lossy()
            ));
        }
    }
    out
}

/// Every check, in the order they are printed. `rss` holds (seconds, KiB) samples per
/// server process.
pub async fn run(dir: &Path, rss: &[Vec<(f64, u64)>], tally: &Tally) -> anyhow::Result<Vec<Check>> {
    // The checks, from the database and the store, with the server stopped.
    let db_path = dir.join("data").join("plume.db");
    let mut db = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db_path.display()))
        .await
        .context("opening the database")?;
    let mut checks = Vec::new();
    let rows = sqlx::query("SELECT id, status, attempts, output FROM tasks")
        .fetch_all(&mut db)
        .await?;
    let not_terminal: Vec<i64> = rows
        .iter()
        .filter(|r| r.get::<i64, _>("status") < 3)
        .map(|r| r.get("id"))
        .collect();
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
        let id: i64 = r.get("id");
        let attempts: i64 = r.get("attempts");
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
    let ledger = sqlx::query(
        "SELECT c.user_id, c.balance,
                COALESCE(SUM(CASE WHEN l.kind = 'topup' THEN l.amount END), 0) AS topup,
                COALESCE(SUM(CASE WHEN l.kind = 'reserve' THEN l.amount END), 0) AS reserve,
                COALESCE(SUM(CASE WHEN l.kind = 'refund' THEN l.amount END), 0) AS refund
         FROM credit_accounts c LEFT JOIN ledger l ON l.user_id = c.user_id GROUP BY c.user_id, c.balance",
    )
    .fetch_all(&mut db)
    .await?;
    let off: Vec<String> = ledger
        .iter()
        .filter(|r| {
            r.get::<i64, _>("balance")
                != r.get::<i64, _>("topup") - r.get::<i64, _>("reserve") + r.get::<i64, _>("refund")
        })
        .map(|r| format!("user {}", r.get::<i64, _>("user_id")))
        .collect();
    let unsettled: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM tasks t WHERE t.status >= 3 AND t.credits_cost > 0 AND
           (SELECT COUNT(*) FROM ledger l WHERE l.task_id = t.id AND l.kind IN ('capture', 'refund')) <> 1",
    )
    .fetch_one(&mut db)
    .await?;
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
        let output: Option<String> = r.get("output");
        if let Some(v) = output.and_then(|o| serde_json::from_str::<Value>(&o).ok()) {
            for img in v["images"].as_array().into_iter().flatten() {
                named.insert(img["key"].as_str().unwrap_or_default().to_string());
            }
        }
    }
    let files = result_files(&dir.join("data").join("files"));
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
    // RSS of the last process: after warm-up (its first quarter) it may not keep growing.
    let samples = rss
        .iter()
        .rev()
        .find(|s| s.len() >= 8)
        .cloned()
        .unwrap_or_default();
    let (rss_ok, rss_detail) = if samples.len() < 8 {
        (true, "too short a run to judge".to_string())
    } else {
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
    };
    checks.push(Check {
        name: "RSS flat after warm-up",
        ok: rss_ok,
        detail: rss_detail,
    });
    let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
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
