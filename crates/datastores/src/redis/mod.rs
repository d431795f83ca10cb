//! Redis: `redis-server` with a rendered `redis.conf`, tenant users as ACL
//! users (stored hashed in an ACL file), and an `os_admin` ACL account the
//! agent uses over the Unix socket. Redis has no databases in Trove's
//! sense: those requests are "not supported".

mod acl;
mod config;
mod resp;

use crate::files::{clear_dir, ensure_private_dir, write_atomic};
use crate::process::{pid_runs, read_pid_file, spawn_detached, tail, terminate};
use anyhow::Context;
use async_trait::async_trait;
use coffer_model::{DatabaseSpec, UserInfo, UserSpec, UserUpdate};
use coffer_strategy::{DatastoreError, DatastoreManager, Health, InstanceContext};
use config::Paths;
use nix::sys::signal::Signal;
use rand::distributions::{Alphanumeric, DistString};
use resp::Conn;
use std::time::Duration;
use tokio::process::Command;
use tokio::time::{sleep, Instant};

const PROGRAM: &str = "redis-server";
const ADMIN_USER: &str = "os_admin";

fn no_databases() -> DatastoreError {
    DatastoreError::NotSupported(
        "Redis does not support databases; it keeps one keyspace per instance".into(),
    )
}

/// The Redis manager. Stateless: one value serves every instance.
#[derive(Clone, Copy, Debug, Default)]
pub struct Redis;

impl Redis {
    pub fn new() -> Self {
        Redis
    }
}

fn running_pid(paths: &Paths) -> Option<u32> {
    let pid = read_pid_file(&paths.pid_file)?;
    pid_runs(pid, &paths.config.to_string_lossy()).then_some(pid)
}

async fn admin(paths: &Paths) -> Result<Conn, DatastoreError> {
    let password =
        std::fs::read_to_string(&paths.password).context("reading the admin password")?;
    Conn::open(&paths.socket, ADMIN_USER, password.trim_end()).await
}

async fn probe(paths: &Paths) -> Health {
    if running_pid(paths).is_none() {
        return Health::Stopped;
    }
    let ping = async { admin(paths).await?.ok(&["PING"]).await };
    match tokio::time::timeout(Duration::from_secs(2), ping).await {
        Ok(Ok(_)) => Health::Healthy,
        _ => Health::Running,
    }
}

#[async_trait]
impl DatastoreManager for Redis {
    fn default_port(&self) -> u16 {
        6379
    }

    async fn initialize(&self, ctx: &InstanceContext) -> Result<(), DatastoreError> {
        let paths = Paths::new(ctx);
        if paths.marker.exists() {
            return Ok(());
        }
        if ctx.data_dir.exists() {
            clear_dir(&ctx.data_dir)?;
        } else {
            std::fs::create_dir_all(&ctx.data_dir).context("creating the data dir")?;
        }
        ensure_private_dir(&ctx.secret_dir)?;
        ensure_private_dir(&ctx.conf_dir)?;
        let password = Alphanumeric.sample_string(&mut rand::thread_rng(), 32);
        write_atomic(&paths.password, password.as_bytes(), 0o600)?;
        write_atomic(&paths.acl, config::initial_acl(&password).as_bytes(), 0o600)?;
        write_atomic(&paths.marker, b"redis\n", 0o644)?;
        Ok(())
    }

    async fn render_config(&self, ctx: &InstanceContext) -> Result<(), DatastoreError> {
        let paths = Paths::new(ctx);
        ensure_private_dir(&ctx.conf_dir)?;
        write_atomic(&paths.config, config::render(ctx, &paths).as_bytes(), 0o644)?;
        Ok(())
    }

    async fn start(&self, ctx: &InstanceContext, timeout: Duration) -> Result<(), DatastoreError> {
        let paths = Paths::new(ctx);
        let mut exited = None;
        if running_pid(&paths).is_none() {
            for d in [&ctx.run_dir, &ctx.log_dir] {
                std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
            }
            let _ = std::fs::remove_file(&paths.pid_file);
            let mut cmd = Command::new(PROGRAM);
            cmd.arg(&paths.config);
            let (pid, rx) = spawn_detached(cmd, PROGRAM, &paths.console_log)?;
            tracing::info!(pid, "started {PROGRAM}");
            exited = Some(rx);
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = exited.as_mut().and_then(|rx| rx.try_recv().ok()) {
                let log = std::fs::read(&paths.log).unwrap_or_default();
                return Err(DatastoreError::Command {
                    command: PROGRAM.into(),
                    detail: format!("exited during start-up ({status}); log: {}", tail(&log)),
                });
            }
            if probe(&paths).await == Health::Healthy {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(DatastoreError::Timeout(
                    timeout,
                    format!("{PROGRAM} to answer"),
                ));
            }
            sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stop(&self, ctx: &InstanceContext, timeout: Duration) -> Result<(), DatastoreError> {
        let paths = Paths::new(ctx);
        if let Some(pid) = running_pid(&paths) {
            let needle = paths.config.to_string_lossy().into_owned();
            terminate(pid, Signal::SIGTERM, timeout, || !pid_runs(pid, &needle)).await?;
        }
        let _ = std::fs::remove_file(&paths.pid_file);
        Ok(())
    }

    fn pid(&self, ctx: &InstanceContext) -> Option<u32> {
        running_pid(&Paths::new(ctx))
    }

    async fn health(&self, ctx: &InstanceContext) -> Health {
        probe(&Paths::new(ctx)).await
    }

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
        users.iter().try_for_each(acl::validate_user)?;
        if users.is_empty() {
            return Ok(());
        }
        let mut conn = admin(&Paths::new(ctx)).await?;
        for u in users {
            acl::put_user(&mut conn, &u.name, &u.password).await?;
        }
        acl::save(&mut conn).await
    }

    async fn set_read_only(
        &self,
        ctx: &InstanceContext,
        read_only: bool,
    ) -> Result<(), DatastoreError> {
        acl::set_read_only(&mut admin(&Paths::new(ctx)).await?, read_only).await
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
        Ok(acl::infos(
            acl::tenant_users(&mut admin(&Paths::new(ctx)).await?).await?,
        ))
    }

    async fn update_user(
        &self,
        ctx: &InstanceContext,
        name: &str,
        host: &str,
        update: &UserUpdate,
    ) -> Result<(), DatastoreError> {
        acl::update_user(&mut admin(&Paths::new(ctx)).await?, name, host, update).await
    }

    async fn delete_user(
        &self,
        ctx: &InstanceContext,
        name: &str,
        host: &str,
    ) -> Result<(), DatastoreError> {
        acl::delete_user(&mut admin(&Paths::new(ctx)).await?, name, host).await
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
        let password = Alphanumeric.sample_string(&mut rand::thread_rng(), 32);
        acl::enable_root(&mut admin(&Paths::new(ctx)).await?, &password).await?;
        Ok(password)
    }

    async fn disable_root(&self, ctx: &InstanceContext) -> Result<(), DatastoreError> {
        acl::disable_root(&mut admin(&Paths::new(ctx)).await?).await
    }

    async fn root_enabled(&self, ctx: &InstanceContext) -> Result<bool, DatastoreError> {
        acl::root_enabled(&mut admin(&Paths::new(ctx)).await?).await
    }
}
