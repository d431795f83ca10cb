//! The embedded schema migrations runner, shared by both SQL backends.
//!
//! Each backend lists its migrations as `(version, sql)` pairs (the SQL is a
//! file under `migrations/<backend>/`). One transaction applies those whose
//! version is not yet in `schema_migrations` and records them, so a failed
//! migration leaves nothing behind and running it again is harmless. The
//! backend's `MIGRATION_LOCK` (if any) runs first in that transaction, so two
//! processes migrating at once take turns.

/// Adds `apply_migrations(&self)` to `$store` (see the module comment).
macro_rules! impl_migrations {
    ($store:ty) => {
        impl $store {
            async fn apply_migrations(&self) -> Result<(), $crate::MetaError> {
                let mut tx = self.begin_write().await?;
                if let Some(lock) = Self::MIGRATION_LOCK {
                    sqlx::query(lock).execute(&mut *tx).await?;
                }
                sqlx::query(
                    "CREATE TABLE IF NOT EXISTS schema_migrations \
                     (version BIGINT PRIMARY KEY, applied BIGINT NOT NULL)",
                )
                .execute(&mut *tx)
                .await?;
                let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations")
                    .fetch_all(&mut *tx)
                    .await?;
                let record =
                    Self::sql("INSERT INTO schema_migrations (version, applied) VALUES (?, ?)");
                for &(version, sql) in Self::MIGRATIONS {
                    if applied.contains(&version) {
                        continue;
                    }
                    tracing::info!(version, "applying metadata schema migration");
                    // A plain `&str` runs as a script of several statements.
                    sqlx::Executor::execute(&mut *tx, sql).await?;
                    sqlx::query(&record)
                        .bind(version)
                        .bind($crate::rows::millis(chrono::Utc::now()))
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }
        }
    };
}

pub(crate) use impl_migrations;
