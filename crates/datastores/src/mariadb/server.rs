//! The server process: start, stop, find and probe it.

use super::admin;
use super::paths::Paths;
use crate::process::{pid_runs, read_pid_file, spawn_detached, terminate};
use anyhow::{anyhow, Context};
use coffer_strategy::{DatastoreError, Health, InstanceContext};
use nix::sys::signal::Signal;
use std::process::ExitStatus;
use std::time::Duration;
use tokio::sync::oneshot;

/// The server program.
const PROGRAM: &str = "mariadbd";
/// How long one health probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Pause between probes while waiting for a starting server.
const PROBE_INTERVAL: Duration = Duration::from_millis(100);

/// The pid of the running server: from its pid file, alive, and running
/// `mariadbd` with this instance's configuration. A stale pid file whose
/// number now belongs to another process, even another instance's
/// mariadbd, does not count (so `stop` can never signal a stranger).
pub fn running_pid(paths: &Paths) -> Option<u32> {
    let pid = read_pid_file(&paths.pid_file)?;
    pid_runs(pid, &defaults_file_arg(paths)).then_some(pid)
}

/// `--defaults-file=...`: the first argument, and what tells this
/// instance's server from others in `/proc/PID/cmdline`.
fn defaults_file_arg(paths: &Paths) -> String {
    format!("--defaults-file={}", paths.config.display())
}

/// Healthy if the admin connection answers `SELECT 1`, Running if only the
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
        if !paths.config.exists() {
            return Err(anyhow!(
                "{} is missing: render the configuration first",
                paths.config.display()
            )
            .into());
        }
        for file in [&paths.socket, &paths.pid_file, &paths.error_log] {
            if let Some(dir) = file.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
        }
        remove_if_present(&paths.pid_file)?;
        let mut cmd = crate::sandbox::command(ctx, PROGRAM);
        // The defaults file must be the first argument, or it is ignored.
        cmd.arg(defaults_file_arg(paths));
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
    let logs: &[&std::path::Path] = &[&paths.error_log];
    crate::process::wait_healthy(PROGRAM, timeout, PROBE_INTERVAL, exited, logs, || async {
        health(paths).await == Health::Healthy
    })
    .await
}

/// SIGTERM (a clean shutdown), SIGKILL after `timeout`; then no pid file.
pub async fn stop(paths: &Paths, timeout: Duration) -> Result<(), DatastoreError> {
    if let Some(pid) = running_pid(paths) {
        tracing::info!(pid, "stopping {PROGRAM}");
        let arg = defaults_file_arg(paths);
        terminate(pid, Signal::SIGTERM, timeout, || !pid_runs(pid, &arg)).await?;
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
