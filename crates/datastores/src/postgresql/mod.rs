//! PostgreSQL 15: `initdb`, a `postgres` postmaster run as the `postgres`
//! OS user with a rendered `postgresql.conf` and `pg_hba.conf` in
//! `conf_dir`, and SQL over a unix-socket admin connection as `os_admin`.
//!
//! `os_admin` is initdb's bootstrap superuser, with a generated password
//! stored in `secret_dir`; it logs in over the socket only. The `postgres`
//! superuser is Trove's "root": refused over TCP until `enable_root`.
//! Tenant users are LOGIN roles (not per host: their host is always `%`)
//! with privileges on their databases only; PUBLIC may not connect to a
//! tenant database.
//!
//! Backups: `pg_basebackup` (physical, full; `backup.rs`, `restore.rs`).
//!
//! Configuration groups: `postgresql.conf` ends with the overrides
//! (`config.rs`); applying them is a reload (`configuration.rs`).

mod access;
mod admin;
mod backup;
pub mod config;
mod configuration;
mod databases;
mod hba;
mod init;
mod names;
mod os_user;
mod paths;
mod restore;
mod root;
mod server;
pub mod sql;
mod users;

pub use backup::{PgBaseBackup, PG_BASEBACKUP};

use async_trait::async_trait;
use coffer_model::{DatabaseSpec, UserInfo, UserSpec, UserUpdate};
use coffer_strategy::{ConfigChange, DatastoreError, DatastoreManager, Health, InstanceContext};
use paths::Paths;
use std::collections::BTreeMap;
use std::time::Duration;

/// Where Debian's postgresql-15 package puts the server programs.
const BIN_DIR: &str = "/usr/lib/postgresql/15/bin";

/// The PostgreSQL manager. Stateless: everything it needs is in the
/// context and the instance's files, so one value serves every instance.
#[derive(Clone, Copy, Debug, Default)]
pub struct PostgreSql;

impl PostgreSql {
    /// The manager.
    pub fn new() -> Self {
        PostgreSql
    }
}

#[async_trait]
impl DatastoreManager for PostgreSql {
    fn default_port(&self) -> u16 {
        5432
    }

    async fn initialize(&self, ctx: &InstanceContext) -> Result<(), DatastoreError> {
        init::initialize(ctx, &Paths::new(ctx)).await
    }

    async fn render_config(&self, ctx: &InstanceContext) -> Result<(), DatastoreError> {
        let paths = Paths::new(ctx);
        paths.check_socket()?;
        let text = config::render(ctx, &paths)?;
        std::fs::create_dir_all(&ctx.conf_dir)
            .map_err(|e| anyhow::anyhow!("creating {}: {e}", ctx.conf_dir.display()))?;
        crate::files::write_atomic(&paths.config, text.as_bytes(), 0o644)?;
        crate::files::write_atomic(&paths.ident, b"# No ident maps.\n", 0o644)?;
        if !paths.read_only.exists() {
            let off = config::read_only_conf(false);
            crate::files::write_atomic(&paths.read_only, off.as_bytes(), 0o644)?;
        }
        root::write_hba(ctx, &paths, paths.root_marker.exists())
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
        let names: Vec<String> = databases.iter().map(|d| d.name.clone()).collect();
        databases::create(&Paths::new(ctx), &names).await
    }

    async fn create_users(
        &self,
        ctx: &InstanceContext,
        users: &[UserSpec],
    ) -> Result<(), DatastoreError> {
        users::create(&Paths::new(ctx), users).await
    }

    async fn set_read_only(
        &self,
        ctx: &InstanceContext,
        read_only: bool,
    ) -> Result<(), DatastoreError> {
        root::set_read_only(&Paths::new(ctx), read_only).await
    }

    async fn apply_configuration(
        &self,
        ctx: &InstanceContext,
        changes: &[ConfigChange],
    ) -> Result<Vec<String>, DatastoreError> {
        configuration::apply(&Paths::new(ctx), changes).await
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
        databases::list(&Paths::new(ctx)).await
    }

    async fn delete_database(
        &self,
        ctx: &InstanceContext,
        name: &str,
    ) -> Result<(), DatastoreError> {
        databases::delete(&Paths::new(ctx), name).await
    }

    async fn list_users(&self, ctx: &InstanceContext) -> Result<Vec<UserInfo>, DatastoreError> {
        users::list(&Paths::new(ctx)).await
    }

    async fn update_user(
        &self,
        ctx: &InstanceContext,
        name: &str,
        host: &str,
        update: &UserUpdate,
    ) -> Result<(), DatastoreError> {
        sql::validate_host(host)?;
        users::update(&Paths::new(ctx), name, update).await
    }

    async fn delete_user(
        &self,
        ctx: &InstanceContext,
        name: &str,
        host: &str,
    ) -> Result<(), DatastoreError> {
        sql::validate_host(host)?;
        users::delete(&Paths::new(ctx), name).await
    }

    async fn grant_access(
        &self,
        ctx: &InstanceContext,
        name: &str,
        host: &str,
        databases: &[String],
    ) -> Result<(), DatastoreError> {
        access::grant(&Paths::new(ctx), name, host, databases).await
    }

    async fn revoke_access(
        &self,
        ctx: &InstanceContext,
        name: &str,
        host: &str,
        database: &str,
    ) -> Result<(), DatastoreError> {
        access::revoke(&Paths::new(ctx), name, host, database).await
    }

    async fn enable_root(&self, ctx: &InstanceContext) -> Result<String, DatastoreError> {
        root::enable(ctx, &Paths::new(ctx)).await
    }

    async fn disable_root(&self, ctx: &InstanceContext) -> Result<(), DatastoreError> {
        root::disable(ctx, &Paths::new(ctx)).await
    }

    async fn root_enabled(&self, ctx: &InstanceContext) -> Result<bool, DatastoreError> {
        root::enabled(&Paths::new(ctx)).await
    }
}
