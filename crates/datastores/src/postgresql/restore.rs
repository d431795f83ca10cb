//! Restoring a "pg_basebackup" tar into a new instance: the piece is
//! unpacked by `tar` running as `postgres` into the empty data directory;
//! `finish` verifies it against its `backup_manifest`, then starts the
//! server (which recovers from the backup's WAL) and gives `os_admin` this
//! instance's own password.
//!
//! Re-keying: the restored catalog holds the source's password for
//! `os_admin`. The first start uses a `pg_hba.conf` that trusts
//! `os_admin` on the unix socket only (`hba::render_for_rekey`; the
//! socket is 0700 and owned by `postgres`, so only root and `postgres` can
//! reach it); the agent then sets the new password with `ALTER ROLE`,
//! writes the normal `pg_hba.conf` and reloads. A normal start, unlike
//! `postgres --single`, runs the backup's recovery exactly as any start of
//! a restored backup does. Should re-keying fail, the normal rules are
//! written back and the server is stopped.

use super::admin::{self, connect, execute, ADMIN_DATABASE, ADMIN_USER, CONNECT_TIMEOUT};
use super::backup::{PgBaseBackup, PG_BASEBACKUP};
use super::init::{generate_password, prepare_dirs};
use super::os_user::{command, os_user, own_dir, own_path};
use super::paths::Paths;
use super::sql::{quote_ident, quote_str};
use super::{hba, root, server, PostgreSql, BIN_DIR};
use crate::files::{absent_or_empty, ensure_private_dir, write_atomic};
use crate::process::run;
use crate::tool::Tool;
use anyhow::anyhow;
use async_trait::async_trait;
use coffer_strategy::{
    DatastoreError, DatastoreManager, InstanceContext, RestoreSink, RestoreStrategy,
};
use serde_json::Value;
use sqlx::Connection;
use std::path::Path;
use std::time::Duration;

/// Verifying reads every file of the data directory once.
const VERIFY_TIMEOUT: Duration = Duration::from_secs(6 * 3600);
/// The first start replays the WAL written during the backup.
const START_TIMEOUT: Duration = Duration::from_secs(600);
/// How long stopping a server whose re-keying failed may take.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// Files of the source's data directory that describe the backup or the
/// source's running postmaster, not the restored server.
const SOURCE_ONLY_FILES: &[&str] = &["postmaster.pid", "postmaster.opts", "backup_manifest"];

fn check_not_running(paths: &Paths) -> Result<(), DatastoreError> {
    if let Some(pid) = server::running_pid(paths) {
        return Err(DatastoreError::InvalidInput(format!(
            "a server (pid {pid}) runs on this instance: restore only into a new one"
        )));
    }
    Ok(())
}

fn remove_if_present(path: &Path) -> Result<(), DatastoreError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(anyhow!("removing {}: {e}", path.display()).into()),
    }
}

#[async_trait]
impl RestoreStrategy for PgBaseBackup {
    /// An empty data directory owned by `postgres`, mode 0700.
    async fn begin(&self, ctx: &InstanceContext, _work_dir: &Path) -> Result<(), DatastoreError> {
        let paths = Paths::new(ctx);
        check_not_running(&paths)?;
        if !absent_or_empty(&ctx.data_dir)? {
            return Err(DatastoreError::InvalidInput(format!(
                "{} is not empty: restore only into a new instance",
                ctx.data_dir.display()
            )));
        }
        let user = os_user(ctx)?;
        own_dir(&ctx.data_dir, user, 0o700)?;
        prepare_dirs(ctx, &paths, user)?;
        ensure_private_dir(&ctx.secret_dir)?;
        Ok(())
    }

    /// `tar -x` as `postgres`: the files are the server's from the start,
    /// and a hostile member name can do no more than `postgres` could.
    async fn piece(
        &self,
        ctx: &InstanceContext,
        _work_dir: &Path,
        index: usize,
        info: &Value,
    ) -> Result<RestoreSink, DatastoreError> {
        if index != 0 || info.get("tool").and_then(Value::as_str) != Some(PG_BASEBACKUP) {
            return Err(DatastoreError::InvalidInput(format!(
                "a {PG_BASEBACKUP} restore has one piece, a {PG_BASEBACKUP} backup"
            )));
        }
        let mut cmd = command(ctx, Path::new("/bin/tar"));
        cmd.args(["--extract", "--file=-", "--directory"])
            .arg(&ctx.data_dir);
        let (tool, stdin) = Tool::spawn_writing(cmd, "tar --extract", &[])?;
        Ok(tool.into_sink(stdin, index, info, "bytes", ()))
    }

    async fn finish(
        &self,
        ctx: &InstanceContext,
        _work_dir: &Path,
        pieces: usize,
    ) -> Result<(), DatastoreError> {
        if pieces != 1 {
            return Err(DatastoreError::InvalidInput(format!(
                "a {PG_BASEBACKUP} restore has exactly one piece, not {pieces}"
            )));
        }
        let paths = Paths::new(ctx);
        check_not_running(&paths)?;
        if !ctx.data_dir.join("PG_VERSION").exists() {
            return Err(anyhow!(
                "{} holds no restored data directory",
                ctx.data_dir.display()
            )
            .into());
        }
        verify(ctx).await?;
        for name in SOURCE_ONLY_FILES {
            remove_if_present(&ctx.data_dir.join(name))?;
        }

        let user = os_user(ctx)?;
        let password = generate_password();
        ensure_private_dir(&ctx.secret_dir)?;
        write_atomic(&paths.password, password.as_bytes(), 0o600)?;
        write_atomic(&paths.marker, b"postgresql\n", 0o600)?;
        own_path(&paths.marker, user)?;

        PostgreSql::new().render_config(ctx).await?;
        write_atomic(&paths.hba, hba::render_for_rekey(ctx.ip).as_bytes(), 0o644)?;
        let rekeyed = async {
            server::start(ctx, &paths, START_TIMEOUT).await?;
            set_admin_password(ctx, &paths, &password).await
        }
        .await;
        if let Err(e) = rekeyed {
            // Never leave the trust rule behind, nor a server that uses it.
            let normal = root::write_hba(ctx, &paths, paths.root_marker.exists());
            if let Err(stop) = server::stop(&paths, STOP_TIMEOUT).await {
                tracing::warn!(instance = %ctx.instance_id, "stopping the restored server: {stop}");
            }
            normal?;
            return Err(e);
        }
        if !admin::ping(&paths, CONNECT_TIMEOUT).await {
            return Err(anyhow!("the restored server refuses the new admin password").into());
        }
        tracing::info!(instance = %ctx.instance_id, "PostgreSQL base backup restored");
        Ok(())
    }
}

/// Check every file against the backup's manifest, and that the WAL
/// needed to make the copy consistent is there (`pg_verifybackup` parses
/// it with `pg_waldump`): a damaged stream fails here, before the server
/// sees it.
async fn verify(ctx: &InstanceContext) -> Result<(), DatastoreError> {
    if !ctx.data_dir.join("backup_manifest").exists() {
        return Err(anyhow!("the restored data directory has no backup_manifest").into());
    }
    let mut cmd = command(ctx, &Path::new(BIN_DIR).join("pg_verifybackup"));
    cmd.arg("--quiet").arg(&ctx.data_dir);
    run(cmd, "pg_verifybackup", VERIFY_TIMEOUT, &[]).await?;
    Ok(())
}

/// Over the trusted socket: set `os_admin`'s new password, then write the
/// normal `pg_hba.conf` and reload, after which logins need the password.
async fn set_admin_password(
    ctx: &InstanceContext,
    paths: &Paths,
    password: &str,
) -> Result<(), DatastoreError> {
    let mut conn = connect(paths, ADMIN_DATABASE, CONNECT_TIMEOUT).await?;
    let result = async {
        let statement = format!(
            "ALTER ROLE {} WITH SUPERUSER LOGIN PASSWORD {}",
            quote_ident(ADMIN_USER),
            quote_str(password)
        );
        execute(&mut conn, &statement, Some(password)).await?;
        root::write_hba(ctx, paths, paths.root_marker.exists())?;
        admin::reload(&mut conn).await
    }
    .await;
    let _ = conn.close().await;
    result
}
