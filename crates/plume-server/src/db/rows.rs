//! Reading rows into the trait's types the same way on both backends. Each backend says how
//! its row type gives an integer, a text and a JSON column ([`ReadRow`]); everything else
//! (what a task record is made of, what an exported row holds) is written once, here.

use super::portal::{KeyInfo, LedgerEntry, Login, Role, Session, UserSummary};
use super::*;

/// How a backend's row gives its columns (`None` for SQL NULL).
pub(super) trait ReadRow {
    fn int(&self, column: &str) -> DbResult<Option<i64>>;
    fn text(&self, column: &str) -> DbResult<Option<String>>;
    fn json(&self, column: &str) -> DbResult<Option<Value>>;

    fn required_int(&self, column: &str) -> DbResult<i64> {
        self.int(column)?
            .ok_or_else(|| DbError::other(format!("column {column} is NULL")))
    }
}

pub(super) fn task_from_row(row: &impl ReadRow) -> DbResult<TaskRecord> {
    let category = row.text("category")?.unwrap_or_default();
    let status = row.required_int("status")?;
    Ok(TaskRecord {
        id: row.required_int("id")?,
        user_id: row.required_int("user_id")?,
        category: Category::parse(&category)
            .ok_or_else(|| DbError::other(format!("unknown category {category}")))?,
        task_type: row.int("task_type")?,
        title: row.text("title")?,
        project_id: row.text("project_id")?,
        widget_mapping: row.json("widget_mapping")?,
        content: row.json("content")?.unwrap_or(Value::Null),
        status: TaskStatus::from_code(status)
            .ok_or_else(|| DbError::other(format!("unknown status {status}")))?,
        progress: row.required_int("progress")?,
        output: row.json("output")?,
        error_code: row.text("error_code")?,
        error_message: row.text("error_message")?,
        credits_cost: row.required_int("credits_cost")?,
        upstream_job: row.json("upstream_job")?,
        input_files: row
            .json("input_files")?
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| DbError::other(format!("column input_files: {e}")))?
            .unwrap_or_default(),
        attempts: row.required_int("attempts")?,
        created_at: row.required_int("created_at")?,
        started_at: row.int("started_at")?,
        finished_at: row.int("finished_at")?,
        deadline_at: row.required_int("deadline_at")?,
    })
}

/// One row of a table as `migrate-store` carries it.
pub(super) fn export_row(
    row: &impl ReadRow,
    columns: &[(&str, Column)],
) -> DbResult<serde_json::Map<String, Value>> {
    let mut map = serde_json::Map::new();
    for (name, column) in columns {
        let value = match column {
            Column::Int => row.int(name)?.map(Value::from),
            Column::Text => row.text(name)?.map(Value::from),
            Column::Json => row.json(name)?,
        };
        map.insert(name.to_string(), value.unwrap_or(Value::Null));
    }
    Ok(map)
}

/// `SELECT <every column> FROM <table> ORDER BY <first column>`, for an export.
pub(super) fn select_all(table: &str, columns: &[(&str, Column)]) -> String {
    let names: Vec<&str> = columns.iter().map(|(n, _)| *n).collect();
    format!(
        "SELECT {} FROM {table} ORDER BY {}",
        names.join(", "),
        names[0]
    )
}

/// `INSERT INTO <table> (<columns>) VALUES (<marks>)`, with `mark(i)` the i-th (1-based)
/// placeholder of the backend.
pub(super) fn insert_all(
    table: &str,
    columns: &[(&str, Column)],
    mark: impl Fn(usize) -> String,
) -> String {
    let names: Vec<&str> = columns.iter().map(|(n, _)| *n).collect();
    let marks: Vec<String> = (1..=names.len()).map(mark).collect();
    format!(
        "INSERT INTO {table} ({}) VALUES ({})",
        names.join(", "),
        marks.join(", ")
    )
}

/// The columns of a table named in an export.
pub(super) fn columns_of(table: &str) -> DbResult<&'static [(&'static str, Column)]> {
    TABLES
        .iter()
        .find(|(t, _)| *t == table)
        .map(|(_, c)| *c)
        .ok_or_else(|| DbError::other(format!("unknown table {table}")))
}

/// A `TEXT NOT NULL` column.
fn required_text(row: &impl ReadRow, column: &str) -> DbResult<String> {
    row.text(column)?
        .ok_or_else(|| DbError::other(format!("column {column} is NULL")))
}

/// `disabled` is stored as 0/1 on both backends.
fn flag(row: &impl ReadRow, column: &str) -> DbResult<bool> {
    Ok(row.required_int(column)? != 0)
}

/// A login: `user_id, email, password_hash, role, disabled`.
pub(super) fn login_from_row(row: &impl ReadRow) -> DbResult<Login> {
    Ok(Login {
        user_id: row.required_int("user_id")?,
        email: required_text(row, "email")?,
        password_hash: required_text(row, "password_hash")?,
        role: Role::parse(&required_text(row, "role")?),
        disabled: flag(row, "disabled")?,
    })
}

/// A live session: `user_id, email, role, csrf_token, expires_at`.
pub(super) fn session_from_row(row: &impl ReadRow) -> DbResult<Session> {
    Ok(Session {
        user_id: row.required_int("user_id")?,
        email: required_text(row, "email")?,
        role: Role::parse(&required_text(row, "role")?),
        csrf_token: required_text(row, "csrf_token")?,
        expires_at: row.required_int("expires_at")?,
    })
}

/// A key as its owner sees it: `id, key_prefix, created_at, last_used_at, disabled`.
pub(super) fn key_info_from_row(row: &impl ReadRow) -> DbResult<KeyInfo> {
    Ok(KeyInfo {
        id: row.required_int("id")?,
        prefix: required_text(row, "key_prefix")?,
        created_at: row.required_int("created_at")?,
        last_used_at: row.int("last_used_at")?,
        disabled: flag(row, "disabled")?,
    })
}

/// A ledger entry: `id, task_id, kind, amount, note, created_at`.
pub(super) fn ledger_entry_from_row(row: &impl ReadRow) -> DbResult<LedgerEntry> {
    Ok(LedgerEntry {
        id: row.required_int("id")?,
        task_id: row.int("task_id")?,
        kind: required_text(row, "kind")?,
        amount: row.required_int("amount")?,
        note: row.text("note")?,
        created_at: row.required_int("created_at")?,
    })
}

/// A user for the operator's search: `id, name, disabled, created_at`, and from the left
/// joins `email, role, balance` (NULL for a user without a login or an account).
pub(super) fn user_summary_from_row(row: &impl ReadRow) -> DbResult<UserSummary> {
    Ok(UserSummary {
        id: row.required_int("id")?,
        name: required_text(row, "name")?,
        email: row.text("email")?,
        role: Role::parse(row.text("role")?.as_deref().unwrap_or("user")),
        disabled: flag(row, "disabled")?,
        balance: row.int("balance")?,
        created_at: row.required_int("created_at")?,
    })
}
