//! Tenant users: LOGIN roles that are neither superusers nor system roles.
//! PostgreSQL roles are not per host, so every user's host is `%`.

use super::admin::{
    self, connect, execute, query_failed, ADMIN_DATABASE, ADMIN_USER, CONNECT_TIMEOUT,
};
use super::databases::{self, not_system};
use super::paths::Paths;
use super::sql::{self, quote_ident, ANY_HOST};
use coffer_model::{UserInfo, UserSpec, UserUpdate};
use coffer_strategy::DatastoreError;
use sqlx::postgres::PgConnection;
use sqlx::Connection;
use std::collections::BTreeMap;

/// The oid of the tenant user `name`, if it exists (a LOGIN role that is
/// not a superuser; the name was validated, so it is not a system role).
pub async fn tenant_oid(
    conn: &mut PgConnection,
    name: &str,
) -> Result<Option<i64>, DatastoreError> {
    sqlx::query_scalar(
        "SELECT oid::int8 FROM pg_roles WHERE rolname = $1 AND rolcanlogin AND NOT rolsuper",
    )
    .bind(name)
    .fetch_optional(conn)
    .await
    .map_err(|e| query_failed("looking up a user", e))
}

/// NotFound unless `name` is a tenant user; its oid.
pub async fn require(conn: &mut PgConnection, name: &str) -> Result<i64, DatastoreError> {
    tenant_oid(conn, name)
        .await?
        .ok_or_else(|| DatastoreError::NotFound(format!("user {name:?} does not exist")))
}

/// Whether any role (tenant or not) is called `name`.
async fn role_exists(conn: &mut PgConnection, name: &str) -> Result<bool, DatastoreError> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
        .bind(name)
        .fetch_one(conn)
        .await
        .map_err(|e| query_failed("looking up a role", e))
}

/// End the sessions of role `oid`, in one database or in all.
pub async fn terminate_sessions(
    conn: &mut PgConnection,
    oid: i64,
    database: Option<&str>,
) -> Result<(), DatastoreError> {
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE usesysid = $1::oid AND ($2::text IS NULL OR datname = $2)",
    )
    .bind(oid)
    .bind(database)
    .execute(conn)
    .await
    .map_err(|e| query_failed("ending a user's sessions", e))?;
    Ok(())
}

/// Create or reset each user, then grant its databases. Every database
/// must exist (NotFound before anything changes).
pub async fn create(paths: &Paths, users: &[UserSpec]) -> Result<(), DatastoreError> {
    users.iter().try_for_each(sql::validate_user)?;
    let mut conn = connect(paths, ADMIN_DATABASE, CONNECT_TIMEOUT).await?;
    let result = async {
        for user in users {
            databases::require_all(&mut conn, &user.databases).await?;
        }
        for user in users {
            upsert(&mut conn, user).await?;
        }
        let grants: Vec<(&str, &str)> = users
            .iter()
            .flat_map(|u| u.databases.iter().map(|d| (d.as_str(), u.name.as_str())))
            .collect();
        grant(&mut conn, paths, &grants).await
    }
    .await;
    let _ = conn.close().await;
    result
}

/// CREATE ROLE, or ALTER ROLE when it exists, so a retry converges.
async fn upsert(conn: &mut PgConnection, user: &UserSpec) -> Result<(), DatastoreError> {
    let pw = Some(user.password.as_str());
    let reset = sql::reset_role(&user.name, &user.password);
    if role_exists(conn, &user.name).await? {
        return execute(conn, &reset, pw).await;
    }
    let create = sql::create_role(&user.name, &user.password);
    match admin::try_execute(conn, &create).await {
        Ok(()) => Ok(()),
        Err(e) if admin::sqlstate(&e).as_deref() == Some(admin::DUPLICATE_OBJECT) => {
            execute(conn, &reset, pw).await
        }
        Err(e) => Err(admin::failed(&create, pw, &e)),
    }
}

/// Grant each `(database, user)`: the database's privileges, then the
/// `public` schema's inside it (one connection per database).
pub async fn grant(
    conn: &mut PgConnection,
    paths: &Paths,
    grants: &[(&str, &str)],
) -> Result<(), DatastoreError> {
    let mut per_database: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (db, user) in grants {
        execute(conn, &sql::grant_database(db, user), None).await?;
        per_database
            .entry(db)
            .or_default()
            .push(sql::grant_schema(user));
    }
    for (db, statements) in per_database {
        databases::run_in(paths, db, &statements).await?;
    }
    Ok(())
}

/// Tenant users with the databases each may connect to and create in.
pub async fn list(paths: &Paths) -> Result<Vec<UserInfo>, DatastoreError> {
    let mut conn = connect(paths, ADMIN_DATABASE, CONNECT_TIMEOUT).await?;
    let result = async {
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT rolname::text FROM pg_roles WHERE rolcanlogin AND NOT rolsuper",
        )
        .fetch_all(&mut conn)
        .await
        .map_err(|e| query_failed("listing users", e))?;
        let query = format!(
            "SELECT r.rolname::text, d.datname::text FROM pg_roles r CROSS JOIN pg_database d \
             WHERE r.rolcanlogin AND NOT r.rolsuper AND {} \
             AND has_database_privilege(r.oid, d.oid, 'CONNECT') \
             AND has_database_privilege(r.oid, d.oid, 'CREATE')",
            not_system("d.datname")
        );
        let pairs: Vec<(String, String)> = sqlx::query_as(&query)
            .fetch_all(&mut conn)
            .await
            .map_err(|e| query_failed("listing users' databases", e))?;
        Ok(assemble(names, pairs))
    }
    .await;
    let _ = conn.close().await;
    result
}

/// Users (system roles left out) with their sorted databases, by name.
fn assemble(names: Vec<String>, pairs: Vec<(String, String)>) -> Vec<UserInfo> {
    let mut users: BTreeMap<String, Vec<String>> = names
        .into_iter()
        .filter(|n| sql::validate_user_name(n).is_ok())
        .map(|n| (n, Vec::new()))
        .collect();
    for (user, db) in pairs {
        if let Some(dbs) = users.get_mut(&user) {
            dbs.push(db);
        }
    }
    users
        .into_iter()
        .map(|(name, mut databases)| {
            databases.sort();
            UserInfo {
                name,
                host: ANY_HOST.to_string(),
                databases,
            }
        })
        .collect()
}

/// Rename a user and/or set its password, in one transaction.
pub async fn update(paths: &Paths, name: &str, update: &UserUpdate) -> Result<(), DatastoreError> {
    sql::validate_user_name(name)?;
    if let Some(host) = &update.host {
        sql::validate_host(host)?;
    }
    if let Some(new_name) = &update.name {
        sql::validate_user_name(new_name)?;
    }
    let final_name = update.name.as_deref().unwrap_or(name);
    if let Some(pw) = &update.password {
        sql::validate_password(final_name, pw)?;
    }
    let mut conn = connect(paths, ADMIN_DATABASE, CONNECT_TIMEOUT).await?;
    let result = async {
        require(&mut conn, name).await?;
        let rename = update.name.as_deref().filter(|n| *n != name);
        if let Some(new_name) = rename {
            if role_exists(&mut conn, new_name).await? {
                return Err(taken(new_name));
            }
        }
        let mut tx = conn.begin().await.map_err(|e| query_failed("BEGIN", e))?;
        if let Some(pw) = &update.password {
            execute(&mut tx, &sql::set_password(name, pw), Some(pw)).await?;
        }
        if let Some(new_name) = rename {
            let statement = sql::rename_role(name, new_name);
            match admin::try_execute(&mut tx, &statement).await {
                Ok(()) => {}
                Err(e) if admin::sqlstate(&e).as_deref() == Some(admin::DUPLICATE_OBJECT) => {
                    return Err(taken(new_name));
                }
                Err(e) => return Err(admin::failed(&statement, None, &e)),
            }
        }
        tx.commit().await.map_err(|e| query_failed("COMMIT", e))
    }
    .await;
    let _ = conn.close().await;
    result
}

fn taken(name: &str) -> DatastoreError {
    DatastoreError::AlreadyExists(format!("user {name:?} exists already"))
}

/// Drop a user. What it owns is handed to the admin role rather than
/// dropped: deleting a user never deletes tenant data (dropping a
/// database does). Its privileges go, in every database, then the role.
pub async fn delete(paths: &Paths, name: &str) -> Result<(), DatastoreError> {
    sql::validate_user_name(name)?;
    let mut conn = connect(paths, ADMIN_DATABASE, CONNECT_TIMEOUT).await?;
    let result = async {
        let oid = require(&mut conn, name).await?;
        terminate_sessions(&mut conn, oid, None).await?;
        let all: Vec<String> =
            sqlx::query_scalar("SELECT datname::text FROM pg_database WHERE datallowconn")
                .fetch_all(&mut conn)
                .await
                .map_err(|e| query_failed("listing databases", e))?;
        let user = quote_ident(name);
        let statements = [
            format!("REASSIGN OWNED BY {user} TO {}", quote_ident(ADMIN_USER)),
            format!("DROP OWNED BY {user}"),
        ];
        for db in &all {
            databases::run_in(paths, db, &statements).await?;
        }
        execute(&mut conn, &format!("DROP ROLE {user}"), None).await?;
        // A session that got in meanwhile outlives its role: end it.
        terminate_sessions(&mut conn, oid, None).await?;
        tracing::info!("dropped user {name:?}");
        Ok(())
    }
    .await;
    let _ = conn.close().await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_assembled_sorted_without_system_roles() {
        let names = ["zed", "app", "os_admin", "postgres", "pg_x", "b"]
            .map(String::from)
            .to_vec();
        let pairs = [
            ("app", "z"),
            ("app", "a"),
            ("os_admin", "app"),
            ("ghost", "app"),
        ]
        .map(|(u, d)| (u.to_string(), d.to_string()))
        .to_vec();
        let users = assemble(names, pairs);
        let shown: Vec<(&str, Vec<&str>)> = users
            .iter()
            .map(|u| {
                (
                    u.name.as_str(),
                    u.databases.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            shown,
            vec![("app", vec!["a", "z"]), ("b", vec![]), ("zed", vec![])]
        );
        assert!(users.iter().all(|u| u.host == "%"));
    }
}
