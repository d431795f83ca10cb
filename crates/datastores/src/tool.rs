//! Tools whose stdout is a backup stream (mariabackup, mariadb-dump,
//! pg_basebackup) or whose stdin is a restore stream (mbstream, mariadb,
//! tar).
//!
//! Unlike `process::run`, the stream does not pass through memory: the
//! agent reads the tool's stdout or writes its stdin. Stderr is drained all
//! along (a tool blocked on a full stderr pipe would never finish its
//! stream) and its tail, redacted, becomes the error when the tool fails.
//! A tool is killed when its handle is dropped, so a cancelled backup or
//! restore leaves nothing running.

use crate::process::{redact, tail};
use crate::stream::{check_length, closing_writer, read_to_end, written, StreamEnd};
use coffer_strategy::{DatastoreError, RestoreSink};
use serde_json::Value;
use std::process::Stdio;
use tokio::io::AsyncReadExt;
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Stderr kept per tool: enough for the verbose lines a caller parses and
/// for the tail of an error, without growing with a huge backup's log.
const STDERR_KEEP: usize = 256 << 10;

/// A running tool.
pub(crate) struct Tool {
    child: Child,
    stderr: JoinHandle<Vec<u8>>,
    label: String,
    secrets: Vec<String>,
}

/// A tool's successful end: what it wrote on stderr (the last
/// `STDERR_KEEP` bytes).
pub(crate) struct ToolEnd {
    pub stderr: String,
}

impl Tool {
    /// Start `cmd` with its stdout as the stream to read. `label` names
    /// the tool in errors; `secrets` are redacted from them.
    pub(crate) fn spawn_reading(
        mut cmd: Command,
        label: &str,
        secrets: &[&str],
    ) -> Result<(Tool, ChildStdout), DatastoreError> {
        cmd.stdin(Stdio::null()).stdout(Stdio::piped());
        let mut tool = Self::spawn(cmd, label, secrets)?;
        let stdout = tool
            .child
            .stdout
            .take()
            .ok_or_else(|| tool.lost("stdout"))?;
        widen_pipe(&stdout);
        Ok((tool, stdout))
    }

    /// Start `cmd` with its stdin as the stream to write.
    pub(crate) fn spawn_writing(
        mut cmd: Command,
        label: &str,
        secrets: &[&str],
    ) -> Result<(Tool, ChildStdin), DatastoreError> {
        cmd.stdin(Stdio::piped()).stdout(Stdio::null());
        let mut tool = Self::spawn(cmd, label, secrets)?;
        let stdin = tool.child.stdin.take().ok_or_else(|| tool.lost("stdin"))?;
        widen_pipe(&stdin);
        Ok((tool, stdin))
    }

    /// The sink of restore piece `index` (whose backup's `done` value is
    /// `info`) flowing into this tool's `stdin`: `done` waits for the
    /// writer's shutdown and the tool's exit (the tool's own error comes
    /// first: it says more than a broken pipe), then checks the length
    /// against `info[length_key]`. `keep` (a secret file the tool reads)
    /// lives until then.
    pub(crate) fn into_sink<K: Send + 'static>(
        self,
        stdin: ChildStdin,
        index: usize,
        info: &Value,
        length_key: &'static str,
        keep: K,
    ) -> RestoreSink {
        let (writer, end) = closing_writer(stdin);
        let info = info.clone();
        let done = async move {
            let _keep = keep;
            let got = written(end).await;
            self.wait().await?;
            check_length(index, got?, &info, length_key)
        };
        RestoreSink {
            writer: Box::pin(writer),
            done: Box::pin(done),
        }
    }

    /// For a backup's `done`: wait until the agent has read the stream
    /// (`end`, from `counting_reader`) to its end, then for the tool's exit.
    /// A stream dropped before its end kills the tool (it would block on
    /// its full pipe forever) and fails.
    pub(crate) async fn finish_reading(
        self,
        end: oneshot::Receiver<StreamEnd>,
    ) -> Result<(u64, ToolEnd), DatastoreError> {
        let bytes = read_to_end(end).await?;
        let out = self.wait().await?;
        Ok((bytes, out))
    }

    /// Spawn, killed on drop, with stderr drained into memory by a task.
    fn spawn(mut cmd: Command, label: &str, secrets: &[&str]) -> Result<Tool, DatastoreError> {
        cmd.stderr(Stdio::piped()).kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| DatastoreError::Command {
            command: label.to_string(),
            detail: format!("cannot start: {e}"),
        })?;
        let stderr = child.stderr.take();
        let drain = tokio::spawn(async move {
            let mut kept = Vec::new();
            let Some(mut stderr) = stderr else {
                return kept;
            };
            let mut buf = vec![0u8; 8192];
            while let Ok(n) = stderr.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > 2 * STDERR_KEEP {
                    kept.drain(..kept.len() - STDERR_KEEP);
                }
            }
            kept
        });
        Ok(Tool {
            child,
            stderr: drain,
            label: label.to_string(),
            secrets: secrets.iter().map(|s| s.to_string()).collect(),
        })
    }

    fn lost(&self, what: &str) -> DatastoreError {
        DatastoreError::Command {
            command: self.label.clone(),
            detail: format!("its {what} is not a pipe"),
        }
    }

    /// Wait for the tool to exit. A non-zero exit is a
    /// `DatastoreError::Command` with the redacted tail of its stderr.
    pub(crate) async fn wait(mut self) -> Result<ToolEnd, DatastoreError> {
        let status = self
            .child
            .wait()
            .await
            .map_err(|e| DatastoreError::Command {
                command: self.label.clone(),
                detail: format!("cannot wait for it: {e}"),
            })?;
        let stderr = (&mut self.stderr).await.unwrap_or_default();
        let secrets: Vec<&str> = self.secrets.iter().map(String::as_str).collect();
        if status.success() {
            let text = redact(&String::from_utf8_lossy(&stderr), &secrets);
            return Ok(ToolEnd { stderr: text });
        }
        let how = match status.code() {
            Some(code) => format!("exit status {code}"),
            None => format!("{status}"),
        };
        Err(DatastoreError::Command {
            command: self.label.clone(),
            detail: format!("{how}: {}", redact(&tail(&stderr), &secrets)),
        })
    }
}

/// Bytes a stream's pipe holds (Linux's default is 64 KiB; 1 MiB is the
/// most an unprivileged process may ask for). A tool that writes in small
/// pieces (pg_basebackup passes on the server's ~8 KiB messages) then runs
/// on while the agent is busy with other chunks, instead of the two taking
/// turns, waking each other for every 64 KiB.
const PIPE_BYTES: i32 = 1 << 20;

/// Make a stream's pipe `PIPE_BYTES` deep; a refusal is only slower.
fn widen_pipe(pipe: &impl std::os::fd::AsRawFd) {
    use nix::fcntl::{fcntl, FcntlArg};
    if let Err(e) = fcntl(pipe.as_raw_fd(), FcntlArg::F_SETPIPE_SZ(PIPE_BYTES)) {
        tracing::debug!("the stream's pipe stays at its default size: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::counting_reader;
    use serde_json::json;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn reading_a_tool_that_fails_at_the_end() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo data; echo 'bad hunter2' >&2; exit 4"]);
        let (tool, stdout) = Tool::spawn_reading(cmd, "sh", &["hunter2"]).unwrap();
        let (mut reader, end) = counting_reader(stdout);
        let mut out = Vec::new();
        reader.read_to_end(&mut out).await.unwrap();
        assert_eq!(out, b"data\n");
        let e = tool.finish_reading(end).await.err().unwrap().to_string();
        assert_eq!(e, "sh failed: exit status 4: bad <redacted>");
    }

    #[tokio::test]
    async fn writing_into_a_tool() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("out");
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!("cat > {}; echo done >&2", file.display()));
        let (tool, stdin) = Tool::spawn_writing(cmd, "sh", &[]).unwrap();
        let mut sink = tool.into_sink(stdin, 0, &json!({"bytes": 5}), "bytes", ());
        sink.writer.write_all(b"piece").await.unwrap();
        sink.writer.shutdown().await.unwrap();
        // The writer is still alive here: shutdown alone closed the pipe.
        sink.done.await.unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"piece");

        // A piece shorter than its backup recorded is refused.
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "cat > /dev/null"]);
        let (tool, stdin) = Tool::spawn_writing(cmd, "sh", &[]).unwrap();
        let mut sink = tool.into_sink(stdin, 2, &json!({"bytes": 6}), "bytes", ());
        sink.writer.write_all(b"piece").await.unwrap();
        sink.writer.shutdown().await.unwrap();
        let e = sink.done.await.unwrap_err().to_string();
        assert!(e.contains("piece 2 is 5 bytes"), "{e}");

        // A tool that fails says why, whatever the agent's copy saw.
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo broken >&2; exit 2"]);
        let (tool, stdin) = Tool::spawn_writing(cmd, "sh", &[]).unwrap();
        let mut sink = tool.into_sink(stdin, 0, &json!({}), "bytes", ());
        let _ = sink.writer.write_all(&[0u8; 1 << 20]).await;
        let _ = sink.writer.shutdown().await;
        let e = sink.done.await.unwrap_err().to_string();
        assert_eq!(e, "sh failed: exit status 2: broken");
    }

    #[tokio::test]
    async fn a_dropped_tool_is_killed() {
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        let (tool, _stdout) = Tool::spawn_reading(cmd, "sleep", &[]).unwrap();
        let pid = tool.child.id().unwrap();
        drop(tool);
        let gone = crate::process::wait_until(std::time::Duration::from_secs(5), || {
            !crate::process::pid_runs(pid, "sleep")
        })
        .await;
        assert!(gone, "sleep {pid} survived its handle");
    }
}
