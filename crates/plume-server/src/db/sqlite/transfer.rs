//! `migrate-store` on SQLite: every table out, or into an empty database with ids kept.

use super::*;

impl SqliteDatabase {
    pub(super) async fn export_all(&self) -> DbResult<Export> {
        let mut export = Export::default();
        for (table, columns) in TABLES {
            let rows = sqlx::query(&select_all(table, columns))
                .fetch_all(&self.read)
                .await
                .map_err(db_err)?;
            let rows = rows
                .iter()
                .map(|row| export_row(row, columns))
                .collect::<DbResult<_>>()?;
            export.tables.push((table, rows));
        }
        Ok(export)
    }

    pub(super) async fn import_all(&self, export: &Export) -> DbResult<()> {
        let mut tx = self
            .write
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db_err)?;
        let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?;
        if users > 0 {
            return Err(DbError::other("the target database is not empty"));
        }
        for (table, rows) in &export.tables {
            let columns = columns_of(table)?;
            let sql = insert_all(table, columns, |i| format!("?{i}"));
            for row in rows {
                let mut query = sqlx::query(&sql);
                for (name, column) in columns.iter() {
                    let value = row.get(*name).unwrap_or(&Value::Null);
                    query = match (column, value) {
                        (_, Value::Null) => query.bind(None::<String>),
                        (Column::Int, v) => query.bind(v.as_i64()),
                        (Column::Text, v) => query.bind(v.as_str().map(String::from)),
                        (Column::Json, v) => query.bind(v.to_string()),
                    };
                }
                query.execute(&mut *tx).await.map_err(db_err)?;
            }
        }
        tx.commit().await.map_err(db_err)
    }
}
