//! Redis 7: `redis-server` with a rendered `redis.conf`, tenant users as
//! ACL users, and the agent's own ACL user `os_admin` over the unix socket.
//!
//! Users live in an ACL file (`conf_dir/users.acl`) that holds SHA-256
//! password hashes only: `initialize` writes it with `default` off (no
//! anonymous access) and `os_admin`; every later change is `ACL SETUSER`
//! followed by `ACL SAVE`. Tenant users may use every key and channel but no
//! `@dangerous` command; `root` (when enabled) may do everything. Redis has
//! no databases in Trove's sense: those requests are "not supported".
//!
//! Backups: `redis-rdb` (an RDB snapshot, full; `backup.rs`, `restore.rs`).
//!
//! Configuration groups: `redis.conf` ends with the overrides
//! (`config.rs`); dynamic changes are applied with `CONFIG SET`
//! (`configuration.rs`).

mod accounts;
mod acl;
mod admin;
mod backup;
pub(crate) mod config;
mod configuration;
mod init;
mod paths;
mod resp;
mod restore;
mod server;

pub use backup::{RedisRdb, REDIS_RDB};

use async_trait::async_trait;
use coffer_model::{DatabaseSpec, UserInfo, UserSpec, UserUpdate};
use coffer_strategy::{ConfigChange, DatastoreError, DatastoreManager, Health, InstanceContext};
use paths::Paths;
use std::collections::BTreeMap;
use std::time::Duration;

fn no_databases() -> DatastoreError {
    DatastoreError::NotSupported(
        "Redis does not support databases; it keeps one keyspace per instance".into(),
    )
}

/// The Redis manager. Stateless: everything it needs is in the context and
/// the instance's files, so one value serves every instance.
#[derive(Clone, Copy, Debug, Default)]
pub struct Redis;

impl Redis {
    /// The manager.
    pub fn new() -> Self {
        Redis
    }
}

#[async_trait]
impl DatastoreManager for Redis {
    fn default_port(&self) -> u16 {
        6379
    }

    async fn initialize(&self, ctx: &InstanceContext) -> Result<(), DatastoreError> {
        init::initialize(ctx, &Paths::new(ctx)).await
    }

    async fn render_config(&self, ctx: &InstanceContext) -> Result<(), DatastoreError> {
        let paths = Paths::new(ctx);
        paths.check_socket()?;
        let text = config::render(ctx, &paths)?;
        init::conf_dirs(ctx, &paths)?;
        crate::sandbox::write_config(ctx, &paths.config, text.as_bytes())
    }

    async fn start(&self, ctx: &InstanceContext, timeout: Duration) -> Result<(), DatastoreError> {
        server::start(ctx, &Paths::new(ctx), timeout).await
    }

    async fn stop(&self, ctx: &InstanceContext, timeout: Duration) -> Result<(), DatastoreError> {
        server::stop(&Paths::new(ctx), timeout).await
    }

    fn pid(&self, ctx: &InstanceContext) -> Option<u32> {
        server::running_pid(&Paths::new(ctx))
    }

    async fn health(&self, ctx: &InstanceContext) -> Health {
        server::health(&Paths::new(ctx)).await
    }

    /// Nothing to do for none (instance creation always calls this); any
    /// database is not supported.
    async fn create_databases(
        &self,
        _ctx: &InstanceContext,
        databases: &[DatabaseSpec],
    ) -> Result<(), DatastoreError> {
        if databases.is_empty() {
            Ok(())
        } else {
            Err(no_databases())
        }
    }

    async fn create_users(
        &self,
        ctx: &InstanceContext,
        users: &[UserSpec],
    ) -> Result<(), DatastoreError> {
        accounts::create_users(&Paths::new(ctx), users).await
    }

    async fn set_read_only(
        &self,
        ctx: &InstanceContext,
        read_only: bool,
    ) -> Result<(), DatastoreError> {
        accounts::set_read_only(&Paths::new(ctx), read_only).await
    }

    async fn apply_configuration(
        &self,
        ctx: &InstanceContext,
        changes: &[ConfigChange],
    ) -> Result<Vec<String>, DatastoreError> {
        configuration::apply(ctx, &Paths::new(ctx), changes).await
    }

    async fn effective_configuration(
        &self,
        ctx: &InstanceContext,
    ) -> Result<BTreeMap<String, String>, DatastoreError> {
        configuration::effective(ctx, &Paths::new(ctx)).await
    }

    fn validate_database_name(&self, _name: &str) -> Result<(), DatastoreError> {
        Err(no_databases())
    }

    fn validate_user(&self, user: &UserSpec) -> Result<(), DatastoreError> {
        acl::validate_user(user)
    }

    async fn list_databases(&self, _ctx: &InstanceContext) -> Result<Vec<String>, DatastoreError> {
        Err(no_databases())
    }

    async fn delete_database(
        &self,
        _ctx: &InstanceContext,
        _name: &str,
    ) -> Result<(), DatastoreError> {
        Err(no_databases())
    }

    async fn list_users(&self, ctx: &InstanceContext) -> Result<Vec<UserInfo>, DatastoreError> {
        accounts::list_users(&Paths::new(ctx)).await
    }

    async fn update_user(
        &self,
        ctx: &InstanceContext,
        name: &str,
        host: &str,
        update: &UserUpdate,
    ) -> Result<(), DatastoreError> {
        accounts::update_user(&Paths::new(ctx), name, host, update).await
    }

    async fn delete_user(
        &self,
        ctx: &InstanceContext,
        name: &str,
        host: &str,
    ) -> Result<(), DatastoreError> {
        accounts::delete_user(&Paths::new(ctx), name, host).await
    }

    async fn grant_access(
        &self,
        _ctx: &InstanceContext,
        _name: &str,
        _host: &str,
        _databases: &[String],
    ) -> Result<(), DatastoreError> {
        Err(no_databases())
    }

    async fn revoke_access(
        &self,
        _ctx: &InstanceContext,
        _name: &str,
        _host: &str,
        _database: &str,
    ) -> Result<(), DatastoreError> {
        Err(no_databases())
    }

    async fn enable_root(&self, ctx: &InstanceContext) -> Result<String, DatastoreError> {
        accounts::enable_root(&Paths::new(ctx)).await
    }

    async fn disable_root(&self, ctx: &InstanceContext) -> Result<(), DatastoreError> {
        accounts::disable_root(&Paths::new(ctx)).await
    }

    async fn root_enabled(&self, ctx: &InstanceContext) -> Result<bool, DatastoreError> {
        accounts::root_enabled(&Paths::new(ctx)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn databases_are_not_supported() {
        let r = Redis::new();
        assert_eq!(r.default_port(), 6379);
        let e = r.validate_database_name("app").unwrap_err();
        assert!(matches!(e, DatastoreError::NotSupported(_)));
        assert!(
            e.to_string().contains("Redis does not support databases"),
            "{e}"
        );
    }
}
