//! The agent's admin connection: `os_admin` over the unix socket.

use super::paths::Paths;
use super::sql;
use crate::process::redact;
use anyhow::Context;
use coffer_strategy::DatastoreError;
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection};
use sqlx::{ConnectOptions, Connection, Executor};
use std::time::Duration;

/// The admin account created by `initialize`.
pub const ADMIN_USER: &str = "os_admin";
/// How long opening the admin connection may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// MariaDB's code for a syntax error, whose message quotes the statement.
const ER_PARSE_ERROR: u16 = 1064;
/// Every admin session's SQL mode (the server's default, plus what sqlx
/// adds), whatever a configuration group makes the server's: `sql` quotes
/// for this mode (`NO_BACKSLASH_ESCAPES` would store an escaped backslash
/// twice), and modes such as ORACLE or ANSI change how statements parse.
const SESSION_SQL_MODE: &str = "SET SESSION sql_mode = \
    'PIPES_AS_CONCAT,STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_AUTO_CREATE_USER,NO_ENGINE_SUBSTITUTION'";

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

/// Open one admin connection within `timeout`, in `SESSION_SQL_MODE`.
/// Statement logging is off: some statements carry tenant passwords.
pub async fn connect(paths: &Paths, timeout: Duration) -> Result<MySqlConnection, DatastoreError> {
    let password = read_password(paths)?;
    let opts = MySqlConnectOptions::new()
        .socket(&paths.socket)
        .username(ADMIN_USER)
        .password(&password)
        .disable_statement_logging();
    let label = format!("connecting to MariaDB as {ADMIN_USER}");
    let open = async {
        let mut conn = opts.connect().await?;
        conn.execute(SESSION_SQL_MODE).await?;
        Ok::<_, sqlx::Error>(conn)
    };
    match tokio::time::timeout(timeout, open).await {
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
        let mut conn = connect(paths, timeout).await.ok()?;
        let ok = conn.execute("SELECT 1").await.is_ok();
        let _ = conn.close().await;
        Some(ok)
    };
    matches!(tokio::time::timeout(timeout, probe).await, Ok(Some(true)))
}

/// Run `statement` (a bare `&str` goes over the text protocol, unprepared:
/// not every statement can be prepared). `secret` is a value the
/// statement holds (a password): then the error names only the statement's
/// head, and MariaDB's message is dropped when it might quote the text.
pub async fn execute(
    conn: &mut MySqlConnection,
    statement: &str,
    secret: Option<&str>,
) -> Result<(), DatastoreError> {
    let Err(e) = conn.execute(statement).await else {
        return Ok(());
    };
    let command = sql::label(statement).to_string();
    let detail = match (secret, e.as_database_error()) {
        (None, _) => e.to_string(),
        (Some(s), Some(db)) => {
            let code = db
                .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                .map(|m| m.number());
            match code {
                Some(ER_PARSE_ERROR) => format!("MariaDB error {ER_PARSE_ERROR} (syntax error)"),
                _ => redact_secret(&e.to_string(), s),
            }
        }
        (Some(s), None) => redact_secret(&e.to_string(), s),
    };
    Err(DatastoreError::Command { command, detail })
}

/// `text` without `secret`, raw or as escaped inside a string literal.
fn redact_secret(text: &str, secret: &str) -> String {
    let quoted = sql::quote_str(secret);
    let escaped = &quoted[1..quoted.len() - 1];
    redact(text, &[escaped, secret])
}

/// Open the admin connection, run `statements` in order (each with the
/// secret it holds, if any), stop at the first failure, and close the
/// connection cleanly either way.
pub async fn run_all(
    paths: &Paths,
    statements: &[(String, Option<&str>)],
) -> Result<(), DatastoreError> {
    let mut conn = connect(paths, CONNECT_TIMEOUT).await?;
    let mut result = Ok(());
    for (statement, secret) in statements {
        result = execute(&mut conn, statement, *secret).await;
        if result.is_err() {
            break;
        }
    }
    let _ = conn.close().await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_raw_and_escaped() {
        let msg = "near 'p''w' and p'w";
        assert_eq!(
            redact_secret(msg, "p'w"),
            "near '<redacted>' and <redacted>"
        );
    }
}
