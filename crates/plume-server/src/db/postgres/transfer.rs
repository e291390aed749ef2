//! `migrate-store` on PostgreSQL: every table out, or into an empty database with ids kept.

use super::*;

impl PgDatabase {
    pub(super) async fn export_all(&self) -> DbResult<Export> {
        let mut export = Export::default();
        for (table, columns) in TABLES {
            let rows = sqlx::query(&select_all(table, columns))
                .fetch_all(&self.pool)
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
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        sqlx::query("LOCK TABLE users IN EXCLUSIVE MODE")
            .execute(&mut *tx)
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
            let sql = insert_all(table, columns, |i| format!("${i}"));
            for row in rows {
                let mut query = sqlx::query(&sql);
                for (name, column) in columns.iter() {
                    let value = row.get(*name).filter(|v| !v.is_null());
                    query = match column {
                        Column::Int => query.bind(value.and_then(Value::as_i64)),
                        Column::Text => query.bind(value.and_then(Value::as_str).map(String::from)),
                        Column::Json => query.bind(value.map(|v| Json(v.clone()))),
                    };
                }
                query.execute(&mut *tx).await.map_err(db_err)?;
            }
            if columns[0].0 == "id" {
                // Ids were kept: the next one the sequence gives must come after them.
                sqlx::query(&format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', 'id'), GREATEST((SELECT MAX(id) FROM {table}), 1))"
                ))
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            }
        }
        tx.commit().await.map_err(db_err)
    }
}
