//! Restoring a "redis-rdb" snapshot into a new instance.
//!
//! The piece is written to `work_dir/dump.rdb` and checked with
//! `redis-check-rdb` (which verifies the RDB's checksum). `finish`
//! initialises the instance as for a new one (its own admin password and
//! ACL file), moves the snapshot in as `dump.rdb`, and starts the server.
//!
//! The trap: with `appendonly yes` and no append-only file yet, the server
//! starts EMPTY (it loads only the AOF) and its first rewrite then
//! replaces the snapshot. So the first start runs with `appendonly no`
//! (`config.rs` renders that while `rdb_restore_marker` exists) and loads
//! the RDB; `CONFIG SET appendonly yes` then writes the dataset out as the
//! AOF; once that rewrite is done the marker goes and the configuration is
//! rendered again with `appendonly yes`, so the next start loads the AOF.

use super::backup::{info_field, persistence, wait_persistence, RedisRdb, REDIS_RDB};
use super::paths::Paths;
use super::{admin, init, server, Redis};
use crate::files::{absent_or_empty, move_file, write_atomic};
use crate::process::run;
use crate::stream::{check_length, closing_writer, written};
use anyhow::{anyhow, Context};
use async_trait::async_trait;
use coffer_strategy::{
    DatastoreError, DatastoreManager, InstanceContext, RestoreSink, RestoreStrategy,
};
use serde_json::Value;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Checking reads the whole snapshot once.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3600);
/// Loading a large snapshot takes a while.
const START_TIMEOUT: Duration = Duration::from_secs(600);
/// Writing the dataset out as the AOF takes about as long as a snapshot.
const REWRITE_TIMEOUT: Duration = Duration::from_secs(3600);
/// How long stopping a server whose restore failed may take.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

fn received(work_dir: &Path) -> PathBuf {
    work_dir.join("dump.rdb")
}

#[async_trait]
impl RestoreStrategy for RedisRdb {
    async fn begin(&self, ctx: &InstanceContext, work_dir: &Path) -> Result<(), DatastoreError> {
        let paths = Paths::new(ctx);
        if let Some(pid) = server::running_pid(&paths) {
            return Err(DatastoreError::InvalidInput(format!(
                "a server (pid {pid}) runs on this instance: restore only into a new one"
            )));
        }
        if !absent_or_empty(&ctx.data_dir)? {
            return Err(DatastoreError::InvalidInput(format!(
                "{} is not empty: restore only into a new instance",
                ctx.data_dir.display()
            )));
        }
        crate::sandbox::server_dir(ctx, work_dir, 0o700)?;
        Ok(())
    }

    /// Into `work_dir/dump.rdb` (0600: it is tenant data); `done` checks
    /// the length and the RDB itself.
    async fn piece(
        &self,
        ctx: &InstanceContext,
        work_dir: &Path,
        index: usize,
        info: &Value,
    ) -> Result<RestoreSink, DatastoreError> {
        if index != 0 || info.get("tool").and_then(Value::as_str) != Some(REDIS_RDB) {
            return Err(DatastoreError::InvalidInput(format!(
                "a {REDIS_RDB} restore has one piece, a {REDIS_RDB} backup"
            )));
        }
        let path = received(work_dir);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        // The check below reads it as the datastore's account.
        crate::sandbox::give(ctx, &path)?;
        let ctx = ctx.clone();
        let (writer, end) = closing_writer(tokio::fs::File::from_std(file));
        let info = info.clone();
        let done = async move {
            let got = written(end).await?;
            check_length(index, got, &info, "rdb_bytes")?;
            let mut cmd = crate::sandbox::command(&ctx, "redis-check-rdb");
            cmd.arg(&path);
            run(cmd, "redis-check-rdb", CHECK_TIMEOUT, &[]).await?;
            Ok(())
        };
        Ok(RestoreSink {
            writer: Box::pin(writer),
            done: Box::pin(done),
        })
    }

    async fn finish(
        &self,
        ctx: &InstanceContext,
        work_dir: &Path,
        pieces: usize,
    ) -> Result<(), DatastoreError> {
        if pieces != 1 {
            return Err(DatastoreError::InvalidInput(format!(
                "a {REDIS_RDB} restore has exactly one piece, not {pieces}"
            )));
        }
        let rdb = received(work_dir);
        if !rdb.exists() {
            return Err(anyhow!("the snapshot was not received").into());
        }
        let paths = Paths::new(ctx);
        init::initialize(ctx, &paths).await?;
        move_file(&rdb, &paths.rdb)?;
        crate::sandbox::give(ctx, &paths.rdb)?;
        write_atomic(&paths.rdb_restore_marker, b"", 0o600)?;
        let manager = Redis::new();
        manager.render_config(ctx).await?;
        if let Err(e) = load_and_convert(ctx, &paths).await {
            if let Err(stop) = server::stop(&paths, STOP_TIMEOUT).await {
                tracing::warn!(instance = %ctx.instance_id, "stopping the restored server: {stop}");
            }
            return Err(e);
        }
        std::fs::remove_file(&paths.rdb_restore_marker)
            .with_context(|| format!("removing {}", paths.rdb_restore_marker.display()))?;
        manager.render_config(ctx).await
    }
}

/// Start with `appendonly no` (the RDB loads), then turn the AOF on and
/// wait until the rewrite that writes the dataset into it has finished.
async fn load_and_convert(ctx: &InstanceContext, paths: &Paths) -> Result<(), DatastoreError> {
    server::start(ctx, paths, START_TIMEOUT).await?;
    let mut conn = admin::connect(paths).await?;
    let info = persistence(&mut conn).await?;
    if info_field(&info, "aof_enabled").as_deref() != Some("0") {
        // Started from an AOF: the snapshot was not loaded.
        return Err(anyhow!("the restored server started with appendonly on").into());
    }
    let before = rewrites(&info)?;
    conn.ok(&["CONFIG", "SET", "appendonly", "yes"]).await?;
    wait_persistence(&mut conn, "the AOF rewrite of the restored data", REWRITE_TIMEOUT, |info| {
        let field = |f: &str| info_field(info, f).unwrap_or_default();
        if rewrites(info)? <= before
            || field("aof_rewrite_in_progress") != "0"
            || field("aof_rewrite_scheduled") != "0"
        {
            return Ok(false);
        }
        if field("aof_enabled") != "1" || field("aof_last_bgrewrite_status") != "ok" {
            return Err(DatastoreError::Command {
                command: "redis CONFIG SET appendonly yes".into(),
                detail: format!(
                    "the AOF rewrite failed (aof_enabled:{}, aof_last_bgrewrite_status:{}); see the server log",
                    field("aof_enabled"),
                    field("aof_last_bgrewrite_status")
                ),
            });
        }
        Ok(true)
    })
    .await?;
    tracing::info!(instance = %ctx.instance_id, "restored RDB loaded and written out as the AOF");
    Ok(())
}

fn rewrites(info: &str) -> Result<i64, DatastoreError> {
    info_field(info, "aof_rewrites")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow!("INFO persistence has no aof_rewrites").into())
}
