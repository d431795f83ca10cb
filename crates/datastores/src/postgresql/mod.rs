//! PostgreSQL 15: initdb and postgres run as the `postgres` OS account; the
//! configuration and pg_hba live in the instance's conf dir; the agent's
//! superuser `os_admin` (created by initdb, password generated and kept in
//! `secret_dir`) reaches the server over its Unix socket only.

mod accounts;
mod config;
mod os_user;
mod paths;
mod server;
mod sql;

use crate::files::write_atomic;
use async_trait::async_trait;
use coffer_model::{DatabaseSpec, UserInfo, UserSpec, UserUpdate};
use coffer_strategy::{DatastoreError, DatastoreManager, Health, InstanceContext};
use paths::Paths;
use std::time::Duration;

/// The PostgreSQL manager. Stateless: one value serves every instance.
#[derive(Clone, Copy, Debug, Default)]
pub struct PostgreSql;

impl PostgreSql {
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
        server::initialize(ctx, &Paths::new(ctx)).await
    }

    async fn render_config(&self, ctx: &InstanceContext) -> Result<(), DatastoreError> {
        let paths = Paths::new(ctx);
        std::fs::create_dir_all(&ctx.conf_dir)
            .map_err(|e| anyhow::anyhow!("creating the conf dir: {e}"))?;
        write_atomic(&paths.config, config::render(ctx, &paths).as_bytes(), 0o644)?;
        write_atomic(&paths.hba, config::HBA.as_bytes(), 0o644)?;
        write_atomic(&paths.ident, b"", 0o644)?;
        Ok(())
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
        accounts::create_databases(&Paths::new(ctx), databases).await
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

    fn validate_database_name(&self, name: &str) -> Result<(), DatastoreError> {
        sql::validate_name("database name", name)
    }

    fn validate_user(&self, user: &UserSpec) -> Result<(), DatastoreError> {
        accounts::validate_user(user)
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
