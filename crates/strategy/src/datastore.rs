//! `DatastoreManager`: everything datastore-specific about running one
//! instance's server. The guest agent drives it; only implementations know
//! a datastore's commands, files and SQL.

use async_trait::async_trait;
use coffer_model::{
    ConfigValue, DatabaseSpec, InstanceId, Overrides, Sandbox, UserInfo, UserSpec, UserUpdate,
};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;
use thiserror::Error;

/// What a manager knows about the instance it runs. All paths are inside
/// the instance directory, which the compute driver created.
#[derive(Clone, Debug)]
pub struct InstanceContext {
    pub instance_id: InstanceId,
    /// The instance's "volume": the datastore's data files live here.
    pub data_dir: PathBuf,
    /// Rendered configuration files.
    pub conf_dir: PathBuf,
    /// Sockets and pid files.
    pub run_dir: PathBuf,
    /// Server logs.
    pub log_dir: PathBuf,
    /// Agent-only secrets (admin credentials), mode 0700.
    pub secret_dir: PathBuf,
    /// The instance's own address; the server listens on `ip:port`.
    pub ip: Ipv4Addr,
    pub port: u16,
    /// The flavor's memory, which sizes buffers and caches.
    pub ram_mb: i64,
    /// The volume size the agent enforces.
    pub volume_size_bytes: u64,
    /// The configuration group's settings, rendered after (and so winning
    /// over) the flavor-derived ones.
    pub overrides: Overrides,
    /// Where every process of the datastore runs: its own account, cgroups
    /// and mount namespace. `None`: as the agent's own user, unconfined.
    pub sandbox: Option<Sandbox>,
}

/// One parameter whose value changes in a configuration apply.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigChange {
    pub name: String,
    /// The new value; `None` when the group no longer sets it (back to the
    /// rendered configuration's value or the server's default).
    pub value: Option<ConfigValue>,
    /// The schema says it takes effect only at a restart.
    pub restart_required: bool,
}

/// The datastore's answer to a health probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    /// Answers queries.
    Healthy,
    /// The process lives but does not answer.
    Running,
    /// No process.
    Stopped,
}

/// Failures a caller can act on.
#[derive(Debug, Error)]
pub enum DatastoreError {
    /// The request is wrong (bad name, reserved name...); nothing was changed.
    #[error("{0}")]
    InvalidInput(String),
    /// The datastore cannot do this (e.g. databases on Redis).
    #[error("{0}")]
    NotSupported(String),
    /// The named database or user does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The database or user to create exists already.
    #[error("{0}")]
    AlreadyExists(String),
    /// A tool the manager runs failed. `detail` is the tail of its stderr,
    /// never anything that holds a secret.
    #[error("{command} failed: {detail}")]
    Command { command: String, detail: String },
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(Duration, String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

#[async_trait]
pub trait DatastoreManager: Send + Sync + 'static {
    /// The standard port of this datastore (3306, 5432, 6379...).
    fn default_port(&self) -> u16;

    /// Make `data_dir` a fresh, initialised data directory and create the
    /// agent's own admin credentials in `secret_dir` (generated, never
    /// logged). Idempotent: a completely initialised data dir is kept as it
    /// is; a half-initialised one (a crash mid-way) is wiped and redone.
    async fn initialize(&self, ctx: &InstanceContext) -> Result<(), DatastoreError>;

    /// Write the server configuration into `conf_dir`, sized from
    /// `ctx.ram_mb`. Called before every start, so flavor changes apply.
    async fn render_config(&self, ctx: &InstanceContext) -> Result<(), DatastoreError>;

    /// Start the server as its own process, detached from the agent (its own
    /// process group), so that the agent can restart without stopping it.
    /// Returns once the server answers, or fails with Timeout.
    async fn start(&self, ctx: &InstanceContext, timeout: Duration) -> Result<(), DatastoreError>;

    /// Stop the server: gracefully within `timeout`, then by force. Stopping a
    /// stopped server is not an error.
    async fn stop(&self, ctx: &InstanceContext, timeout: Duration) -> Result<(), DatastoreError>;

    /// The server's pid if it runs (from its pid file, checked alive).
    fn pid(&self, ctx: &InstanceContext) -> Option<u32>;

    /// Probe the server.
    async fn health(&self, ctx: &InstanceContext) -> Health;

    /// Create databases; one that exists already is left alone.
    async fn create_databases(
        &self,
        ctx: &InstanceContext,
        databases: &[DatabaseSpec],
    ) -> Result<(), DatastoreError>;

    /// Create users with access to their databases; an existing user gets
    /// its password and grants set again (so a retried create converges).
    async fn create_users(
        &self,
        ctx: &InstanceContext,
        users: &[UserSpec],
    ) -> Result<(), DatastoreError>;

    /// Refuse (true) or allow (false) tenant writes; used when the volume is full.
    async fn set_read_only(
        &self,
        ctx: &InstanceContext,
        read_only: bool,
    ) -> Result<(), DatastoreError>;

    // --- Configuration groups. ---

    /// Apply `changes` to the running server. `ctx.overrides` already holds
    /// the new settings and `render_config` has written them, so whatever
    /// is not applied live takes effect at the next start. Returns the
    /// names of the changes that still need a restart (every
    /// `restart_required` one, and any the datastore cannot change live).
    /// The default applies nothing live.
    async fn apply_configuration(
        &self,
        ctx: &InstanceContext,
        changes: &[ConfigChange],
    ) -> Result<Vec<String>, DatastoreError> {
        let _ = ctx;
        Ok(changes.iter().map(|c| c.name.clone()).collect())
    }

    /// The server's running values of the parameters Coffer sets (the
    /// flavor-derived ones and every override), as the server shows them.
    async fn effective_configuration(
        &self,
        ctx: &InstanceContext,
    ) -> Result<BTreeMap<String, String>, DatastoreError> {
        let _ = ctx;
        Err(not_supported("configuration"))
    }

    // --- Tenant databases, users and root (Trove's in-datastore API). ---
    // Defaults say "not supported", so a datastore implements what it has.

    /// Check a database name by this datastore's rules (length, characters,
    /// reserved names) without touching the server.
    fn validate_database_name(&self, name: &str) -> Result<(), DatastoreError> {
        let _ = name;
        Err(not_supported("databases"))
    }

    /// Check a user (name, host, password) by this datastore's rules.
    fn validate_user(&self, user: &UserSpec) -> Result<(), DatastoreError> {
        let _ = user;
        Err(not_supported("users"))
    }

    /// Tenant databases (system databases are never listed), sorted.
    async fn list_databases(&self, ctx: &InstanceContext) -> Result<Vec<String>, DatastoreError> {
        let _ = ctx;
        Err(not_supported("databases"))
    }

    /// Drop a tenant database. NotFound if it does not exist.
    async fn delete_database(
        &self,
        ctx: &InstanceContext,
        name: &str,
    ) -> Result<(), DatastoreError> {
        let _ = (ctx, name);
        Err(not_supported("databases"))
    }

    /// Tenant users with the databases each may use (the agent's own
    /// account, root and system users are never listed), sorted by name.
    async fn list_users(&self, ctx: &InstanceContext) -> Result<Vec<UserInfo>, DatastoreError> {
        let _ = ctx;
        Err(not_supported("users"))
    }

    /// Change a user's name, password and/or host. NotFound if absent;
    /// AlreadyExists if the new name/host is taken.
    async fn update_user(
        &self,
        ctx: &InstanceContext,
        name: &str,
        host: &str,
        update: &UserUpdate,
    ) -> Result<(), DatastoreError> {
        let _ = (ctx, name, host, update);
        Err(not_supported("users"))
    }

    /// Drop a user. NotFound if absent.
    async fn delete_user(
        &self,
        ctx: &InstanceContext,
        name: &str,
        host: &str,
    ) -> Result<(), DatastoreError> {
        let _ = (ctx, name, host);
        Err(not_supported("users"))
    }

    /// Give a user full access to each database. NotFound if the user or a
    /// database does not exist (nothing is granted then).
    async fn grant_access(
        &self,
        ctx: &InstanceContext,
        name: &str,
        host: &str,
        databases: &[String],
    ) -> Result<(), DatastoreError> {
        let _ = (ctx, name, host, databases);
        Err(not_supported("database access"))
    }

    /// Take a user's access to one database away. NotFound if the user or
    /// the database does not exist.
    async fn revoke_access(
        &self,
        ctx: &InstanceContext,
        name: &str,
        host: &str,
        database: &str,
    ) -> Result<(), DatastoreError> {
        let _ = (ctx, name, host, database);
        Err(not_supported("database access"))
    }

    /// Enable the datastore's superuser for network logins with a new
    /// generated password, which is returned (once; never stored by Coffer).
    async fn enable_root(&self, ctx: &InstanceContext) -> Result<String, DatastoreError> {
        let _ = ctx;
        Err(not_supported("root"))
    }

    /// Disable network logins of the superuser. Disabled already is fine.
    async fn disable_root(&self, ctx: &InstanceContext) -> Result<(), DatastoreError> {
        let _ = ctx;
        Err(not_supported("root"))
    }

    /// Whether the superuser can log in over the network.
    async fn root_enabled(&self, ctx: &InstanceContext) -> Result<bool, DatastoreError> {
        let _ = ctx;
        Err(not_supported("root"))
    }
}

fn not_supported(what: &str) -> DatastoreError {
    DatastoreError::NotSupported(format!("this datastore does not support {what}"))
}
