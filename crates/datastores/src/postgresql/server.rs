//! initdb, and the postmaster: start, stop, find and probe it. Both run as
//! the `postgres` OS account.

use super::os_user::{self, allow_traversal, own_dir, own_path, OsUser};
use super::paths::Paths;
use super::sql;
use crate::files::{clear_dir, write_atomic, RemoveOnDrop};
use crate::process::{pid_runs, run, spawn_detached, tail, terminate};
use anyhow::Context;
use coffer_strategy::{DatastoreError, Health, InstanceContext};
use nix::sys::signal::Signal;
use rand::distributions::{Alphanumeric, DistString};
use sqlx::Connection;
use std::path::Path;
use std::time::Duration;
use tokio::time::{sleep, Instant};

const BIN: &str = "/usr/lib/postgresql/15/bin";
const INITDB_TIMEOUT: Duration = Duration::from_secs(120);

fn bin(name: &str) -> std::path::PathBuf {
    Path::new(BIN).join(name)
}

/// The directories the server writes, given to `postgres`, reachable from `/`.
pub fn prepare_dirs(
    ctx: &InstanceContext,
    paths: &Paths,
    user: OsUser,
) -> Result<(), DatastoreError> {
    own_dir(&paths.data_dir, user, 0o700)?;
    own_dir(&paths.run_dir, user, 0o700)?;
    own_dir(&paths.log_dir, user, 0o750)?;
    std::fs::create_dir_all(&ctx.conf_dir).context("creating the conf dir")?;
    for d in [
        &paths.data_dir,
        &paths.run_dir,
        &paths.log_dir,
        &ctx.conf_dir,
    ] {
        if let Some(parent) = d.parent() {
            allow_traversal(parent)?;
        }
    }
    // conf_dir holds no secret; the server must read it.
    allow_traversal(&ctx.conf_dir)?;
    Ok(())
}

pub async fn initialize(ctx: &InstanceContext, paths: &Paths) -> Result<(), DatastoreError> {
    if paths.marker.exists() {
        return Ok(());
    }
    let user = os_user::os_user()?;
    if paths.data_dir.exists() {
        clear_dir(&paths.data_dir)?;
    }
    prepare_dirs(ctx, paths, user)?;
    crate::files::ensure_private_dir(&ctx.secret_dir)?;
    let password = Alphanumeric.sample_string(&mut rand::thread_rng(), 32);
    write_atomic(&paths.password, password.as_bytes(), 0o600)?;
    write_atomic(&paths.pwfile, password.as_bytes(), 0o600)?;
    let _remove = RemoveOnDrop(&paths.pwfile);
    own_path(&paths.pwfile, user)?;
    let mut cmd = os_user::command(&bin("initdb"));
    cmd.arg("-D")
        .arg(&paths.data_dir)
        .args([
            "-U",
            sql::ADMIN_USER,
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--no-instructions",
        ])
        .args(["--auth-local=scram-sha-256", "--auth-host=scram-sha-256"])
        .arg(format!("--pwfile={}", paths.pwfile.display()));
    run(cmd, "initdb", INITDB_TIMEOUT, &[&password]).await?;
    write_atomic(&paths.marker, b"postgresql\n", 0o644)?;
    Ok(())
}

/// The postmaster's pid: the first line of `postmaster.pid`, alive and
/// running with this instance's configuration.
pub fn running_pid(paths: &Paths) -> Option<u32> {
    let raw = std::fs::read_to_string(&paths.pid_file).ok()?;
    let pid: u32 = raw.lines().next()?.trim().parse().ok()?;
    pid_runs(pid, &paths.config_arg()).then_some(pid)
}

pub async fn health(paths: &Paths) -> Health {
    if running_pid(paths).is_none() {
        return Health::Stopped;
    }
    let probe = async {
        let mut c = sql::connect(paths, "postgres").await.ok()?;
        let ok = c.ping().await.is_ok();
        let _ = c.close().await;
        Some(ok)
    };
    match tokio::time::timeout(Duration::from_secs(2), probe).await {
        Ok(Some(true)) => Health::Healthy,
        _ => Health::Running,
    }
}

pub async fn start(
    ctx: &InstanceContext,
    paths: &Paths,
    timeout: Duration,
) -> Result<(), DatastoreError> {
    paths.check_socket()?;
    let mut exited = None;
    if running_pid(paths).is_none() {
        prepare_dirs(ctx, paths, os_user::os_user()?)?;
        let _ = std::fs::remove_file(&paths.pid_file);
        let mut cmd = os_user::command(&bin("postgres"));
        cmd.arg("-D")
            .arg(&paths.data_dir)
            .arg("-c")
            .arg(paths.config_arg());
        let (pid, rx) = spawn_detached(cmd, "postgres", &paths.console_log)?;
        tracing::info!(pid, "started postgres");
        exited = Some(rx);
    }
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = exited.as_mut().and_then(|rx| rx.try_recv().ok()) {
            let log = std::fs::read(&paths.console_log).unwrap_or_default();
            return Err(DatastoreError::Command {
                command: "postgres".into(),
                detail: format!("exited during start-up ({status}); log: {}", tail(&log)),
            });
        }
        if health(paths).await == Health::Healthy {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(DatastoreError::Timeout(
                timeout,
                "postgres to answer".into(),
            ));
        }
        sleep(Duration::from_millis(50)).await;
    }
}

/// Fast shutdown (SIGINT: clients are disconnected), SIGKILL after `timeout`.
pub async fn stop(paths: &Paths, timeout: Duration) -> Result<(), DatastoreError> {
    if let Some(pid) = running_pid(paths) {
        let arg = paths.config_arg();
        terminate(pid, Signal::SIGINT, timeout, || !pid_runs(pid, &arg)).await?;
    }
    Ok(())
}
