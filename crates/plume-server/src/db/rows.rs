//! Reading rows into the trait's types the same way on both backends. Each backend says how
//! its row type gives an integer, a text and a JSON column ([`ReadRow`]); everything else
//! (what a task record is made of, what an exported row holds) is written once, here.

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
