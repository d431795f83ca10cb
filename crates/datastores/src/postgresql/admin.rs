//! The agent's admin connection: `os_admin` over the unix socket.

use super::paths::Paths;
use super::sql;
use crate::process::redact;
use anyhow::Context;
use coffer_strategy::DatastoreError;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};
use sqlx::{ConnectOptions, Connection, Executor};
use std::time::Duration;
use tokio::time::{sleep, Instant};

/// The agent's superuser role, created by initdb.
pub const ADMIN_USER: &str = "os_admin";
/// The database the admin connection uses unless told otherwise.
pub const ADMIN_DATABASE: &str = "postgres";
/// How long opening the admin connection may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the server may take to apply a reloaded configuration.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(10);

/// SQLSTATE of a database that exists already.
pub const DUPLICATE_DATABASE: &str = "42P04";
/// SQLSTATE of a role that exists already.
pub const DUPLICATE_OBJECT: &str = "42710";
/// SQLSTATE of a missing schema (a tenant dropped `public`).
pub const INVALID_SCHEMA: &str = "3F000";

/// The stored admin password.
pub fn read_password(paths: &Paths) -> Result<String, DatastoreError> {
    let raw = std::fs::read_to_string(&paths.password).with_context(|| {
        format!(
            "reading the admin password from {}",
            paths.password.display()
        )
    })?;
    Ok(raw.trim_end_matches('\n').to_string())
}

/// Session settings of every admin connection; no configuration group
/// may set them (see `connect`).
const SESSION: [(&str, &str); 3] = [
    ("log_min_error_statement", "panic"),
    ("standard_conforming_strings", "on"),
    ("default_transaction_read_only", "off"),
];
/// Limits a configuration group may set for every session, which must not
/// cancel or end the agent's own work (see `connect`).
const AGENT_LIMITS: [(&str, &str); 4] = [
    ("lock_timeout", "30s"),
    ("statement_timeout", "0"),
    ("idle_in_transaction_session_timeout", "0"),
    ("idle_session_timeout", "0"),
];

/// Open an admin connection to `database` within `timeout`.
///
/// Statement logging is off on both sides: some statements carry tenant
/// passwords, and the server would otherwise write a failing statement's
/// text into its log (`log_min_error_statement`, set here for this session
/// only; a superuser may). `standard_conforming_strings` is forced on, which
/// `sql::quote_str` relies on. `default_transaction_read_only` is forced
/// off: `set_read_only` turns it on for every session through the
/// configuration, and the agent must still be able to free space (drop a
/// database) and manage users while the instance is read-only. Locks are
/// waited for 30 s at most, and a tenant's `statement_timeout` or idle
/// timeouts do not apply to the agent.
pub async fn connect(
    paths: &Paths,
    database: &str,
    timeout: Duration,
) -> Result<PgConnection, DatastoreError> {
    open(paths, database, timeout).await
}

async fn open(
    paths: &Paths,
    database: &str,
    timeout: Duration,
) -> Result<PgConnection, DatastoreError> {
    let password = read_password(paths)?;
    let mut options = SESSION.to_vec();
    options.extend(AGENT_LIMITS);
    let opts = PgConnectOptions::new()
        .socket(&paths.run_dir)
        .port(paths.port)
        .username(ADMIN_USER)
        .password(&password)
        .database(database)
        .ssl_mode(PgSslMode::Disable)
        .application_name("coffer-agent")
        .options(options)
        .disable_statement_logging();
    let label = format!("connecting to PostgreSQL as {ADMIN_USER}");
    match tokio::time::timeout(timeout, opts.connect()).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(DatastoreError::Command {
            command: label,
            detail: redact(&e.to_string(), &[&password]),
        }),
        Err(_) => Err(DatastoreError::Timeout(timeout, label)),
    }
}

/// Whether the server answers `SELECT 1` within `timeout`.
pub async fn ping(paths: &Paths, timeout: Duration) -> bool {
    let probe = async {
        let mut conn = connect(paths, ADMIN_DATABASE, timeout).await.ok()?;
        let ok = conn.execute("SELECT 1").await.is_ok();
        let _ = conn.close().await;
        Some(ok)
    };
    matches!(tokio::time::timeout(timeout, probe).await, Ok(Some(true)))
}

/// The SQLSTATE of a database error.
pub fn sqlstate(e: &sqlx::Error) -> Option<String> {
    e.as_database_error()
        .and_then(|db| db.code())
        .map(|c| c.into_owned())
}

/// Run `statement` over the simple query protocol (utility statements
/// cannot be prepared), returning sqlx's error as is.
pub async fn try_execute(conn: &mut PgConnection, statement: &str) -> Result<(), sqlx::Error> {
    conn.execute(statement).await.map(|_| ())
}

/// Run `statement`. `secret` is a value the statement holds (a password):
/// the error then names only the statement's head, and the secret is
/// blanked from the server's message (a syntax error quotes a token).
pub async fn execute(
    conn: &mut PgConnection,
    statement: &str,
    secret: Option<&str>,
) -> Result<(), DatastoreError> {
    try_execute(conn, statement)
        .await
        .map_err(|e| failed(statement, secret, &e))
}

/// The error for a failed `statement`, without its secret.
pub fn failed(statement: &str, secret: Option<&str>, e: &sqlx::Error) -> DatastoreError {
    let text = e.to_string();
    let detail = match secret {
        Some(s) => redact_secret(&text, s),
        None => text,
    };
    DatastoreError::Command {
        command: sql::label(statement).to_string(),
        detail,
    }
}

/// `text` without `secret`, raw or as escaped inside a string literal.
fn redact_secret(text: &str, secret: &str) -> String {
    let quoted = sql::quote_str(secret);
    let escaped = &quoted[1..quoted.len() - 1];
    redact(text, &[escaped, secret])
}

/// A catalog query error (no secret involved).
pub fn query_failed(what: &str, e: sqlx::Error) -> DatastoreError {
    DatastoreError::Command {
        command: what.to_string(),
        detail: e.to_string(),
    }
}

/// `pg_reload_conf()`, then wait until the server has applied it: the
/// postmaster re-reads the files (pg_hba.conf too) before passing the
/// signal on to the backends, so once this session's `pg_conf_load_time()`
/// moves, new logins see the new rules.
pub async fn reload(conn: &mut PgConnection) -> Result<(), DatastoreError> {
    const LOAD_TIME: &str = "SELECT extract(epoch FROM pg_conf_load_time())::float8";
    let before: f64 = sqlx::query_scalar(LOAD_TIME)
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| query_failed("reading pg_conf_load_time()", e))?;
    let reloaded: bool = sqlx::query_scalar("SELECT pg_reload_conf()")
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| query_failed("pg_reload_conf()", e))?;
    if !reloaded {
        return Err(anyhow::anyhow!("pg_reload_conf() could not signal the server").into());
    }
    let deadline = Instant::now() + RELOAD_TIMEOUT;
    loop {
        let now: f64 = sqlx::query_scalar(LOAD_TIME)
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| query_failed("reading pg_conf_load_time()", e))?;
        if now > before {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(DatastoreError::Timeout(
                RELOAD_TIMEOUT,
                "PostgreSQL to reload its configuration".into(),
            ));
        }
        sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_raw_and_escaped() {
        let msg = "syntax error at or near \"p''w\" and p'w";
        assert_eq!(
            redact_secret(msg, "p'w"),
            "syntax error at or near \"<redacted>\" and <redacted>"
        );
    }
}
