//! Task changes between nodes: each node `NOTIFY`s what it committed, in batches and after
//! the commit (a `NOTIFY` inside the writing transaction would hold PostgreSQL's global
//! notify lock through that commit), and `LISTEN`s for everyone's.

use super::*;

impl PgDatabase {
    /// Every node's task changes, as they are `NOTIFY`d (see [`PgDatabase::notify`]).
    pub(super) async fn listen(&self) -> DbResult<Changes> {
        let mut listener = PgListener::connect_with(&self.pool).await.map_err(db_err)?;
        listener.listen(CHANNEL).await.map_err(db_err)?;
        // PgListener reconnects (and re-LISTENs) by itself on the next recv after a lost
        // connection; what was sent meanwhile is missed, which waiters' re-reads cover.
        let stream = futures::stream::unfold(listener, |mut listener| async move {
            loop {
                match listener.recv().await {
                    Ok(n) => return Some((parse_notification(n.payload()), listener)),
                    Err(e) => {
                        tracing::warn!(error = %e, "task notifications interrupted; reconnecting");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        })
        .flat_map(futures::stream::iter);
        Ok(stream.boxed())
    }

    /// `NOTIFY`s changes that committed, several to a payload, in one statement.
    pub(super) async fn notify(&self, changes: &[Change]) -> DbResult<()> {
        let payloads = encode_changes(changes);
        sqlx::query("SELECT pg_notify($1, p) FROM unnest($2::TEXT[]) AS p")
            .bind(CHANNEL)
            .bind(&payloads)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }
}

/// NOTIFY payloads carrying `changes`: space-separated `t:<task id>` and `w:<category>`,
/// each payload under PostgreSQL's 8000-byte limit.
fn encode_changes(changes: &[Change]) -> Vec<String> {
    let mut payloads = vec![String::new()];
    for change in changes {
        let token = match change {
            Change::Task(id) => format!("t:{id}"),
            Change::Work(category) => format!("w:{}", category.as_str()),
        };
        let last = payloads.last_mut().expect("never empty");
        if last.len() + token.len() + 1 > 7000 {
            payloads.push(token);
        } else {
            if !last.is_empty() {
                last.push(' ');
            }
            last.push_str(&token);
        }
    }
    payloads.retain(|p| !p.is_empty());
    payloads
}

/// The changes a payload of [`encode_changes`] carries; unknown tokens are skipped.
fn parse_notification(payload: &str) -> Vec<Change> {
    payload
        .split(' ')
        .filter_map(|token| match token.split_once(':') {
            Some(("t", id)) => id.parse().ok().map(Change::Task),
            Some(("w", category)) => Category::parse(category).map(Change::Work),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_round_trip_in_bounded_payloads() {
        let changes = vec![Change::Task(7), Change::Work(Category::RemoveBg)];
        let payloads = encode_changes(&changes);
        assert_eq!(payloads, vec!["t:7 w:remove-bg".to_string()]);
        assert_eq!(parse_notification(&payloads[0]), changes);
        assert!(parse_notification("garbage t:x w:nope").is_empty());
        let many: Vec<Change> = (0..5000).map(Change::Task).collect();
        let payloads = encode_changes(&many);
        assert!(payloads.len() > 1 && payloads.iter().all(|p| p.len() <= 7000));
        let back: Vec<Change> = payloads
            .iter()
            .flat_map(|p| parse_notification(p))
            .collect();
        assert_eq!(back, many);
    }
}
