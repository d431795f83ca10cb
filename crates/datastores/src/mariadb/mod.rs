//! MariaDB: `mariadb-install-db`, `mariadbd` with a rendered `my.cnf`, and
//! SQL over a unix-socket admin connection as `os_admin`.
//!
//! `root@localhost` keeps unix-socket authentication (only a root process
//! on the host gets in); the agent's own account `os_admin@localhost` has a
//! generated password stored in `secret_dir`. Tenant users are
//! `'name'@'host'` with passwords and privileges on their databases only.
//!
//! Backups: `mariabackup` (physical, full and incremental; `backup.rs`,
//! `restore.rs`) and `mariadb-dump` (logical, full; `dump.rs`). A restore
//! ends in `rekey.rs`, which gives `os_admin` this instance's own password.
//!
//! Configuration groups: `my.cnf` ends with the overrides (`config.rs`);
//! dynamic changes are applied with `SET GLOBAL` (`configuration.rs`).

mod accounts;
mod admin;
mod backup;
pub mod config;
mod configuration;
mod dump;
mod init;
mod paths;
mod rekey;
mod restore;
mod server;
pub mod sql;
mod tool_auth;

pub use backup::{MariaBackup, MARIABACKUP};
pub use dump::{MariaDbDump, MARIADB_DUMP};

use async_trait::async_trait;
use coffer_model::{DatabaseSpec, UserInfo, UserSpec, UserUpdate};
use coffer_strategy::{ConfigChange, DatastoreError, DatastoreManager, Health, InstanceContext};
use paths::Paths;
use std::collections::BTreeMap;
use std::time::Duration;

/// The MariaDB manager. Stateless: everything it needs is in the context
/// and the instance's files, so one value serves every instance.
#[derive(Clone, Copy, Debug, Default)]
pub struct MariaDb;

impl MariaDb {
    /// The manager.
    pub fn new() -> Self {
        MariaDb
    }
}

#[async_trait]
impl DatastoreManager for MariaDb {
    fn default_port(&self) -> u16 {
        3306
    }

    async fn initialize(&self, ctx: &InstanceContext) -> Result<(), DatastoreError> {
        init::initialize(ctx, &Paths::new(ctx)).await
    }

    async fn render_config(&self, ctx: &InstanceContext) -> Result<(), DatastoreError> {
        config::write(ctx, &Paths::new(ctx), None)
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

    async fn create_databases(
        &self,
        ctx: &InstanceContext,
        databases: &[DatabaseSpec],
    ) -> Result<(), DatastoreError> {
        databases
            .iter()
            .try_for_each(|db| sql::validate_database(&db.name))?;
        let statements: Vec<_> = databases
            .iter()
            .map(|db| (sql::create_database(db), None))
            .collect();
        admin::run_all(&Paths::new(ctx), &statements).await
    }

    async fn create_users(
        &self,
        ctx: &InstanceContext,
        users: &[UserSpec],
    ) -> Result<(), DatastoreError> {
        users.iter().try_for_each(sql::validate_user)?;
        let statements: Vec<_> = users
            .iter()
            .flat_map(|u| {
                sql::user_statements(u)
                    .into_iter()
                    .map(|s| (s, Some(u.password.as_str())))
            })
            .collect();
        admin::run_all(&Paths::new(ctx), &statements).await
    }

    async fn set_read_only(
        &self,
        ctx: &InstanceContext,
        read_only: bool,
    ) -> Result<(), DatastoreError> {
        let statement = (sql::set_read_only(read_only), None);
        admin::run_all(&Paths::new(ctx), &[statement]).await
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

    fn validate_database_name(&self, name: &str) -> Result<(), DatastoreError> {
        sql::validate_database(name)
    }

    fn validate_user(&self, user: &UserSpec) -> Result<(), DatastoreError> {
        sql::validate_user(user)
    }

    async fn list_databases(&self, ctx: &InstanceContext) -> Result<Vec<String>, DatastoreError> {
        accounts::list_databases(&Paths::new(ctx)).await
    }

    async fn delete_database(
        &self,
        ctx: &InstanceContext,
        name: &str,
    ) -> Result<(), DatastoreError> {
        accounts::delete_database(&Paths::new(ctx), name).await
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
        ctx: &InstanceContext,
        name: &str,
        host: &str,
        databases: &[String],
    ) -> Result<(), DatastoreError> {
        accounts::grant_access(&Paths::new(ctx), name, host, databases).await
    }

    async fn revoke_access(
        &self,
        ctx: &InstanceContext,
        name: &str,
        host: &str,
        database: &str,
    ) -> Result<(), DatastoreError> {
        accounts::revoke_access(&Paths::new(ctx), name, host, database).await
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
