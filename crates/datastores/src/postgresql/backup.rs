//! "pg_basebackup": a physical backup of the running server as one tar
//! stream (`pg_basebackup -D - -Ft -X fetch`), full only.
//!
//! PostgreSQL 15 has no incremental base backup (PostgreSQL 17 adds
//! `pg_basebackup --incremental` with WAL summaries). Its incremental path
//! is continuous WAL archiving (`archive_command`) on top of a base backup,
//! restored by point-in-time recovery: a different strategy, with its own
//! storage of WAL segments. So `supports_incremental` is false here.
//!
//! The tar holds the data directory, the WAL needed to make it consistent
//! (`-X fetch`) and a `backup_manifest` that the restore verifies. It runs
//! as root (a client only), logging in as `os_admin` over the unix socket
//! with a password file in `secret_dir`.
//!
//! `done` answers `{"tool": "pg_basebackup", "incremental": false,
//! "start_lsn": "0/2000028", "stop_lsn": "0/2000100", "timeline": 1,
//! "bytes": n}` (LSNs from pg_basebackup's `--verbose` output).

use super::admin::{read_password, ADMIN_USER};
use super::paths::Paths;
use super::BIN_DIR;
use crate::files::SecretFile;
use crate::stream::counting_reader;
use crate::tool::Tool;
use anyhow::anyhow;
use async_trait::async_trait;
use coffer_strategy::{BackupSource, BackupStrategy, DatastoreError, InstanceContext};
use serde_json::{json, Value};
use std::path::Path;

/// The strategy's registered name, also its `done` value's `"tool"`.
pub const PG_BASEBACKUP: &str = "pg_basebackup";

/// PostgreSQL's physical backup, for backups (here) and restores
/// (`restore.rs`).
#[derive(Clone, Copy, Debug, Default)]
pub struct PgBaseBackup;

/// What `--verbose` says about the backup's WAL range.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WalRange {
    pub start_lsn: Option<String>,
    pub timeline: Option<u64>,
    pub stop_lsn: Option<String>,
}

impl WalRange {
    /// Parse `write-ahead log start point: 0/2000028 on timeline 1` and
    /// `write-ahead log end point: 0/2000100` from pg_basebackup's stderr.
    pub fn parse(stderr: &str) -> Self {
        let mut range = WalRange::default();
        for line in stderr.lines() {
            if let Some(rest) = after(line, "write-ahead log start point: ") {
                let mut words = rest.split_whitespace();
                range.start_lsn = words.next().map(str::to_string);
                if words.next() == Some("on") && words.next() == Some("timeline") {
                    range.timeline = words.next().and_then(|t| t.parse().ok());
                }
            } else if let Some(rest) = after(line, "write-ahead log end point: ") {
                range.stop_lsn = rest.split_whitespace().next().map(str::to_string);
            }
        }
        range
    }
}

fn after<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    line.find(marker).map(|i| &line[i + marker.len()..])
}

/// A libpq password file for `os_admin` (any host, port and database:
/// the connection goes to this instance's socket only). libpq reads it
/// only if no one but its owner can.
pub fn passfile(
    ctx: &InstanceContext,
    paths: &Paths,
) -> Result<(SecretFile, String), DatastoreError> {
    let password = read_password(paths)?;
    if password.is_empty() || !password.chars().all(|c| c.is_ascii_alphanumeric()) {
        // ':' and '\' would need escaping in the file.
        return Err(anyhow!("the stored admin password is not a generated one").into());
    }
    let line = format!("*:*:*:{ADMIN_USER}:{password}\n");
    let file = crate::sandbox::tool_secret_file(ctx, "pgpass", "conf", line.as_bytes())?;
    Ok((file, password))
}

#[async_trait]
impl BackupStrategy for PgBaseBackup {
    async fn start(
        &self,
        ctx: &InstanceContext,
        _work_dir: &Path,
        parent: Option<&Value>,
    ) -> Result<BackupSource, DatastoreError> {
        if parent.is_some() {
            return Err(DatastoreError::NotSupported(format!(
                "{PG_BASEBACKUP} makes full backups only (PostgreSQL 15 has no incremental base backup)"
            )));
        }
        let paths = Paths::new(ctx);
        let (pgpass, password) = passfile(ctx, &paths)?;
        // In the sandbox as its account; unconfined as the agent's root,
        // which alone reads the password file.
        let mut cmd = crate::sandbox::command(ctx, Path::new(BIN_DIR).join("pg_basebackup"));
        cmd.env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("PGPASSFILE", pgpass.path())
            .env("PGCONNECT_TIMEOUT", "30")
            .arg("--host")
            .arg(&paths.run_dir)
            .args(["--port", &ctx.port.to_string()])
            .args(["--username", ADMIN_USER, "--no-password"])
            .args(["--pgdata=-", "--format=tar", "--wal-method=fetch"])
            // A spread checkpoint could keep the backup waiting for minutes.
            .args(["--checkpoint=fast", "--verbose"])
            .arg(format!("--label=coffer {}", ctx.instance_id));
        let (tool, stdout) = Tool::spawn_reading(cmd, "pg_basebackup", &[&password])?;
        let (reader, end) = counting_reader(stdout);
        let done = async move {
            let (bytes, out) = tool.finish_reading(end).await?;
            drop(pgpass);
            let wal = WalRange::parse(&out.stderr);
            Ok(json!({
                "tool": PG_BASEBACKUP,
                "incremental": false,
                "start_lsn": wal.start_lsn,
                "stop_lsn": wal.stop_lsn,
                "timeline": wal.timeline,
                "bytes": bytes,
            }))
        };
        Ok(BackupSource {
            reader: Box::pin(reader),
            done: Box::pin(done),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wal_range_from_verbose_output() {
        let stderr = "pg_basebackup: initiating base backup, waiting for checkpoint to complete\n\
                      pg_basebackup: checkpoint completed\n\
                      pg_basebackup: write-ahead log start point: 0/2000028 on timeline 1\n\
                      pg_basebackup: write-ahead log end point: 0/2000100\n\
                      pg_basebackup: base backup completed\n";
        assert_eq!(
            WalRange::parse(stderr),
            WalRange {
                start_lsn: Some("0/2000028".into()),
                timeline: Some(1),
                stop_lsn: Some("0/2000100".into()),
            }
        );
        assert_eq!(WalRange::parse("nothing"), WalRange::default());
    }
}
