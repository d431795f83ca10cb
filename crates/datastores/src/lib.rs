#![forbid(unsafe_code)]
//! Datastore managers: the only code that knows a datastore's commands,
//! files and SQL. Each datastore is one module behind the
//! `coffer_strategy::DatastoreManager` trait; `registry()` names them all.

mod files;
pub mod mariadb;
pub mod postgresql;
mod process;
pub mod redis;

use coffer_strategy::{DatastoreManager, Registry};
use std::sync::Arc;

/// Every compiled-in datastore manager, by the datastore's name.
pub fn registry() -> Registry<dyn DatastoreManager> {
    let mut registry: Registry<dyn DatastoreManager> = Registry::new("datastore manager");
    registry.register("mariadb", Arc::new(mariadb::MariaDb::new()));
    registry.register("postgresql", Arc::new(postgresql::PostgreSql::new()));
    registry.register("redis", Arc::new(redis::Redis::new()));
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
}
