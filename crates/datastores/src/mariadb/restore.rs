//! Restoring "mariabackup" backups into a new instance: each piece is
//! unpacked by `mbstream` into `work_dir/<index>`; `finish` prepares the
//! full backup, applies each incremental in order, moves the result into
//! the empty data directory and starts the server with this instance's
//! own admin password (`rekey.rs`).

use super::backup::{MariaBackup, MARIABACKUP};
use super::paths::Paths;
use super::{rekey, server};
use crate::process::run;
use crate::sandbox::server_dir;
use crate::tool::Tool;
use anyhow::{anyhow, Context};
use async_trait::async_trait;
use coffer_strategy::{DatastoreError, InstanceContext, RestoreSink, RestoreStrategy};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Preparing applies the redo log of the whole backup; moving a large
/// data directory across filesystems copies it. Both scale with the data,
/// so the bound is generous; the agent's own deadline cancels sooner.
const TOOL_TIMEOUT: Duration = Duration::from_secs(6 * 3600);

/// Where piece `index` is unpacked.
fn piece_dir(work_dir: &Path, index: usize) -> PathBuf {
    work_dir.join(index.to_string())
}

/// Refuse to restore over a running server or an existing data directory.
pub fn check_empty_target(ctx: &InstanceContext, paths: &Paths) -> Result<(), DatastoreError> {
    if let Some(pid) = server::running_pid(paths) {
        return Err(DatastoreError::InvalidInput(format!(
            "a server (pid {pid}) runs on this instance: restore only into a new one"
        )));
    }
    if !crate::files::absent_or_empty(&ctx.data_dir)? {
        return Err(DatastoreError::InvalidInput(format!(
            "{} is not empty: restore only into a new instance",
            ctx.data_dir.display()
        )));
    }
    Ok(())
}

/// Piece 0 must be a full backup, every later one an incremental.
pub fn check_piece(strategy: &str, index: usize, info: &Value) -> Result<(), DatastoreError> {
    if info.get("tool").and_then(Value::as_str) != Some(strategy) {
        return Err(DatastoreError::InvalidInput(format!(
            "piece {index} was not made by {strategy}"
        )));
    }
    let incremental = info.get("incremental").and_then(Value::as_bool) == Some(true);
    if incremental != (index > 0) {
        return Err(DatastoreError::InvalidInput(format!(
            "piece {index} must be {}",
            if index == 0 {
                "a full backup"
            } else {
                "an incremental backup"
            }
        )));
    }
    Ok(())
}

/// `mariabackup --no-defaults <args>` (no option file may leak in).
async fn mariabackup(
    ctx: &InstanceContext,
    label: &str,
    args: &[String],
) -> Result<(), DatastoreError> {
    let mut cmd = crate::sandbox::command(ctx, "mariabackup");
    cmd.arg("--no-defaults").args(args);
    run(cmd, label, TOOL_TIMEOUT, &[]).await.map(drop)
}

fn dir_arg(name: &str, dir: &Path) -> String {
    format!("--{name}={}", dir.display())
}

/// Files mariabackup leaves in a data directory that describe the backup,
/// not the server.
const BACKUP_INFO_FILES: &[&str] = &[
    "xtrabackup_info",
    "xtrabackup_binlog_pos_innodb",
    "xtrabackup_checkpoints",
    "backup-my.cnf",
];

#[async_trait]
impl RestoreStrategy for MariaBackup {
    async fn begin(&self, ctx: &InstanceContext, work_dir: &Path) -> Result<(), DatastoreError> {
        check_empty_target(ctx, &Paths::new(ctx))?;
        server_dir(ctx, &ctx.data_dir, 0o700)?;
        server_dir(ctx, work_dir, 0o700)?;
        Ok(())
    }

    async fn piece(
        &self,
        ctx: &InstanceContext,
        work_dir: &Path,
        index: usize,
        info: &Value,
    ) -> Result<RestoreSink, DatastoreError> {
        check_piece(MARIABACKUP, index, info)?;
        let dir = piece_dir(work_dir, index);
        if !crate::files::absent_or_empty(&dir)? {
            return Err(anyhow!("piece {index} was received already").into());
        }
        server_dir(ctx, &dir, 0o700)?;
        let mut cmd = crate::sandbox::command(ctx, "mbstream");
        cmd.arg("-x").arg("-C").arg(&dir);
        let (tool, stdin) = Tool::spawn_writing(cmd, "mbstream -x", &[])?;
        Ok(tool.into_sink(stdin, index, info, "bytes", ()))
    }

    async fn finish(
        &self,
        ctx: &InstanceContext,
        work_dir: &Path,
        pieces: usize,
    ) -> Result<(), DatastoreError> {
        if pieces == 0 {
            return Err(DatastoreError::InvalidInput(
                "a restore needs at least the full backup".into(),
            ));
        }
        let paths = Paths::new(ctx);
        check_empty_target(ctx, &paths)?;
        let full = piece_dir(work_dir, 0);
        for i in 0..pieces {
            let dir = piece_dir(work_dir, i);
            if !dir.join("xtrabackup_checkpoints").exists() {
                return Err(anyhow!("piece {i} was not received").into());
            }
        }
        let started = std::time::Instant::now();
        let target = dir_arg("target-dir", &full);
        mariabackup(
            ctx,
            "mariabackup --prepare",
            &["--prepare".into(), target.clone()],
        )
        .await?;
        for i in 1..pieces {
            let incremental = dir_arg("incremental-dir", &piece_dir(work_dir, i));
            let label = format!("mariabackup --prepare (incremental {i})");
            mariabackup(
                ctx,
                &label,
                &["--prepare".into(), target.clone(), incremental],
            )
            .await?;
        }
        let datadir = dir_arg("datadir", &ctx.data_dir);
        mariabackup(
            ctx,
            "mariabackup --move-back",
            &["--move-back".into(), target, datadir],
        )
        .await?;
        for name in BACKUP_INFO_FILES {
            let file = ctx.data_dir.join(name);
            if file.exists() {
                std::fs::remove_file(&file)
                    .with_context(|| format!("removing {}", file.display()))?;
            }
        }
        tracing::info!(instance = %ctx.instance_id, pieces, elapsed = ?started.elapsed(), "MariaDB backup prepared and moved into place");
        rekey::start_with_new_admin_password(ctx, &paths).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pieces_come_full_first_then_incrementals() {
        let full = json!({"tool": "mariabackup", "incremental": false});
        let inc = json!({"tool": "mariabackup", "incremental": true});
        check_piece(MARIABACKUP, 0, &full).unwrap();
        check_piece(MARIABACKUP, 1, &inc).unwrap();
        check_piece(MARIABACKUP, 2, &inc).unwrap();
        assert!(check_piece(MARIABACKUP, 0, &inc).is_err());
        assert!(check_piece(MARIABACKUP, 1, &full).is_err());
        let e = check_piece(MARIABACKUP, 0, &json!({"tool": "pg_basebackup"})).unwrap_err();
        assert!(matches!(e, DatastoreError::InvalidInput(_)), "{e}");
    }
}
