//! "redis-rdb": a snapshot of the dataset as an RDB file, full only.
//!
//! `BGSAVE` forks a child that writes the snapshot to a temporary file and
//! renames it over `dump.rdb`: the file at that path is always a complete
//! snapshot, but a later save (the `save` schedule) may replace it at any
//! moment. The stream is therefore read from a file descriptor opened once
//! the save is done: a replaced file's inode lives on while it is open, so
//! no copy is needed for a consistent read.
//!
//! Users are not in the snapshot: they live in the ACL file in `conf_dir`,
//! and a restored instance gets its own admin and the users the agent
//! creates for it.
//!
//! `done` answers `{"tool": "redis-rdb", "incremental": false,
//! "rdb_bytes": n}`.

use super::admin;
use super::paths::Paths;
use super::resp::Conn;
use crate::stream::{counting_reader, read_to_end};
use anyhow::{anyhow, Context};
use async_trait::async_trait;
use coffer_strategy::{BackupSource, BackupStrategy, DatastoreError, InstanceContext};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;
use tokio::time::{sleep, Instant};

/// The strategy's registered name, also its `done` value's `"tool"`.
pub const REDIS_RDB: &str = "redis-rdb";

/// A snapshot of a large dataset takes a while (it writes the whole
/// dataset); the agent's own deadline cancels sooner.
const SAVE_TIMEOUT: Duration = Duration::from_secs(3600);
/// Pause between polls of `INFO persistence`.
const POLL: Duration = Duration::from_millis(50);

/// Redis snapshots, for backups (here) and restores (`restore.rs`).
#[derive(Clone, Copy, Debug, Default)]
pub struct RedisRdb;

/// The `field:value` lines of an `INFO` reply.
pub fn info_field(info: &str, field: &str) -> Option<String> {
    info.lines()
        .filter_map(|l| l.trim_end_matches('\r').split_once(':'))
        .find(|(k, _)| *k == field)
        .map(|(_, v)| v.to_string())
}

/// `INFO persistence` as text.
pub async fn persistence(conn: &mut Conn) -> Result<String, DatastoreError> {
    conn.ok(&["INFO", "persistence"])
        .await?
        .text()
        .ok_or_else(|| anyhow!("INFO persistence: unexpected reply").into())
}

fn number(info: &str, field: &str) -> Result<i64, DatastoreError> {
    info_field(info, field)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow!("INFO persistence has no {field}").into())
}

/// Poll `INFO persistence` until `ready` says the work is done (Ok(true)),
/// failed (Err) or not yet (Ok(false)), within `timeout`.
pub async fn wait_persistence(
    conn: &mut Conn,
    what: &str,
    timeout: Duration,
    ready: impl Fn(&str) -> Result<bool, DatastoreError>,
) -> Result<(), DatastoreError> {
    let deadline = Instant::now() + timeout;
    loop {
        if ready(&persistence(conn).await?)? {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(DatastoreError::Timeout(timeout, what.to_string()));
        }
        sleep(POLL).await;
    }
}

/// Have a snapshot written that started after this call: count the saves
/// (`rdb_saves`) and ask for one; if one is running already (it started
/// before us), wait for it and ask again.
async fn snapshot(conn: &mut Conn) -> Result<(), DatastoreError> {
    let before = number(&persistence(conn).await?, "rdb_saves")?;
    let deadline = Instant::now() + SAVE_TIMEOUT;
    loop {
        // SCHEDULE: if an AOF rewrite is running, save right after it.
        match conn.call(&["BGSAVE", "SCHEDULE"]).await? {
            super::resp::Reply::Error(e) if e.contains("already in progress") => {
                if Instant::now() >= deadline {
                    return Err(DatastoreError::Timeout(SAVE_TIMEOUT, "BGSAVE".into()));
                }
                sleep(POLL).await;
            }
            super::resp::Reply::Error(e) => {
                return Err(DatastoreError::Command {
                    command: "redis BGSAVE".into(),
                    detail: e,
                })
            }
            _ => break,
        }
    }
    let left = deadline.saturating_duration_since(Instant::now());
    wait_persistence(conn, "BGSAVE to finish", left, |info| {
        let saves = number(info, "rdb_saves")?;
        let running = number(info, "rdb_bgsave_in_progress")? != 0;
        if saves <= before || running {
            return Ok(false);
        }
        match info_field(info, "rdb_last_bgsave_status").as_deref() {
            Some("ok") => Ok(true),
            other => Err(DatastoreError::Command {
                command: "redis BGSAVE".into(),
                detail: format!(
                    "the snapshot failed (rdb_last_bgsave_status: {}); see the server log",
                    other.unwrap_or("?")
                ),
            }),
        }
    })
    .await
}

#[async_trait]
impl BackupStrategy for RedisRdb {
    async fn start(
        &self,
        ctx: &InstanceContext,
        _work_dir: &Path,
        parent: Option<&Value>,
    ) -> Result<BackupSource, DatastoreError> {
        if parent.is_some() {
            return Err(DatastoreError::NotSupported(format!(
                "{REDIS_RDB} makes full backups only"
            )));
        }
        let paths = Paths::new(ctx);
        let mut conn = admin::connect(&paths).await?;
        snapshot(&mut conn).await?;
        drop(conn);
        let file = tokio::fs::File::open(&paths.rdb)
            .await
            .with_context(|| format!("opening {}", paths.rdb.display()))?;
        let size = file
            .metadata()
            .await
            .with_context(|| format!("reading {}", paths.rdb.display()))?
            .len();
        let (reader, end) = counting_reader(file);
        let done = async move {
            let bytes = read_to_end(end).await?;
            if bytes != size {
                return Err(anyhow!("read {bytes} bytes of a {size}-byte snapshot").into());
            }
            Ok(json!({"tool": REDIS_RDB, "incremental": false, "rdb_bytes": bytes}))
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
    fn info_fields() {
        let info = "# Persistence\r\nloading:0\r\nrdb_saves:3\r\nrdb_last_bgsave_status:ok\r\n";
        assert_eq!(info_field(info, "rdb_saves").as_deref(), Some("3"));
        assert_eq!(
            info_field(info, "rdb_last_bgsave_status").as_deref(),
            Some("ok")
        );
        assert_eq!(info_field(info, "saves"), None);
        assert_eq!(number(info, "rdb_saves").unwrap(), 3);
        assert!(number(info, "loading_x").is_err());
    }
}
