//! "mariadb-dump": logical backups as one SQL stream, full only, and their
//! restore into a freshly initialised server.
//!
//! What the stream holds:
//! 1. every account and its grants, as `mariadb-dump --system=users
//!    --insert-ignore` writes them (`CREATE USER IF NOT EXISTS` + `GRANT`,
//!    password hashes only). Not the `mysql` database itself: its tables
//!    would overwrite the new server's system tables wholesale (and they
//!    change between versions), while portable statements apply to any
//!    server. Tenants keep their passwords, like Trove's logical restore.
//! 2. the tenant databases (`--databases`, never the system ones) in one
//!    consistent snapshot (`--single-transaction`), with routines, events
//!    and triggers. The accounts come first, so that definers exist.
//!    (Accounts and data are two dumps, a moment apart: an account made
//!    in between may be missing, never half there.)
//!
//! The restore runs the stream through the `mariadb` client as `root`
//! (see `piece`). The accounts include the source's `os_admin`: its
//! `GRANT` carries the source's password hash, so the restored server ends
//! with the source's admin password. `finish` therefore restarts the
//! server through `rekey.rs`, exactly as a physical restore does, which
//! gives `os_admin` this instance's own new password whatever the dump did
//! to it.
//!
//! `done` answers `{"tool": "mariadb-dump", "incremental": false,
//! "databases": [...], "bytes": n}`.

use super::accounts;
use super::paths::Paths;
use super::restore::{check_empty_target, check_piece};
use super::tool_auth::{self, CLIENT_GROUP};
use super::{rekey, server, MariaDb};
use crate::process::run;
use crate::stream::counting_reader;
use crate::tool::Tool;
use async_trait::async_trait;
use coffer_strategy::{
    BackupSource, BackupStrategy, DatastoreError, DatastoreManager, InstanceContext, RestoreSink,
    RestoreStrategy,
};
use serde_json::{json, Value};
use std::io::Cursor;
use std::path::Path;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// The strategy's registered name, also its `done` value's `"tool"`.
pub const MARIADB_DUMP: &str = "mariadb-dump";

/// How long dumping the accounts may take (a few statements per account).
const USERS_TIMEOUT: Duration = Duration::from_secs(600);
/// How long stopping the server before the re-keying start may take.
const STOP_TIMEOUT: Duration = Duration::from_secs(120);

/// MariaDB's logical backup, for backups and restores.
#[derive(Clone, Copy, Debug, Default)]
pub struct MariaDbDump;

#[async_trait]
impl BackupStrategy for MariaDbDump {
    async fn start(
        &self,
        ctx: &InstanceContext,
        _work_dir: &Path,
        parent: Option<&Value>,
    ) -> Result<BackupSource, DatastoreError> {
        if parent.is_some() {
            return Err(DatastoreError::NotSupported(format!(
                "{MARIADB_DUMP} makes full backups only"
            )));
        }
        let paths = Paths::new(ctx);
        let databases = accounts::list_databases(&paths).await?;
        let (cnf, password) = tool_auth::defaults_file(ctx, &paths, CLIENT_GROUP)?;

        let mut users = crate::sandbox::command(ctx, "mariadb-dump");
        users.arg(tool_auth::arg(&cnf)).args([
            "--system=users",
            "--insert-ignore",
            "--skip-dump-date",
        ]);
        let users = run(
            users,
            "mariadb-dump --system=users",
            USERS_TIMEOUT,
            &[&password],
        )
        .await?
        .stdout;

        let data = if databases.is_empty() {
            None
        } else {
            let mut cmd = crate::sandbox::command(ctx, "mariadb-dump");
            cmd.arg(tool_auth::arg(&cnf))
                .args([
                    "--single-transaction",
                    "--routines",
                    "--events",
                    "--triggers",
                    "--hex-blob",
                    "--skip-dump-date",
                    "--databases",
                    "--",
                ])
                .args(&databases);
            Some(Tool::spawn_reading(cmd, "mariadb-dump", &[&password])?)
        };
        let (reader, tool): (std::pin::Pin<Box<dyn tokio::io::AsyncRead + Send>>, _) = match data {
            Some((tool, stdout)) => (Box::pin(Cursor::new(users).chain(stdout)), Some(tool)),
            None => (Box::pin(Cursor::new(users)), None),
        };
        let (reader, end) = counting_reader(reader);
        let done = async move {
            let bytes = match tool {
                Some(tool) => tool.finish_reading(end).await?.0,
                None => crate::stream::read_to_end(end).await?,
            };
            drop(cnf);
            Ok(json!({
                "tool": MARIADB_DUMP,
                "incremental": false,
                "databases": databases,
                "bytes": bytes,
            }))
        };
        Ok(BackupSource {
            reader: Box::pin(reader),
            done: Box::pin(done),
        })
    }
}

#[async_trait]
impl RestoreStrategy for MariaDbDump {
    /// A fresh server, initialised and started as for a new instance.
    async fn begin(&self, ctx: &InstanceContext, _work_dir: &Path) -> Result<(), DatastoreError> {
        check_empty_target(ctx, &Paths::new(ctx))?;
        let manager = MariaDb::new();
        manager.initialize(ctx).await?;
        manager.render_config(ctx).await?;
        manager.start(ctx, rekey::START_TIMEOUT).await
    }

    /// The SQL goes to the `mariadb` client, which stops at the first
    /// failing statement, in sandbox mode (a crafted name in a dump can
    /// never run a client command such as `\!`). It logs in as `os_admin`,
    /// which `initialize` gave `PROXY ON ''@'%'` with grant option: the
    /// accounts part holds `GRANT PROXY ON ''@'%' TO root@localhost`,
    /// which only an account holding that grant may give.
    async fn piece(
        &self,
        ctx: &InstanceContext,
        _work_dir: &Path,
        index: usize,
        info: &Value,
    ) -> Result<RestoreSink, DatastoreError> {
        check_piece(MARIADB_DUMP, index, info)?;
        let paths = Paths::new(ctx);
        let (cnf, password) = tool_auth::defaults_file(ctx, &paths, CLIENT_GROUP)?;
        let mut cmd = crate::sandbox::command(ctx, "mariadb");
        // The defaults file first: /etc/mysql/my.cnf must not leak in.
        cmd.arg(tool_auth::arg(&cnf)).args(["--batch", "--sandbox"]);
        let (tool, stdin) = Tool::spawn_writing(cmd, "mariadb < dump", &[&password])?;
        Ok(tool.into_sink(stdin, index, info, "bytes", cnf))
    }

    /// Restart with this instance's own admin password (the dump brought
    /// the source's); the restart also reloads every grant.
    async fn finish(
        &self,
        ctx: &InstanceContext,
        _work_dir: &Path,
        pieces: usize,
    ) -> Result<(), DatastoreError> {
        if pieces != 1 {
            return Err(DatastoreError::InvalidInput(format!(
                "a {MARIADB_DUMP} restore has exactly one piece, not {pieces}"
            )));
        }
        let paths = Paths::new(ctx);
        server::stop(&paths, STOP_TIMEOUT).await?;
        rekey::start_with_new_admin_password(ctx, &paths).await
    }
}
