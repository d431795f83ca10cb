//! Tenant databases: PostgreSQL databases other than the system ones.

use super::admin::{self, connect, execute, query_failed, ADMIN_DATABASE, CONNECT_TIMEOUT};
use super::paths::Paths;
use super::sql::{self, quote_str, SYSTEM_DATABASES};
use coffer_strategy::DatastoreError;
use sqlx::postgres::PgConnection;
use sqlx::Connection;

/// `datname NOT IN (<the system databases>)`, for catalog queries.
pub fn not_system(column: &str) -> String {
    let names: Vec<String> = SYSTEM_DATABASES.iter().map(|d| quote_str(d)).collect();
    format!("{column} NOT IN ({})", names.join(", "))
}

/// Whether the database `name` exists.
pub async fn exists(conn: &mut PgConnection, name: &str) -> Result<bool, DatastoreError> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(name)
        .fetch_one(conn)
        .await
        .map_err(|e| query_failed("looking up a database", e))
}

/// NotFound unless every database of `names` exists.
pub async fn require_all(conn: &mut PgConnection, names: &[String]) -> Result<(), DatastoreError> {
    for name in names {
        if !exists(conn, name).await? {
            return Err(DatastoreError::NotFound(format!(
                "database {name:?} does not exist"
            )));
        }
    }
    Ok(())
}

/// Create each database unless it exists. Either way PUBLIC's default
/// right to connect is revoked (again), so that only granted users get in
/// and a create retried after a crash between the two steps converges.
pub async fn create(paths: &Paths, names: &[String]) -> Result<(), DatastoreError> {
    names.iter().try_for_each(|n| sql::validate_database(n))?;
    let mut conn = connect(paths, ADMIN_DATABASE, CONNECT_TIMEOUT).await?;
    let result = async {
        for name in names {
            if !exists(&mut conn, name).await? {
                let statement = sql::create_database(name);
                match admin::try_execute(&mut conn, &statement).await {
                    Ok(()) => tracing::info!("created database {name:?}"),
                    // Created meanwhile by a concurrent call: fine.
                    Err(e) if admin::sqlstate(&e).as_deref() == Some(admin::DUPLICATE_DATABASE) => {
                    }
                    Err(e) => return Err(admin::failed(&statement, None, &e)),
                }
            }
            execute(&mut conn, &sql::revoke_public(name), None).await?;
        }
        Ok(())
    }
    .await;
    let _ = conn.close().await;
    result
}

/// Tenant databases, sorted.
pub async fn list_on(conn: &mut PgConnection) -> Result<Vec<String>, DatastoreError> {
    let query = format!(
        "SELECT datname::text FROM pg_database WHERE {}",
        not_system("datname")
    );
    let mut names: Vec<String> = sqlx::query_scalar(&query)
        .fetch_all(conn)
        .await
        .map_err(|e| query_failed("listing databases", e))?;
    names.sort();
    Ok(names)
}

/// Tenant databases, sorted.
pub async fn list(paths: &Paths) -> Result<Vec<String>, DatastoreError> {
    let mut conn = connect(paths, ADMIN_DATABASE, CONNECT_TIMEOUT).await?;
    let result = list_on(&mut conn).await;
    let _ = conn.close().await;
    result
}

/// Drop a tenant database, ending the sessions connected to it first.
pub async fn delete(paths: &Paths, name: &str) -> Result<(), DatastoreError> {
    sql::validate_database(name)?;
    let mut conn = connect(paths, ADMIN_DATABASE, CONNECT_TIMEOUT).await?;
    let result = async {
        if !exists(&mut conn, name).await? {
            return Err(DatastoreError::NotFound(format!(
                "database {name:?} does not exist"
            )));
        }
        let statement = format!("DROP DATABASE {} WITH (FORCE)", sql::quote_ident(name));
        execute(&mut conn, &statement, None).await?;
        tracing::info!("dropped database {name:?}");
        Ok(())
    }
    .await;
    let _ = conn.close().await;
    result
}

/// Run `statements` inside database `name` (over a connection of its own),
/// skipping those that fail only because the `public` schema is gone.
pub async fn run_in(
    paths: &Paths,
    name: &str,
    statements: &[String],
) -> Result<(), DatastoreError> {
    let mut conn = connect(paths, name, CONNECT_TIMEOUT).await?;
    let mut result = Ok(());
    for statement in statements {
        match admin::try_execute(&mut conn, statement).await {
            Ok(()) => {}
            Err(e) if admin::sqlstate(&e).as_deref() == Some(admin::INVALID_SCHEMA) => {
                tracing::info!("database {name:?} has no public schema; skipped");
            }
            Err(e) => {
                result = Err(admin::failed(statement, None, &e));
                break;
            }
        }
    }
    let _ = conn.close().await;
    result
}
