//! The server process: start, stop, find and probe it.

use super::admin;
use super::paths::Paths;
use crate::process::{any_runs, pid_runs, read_pid_file, spawn_detached, terminate, wait_until};
use anyhow::{anyhow, Context};
use coffer_strategy::{DatastoreError, Health, InstanceContext};
use nix::sys::signal::Signal;
use std::process::ExitStatus;
use std::time::Duration;
use tokio::sync::oneshot;

/// The server program.
const PROGRAM: &str = "redis-server";
/// How long a stopped server's forked children may take to go.
const CHILDREN_GRACE: Duration = Duration::from_secs(10);
/// How long one health probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Pause between probes while waiting for a starting server (it usually
/// answers within ~15 ms).
const PROBE_INTERVAL: Duration = Duration::from_millis(20);

/// What `/proc/PID/cmdline` holds for this instance's server: its config
/// path as one whole argument (NUL-delimited), so another instance whose
/// path merely contains ours does not match.
fn cmdline_needle(paths: &Paths) -> String {
    format!("\0{}\0", paths.config.display())
}

/// The pid of the running server: from its pid file, alive, and running
/// with this instance's config (a reused pid does not count).
pub fn running_pid(paths: &Paths) -> Option<u32> {
    let pid = read_pid_file(&paths.pid_file)?;
    pid_runs(pid, &cmdline_needle(paths)).then_some(pid)
}

/// Healthy if the admin user can `AUTH` and `PING`, Running if only the
/// process is there, Stopped otherwise.
pub async fn health(paths: &Paths) -> Health {
    if running_pid(paths).is_none() {
        Health::Stopped
    } else if admin::ping(paths, PROBE_TIMEOUT).await {
        Health::Healthy
    } else {
        Health::Running
    }
}

/// Start the server unless it runs, then wait until it answers.
pub async fn start(
    ctx: &InstanceContext,
    paths: &Paths,
    timeout: Duration,
) -> Result<(), DatastoreError> {
    paths.check_socket()?;
    let mut exited = None;
    if running_pid(paths).is_none() {
        for (file, what) in [
            (&paths.config, "render the configuration first"),
            (&paths.acl, "initialize the instance first"),
        ] {
            if !file.exists() {
                return Err(anyhow!("{} is missing: {what}", file.display()).into());
            }
        }
        for file in [&paths.socket, &paths.log] {
            if let Some(dir) = file.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
        }
        remove_if_present(&paths.pid_file)?;
        let mut cmd = crate::sandbox::command(ctx, PROGRAM);
        cmd.arg(&paths.config);
        let (pid, rx) = spawn_detached(cmd, PROGRAM, &paths.console_log)?;
        tracing::info!(pid, "started {PROGRAM}");
        exited = Some(rx);
    }
    wait_healthy(paths, timeout, exited).await
}

/// Poll until healthy; fail early if the process we started exits.
async fn wait_healthy(
    paths: &Paths,
    timeout: Duration,
    exited: Option<oneshot::Receiver<ExitStatus>>,
) -> Result<(), DatastoreError> {
    let logs: &[&std::path::Path] = &[&paths.console_log, &paths.log];
    crate::process::wait_healthy(PROGRAM, timeout, PROBE_INTERVAL, exited, logs, || async {
        health(paths).await == Health::Healthy
    })
    .await
}

/// SIGTERM (the server writes its snapshot, flushes the AOF and exits),
/// SIGKILL after `timeout`; then no pid file.
pub async fn stop(paths: &Paths, timeout: Duration) -> Result<(), DatastoreError> {
    if let Some(pid) = running_pid(paths) {
        tracing::info!(pid, "stopping {PROGRAM}");
        let needle = cmdline_needle(paths);
        terminate(pid, Signal::SIGTERM, timeout, || !pid_runs(pid, &needle)).await?;
        // A snapshot or rewrite child it was killing may outlive it for a
        // moment, holding the port the next start needs.
        if !wait_until(CHILDREN_GRACE, || !any_runs(&needle)).await {
            tracing::warn!("processes of the stopped {PROGRAM} are still running");
        }
    }
    remove_if_present(&paths.pid_file)
}

fn remove_if_present(path: &std::path::Path) -> Result<(), DatastoreError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(anyhow!("removing {}: {e}", path.display()).into()),
    }
}
