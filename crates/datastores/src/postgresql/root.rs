//! The `postgres` superuser ("root" in Trove's API) and read-only mode:
//! both are switched by files in `conf_dir` plus a configuration reload,
//! never by ALTER SYSTEM (whose `postgresql.auto.conf` lives in the data
//! directory, on the volume that may be full, and travels into restores).

use super::admin::{self, connect, execute, query_failed, ADMIN_DATABASE, CONNECT_TIMEOUT};
use super::config::read_only_conf;
use super::hba;
use super::init::generate_password;
use super::paths::Paths;
use super::sql::{quote_ident, quote_str, ROOT_USER};
use crate::files::write_atomic;
use anyhow::anyhow;
use coffer_strategy::{DatastoreError, InstanceContext};
use sqlx::postgres::PgConnection;
use sqlx::Connection;

/// Write `pg_hba.conf` with root's network login allowed or not.
pub fn write_hba(
    ctx: &InstanceContext,
    paths: &Paths,
    root_enabled: bool,
) -> Result<(), DatastoreError> {
    write_atomic(
        &paths.hba,
        hba::render(ctx.ip, root_enabled).as_bytes(),
        0o644,
    )?;
    Ok(())
}

async fn root_exists(conn: &mut PgConnection) -> Result<bool, DatastoreError> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
        .bind(ROOT_USER)
        .fetch_one(conn)
        .await
        .map_err(|e| query_failed("looking up the root role", e))
}

/// Give `postgres` (created on first use: initdb made `os_admin` the
/// bootstrap superuser) a new generated password and allow it over TCP.
pub async fn enable(ctx: &InstanceContext, paths: &Paths) -> Result<String, DatastoreError> {
    let password = generate_password();
    let mut conn = connect(paths, ADMIN_DATABASE, CONNECT_TIMEOUT).await?;
    let result = async {
        let verb = if root_exists(&mut conn).await? {
            "ALTER"
        } else {
            "CREATE"
        };
        let statement = format!(
            "{verb} ROLE {} WITH SUPERUSER LOGIN PASSWORD {}",
            quote_ident(ROOT_USER),
            quote_str(&password)
        );
        execute(&mut conn, &statement, Some(&password)).await?;
        write_atomic(&paths.root_marker, b"enabled\n", 0o644)?;
        write_hba(ctx, paths, true)?;
        admin::reload(&mut conn).await
    }
    .await;
    let _ = conn.close().await;
    result.map(|()| password)
}

/// Refuse `postgres` over TCP again, clear its password and end its
/// sessions. Disabled already is fine.
pub async fn disable(ctx: &InstanceContext, paths: &Paths) -> Result<(), DatastoreError> {
    match std::fs::remove_file(&paths.root_marker) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(anyhow!("removing {}: {e}", paths.root_marker.display()).into()),
    }
    write_hba(ctx, paths, false)?;
    let mut conn = connect(paths, ADMIN_DATABASE, CONNECT_TIMEOUT).await?;
    let result = async {
        admin::reload(&mut conn).await?;
        if root_exists(&mut conn).await? {
            let statement = format!("ALTER ROLE {} WITH PASSWORD NULL", quote_ident(ROOT_USER));
            execute(&mut conn, &statement, None).await?;
            sqlx::query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1",
            )
            .bind(ROOT_USER)
            .execute(&mut conn)
            .await
            .map_err(|e| query_failed("ending root's sessions", e))?;
        }
        Ok(())
    }
    .await;
    let _ = conn.close().await;
    result
}

/// Whether `postgres` can log in over TCP: allowed by `pg_hba.conf` and
/// holding a password.
pub async fn enabled(paths: &Paths) -> Result<bool, DatastoreError> {
    if !paths.root_marker.exists() {
        return Ok(false);
    }
    let mut conn = connect(paths, ADMIN_DATABASE, CONNECT_TIMEOUT).await?;
    let result = sqlx::query_scalar(
        "SELECT rolcanlogin AND rolpassword IS NOT NULL FROM pg_authid WHERE rolname = $1",
    )
    .bind(ROOT_USER)
    .fetch_optional(&mut conn)
    .await
    .map_err(|e| query_failed("looking up the root role", e));
    let _ = conn.close().await;
    Ok(result?.unwrap_or(false))
}

/// Turn `default_transaction_read_only` on or off for every session, in
/// `read_only.conf` (kept across restarts), and reload.
///
/// Limitation: it is a default, not a lock. A tenant can still write by
/// asking for it (`SET default_transaction_read_only = off`,
/// `BEGIN READ WRITE`, `ALTER ROLE ... SET`); PostgreSQL has no switch a
/// superuser can throw that ordinary sessions cannot override. It stops
/// applications that write innocently, which is what a full volume needs.
pub async fn set_read_only(paths: &Paths, read_only: bool) -> Result<(), DatastoreError> {
    write_atomic(
        &paths.read_only,
        read_only_conf(read_only).as_bytes(),
        0o644,
    )?;
    let mut conn = connect(paths, ADMIN_DATABASE, CONNECT_TIMEOUT).await?;
    let result = admin::reload(&mut conn).await;
    let _ = conn.close().await;
    result
}
