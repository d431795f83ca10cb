#![forbid(unsafe_code)]
//! Datastore managers: the only code that knows a datastore's commands,
//! files and SQL. Each datastore is one module behind the
//! `coffer_strategy::DatastoreManager` trait; `registry()` names them all.
//! Each module also holds its backup and restore strategies, named by
//! `backup_strategies()` and `restore_strategies()`. `parameters` holds
//! the configuration-parameter schemas shipped for each datastore version.

mod files;
pub mod mariadb;
mod overrides;
pub mod parameters;
pub mod postgresql;
mod process;
pub mod redis;
pub mod sandbox;
mod stream;
mod tool;

use coffer_strategy::{BackupStrategy, DatastoreManager, Registry, RestoreStrategy};
use std::sync::Arc;

/// Every compiled-in datastore manager, by the datastore's name.
pub fn registry() -> Registry<dyn DatastoreManager> {
    let mut registry: Registry<dyn DatastoreManager> = Registry::new("datastore manager");
    registry.register("mariadb", Arc::new(mariadb::MariaDb::new()));
    registry.register("postgresql", Arc::new(postgresql::PostgreSql::new()));
    registry.register("redis", Arc::new(redis::Redis::new()));
    registry
}

/// Every compiled-in backup strategy, by name: "mariabackup" (MariaDB,
/// physical, incremental), "mariadb-dump" (MariaDB, logical),
/// "pg_basebackup" (PostgreSQL, physical) and "redis-rdb" (Redis snapshot).
pub fn backup_strategies() -> Registry<dyn BackupStrategy> {
    let mut registry: Registry<dyn BackupStrategy> = Registry::new("backup");
    registry.register(mariadb::MARIABACKUP, Arc::new(mariadb::MariaBackup));
    registry.register(mariadb::MARIADB_DUMP, Arc::new(mariadb::MariaDbDump));
    registry.register(
        postgresql::PG_BASEBACKUP,
        Arc::new(postgresql::PgBaseBackup),
    );
    registry.register(redis::REDIS_RDB, Arc::new(redis::RedisRdb));
    registry
}

/// The restore strategy of each backup strategy, under the same name: a
/// backup is restored by the strategy that made it.
pub fn restore_strategies() -> Registry<dyn RestoreStrategy> {
    let mut registry: Registry<dyn RestoreStrategy> = Registry::new("restore");
    registry.register(mariadb::MARIABACKUP, Arc::new(mariadb::MariaBackup));
    registry.register(mariadb::MARIADB_DUMP, Arc::new(mariadb::MariaDbDump));
    registry.register(
        postgresql::PG_BASEBACKUP,
        Arc::new(postgresql::PgBaseBackup),
    );
    registry.register(redis::REDIS_RDB, Arc::new(redis::RedisRdb));
    registry
}

#[cfg(test)]
mod tests {
    #[test]
    fn registry_knows_mariadb() {
        let registry = super::registry();
        assert_eq!(registry.names(), vec!["mariadb", "postgresql", "redis"]);
        assert_eq!(registry.get("redis").unwrap().default_port(), 6379);
        assert_eq!(registry.get("mariadb").unwrap().default_port(), 3306);
        assert!(registry.get("oracle").is_err());
    }

    #[test]
    fn every_backup_strategy_restores_under_its_name() {
        let names = ["mariabackup", "mariadb-dump", "pg_basebackup", "redis-rdb"];
        assert_eq!(super::backup_strategies().names(), names);
        assert_eq!(super::restore_strategies().names(), names);
        let backups = super::backup_strategies();
        assert!(backups.get("mariabackup").unwrap().supports_incremental());
        for full_only in ["mariadb-dump", "pg_basebackup", "redis-rdb"] {
            assert!(!backups.get(full_only).unwrap().supports_incremental());
        }
        let e = super::restore_strategies().get("xtrabackup").err().unwrap();
        assert!(e.to_string().starts_with("unknown restore strategy"), "{e}");
    }
}
