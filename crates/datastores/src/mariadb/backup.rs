//! "mariabackup": physical backups of a running server as an xbstream,
//! full or incremental.
//!
//! `done` answers `{"tool": "mariabackup", "incremental": bool,
//! "backup_type": "full-backuped" | "incremental", "from_lsn": n,
//! "to_lsn": n, "last_lsn": n, "bytes": n}`, read from the
//! `xtrabackup_checkpoints` that mariabackup leaves in `--extra-lsndir`.
//! An incremental backup copies the pages changed since its parent's
//! `to_lsn`. On a quiet server the checkpoint does not move, so
//! `to_lsn` may equal `from_lsn`: the incremental then still carries the
//! redo log up to `last_lsn`, and restores stay correct.

use super::paths::Paths;
use super::tool_auth::{self, MARIABACKUP_GROUP};
use crate::stream::counting_reader;
use crate::tool::Tool;
use anyhow::{anyhow, Context};
use async_trait::async_trait;
use coffer_strategy::{BackupSource, BackupStrategy, DatastoreError, InstanceContext};
use serde_json::{json, Value};
use std::path::Path;

/// The strategy's registered name, also its `done` value's `"tool"`.
pub const MARIABACKUP: &str = "mariabackup";

/// MariaDB's physical backup tool, for backups (here) and restores
/// (`restore.rs`).
#[derive(Clone, Copy, Debug, Default)]
pub struct MariaBackup;

/// The LSNs of a backup, from `xtrabackup_checkpoints`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoints {
    pub backup_type: String,
    pub from_lsn: u64,
    pub to_lsn: u64,
    pub last_lsn: u64,
}

impl Checkpoints {
    /// Parse the file's `key = value` lines.
    pub fn parse(text: &str) -> Result<Self, DatastoreError> {
        let value = |key: &str| {
            text.lines()
                .filter_map(|l| l.split_once('='))
                .find(|(k, _)| k.trim() == key)
                .map(|(_, v)| v.trim().to_string())
                .ok_or_else(|| anyhow!("xtrabackup_checkpoints has no {key}"))
        };
        let lsn = |key: &str| -> Result<u64, DatastoreError> {
            let v = value(key)?;
            Ok(v.parse()
                .with_context(|| format!("xtrabackup_checkpoints: {key} = {v:?}"))?)
        };
        Ok(Checkpoints {
            backup_type: value("backup_type")?,
            from_lsn: lsn("from_lsn")?,
            to_lsn: lsn("to_lsn")?,
            last_lsn: lsn("last_lsn")?,
        })
    }
}

/// The LSN an incremental backup starts from: its parent's `to_lsn`.
fn parent_lsn(parent: &Value) -> Result<u64, DatastoreError> {
    if parent.get("tool").and_then(Value::as_str) != Some(MARIABACKUP) {
        return Err(DatastoreError::InvalidInput(format!(
            "the parent of a {MARIABACKUP} incremental must be a {MARIABACKUP} backup"
        )));
    }
    parent.get("to_lsn").and_then(Value::as_u64).ok_or_else(|| {
        DatastoreError::InvalidInput("the parent backup's value has no to_lsn".into())
    })
}

fn dir_arg(name: &str, dir: &Path) -> String {
    format!("--{name}={}", dir.display())
}

#[async_trait]
impl BackupStrategy for MariaBackup {
    fn supports_incremental(&self) -> bool {
        true
    }

    async fn start(
        &self,
        ctx: &InstanceContext,
        work_dir: &Path,
        parent: Option<&Value>,
    ) -> Result<BackupSource, DatastoreError> {
        let paths = Paths::new(ctx);
        let incremental_lsn = parent.map(parent_lsn).transpose()?;
        let lsn_dir = work_dir.join("lsn");
        let tmp_dir = work_dir.join("tmp");
        for d in [work_dir, &lsn_dir, &tmp_dir] {
            crate::sandbox::server_dir(ctx, d, 0o700)?;
        }
        let (cnf, password) = tool_auth::defaults_file(ctx, &paths, MARIABACKUP_GROUP)?;
        let mut cmd = crate::sandbox::command(ctx, "mariabackup");
        // The defaults file first, or /etc/mysql/my.cnf is read too.
        cmd.arg(tool_auth::arg(&cnf))
            .args(["--backup", "--stream=xbstream"])
            .arg(dir_arg("datadir", &ctx.data_dir))
            .arg(dir_arg("target-dir", &work_dir.join("target")))
            .arg(dir_arg("extra-lsndir", &lsn_dir))
            .arg(dir_arg("tmpdir", &tmp_dir));
        if let Some(lsn) = incremental_lsn {
            cmd.arg(format!("--incremental-lsn={lsn}"));
        }
        let (tool, stdout) = Tool::spawn_reading(cmd, "mariabackup --backup", &[&password])?;
        let (reader, end) = counting_reader(stdout);
        let done = async move {
            // mariabackup reads the file at its start, but may fail at the
            // very end of the stream: its exit status decides.
            let (bytes, _) = tool.finish_reading(end).await?;
            drop(cnf);
            let file = lsn_dir.join("xtrabackup_checkpoints");
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let c = Checkpoints::parse(&text)?;
            Ok(json!({
                "tool": MARIABACKUP,
                "incremental": incremental_lsn.is_some(),
                "backup_type": c.backup_type,
                "from_lsn": c.from_lsn,
                "to_lsn": c.to_lsn,
                "last_lsn": c.last_lsn,
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
    fn checkpoints_parse() {
        let text = "backup_type = incremental\nfrom_lsn = 44388\nto_lsn = 45000\n\
                    last_lsn = 49381\nrecover_binlog_info = 0\n";
        assert_eq!(
            Checkpoints::parse(text).unwrap(),
            Checkpoints {
                backup_type: "incremental".into(),
                from_lsn: 44388,
                to_lsn: 45000,
                last_lsn: 49381,
            }
        );
        assert!(Checkpoints::parse("backup_type = full-backuped\nfrom_lsn = x\n").is_err());
        assert!(Checkpoints::parse("").is_err());
    }

    #[test]
    fn parents_must_be_mariabackup_values() {
        assert_eq!(
            parent_lsn(&json!({"tool": "mariabackup", "to_lsn": 7})).unwrap(),
            7
        );
        for bad in [
            json!({"tool": "pg_basebackup", "to_lsn": 7}),
            json!({"tool": "mariabackup"}),
            json!({"tool": "mariabackup", "to_lsn": "7"}),
        ] {
            let e = parent_lsn(&bad).unwrap_err();
            assert!(matches!(e, DatastoreError::InvalidInput(_)), "{bad}: {e}");
        }
    }
}
