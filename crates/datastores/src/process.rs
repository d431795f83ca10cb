//! Running datastore tools and watching server processes; shared by every
//! datastore manager.
//!
//! Command lines never carry secrets (they are visible in `/proc` to every
//! local user), so errors may name the command. A tool's output might still
//! echo a secret it read from a file, so callers pass the secrets to redact.

use coffer_strategy::DatastoreError;
use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::Path;
use std::process::{ExitStatus, Output, Stdio};
use std::time::Duration;
use tokio::process::Command;
use tokio::sync::oneshot;
use tokio::time::{sleep, Instant};

/// Lines of a tool's output kept in an error.
const TAIL_LINES: usize = 15;
/// Bytes of a tool's output kept in an error.
const TAIL_BYTES: usize = 2000;
/// How often a stopping process is checked.
const POLL: Duration = Duration::from_millis(50);

/// Run `cmd` to completion within `timeout`; a non-zero exit becomes
/// `DatastoreError::Command` named `label`, with the tail of stderr (or of
/// stdout when stderr is empty) and every string of `secrets` redacted.
/// On timeout the tool is killed.
pub(crate) async fn run(
    mut cmd: Command,
    label: &str,
    timeout: Duration,
    secrets: &[&str],
) -> Result<Output, DatastoreError> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = cmd.spawn().map_err(|e| DatastoreError::Command {
        command: label.to_string(),
        detail: format!("cannot start: {e}"),
    })?;
    let output = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(out) => out.map_err(|e| DatastoreError::Command {
            command: label.to_string(),
            detail: format!("cannot read its output: {e}"),
        })?,
        Err(_) => return Err(DatastoreError::Timeout(timeout, label.to_string())),
    };
    if output.status.success() {
        return Ok(output);
    }
    let text = if output.stderr.iter().all(u8::is_ascii_whitespace) {
        &output.stdout
    } else {
        &output.stderr
    };
    let detail = format!(
        "{}: {}",
        describe(output.status),
        redact(&tail(text), secrets)
    );
    Err(DatastoreError::Command {
        command: label.to_string(),
        detail,
    })
}

/// Spawn a long-running server detached from the caller: its own process
/// group (a signal to the agent's group does not reach it), stdin from
/// /dev/null, stdout and stderr appended to `console_log`, not killed when
/// the handle is dropped. A background task reaps it when it exits (so it
/// never lingers as a zombie) and reports the exit through the receiver.
pub(crate) fn spawn_detached(
    mut cmd: Command,
    label: &str,
    console_log: &Path,
) -> Result<(u32, oneshot::Receiver<ExitStatus>), DatastoreError> {
    let cannot = |e: std::io::Error| DatastoreError::Command {
        command: label.to_string(),
        detail: format!("cannot start: {e}"),
    };
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(console_log)
        .map_err(cannot)?;
    let log2 = log.try_clone().map_err(cannot)?;
    cmd.stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .process_group(0)
        .kill_on_drop(false);
    let mut child = cmd.spawn().map_err(cannot)?;
    let pid = child.id().unwrap_or_default();
    let (tx, rx) = oneshot::channel();
    let label = label.to_string();
    tokio::spawn(async move {
        match child.wait().await {
            Ok(status) => {
                tracing::info!(pid, %status, "{label} exited");
                let _ = tx.send(status);
            }
            Err(e) => tracing::warn!(pid, "waiting for {label}: {e}"),
        }
    });
    Ok((pid, rx))
}

/// Whether a process with this pid exists. Pids 0 and 1 and ones that do
/// not fit a `pid_t` are never "alive": signalling them would hit a whole
/// process group or init.
pub(crate) fn pid_alive(pid: u32) -> bool {
    match to_pid(pid) {
        Some(p) => matches!(kill(p, None), Ok(()) | Err(Errno::EPERM)),
        None => false,
    }
}

/// Whether process `pid` runs a program whose command line contains
/// `needle`. A zombie has an empty command line, so it does not match. On a
/// system without /proc, falls back to `pid_alive`.
pub(crate) fn pid_runs(pid: u32, needle: &str) -> bool {
    if !pid_alive(pid) {
        return false;
    }
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(raw) => String::from_utf8_lossy(&raw).contains(needle),
        Err(_) => !Path::new("/proc/self").exists(),
    }
}

/// Whether any live process other than the caller runs a program whose
/// command line contains `needle` (a server's forked children keep its
/// command line, and its listening sockets, until they are gone).
pub(crate) fn any_runs(needle: &str) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    let me = std::process::id();
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .any(|pid| pid != me && pid_runs(pid, needle))
}

/// The pid written in a pid file, if the file exists and holds a number.
pub(crate) fn read_pid_file(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Send `signal` to `pid`, wait up to `timeout` for it to go, then SIGKILL
/// and wait a little more. `gone` says whether the process has gone (e.g.
/// `!pid_runs(pid, "mariadbd")`, which also counts a zombie as gone).
pub(crate) async fn terminate(
    pid: u32,
    signal: Signal,
    timeout: Duration,
    gone: impl Fn() -> bool,
) -> Result<(), DatastoreError> {
    let Some(p) = to_pid(pid) else { return Ok(()) };
    if send(p, signal)? && wait_until(timeout, &gone).await {
        return Ok(());
    }
    if gone() {
        return Ok(());
    }
    tracing::warn!(
        pid,
        "still running {timeout:?} after {signal}; sending SIGKILL"
    );
    send(p, Signal::SIGKILL)?;
    let grace = Duration::from_secs(10);
    if wait_until(grace, &gone).await {
        Ok(())
    } else {
        Err(DatastoreError::Timeout(
            timeout + grace,
            format!("process {pid} to exit"),
        ))
    }
}

/// Send a signal; false if the process is already gone.
fn send(pid: Pid, signal: Signal) -> Result<bool, DatastoreError> {
    match kill(pid, signal) {
        Ok(()) => Ok(true),
        Err(Errno::ESRCH) => Ok(false),
        Err(e) => Err(DatastoreError::Other(anyhow::anyhow!(
            "sending {signal} to {pid}: {e}"
        ))),
    }
}

/// Wait for a server being started: poll `healthy` every `every` until it
/// holds; fail at once if the process waited for exits (`exited`), with the
/// tail of `logs`, and with Timeout after `timeout`.
pub(crate) async fn wait_healthy<F, Fut>(
    program: &str,
    timeout: Duration,
    every: Duration,
    mut exited: Option<oneshot::Receiver<ExitStatus>>,
    logs: &[&Path],
    healthy: F,
) -> Result<(), DatastoreError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = exited.as_mut().and_then(|rx| rx.try_recv().ok()) {
            let log: Vec<u8> = logs
                .iter()
                .flat_map(|l| std::fs::read(l).unwrap_or_default())
                .collect();
            return Err(DatastoreError::Command {
                command: program.to_string(),
                detail: format!("exited during start-up ({status}); log: {}", tail(&log)),
            });
        }
        if healthy().await {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(DatastoreError::Timeout(
                timeout,
                format!("{program} to answer"),
            ));
        }
        sleep(every).await;
    }
}

/// Poll `done` until it holds or `timeout` passes; true if it held.
pub(crate) async fn wait_until(timeout: Duration, done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        sleep(POLL).await;
    }
}

fn to_pid(pid: u32) -> Option<Pid> {
    i32::try_from(pid)
        .ok()
        .filter(|p| *p > 1)
        .map(Pid::from_raw)
}

fn describe(status: ExitStatus) -> String {
    match status.code() {
        Some(code) => format!("exit status {code}"),
        None => format!("{status}"),
    }
}

/// The last lines of `text`, at most `TAIL_BYTES` long.
pub(crate) fn tail(text: &[u8]) -> String {
    let text = String::from_utf8_lossy(text);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut out = lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n");
    if out.len() > TAIL_BYTES {
        let mut cut = out.len() - TAIL_BYTES;
        while !out.is_char_boundary(cut) {
            cut += 1;
        }
        out = format!("...{}", &out[cut..]);
    }
    out
}

/// `text` with every non-empty string of `secrets` replaced.
pub(crate) fn redact(text: &str, secrets: &[&str]) -> String {
    secrets
        .iter()
        .filter(|s| !s.is_empty())
        .fold(text.to_string(), |t, s| t.replace(s, "<redacted>"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn failing_command_reports_redacted_stderr_tail() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo one >&2; echo 'bad pw hunter2' >&2; exit 3"]);
        let e = run(cmd, "sh", Duration::from_secs(10), &["hunter2"])
            .await
            .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with("sh failed: exit status 3: one\nbad pw <redacted>"),
            "{msg}"
        );
        assert!(!msg.contains("hunter2"));
    }

    #[tokio::test]
    async fn slow_command_times_out() {
        let mut cmd = Command::new("sleep");
        cmd.arg("5");
        let e = run(cmd, "sleep", Duration::from_millis(100), &[])
            .await
            .unwrap_err();
        assert!(matches!(e, DatastoreError::Timeout(..)), "{e}");
    }

    #[tokio::test]
    async fn missing_program_is_a_command_error() {
        let cmd = Command::new("/nonexistent/tool");
        let e = run(cmd, "tool", Duration::from_secs(1), &[])
            .await
            .unwrap_err();
        assert!(
            e.to_string().starts_with("tool failed: cannot start"),
            "{e}"
        );
    }

    #[test]
    fn tail_keeps_the_end() {
        let text: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let t = tail(text.as_bytes());
        assert!(t.starts_with("line 85\n") && t.ends_with("line 99"), "{t}");
        let long = "é".repeat(3000);
        assert!(tail(long.as_bytes()).len() <= TAIL_BYTES + 4);
    }

    #[tokio::test]
    async fn pids() {
        assert!(pid_alive(std::process::id()));
        assert!(pid_runs(std::process::id(), ""));
        assert!(!pid_alive(0) && !pid_alive(1) && !pid_alive(u32::MAX));
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("console.log");
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        let (pid, exited) = spawn_detached(cmd, "sleep", &log).unwrap();
        // Right after spawn the child may still be inside execve (its
        // command line not yet set up), so allow it a moment.
        assert!(wait_until(Duration::from_secs(2), || pid_runs(pid, "sleep")).await);
        terminate(pid, Signal::SIGTERM, Duration::from_secs(5), || {
            !pid_runs(pid, "sleep")
        })
        .await
        .unwrap();
        let status = exited.await.unwrap();
        assert_eq!(status.code(), None, "killed by a signal");
        assert!(!pid_alive(pid));
    }
}
