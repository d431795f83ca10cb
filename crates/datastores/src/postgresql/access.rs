//! A user's access to databases: database privileges (CONNECT, CREATE,
//! TEMPORARY) plus the `public` schema inside, which PostgreSQL 15 no
//! longer opens to everyone.

use super::admin::{connect, execute, ADMIN_DATABASE, CONNECT_TIMEOUT};
use super::databases;
use super::paths::Paths;
use super::sql;
use super::users;
use coffer_strategy::DatastoreError;
use sqlx::Connection;

/// Grant `user` full access to each database. NotFound (and nothing
/// granted) if the user or a database does not exist.
pub async fn grant(
    paths: &Paths,
    user: &str,
    host: &str,
    dbs: &[String],
) -> Result<(), DatastoreError> {
    sql::validate_user_name(user)?;
    sql::validate_host(host)?;
    dbs.iter().try_for_each(|d| sql::validate_database(d))?;
    let mut conn = connect(paths, ADMIN_DATABASE, CONNECT_TIMEOUT).await?;
    let result = async {
        users::require(&mut conn, user).await?;
        databases::require_all(&mut conn, dbs).await?;
        let grants: Vec<(&str, &str)> = dbs.iter().map(|d| (d.as_str(), user)).collect();
        users::grant(&mut conn, paths, &grants).await
    }
    .await;
    let _ = conn.close().await;
    result
}

/// Take `user`'s access to `db` away: its privileges on the database and
/// its `public` schema, and its open sessions there (a revoked CONNECT
/// only stops new ones). Objects it created there stay its own.
pub async fn revoke(paths: &Paths, user: &str, host: &str, db: &str) -> Result<(), DatastoreError> {
    sql::validate_user_name(user)?;
    sql::validate_host(host)?;
    sql::validate_database(db)?;
    let mut conn = connect(paths, ADMIN_DATABASE, CONNECT_TIMEOUT).await?;
    let result = async {
        let oid = users::require(&mut conn, user).await?;
        databases::require_all(&mut conn, &[db.to_string()]).await?;
        execute(&mut conn, &sql::revoke_database(db, user), None).await?;
        databases::run_in(paths, db, &[sql::revoke_schema(user)]).await?;
        users::terminate_sessions(&mut conn, oid, Some(db)).await
    }
    .await;
    let _ = conn.close().await;
    result
}
