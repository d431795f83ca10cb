//! Tenant databases, users and root on MariaDB, over the admin connection.
//! Values in WHERE clauses are bound parameters; names in statements are
//! quoted by `sql`.

use super::admin::{self, connect, execute, CONNECT_TIMEOUT};
use super::paths::Paths;
use super::sql::{self, account_of, grant_target, quote_ident, quote_str, SYSTEM_DATABASES};
use coffer_model::{UserInfo, UserUpdate};
use coffer_strategy::DatastoreError;
use rand::distributions::{Alphanumeric, DistString};
use sqlx::mysql::MySqlConnection;
use sqlx::{Connection, Row};

fn query_error(e: sqlx::Error) -> DatastoreError {
    DatastoreError::Command {
        command: "MariaDB query".into(),
        detail: e.to_string(),
    }
}

fn not_found(what: String) -> DatastoreError {
    DatastoreError::NotFound(what)
}

/// Run `f` on a fresh admin connection and close it either way.
async fn with_conn<T>(
    paths: &Paths,
    f: impl AsyncFnOnce(&mut MySqlConnection) -> Result<T, DatastoreError>,
) -> Result<T, DatastoreError> {
    let mut conn = connect(paths, CONNECT_TIMEOUT).await?;
    let out = f(&mut conn).await;
    let _ = conn.close().await;
    out
}

async fn database_names(conn: &mut MySqlConnection) -> Result<Vec<String>, DatastoreError> {
    let rows =
        sqlx::query("SELECT CAST(schema_name AS CHAR) FROM information_schema.schemata ORDER BY 1")
            .fetch_all(&mut *conn)
            .await
            .map_err(query_error)?;
    let mut names = Vec::new();
    for r in rows {
        let n: String = r.try_get(0).map_err(query_error)?;
        if !SYSTEM_DATABASES.iter().any(|s| s.eq_ignore_ascii_case(&n)) {
            names.push(n);
        }
    }
    // By code point, as the contract and the API's paging markers expect
    // (the server's ORDER BY follows a case-insensitive collation).
    names.sort();
    Ok(names)
}

/// Whether `name`@`host` exists. The server stores hosts in lower case
/// (`CREATE USER 'a'@'MyHost'` makes `a@myhost`) and matches them so.
async fn user_exists(
    conn: &mut MySqlConnection,
    name: &str,
    host: &str,
) -> Result<bool, DatastoreError> {
    let row = sqlx::query("SELECT COUNT(*) FROM mysql.user WHERE User = ? AND Host = ?")
        .bind(name)
        .bind(host.to_lowercase())
        .fetch_one(&mut *conn)
        .await
        .map_err(query_error)?;
    Ok(row.try_get::<i64, _>(0).map_err(query_error)? > 0)
}

/// Undo the grant-pattern escaping `mysql.db` stores names with.
fn unescape_grant_db(stored: &str) -> String {
    let mut out = String::new();
    let mut chars = stored.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

pub async fn list_databases(paths: &Paths) -> Result<Vec<String>, DatastoreError> {
    with_conn(paths, async |c| database_names(c).await).await
}

/// Drop a database and everyone's grants on it: MariaDB keeps grants of a
/// dropped database, which would open a new database of the same name to
/// the old users.
pub async fn delete_database(paths: &Paths, name: &str) -> Result<(), DatastoreError> {
    sql::validate_database(name)?;
    let holders: Vec<UserInfo> = list_users(paths)
        .await?
        .into_iter()
        .filter(|u| u.databases.iter().any(|d| d == name))
        .collect();
    with_conn(paths, async |c| {
        if !database_names(c).await?.iter().any(|d| d == name) {
            return Err(not_found(format!("database {name:?} does not exist")));
        }
        for u in &holders {
            let stmt = format!(
                "REVOKE ALL PRIVILEGES ON {} FROM {}",
                grant_target(name),
                account_of(&u.name, &u.host)
            );
            execute(c, &stmt, None).await?;
        }
        execute(c, &format!("DROP DATABASE {}", quote_ident(name)), None).await
    })
    .await
}

pub async fn list_users(paths: &Paths) -> Result<Vec<UserInfo>, DatastoreError> {
    with_conn(paths, async |c| {
        let rows = sqlx::query(
            "SELECT CAST(User AS CHAR), CAST(Host AS CHAR) FROM mysql.user \
             WHERE is_role = 'N' AND User <> '' ORDER BY 1, 2",
        )
        .fetch_all(&mut *c)
        .await
        .map_err(query_error)?;
        let mut users = Vec::new();
        for r in rows {
            let name: String = r.try_get(0).map_err(query_error)?;
            let host: String = r.try_get(1).map_err(query_error)?;
            if sql::is_reserved_user(&name) {
                continue;
            }
            let dbs = sqlx::query(
                "SELECT CAST(Db AS CHAR) FROM mysql.db WHERE User = ? AND Host = ? ORDER BY 1",
            )
            .bind(&name)
            .bind(&host)
            .fetch_all(&mut *c)
            .await
            .map_err(query_error)?;
            let mut databases = Vec::new();
            for d in dbs {
                databases.push(unescape_grant_db(
                    &d.try_get::<String, _>(0).map_err(query_error)?,
                ));
            }
            // Sorted by the names as shown, not as stored (`g\_2` < `g1`
            // but `g1` < `g_2`); a hand-made raw grant may repeat one.
            databases.sort();
            databases.dedup();
            users.push(UserInfo {
                name,
                host,
                databases,
            });
        }
        users.sort_by(|a, b| (&a.name, &a.host).cmp(&(&b.name, &b.host)));
        Ok(users)
    })
    .await
}

pub async fn update_user(
    paths: &Paths,
    name: &str,
    host: &str,
    update: &UserUpdate,
) -> Result<(), DatastoreError> {
    sql::validate_account(name, host)?;
    let new_name = update.name.as_deref().unwrap_or(name);
    let new_host = update.host.as_deref().unwrap_or(host);
    sql::validate_account(new_name, new_host)?;
    if let Some(p) = &update.password {
        sql::validate_password(new_name, p)?;
    }
    with_conn(paths, async |c| {
        if !user_exists(c, name, host).await? {
            return Err(not_found(format!("user {name:?}@{host:?} does not exist")));
        }
        let renamed = new_name != name || new_host.to_lowercase() != host.to_lowercase();
        if renamed && user_exists(c, new_name, new_host).await? {
            return Err(DatastoreError::AlreadyExists(format!(
                "user {new_name:?}@{new_host:?} already exists"
            )));
        }
        // The password first: if the rename then fails, a retry finds the
        // user under its old name, sets the password again and renames.
        if let Some(p) = &update.password {
            let stmt = format!(
                "ALTER USER {} IDENTIFIED BY {}",
                account_of(name, host),
                quote_str(p)
            );
            execute(c, &stmt, Some(p)).await?;
        }
        if renamed {
            let stmt = format!(
                "RENAME USER {} TO {}",
                account_of(name, host),
                account_of(new_name, new_host)
            );
            execute(c, &stmt, None).await?;
        }
        Ok(())
    })
    .await
}

pub async fn delete_user(paths: &Paths, name: &str, host: &str) -> Result<(), DatastoreError> {
    sql::validate_account(name, host)?;
    with_conn(paths, async |c| {
        if !user_exists(c, name, host).await? {
            return Err(not_found(format!("user {name:?}@{host:?} does not exist")));
        }
        execute(c, &format!("DROP USER {}", account_of(name, host)), None).await
    })
    .await
}

/// Check that the user and every database exist, then run one statement per database.
async fn change_access(
    paths: &Paths,
    name: &str,
    host: &str,
    databases: &[String],
    statement: impl Fn(&str) -> String,
) -> Result<(), DatastoreError> {
    sql::validate_account(name, host)?;
    databases
        .iter()
        .try_for_each(|d| sql::validate_database(d))?;
    with_conn(paths, async |c| {
        if !user_exists(c, name, host).await? {
            return Err(not_found(format!("user {name:?}@{host:?} does not exist")));
        }
        let existing = database_names(c).await?;
        if let Some(missing) = databases.iter().find(|d| !existing.contains(d)) {
            return Err(not_found(format!("database {missing:?} does not exist")));
        }
        for d in databases {
            execute(c, &statement(d), None).await?;
        }
        Ok(())
    })
    .await
}

pub async fn grant_access(
    paths: &Paths,
    name: &str,
    host: &str,
    databases: &[String],
) -> Result<(), DatastoreError> {
    let acct = account_of(name, host);
    change_access(paths, name, host, databases, |d| {
        format!("GRANT ALL PRIVILEGES ON {} TO {acct}", grant_target(d))
    })
    .await
}

pub async fn revoke_access(
    paths: &Paths,
    name: &str,
    host: &str,
    database: &str,
) -> Result<(), DatastoreError> {
    let acct = account_of(name, host);
    let current = list_users(paths).await?;
    let has = current.iter().any(|u| {
        u.name == name && u.host == host.to_lowercase() && u.databases.iter().any(|d| d == database)
    });
    let dbs = [database.to_string()];
    if !has {
        // Nothing to take away, but the user and the database must exist.
        return change_access(paths, name, host, &dbs, |_| "DO 0".to_string()).await;
    }
    change_access(paths, name, host, &dbs, |d| {
        format!("REVOKE ALL PRIVILEGES ON {} FROM {acct}", grant_target(d))
    })
    .await
}

/// root@'%' with a new generated password; root@localhost keeps socket auth.
pub async fn enable_root(paths: &Paths) -> Result<String, DatastoreError> {
    let password = Alphanumeric.sample_string(&mut rand::thread_rng(), 32);
    let acct = account_of("root", "%");
    let pw = quote_str(&password);
    let statements = [
        (
            format!("CREATE USER IF NOT EXISTS {acct} IDENTIFIED BY {pw}"),
            Some(password.as_str()),
        ),
        (
            format!("ALTER USER {acct} IDENTIFIED BY {pw}"),
            Some(password.as_str()),
        ),
        (
            format!("GRANT ALL PRIVILEGES ON *.* TO {acct} WITH GRANT OPTION"),
            None,
        ),
    ];
    admin::run_all(paths, &statements).await?;
    Ok(password)
}

pub async fn disable_root(paths: &Paths) -> Result<(), DatastoreError> {
    admin::run_all(
        paths,
        &[(
            format!("DROP USER IF EXISTS {}", account_of("root", "%")),
            None,
        )],
    )
    .await
}

pub async fn root_enabled(paths: &Paths) -> Result<bool, DatastoreError> {
    with_conn(paths, async |c| user_exists(c, "root", "%").await).await
}

#[cfg(test)]
mod tests {
    use super::unescape_grant_db;

    #[test]
    fn grant_names_unescape() {
        assert_eq!(unescape_grant_db("a\\_b"), "a_b");
        assert_eq!(unescape_grant_db("x\\%y\\\\z"), "x%y\\z");
        assert_eq!(unescape_grant_db("plain"), "plain");
    }
}
