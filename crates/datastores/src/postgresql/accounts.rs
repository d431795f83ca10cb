//! Tenant databases, users, access and root on PostgreSQL. Databases are
//! created with CONNECT revoked from PUBLIC, so a user reaches only the
//! databases it was granted; root is the `postgres` superuser, which
//! exists (with LOGIN) only while enabled.

use super::paths::Paths;
use super::sql::{
    self, connect, execute, query_error, quote_ident, quote_str, run_all, ADMIN_USER,
};
use coffer_model::{DatabaseSpec, UserInfo, UserSpec, UserUpdate};
use coffer_strategy::DatastoreError;
use rand::distributions::{Alphanumeric, DistString};
use sqlx::{Connection, Row};

const ROOT: &str = "postgres";

async fn strings(
    paths: &Paths,
    query: &str,
    bind: Option<&str>,
) -> Result<Vec<String>, DatastoreError> {
    let mut c = connect(paths, "postgres").await?;
    let mut q = sqlx::query(query);
    if let Some(b) = bind {
        q = q.bind(b);
    }
    let rows = q.fetch_all(&mut c).await.map_err(query_error);
    let _ = c.close().await;
    rows?
        .iter()
        .map(|r| r.try_get::<String, _>(0).map_err(query_error))
        .collect()
}

pub async fn list_databases(paths: &Paths) -> Result<Vec<String>, DatastoreError> {
    strings(paths, "SELECT datname::text FROM pg_database WHERE NOT datistemplate AND datname <> 'postgres' ORDER BY 1", None).await
}

async fn tenant_roles(paths: &Paths) -> Result<Vec<String>, DatastoreError> {
    strings(paths, "SELECT rolname::text FROM pg_roles WHERE rolcanlogin AND NOT rolsuper AND rolname NOT LIKE 'pg\\_%' ORDER BY 1", None).await
}

async fn require_user(paths: &Paths, name: &str) -> Result<(), DatastoreError> {
    if tenant_roles(paths).await?.iter().any(|r| r == name) {
        Ok(())
    } else {
        Err(DatastoreError::NotFound(format!(
            "user {name:?} does not exist"
        )))
    }
}

async fn require_databases(paths: &Paths, databases: &[String]) -> Result<(), DatastoreError> {
    let existing = list_databases(paths).await?;
    match databases.iter().find(|d| !existing.contains(d)) {
        Some(d) => Err(DatastoreError::NotFound(format!(
            "database {d:?} does not exist"
        ))),
        None => Ok(()),
    }
}

pub async fn create_databases(
    paths: &Paths,
    databases: &[DatabaseSpec],
) -> Result<(), DatastoreError> {
    for d in databases {
        sql::validate_name("database name", &d.name)?;
    }
    let existing = list_databases(paths).await?;
    let statements: Vec<(String, Option<&str>)> = databases
        .iter()
        .filter(|d| !existing.contains(&d.name))
        .flat_map(|d| {
            let q = quote_ident(&d.name);
            [
                (format!("CREATE DATABASE {q}"), None),
                (
                    format!("REVOKE CONNECT, TEMPORARY ON DATABASE {q} FROM PUBLIC"),
                    None,
                ),
            ]
        })
        .collect();
    run_all(paths, "postgres", &statements).await
}

pub async fn delete_database(paths: &Paths, name: &str) -> Result<(), DatastoreError> {
    sql::validate_name("database name", name)?;
    require_databases(paths, &[name.to_string()]).await?;
    run_all(
        paths,
        "postgres",
        &[(
            format!("DROP DATABASE {} WITH (FORCE)", quote_ident(name)),
            None,
        )],
    )
    .await
}

pub async fn list_users(paths: &Paths) -> Result<Vec<UserInfo>, DatastoreError> {
    let mut c = connect(paths, "postgres").await?;
    let rows = sqlx::query(
        "SELECT r.rolname::text, d.datname::text FROM pg_roles r CROSS JOIN pg_database d \
         WHERE NOT d.datistemplate AND d.datname <> 'postgres' \
         AND has_database_privilege(r.oid, d.oid, 'CONNECT') ORDER BY 1, 2",
    )
    .fetch_all(&mut c)
    .await
    .map_err(query_error);
    let _ = c.close().await;
    let rows = rows?;
    let mut users: Vec<UserInfo> = tenant_roles(paths)
        .await?
        .into_iter()
        .map(|name| UserInfo {
            name,
            host: "%".into(),
            databases: Vec::new(),
        })
        .collect();
    for r in rows {
        let (role, db): (String, String) = (
            r.try_get(0).map_err(query_error)?,
            r.try_get(1).map_err(query_error)?,
        );
        if let Some(u) = users.iter_mut().find(|u| u.name == role) {
            u.databases.push(db);
        }
    }
    Ok(users)
}

/// Database-level grant (in `postgres`), then the public schema inside it.
async fn grant(paths: &Paths, user: &str, database: &str) -> Result<(), DatastoreError> {
    let stmt = format!(
        "GRANT ALL PRIVILEGES ON DATABASE {} TO {}",
        quote_ident(database),
        quote_ident(user)
    );
    run_all(paths, "postgres", &[(stmt, None)]).await?;
    run_all(
        paths,
        database,
        &[(
            format!("GRANT ALL ON SCHEMA public TO {}", quote_ident(user)),
            None,
        )],
    )
    .await
}

pub async fn create_users(paths: &Paths, users: &[UserSpec]) -> Result<(), DatastoreError> {
    for u in users {
        validate_user(u)?;
    }
    let existing = tenant_roles(paths).await?;
    for u in users {
        let verb = if existing.contains(&u.name) {
            "ALTER"
        } else {
            "CREATE"
        };
        let stmt = format!(
            "{verb} ROLE {} LOGIN PASSWORD {}",
            quote_ident(&u.name),
            quote_str(&u.password)
        );
        run_all(paths, "postgres", &[(stmt, Some(u.password.as_str()))]).await?;
        require_databases(paths, &u.databases).await?;
        for d in &u.databases {
            grant(paths, &u.name, d).await?;
        }
    }
    Ok(())
}

pub fn validate_user(u: &UserSpec) -> Result<(), DatastoreError> {
    sql::validate_name("user name", &u.name)?;
    sql::validate_host(&u.host)?;
    sql::validate_password(&u.name, &u.password)?;
    u.databases
        .iter()
        .try_for_each(|d| sql::validate_name("database name", d))
}

pub async fn update_user(
    paths: &Paths,
    name: &str,
    host: &str,
    update: &UserUpdate,
) -> Result<(), DatastoreError> {
    sql::validate_name("user name", name)?;
    sql::validate_host(host)?;
    if let Some(h) = &update.host {
        sql::validate_host(h)?;
    }
    let new_name = update.name.as_deref().unwrap_or(name);
    sql::validate_name("user name", new_name)?;
    if let Some(p) = &update.password {
        sql::validate_password(new_name, p)?;
    }
    require_user(paths, name).await?;
    if new_name != name {
        if tenant_roles(paths).await?.iter().any(|r| r == new_name) {
            return Err(DatastoreError::AlreadyExists(format!(
                "user {new_name:?} already exists"
            )));
        }
        let stmt = format!(
            "ALTER ROLE {} RENAME TO {}",
            quote_ident(name),
            quote_ident(new_name)
        );
        run_all(paths, "postgres", &[(stmt, None)]).await?;
    }
    if let Some(p) = &update.password {
        let stmt = format!(
            "ALTER ROLE {} PASSWORD {}",
            quote_ident(new_name),
            quote_str(p)
        );
        run_all(paths, "postgres", &[(stmt, Some(p.as_str()))]).await?;
    }
    Ok(())
}

pub async fn delete_user(paths: &Paths, name: &str, host: &str) -> Result<(), DatastoreError> {
    sql::validate_name("user name", name)?;
    sql::validate_host(host)?;
    require_user(paths, name).await?;
    let role = quote_ident(name);
    let mut dbs = list_databases(paths).await?;
    dbs.push("postgres".into());
    for d in dbs {
        let stmts = [
            (
                format!("REASSIGN OWNED BY {role} TO {}", quote_ident(ADMIN_USER)),
                None,
            ),
            (format!("DROP OWNED BY {role}"), None),
        ];
        run_all(paths, &d, &stmts).await?;
    }
    run_all(paths, "postgres", &[(format!("DROP ROLE {role}"), None)]).await
}

pub async fn grant_access(
    paths: &Paths,
    name: &str,
    host: &str,
    databases: &[String],
) -> Result<(), DatastoreError> {
    sql::validate_host(host)?;
    require_user(paths, name).await?;
    require_databases(paths, databases).await?;
    for d in databases {
        grant(paths, name, d).await?;
    }
    Ok(())
}

pub async fn revoke_access(
    paths: &Paths,
    name: &str,
    host: &str,
    database: &str,
) -> Result<(), DatastoreError> {
    sql::validate_host(host)?;
    require_user(paths, name).await?;
    require_databases(paths, &[database.to_string()]).await?;
    let (role, db) = (quote_ident(name), quote_ident(database));
    run_all(
        paths,
        database,
        &[(format!("REVOKE ALL ON SCHEMA public FROM {role}"), None)],
    )
    .await?;
    run_all(
        paths,
        "postgres",
        &[(
            format!("REVOKE ALL PRIVILEGES ON DATABASE {db} FROM {role}"),
            None,
        )],
    )
    .await
}

pub async fn enable_root(paths: &Paths) -> Result<String, DatastoreError> {
    let password = Alphanumeric.sample_string(&mut rand::thread_rng(), 32);
    let exists = !strings(
        paths,
        "SELECT rolname::text FROM pg_roles WHERE rolname = $1",
        Some(ROOT),
    )
    .await?
    .is_empty();
    let verb = if exists { "ALTER" } else { "CREATE" };
    let stmt = format!(
        "{verb} ROLE {ROOT} SUPERUSER LOGIN PASSWORD {}",
        quote_str(&password)
    );
    run_all(paths, "postgres", &[(stmt, Some(password.as_str()))]).await?;
    Ok(password)
}

pub async fn disable_root(paths: &Paths) -> Result<(), DatastoreError> {
    let exists = !strings(
        paths,
        "SELECT rolname::text FROM pg_roles WHERE rolname = $1",
        Some(ROOT),
    )
    .await?
    .is_empty();
    if exists {
        run_all(
            paths,
            "postgres",
            &[(format!("ALTER ROLE {ROOT} NOLOGIN PASSWORD NULL"), None)],
        )
        .await?;
    }
    Ok(())
}

pub async fn root_enabled(paths: &Paths) -> Result<bool, DatastoreError> {
    let rows = strings(
        paths,
        "SELECT rolname::text FROM pg_roles WHERE rolname = $1 AND rolcanlogin",
        Some(ROOT),
    )
    .await?;
    Ok(!rows.is_empty())
}

/// New sessions of every tenant database start read-only (or not). A
/// tenant session could still `SET` it back: this is a soft limit.
pub async fn set_read_only(paths: &Paths, read_only: bool) -> Result<(), DatastoreError> {
    let value = if read_only { "on" } else { "off" };
    let mut c = connect(paths, "postgres").await?;
    let mut result = Ok(());
    for d in list_databases(paths).await? {
        let stmt = format!(
            "ALTER DATABASE {} SET default_transaction_read_only = {value}",
            quote_ident(&d)
        );
        result = execute(&mut c, &stmt, None).await;
        if result.is_err() {
            break;
        }
    }
    let _ = c.close().await;
    result
}
