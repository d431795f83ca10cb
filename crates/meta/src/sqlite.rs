//! The embedded default: one SQLite file in WAL mode.

use crate::MetaError;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};
use std::str::FromStr;
use std::time::{Duration, Instant};

/// How long a statement waits for another connection's lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A [`MetadataStore`](crate::MetadataStore) in a SQLite database.
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Schema migrations in order; `migrate` applies those not yet recorded.
    const MIGRATIONS: &'static [(i64, &'static str)] = &[
        (1, include_str!("../migrations/sqlite/0001_init.sql")),
        (2, include_str!("../migrations/sqlite/0002_backups.sql")),
        (
            3,
            include_str!("../migrations/sqlite/0003_configurations.sql"),
        ),
        (4, include_str!("../migrations/sqlite/0004_auth.sql")),
        (5, include_str!("../migrations/sqlite/0005_quotas.sql")),
        (6, include_str!("../migrations/sqlite/0006_task_leases.sql")),
        (
            7,
            include_str!("../migrations/sqlite/0007_agent_protocol.sql"),
        ),
        (8, include_str!("../migrations/sqlite/0008_placement.sql")),
    ];
    /// Write transactions hold the database's write lock from their start, so
    /// concurrent migrators are already serialized.
    const MIGRATION_LOCK: Option<&'static str> = None;
    /// Write transactions are serialized already: no per-project lock needed.
    const PROJECT_LOCK: Option<&'static str> = None;
    /// Ditto: a read inside a write transaction needs no row lock.
    const FOR_UPDATE: &'static str = "";
    /// Ditto: a task claim needs no row lock to exclude other claimers.
    const SKIP_LOCKED: &'static str = "";
    /// The database's clock in epoch milliseconds.
    const NOW_MILLIS: &'static str =
        "CAST(ROUND((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER)";

    /// Open the database `url` names (`sqlite://PATH`, created if missing,
    /// or `sqlite::memory:`). Does not migrate; [`crate::open`] does.
    pub async fn connect(url: &str) -> Result<Self, MetaError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| MetaError::Config(format!("bad SQLite URL {url:?}: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        // An in-memory database lives as long as its one connection does.
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let pool_options = if in_memory {
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            SqlitePoolOptions::new().max_connections(4)
        };
        // Switching a new file to WAL needs an exclusive lock, and SQLite
        // reports SQLITE_BUSY for it without waiting, so processes opening the
        // same new file at once retry here for as long as a busy wait would.
        let deadline = Instant::now() + BUSY_TIMEOUT;
        let pool = loop {
            match pool_options.clone().connect_with(options.clone()).await {
                Ok(pool) => break pool,
                Err(e) if is_busy(&e) && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => {
                    return Err(MetaError::Config(format!(
                        "cannot open SQLite database {url:?}: {e}"
                    )))
                }
            }
        };
        Ok(Self { pool })
    }

    /// SQLite takes `?` placeholders as written.
    fn sql(statement: &str) -> String {
        statement.to_owned()
    }

    /// `BEGIN IMMEDIATE`: a deferred transaction that reads and then writes
    /// fails with SQLITE_BUSY when another writer committed in between (the
    /// busy timeout cannot help it); taking the write lock first makes such a
    /// transaction wait its turn instead.
    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, MetaError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}

crate::sql_store::impl_metadata_store!(SqliteStore, Sqlite);

/// SQLITE_BUSY or SQLITE_LOCKED, in any of their extended forms.
fn is_busy(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .and_then(|db| db.code())
        .and_then(|code| code.parse::<i32>().ok())
        .is_some_and(|code| matches!(code & 0xff, 5 | 6))
}

#[cfg(test)]
mod tests {
    use crate::MetaError;

    #[tokio::test]
    async fn in_memory_database_keeps_its_schema() {
        let store = crate::open("sqlite::memory:")
            .await
            .expect("open in memory");
        assert!(store.list_flavors().await.expect("list").is_empty());
        assert!(matches!(
            crate::open("mysql://localhost/coffer").await,
            Err(MetaError::Config(_))
        ));
    }
}
