//! PostgreSQL, for a deployment with more than one control-plane host.

use crate::MetaError;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};
use std::time::Duration;

/// A [`MetadataStore`](crate::MetadataStore) in a PostgreSQL database.
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Schema migrations in order; `migrate` applies those not yet recorded.
    const MIGRATIONS: &'static [(i64, &'static str)] = &[
        (1, include_str!("../migrations/postgres/0001_init.sql")),
        (2, include_str!("../migrations/postgres/0002_backups.sql")),
        (
            3,
            include_str!("../migrations/postgres/0003_configurations.sql"),
        ),
        (4, include_str!("../migrations/postgres/0004_auth.sql")),
        (5, include_str!("../migrations/postgres/0005_quotas.sql")),
        (
            6,
            include_str!("../migrations/postgres/0006_task_leases.sql"),
        ),
        (
            7,
            include_str!("../migrations/postgres/0007_agent_protocol.sql"),
        ),
        (8, include_str!("../migrations/postgres/0008_placement.sql")),
    ];
    /// Serializes processes migrating at once; released at commit. The key
    /// is "Coffer" in ASCII.
    const MIGRATION_LOCK: Option<&'static str> =
        Some("SELECT pg_advisory_xact_lock(74145738417522)");
    /// Serializes quota checks of one project (released at commit).
    const PROJECT_LOCK: Option<&'static str> = Some("SELECT pg_advisory_xact_lock(hashtext(?))");
    /// A read that decides a write locks the row it read.
    const FOR_UPDATE: &'static str = " FOR UPDATE";
    /// A task claim locks the rows it picks and skips those another claimer
    /// has locked, so concurrent claimers neither wait nor share a task.
    const SKIP_LOCKED: &'static str = " FOR UPDATE SKIP LOCKED";
    /// The database's clock in epoch milliseconds (at statement start).
    const NOW_MILLIS: &'static str =
        "CAST(EXTRACT(EPOCH FROM statement_timestamp()) * 1000 AS BIGINT)";

    /// Connect to the database `url` names (`postgres://...`). Does not
    /// migrate; [`crate::open`] does.
    pub async fn connect(url: &str) -> Result<Self, MetaError> {
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(|e| MetaError::Config(format!("cannot connect to PostgreSQL: {e}")))?;
        Ok(Self { pool })
    }

    /// PostgreSQL numbers its placeholders.
    fn sql(statement: &str) -> String {
        numbered(statement)
    }

    async fn begin_write(&self) -> Result<Transaction<'static, Postgres>, MetaError> {
        Ok(self.pool.begin().await?)
    }
}

crate::sql_store::impl_metadata_store!(PostgresStore, Postgres);

/// `statement` with each `?` outside a quoted string or identifier replaced
/// by `$1`, `$2`, ... in order.
fn numbered(statement: &str) -> String {
    let mut out = String::with_capacity(statement.len() + 16);
    let mut n = 0;
    let mut quote: Option<char> = None;
    for c in statement.chars() {
        match (quote, c) {
            (None, '?') => {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
                continue;
            }
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), _) if q == c => quote = None,
            _ => {}
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::numbered;

    #[test]
    fn placeholders_are_numbered_outside_quotes() {
        assert_eq!(
            numbered("UPDATE t SET a = ?, b = '?' WHERE c = ? AND \"d?\" IN (?, ?)"),
            "UPDATE t SET a = $1, b = '?' WHERE c = $2 AND \"d?\" IN ($3, $4)"
        );
        assert_eq!(numbered("SELECT 1"), "SELECT 1");
    }
}
