//! Tenant users, root and read-only mode, over the admin connection. Every
//! change ends with `ACL SAVE`, so it survives a restart (the ACL file keeps
//! password hashes only).

use super::acl::{self, ROOT_USER};
use super::admin::{self, ADMIN_USER};
use super::paths::Paths;
use super::resp::{Conn, Reply};
use anyhow::Context;
use coffer_model::{UserInfo, UserSpec, UserUpdate};
use coffer_strategy::DatastoreError;

/// `ACL SETUSER name rules...`; `secret` (a password among the rules) is
/// blanked from any error.
async fn set_user(
    conn: &mut Conn,
    name: &str,
    rules: &[String],
    secret: &str,
) -> Result<(), DatastoreError> {
    let mut args = vec!["ACL", "SETUSER", name];
    args.extend(rules.iter().map(String::as_str));
    conn.ok_secret(&args, secret).await.map(drop)
}

async fn save(conn: &mut Conn) -> Result<(), DatastoreError> {
    conn.ok(&["ACL", "SAVE"]).await.map(drop)
}

/// `ACL GETUSER`: the user's fields by name, or None if there is no such user.
async fn get_user(
    conn: &mut Conn,
    name: &str,
) -> Result<Option<Vec<(String, Reply)>>, DatastoreError> {
    let Reply::Array(Some(items)) = conn.ok(&["ACL", "GETUSER", name]).await? else {
        return Ok(None);
    };
    let mut fields = Vec::new();
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        fields.push((k.text().unwrap_or_default(), v));
    }
    Ok(Some(fields))
}

fn field(fields: &[(String, Reply)], key: &str) -> Vec<String> {
    fields
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.strings())
        .unwrap_or_default()
}

/// Tenant users (the agent's account, root and `default` left out), sorted.
async fn tenant_users(conn: &mut Conn) -> Result<Vec<String>, DatastoreError> {
    let mut names: Vec<String> = conn
        .ok(&["ACL", "USERS"])
        .await?
        .strings()
        .into_iter()
        .filter(|n| ![acl::DEFAULT_USER, ADMIN_USER, ROOT_USER].contains(&n.as_str()))
        .collect();
    names.sort();
    Ok(names)
}

async fn require_user(conn: &mut Conn, name: &str) -> Result<Vec<(String, Reply)>, DatastoreError> {
    get_user(conn, name)
        .await?
        .ok_or_else(|| DatastoreError::NotFound(format!("user {name:?} does not exist")))
}

/// Create each user, or reset an existing one to exactly these rules and
/// this password (so a retried create converges).
pub async fn create_users(paths: &Paths, users: &[UserSpec]) -> Result<(), DatastoreError> {
    users.iter().try_for_each(acl::validate_user)?;
    if users.is_empty() {
        return Ok(());
    }
    let mut conn = admin::connect(paths).await?;
    let read_only = paths.read_only();
    for u in users {
        let rules = acl::tenant_rules(read_only, &[format!(">{}", u.password)]);
        set_user(&mut conn, &u.name, &rules, &u.password).await?;
    }
    save(&mut conn).await
}

/// Tenant users, each with host `%` and no databases.
pub async fn list_users(paths: &Paths) -> Result<Vec<UserInfo>, DatastoreError> {
    let names = tenant_users(&mut admin::connect(paths).await?).await?;
    Ok(names
        .into_iter()
        .map(|name| UserInfo {
            name,
            host: "%".into(),
            databases: Vec::new(),
        })
        .collect())
}

/// Rename (a new user with the same password hashes and rules, then the old
/// one deleted) and/or set a new password (the old ones are dropped).
pub async fn update_user(
    paths: &Paths,
    name: &str,
    host: &str,
    update: &UserUpdate,
) -> Result<(), DatastoreError> {
    acl::validate_name(name)?;
    acl::validate_host(host)?;
    if let Some(h) = &update.host {
        acl::validate_host(h)?;
    }
    let new_name = update.name.as_deref().unwrap_or(name);
    acl::validate_name(new_name)?;
    if let Some(p) = &update.password {
        acl::validate_password(new_name, p)?;
    }
    let mut conn = admin::connect(paths).await?;
    let fields = require_user(&mut conn, name).await?;
    let read_only = paths.read_only();
    if new_name != name {
        if get_user(&mut conn, new_name).await?.is_some() {
            return Err(DatastoreError::AlreadyExists(format!(
                "user {new_name:?} already exists"
            )));
        }
        let hashes: Vec<String> = field(&fields, "passwords")
            .iter()
            .map(|h| format!("#{h}"))
            .collect();
        set_user(
            &mut conn,
            new_name,
            &acl::tenant_rules(read_only, &hashes),
            "",
        )
        .await?;
        conn.ok(&["ACL", "DELUSER", name]).await?;
    }
    if let Some(p) = &update.password {
        let rules = ["resetpass".to_string(), format!(">{p}")];
        set_user(&mut conn, new_name, &rules, p).await?;
    }
    save(&mut conn).await
}

/// Delete a user (its open connections are closed by the server).
pub async fn delete_user(paths: &Paths, name: &str, host: &str) -> Result<(), DatastoreError> {
    acl::validate_name(name)?;
    acl::validate_host(host)?;
    let mut conn = admin::connect(paths).await?;
    if conn.ok(&["ACL", "DELUSER", name]).await? == Reply::Int(0) {
        return Err(DatastoreError::NotFound(format!(
            "user {name:?} does not exist"
        )));
    }
    save(&mut conn).await
}

/// Take `@write` commands from every tenant user, or give them back. The
/// flag file makes users created or renamed meanwhile read-only too. Root
/// is not restricted (like a superuser on the SQL datastores).
pub async fn set_read_only(paths: &Paths, read_only: bool) -> Result<(), DatastoreError> {
    let mut conn = admin::connect(paths).await?;
    let flag = &paths.read_only_flag;
    if read_only {
        crate::files::write_atomic(flag, b"tenant writes refused (volume full)\n", 0o600)?;
    } else if flag.exists() {
        std::fs::remove_file(flag).with_context(|| format!("removing {}", flag.display()))?;
    }
    let rules: Vec<String> = acl::command_rules(read_only)
        .into_iter()
        .map(String::from)
        .collect();
    for u in tenant_users(&mut conn).await? {
        set_user(&mut conn, &u, &rules, "").await?;
    }
    save(&mut conn).await
}

/// `root` with every right and a new generated password, returned once.
pub async fn enable_root(paths: &Paths) -> Result<String, DatastoreError> {
    let password = super::init::generate_password();
    let mut conn = admin::connect(paths).await?;
    set_user(&mut conn, ROOT_USER, &acl::root_rules(&password), &password).await?;
    save(&mut conn).await?;
    Ok(password)
}

/// Delete `root` (gone already is fine); its connections are closed.
pub async fn disable_root(paths: &Paths) -> Result<(), DatastoreError> {
    let mut conn = admin::connect(paths).await?;
    conn.ok(&["ACL", "DELUSER", ROOT_USER]).await?;
    save(&mut conn).await
}

/// Whether `root` exists and is `on`.
pub async fn root_enabled(paths: &Paths) -> Result<bool, DatastoreError> {
    let mut conn = admin::connect(paths).await?;
    Ok(match get_user(&mut conn, ROOT_USER).await? {
        Some(fields) => field(&fields, "flags").iter().any(|f| f == "on"),
        None => false,
    })
}
