//! Prometheus text metrics.
//!
//! Request counts and execution times are counted in process. Task counts, queue depth and
//! credit totals are read from the database at scrape time, so they are right across restarts
//! and across several server processes sharing one database.

use crate::db::{Database, DbResult};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

const BUCKETS: [f64; 12] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    executions: Mutex<BTreeMap<(String, &'static str), Histogram>>,
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    pub fn record_request(&self, method: &str, route: &str, status: u16) {
        let mut map = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        *map.entry((method.to_string(), route.to_string(), status))
            .or_default() += 1;
    }

    /// One execution of a task of `category` ended with `outcome` after `seconds`.
    pub fn record_execution(&self, category: &str, outcome: &'static str, seconds: f64) {
        let mut map = self.executions.lock().unwrap_or_else(|e| e.into_inner());
        let h = map.entry((category.to_string(), outcome)).or_default();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                h.counts[i] += 1;
            }
        }
        h.sum += seconds;
        h.count += 1;
    }

    pub async fn render(&self, db: &dyn Database) -> DbResult<String> {
        let mut out = String::new();
        out.push_str("# HELP plume_http_requests_total HTTP requests by route and status.\n");
        out.push_str("# TYPE plume_http_requests_total counter\n");
        for ((method, route, status), n) in self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "plume_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {n}",
                escape(route)
            );
        }
        out.push_str(
            "# HELP plume_task_execution_seconds Executor run time by category and outcome.\n",
        );
        out.push_str("# TYPE plume_task_execution_seconds histogram\n");
        for ((category, outcome), h) in self
            .executions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let labels = format!("category=\"{category}\",outcome=\"{outcome}\"");
            for (bound, n) in BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(
                    out,
                    "plume_task_execution_seconds_bucket{{{labels},le=\"{bound}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "plume_task_execution_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "plume_task_execution_seconds_sum{{{labels}}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "plume_task_execution_seconds_count{{{labels}}} {}",
                h.count
            );
        }
        out.push_str(
            "# HELP plume_tasks Tasks by category and status, read from the database: cluster-wide, the same on every node (aggregate with max, not sum).\n# TYPE plume_tasks gauge\n",
        );
        for row in db.status_counts().await? {
            let status = plume_core::TaskStatus::from_code(row.status)
                .map(|s| s.name())
                .unwrap_or("unknown");
            let _ = writeln!(
                out,
                "plume_tasks{{scope=\"cluster\",category=\"{}\",status=\"{status}\"}} {}",
                escape(&row.category),
                row.count
            );
        }
        out.push_str("# HELP plume_queue_depth Tasks waiting for a worker, by category; cluster-wide, from the database.\n# TYPE plume_queue_depth gauge\n");
        for (category, n) in db.queue_depth(crate::db::now_millis()).await? {
            let _ = writeln!(
                out,
                "plume_queue_depth{{scope=\"cluster\",category=\"{}\"}} {n}",
                escape(&category)
            );
        }
        let totals = db.ledger_totals(None).await?;
        for (name, value) in [
            ("reserved", totals.reserve),
            ("captured", totals.capture),
            ("refunded", totals.refund),
            ("topped_up", totals.topup),
        ] {
            let _ = writeln!(
                out,
                "# HELP plume_credits_{name}_total Credits {name}, from the ledger: cluster-wide, the same on every node."
            );
            let _ = writeln!(out, "# TYPE plume_credits_{name}_total counter");
            let _ = writeln!(
                out,
                "plume_credits_{name}_total{{scope=\"cluster\"}} {value}"
            );
        }
        Ok(out)
    }
}
