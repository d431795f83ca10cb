//! Names, quoting and the admin connection.

use super::paths::Paths;
use crate::process::redact;
use anyhow::Context;
use coffer_strategy::DatastoreError;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection, Executor};
use std::time::Duration;

/// The agent's superuser, created by initdb.
pub const ADMIN_USER: &str = "os_admin";
/// Names no tenant may use.
const RESERVED: &[&str] = &[
    "postgres",
    "template0",
    "template1",
    "os_admin",
    "root",
    "public",
];
/// Longest identifier PostgreSQL keeps (bytes).
const MAX_NAME: usize = 63;

pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A string literal (standard_conforming_strings is on: only quotes are special).
pub fn quote_str(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// 1..=63 bytes, no control characters, not reserved, not `pg_*`.
pub fn validate_name(what: &str, name: &str) -> Result<(), DatastoreError> {
    let invalid = |m: String| Err(DatastoreError::InvalidInput(m));
    if name.is_empty() || name.len() > MAX_NAME {
        return invalid(format!(
            "{what} {name:?} must be 1 to {MAX_NAME} bytes long"
        ));
    }
    if name.chars().any(char::is_control) {
        return invalid(format!("{what} {name:?} contains a control character"));
    }
    if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(name))
        || name.to_ascii_lowercase().starts_with("pg_")
    {
        return invalid(format!("{what} {name:?} is reserved"));
    }
    Ok(())
}

pub fn validate_password(user: &str, password: &str) -> Result<(), DatastoreError> {
    if password.is_empty() || password.chars().any(char::is_control) {
        return Err(DatastoreError::InvalidInput(format!(
            "the password of user {user:?} must be non-empty, without control characters"
        )));
    }
    Ok(())
}

/// PostgreSQL users are not tied to hosts: only `%` (any) is accepted.
pub fn validate_host(host: &str) -> Result<(), DatastoreError> {
    if host == "%" {
        Ok(())
    } else {
        Err(DatastoreError::InvalidInput(format!(
            "PostgreSQL users cannot be limited to a host ({host:?}); use '%'"
        )))
    }
}

pub fn read_password(paths: &Paths) -> Result<String, DatastoreError> {
    let raw = std::fs::read_to_string(&paths.password).context("reading the admin password")?;
    Ok(raw.trim_end().to_string())
}

/// An admin connection to `database` over the socket (statement logging off).
pub async fn connect(paths: &Paths, database: &str) -> Result<PgConnection, DatastoreError> {
    let password = read_password(paths)?;
    let opts = PgConnectOptions::new()
        .socket(&paths.run_dir)
        .port(paths.port)
        .username(ADMIN_USER)
        .password(&password)
        .database(database)
        .disable_statement_logging();
    let timeout = Duration::from_secs(10);
    match tokio::time::timeout(timeout, opts.connect()).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(DatastoreError::Command {
            command: format!("connecting to PostgreSQL as {ADMIN_USER}"),
            detail: redact(&e.to_string(), &[&password]),
        }),
        Err(_) => Err(DatastoreError::Timeout(
            timeout,
            "connecting to PostgreSQL".into(),
        )),
    }
}

/// Run one statement (a bare `&str` goes unprepared, over the simple protocol). `secret` is blanked out of errors,
/// which name only the statement's first words.
pub async fn execute(
    conn: &mut PgConnection,
    statement: &str,
    secret: Option<&str>,
) -> Result<(), DatastoreError> {
    match conn.execute(statement).await {
        Ok(_) => Ok(()),
        Err(e) => {
            let head: String = statement
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ");
            let detail = match secret {
                Some(s) => redact(&e.to_string(), &[s, &quote_str(s)]),
                None => e.to_string(),
            };
            Err(DatastoreError::Command {
                command: head,
                detail,
            })
        }
    }
}

/// Run statements on a fresh connection to `database`, then close it.
pub async fn run_all(
    paths: &Paths,
    database: &str,
    statements: &[(String, Option<&str>)],
) -> Result<(), DatastoreError> {
    let mut conn = connect(paths, database).await?;
    let mut result = Ok(());
    for (s, secret) in statements {
        result = execute(&mut conn, s, *secret).await;
        if result.is_err() {
            break;
        }
    }
    let _ = conn.close().await;
    result
}

pub fn query_error(e: sqlx::Error) -> DatastoreError {
    DatastoreError::Command {
        command: "PostgreSQL query".into(),
        detail: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_and_names() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(
            quote_str("x'; DROP DATABASE app; --"),
            "'x''; DROP DATABASE app; --'"
        );
        assert!(validate_name("database", "app").is_ok());
        assert!(
            validate_name("database", "x'; DROP DATABASE app; --").is_ok(),
            "quoted, so literal"
        );
        assert!(validate_name("database", "postgres").is_err());
        assert!(validate_name("user", "pg_monitor").is_err());
        assert!(validate_name("user", &"a".repeat(64)).is_err());
        assert!(validate_host("%").is_ok() && validate_host("h").is_err());
    }
}
