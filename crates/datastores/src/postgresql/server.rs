//! The server process: start, stop, find and probe the postmaster.

use super::admin;
use super::init::prepare_dirs;
use super::os_user::{command, os_user};
use super::paths::Paths;
use super::BIN_DIR;
use crate::process::{pid_alive, pid_runs, spawn_detached, terminate, wait_until};
use anyhow::anyhow;
use coffer_strategy::{DatastoreError, Health, InstanceContext};
use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::{getpgid, Pid};
use std::path::Path;
use std::process::ExitStatus;
use std::time::Duration;
use tokio::sync::oneshot;

/// The server program.
const PROGRAM: &str = "postgres";
/// How long one health probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Pause between probes while waiting for a starting server.
const PROBE_INTERVAL: Duration = Duration::from_millis(100);
/// How long the postmaster's children may take to die after a SIGKILL.
const GROUP_GRACE: Duration = Duration::from_secs(10);

/// The pid on the first line of a PostgreSQL lock file (`postmaster.pid`,
/// `.s.PGSQL.5432.lock`).
fn lock_file_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path)
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

/// The pid of the running postmaster: from `postmaster.pid`, alive, and
/// running with this instance's configuration file. A stale pid file
/// whose number now belongs to another process, even another instance's
/// postmaster, does not count (so `stop` can never signal a stranger).
pub fn running_pid(paths: &Paths) -> Option<u32> {
    let pid = lock_file_pid(&paths.pid_file)?;
    pid_runs(pid, &paths.config_arg()).then_some(pid)
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

/// Start the postmaster unless it runs, then wait until it answers.
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
        if !paths.marker.exists() {
            return Err(anyhow!(
                "{} is not initialised: initialize first",
                paths.data_dir.display()
            )
            .into());
        }
        prepare_dirs(ctx, paths, os_user(ctx)?)?;
        for lock in [&paths.pid_file, &paths.socket_lock] {
            remove_reused_lock(lock, paths)?;
        }
        let mut cmd = command(ctx, &Path::new(BIN_DIR).join(PROGRAM));
        cmd.arg("-D")
            .arg(&paths.data_dir)
            .arg("-c")
            .arg(paths.config_arg());
        let (pid, rx) = spawn_detached(cmd, PROGRAM, &paths.console_log)?;
        tracing::info!(pid, "started {PROGRAM}");
        exited = Some(rx);
    }
    wait_healthy(paths, timeout, exited).await
}

/// PostgreSQL refuses to start while a lock file names a live process of
/// its own OS user, and every instance's server runs as `postgres`: after a
/// reboot, the pid in a stale lock file may belong to another instance.
/// A lock file whose pid lives but is not this instance's postmaster is
/// therefore removed. One whose pid is dead is left for PostgreSQL itself,
/// which then also checks that no orphaned backend still uses the old
/// shared memory.
fn remove_reused_lock(lock: &Path, paths: &Paths) -> Result<(), DatastoreError> {
    let Some(pid) = lock_file_pid(lock) else {
        return Ok(());
    };
    if pid_alive(pid) && !pid_runs(pid, &paths.config_arg()) {
        tracing::warn!(
            pid,
            "removing {}: its pid now belongs to another process",
            lock.display()
        );
        std::fs::remove_file(lock).map_err(|e| anyhow!("removing {}: {e}", lock.display()))?;
    }
    Ok(())
}

/// Poll until healthy; fail early if the process we started exits.
async fn wait_healthy(
    paths: &Paths,
    timeout: Duration,
    exited: Option<oneshot::Receiver<ExitStatus>>,
) -> Result<(), DatastoreError> {
    let logs: &[&std::path::Path] = &[&paths.console_log];
    crate::process::wait_healthy(PROGRAM, timeout, PROBE_INTERVAL, exited, logs, || async {
        health(paths).await == Health::Healthy
    })
    .await
}

/// SIGINT (a fast shutdown: SIGTERM's smart shutdown would wait for every
/// client to leave), SIGKILL after `timeout`. A postmaster killed that way
/// leaves its backends behind, so what is left of its process group is
/// killed too.
pub async fn stop(paths: &Paths, timeout: Duration) -> Result<(), DatastoreError> {
    let Some(pid) = running_pid(paths) else {
        return Ok(());
    };
    tracing::info!(pid, "stopping {PROGRAM}");
    let Ok(raw) = i32::try_from(pid) else {
        return Ok(());
    };
    // The postmaster leads its own group when we started it; a group id
    // stays taken while the group has members, so signalling it later can
    // only reach this server's children.
    let leads_group = getpgid(Some(Pid::from_raw(raw))) == Ok(Pid::from_raw(raw));
    let arg = paths.config_arg();
    terminate(pid, Signal::SIGINT, timeout, || !pid_runs(pid, &arg)).await?;
    let group = Pid::from_raw(raw);
    let group_gone = || killpg(group, None) == Err(Errno::ESRCH);
    // After a clean shutdown the group empties at once (the last member,
    // the postmaster, may need a moment to be reaped).
    if leads_group && !wait_until(Duration::from_secs(1), group_gone).await {
        tracing::warn!(pid, "killing what is left of {PROGRAM}'s process group");
        let _ = killpg(group, Signal::SIGKILL);
        if !wait_until(GROUP_GRACE, group_gone).await {
            return Err(DatastoreError::Timeout(
                GROUP_GRACE,
                format!("the processes of {PROGRAM} {pid} to exit"),
            ));
        }
    }
    Ok(())
}
