//! Tenant users as Redis ACL users. Every rule travels as its own RESP
//! argument, so a password is always exactly one `>password` rule, whatever
//! characters it holds; `ACL SAVE` stores only its SHA-256 hash.

use super::resp::{Conn, Reply};
use coffer_model::{UserInfo, UserSpec, UserUpdate};
use coffer_strategy::DatastoreError;

/// Accounts a tenant may not create, see or change.
const RESERVED: &[&str] = &["default", "os_admin", "root"];
/// What a tenant user may do: every key and channel, no admin commands.
const TENANT_RULES: &[&str] = &["on", "~*", "&*", "+@all", "-@dangerous"];

fn invalid(msg: String) -> DatastoreError {
    DatastoreError::InvalidInput(msg)
}

/// Name: 1..=64 of `A-Z a-z 0-9 _ . -`, not a reserved account.
pub fn validate_name(name: &str) -> Result<(), DatastoreError> {
    if name.is_empty() || name.len() > 64 {
        return Err(invalid(format!(
            "user name {name:?} must be 1 to 64 characters long"
        )));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(invalid(format!(
            "user name {name:?} contains {c:?}; use letters, digits, '_', '.' or '-'"
        )));
    }
    if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(name)) {
        return Err(invalid(format!("user name {name:?} is reserved")));
    }
    Ok(())
}

/// Redis users are not tied to hosts: only `%` (any) is accepted.
pub fn validate_host(host: &str) -> Result<(), DatastoreError> {
    if host == "%" {
        Ok(())
    } else {
        Err(invalid(format!(
            "Redis users cannot be limited to a host ({host:?}); use '%'"
        )))
    }
}

/// Password: 1..=128 characters, no control characters. Never in a message.
pub fn validate_password(name: &str, password: &str) -> Result<(), DatastoreError> {
    if password.is_empty() || password.chars().count() > 128 {
        return Err(invalid(format!(
            "the password of user {name:?} must be 1 to 128 characters long"
        )));
    }
    if password.chars().any(char::is_control) {
        return Err(invalid(format!(
            "the password of user {name:?} contains a control character"
        )));
    }
    Ok(())
}

pub fn validate_user(user: &UserSpec) -> Result<(), DatastoreError> {
    validate_name(&user.name)?;
    validate_host(&user.host)?;
    validate_password(&user.name, &user.password)?;
    if !user.databases.is_empty() {
        return Err(super::no_databases());
    }
    Ok(())
}

/// Tenant users (reserved accounts left out), sorted.
pub async fn tenant_users(conn: &mut Conn) -> Result<Vec<String>, DatastoreError> {
    let mut names: Vec<String> = conn
        .ok(&["ACL", "USERS"])
        .await?
        .strings()
        .into_iter()
        .filter(|n| !RESERVED.contains(&n.as_str()))
        .collect();
    names.sort();
    Ok(names)
}

async fn set_user(conn: &mut Conn, name: &str, rules: &[&str]) -> Result<(), DatastoreError> {
    let mut args = vec!["ACL", "SETUSER", name];
    args.extend_from_slice(rules);
    conn.ok(&args).await.map(drop)
}

/// Create or reset a tenant user with `password` (a retry converges).
pub async fn put_user(conn: &mut Conn, name: &str, password: &str) -> Result<(), DatastoreError> {
    let pass = format!(">{password}");
    let mut rules = vec!["reset"];
    rules.extend_from_slice(TENANT_RULES);
    rules.push(&pass);
    set_user(conn, name, &rules).await
}

pub async fn save(conn: &mut Conn) -> Result<(), DatastoreError> {
    conn.ok(&["ACL", "SAVE"]).await.map(drop)
}

async fn require(conn: &mut Conn, name: &str) -> Result<(), DatastoreError> {
    if tenant_users(conn).await?.iter().any(|u| u == name) {
        Ok(())
    } else {
        Err(DatastoreError::NotFound(format!(
            "user {name:?} does not exist"
        )))
    }
}

pub fn infos(names: Vec<String>) -> Vec<UserInfo> {
    names
        .into_iter()
        .map(|name| UserInfo {
            name,
            host: "%".into(),
            databases: Vec::new(),
        })
        .collect()
}

/// The stored password hashes of `name` (as `#hex` rules).
async fn password_hashes(conn: &mut Conn, name: &str) -> Result<Vec<String>, DatastoreError> {
    let Reply::Array(Some(fields)) = conn.ok(&["ACL", "GETUSER", name]).await? else {
        return Ok(Vec::new());
    };
    let mut it = fields.iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        if matches!(k, Reply::Bulk(Some(b)) if b == b"passwords") {
            return Ok(Reply::strings(v)
                .into_iter()
                .map(|h| format!("#{h}"))
                .collect());
        }
    }
    Ok(Vec::new())
}

pub async fn update_user(
    conn: &mut Conn,
    name: &str,
    host: &str,
    update: &UserUpdate,
) -> Result<(), DatastoreError> {
    validate_name(name)?;
    validate_host(host)?;
    if let Some(h) = &update.host {
        validate_host(h)?;
    }
    let new_name = update.name.as_deref().unwrap_or(name);
    validate_name(new_name)?;
    if let Some(p) = &update.password {
        validate_password(new_name, p)?;
    }
    require(conn, name).await?;
    if new_name != name {
        if tenant_users(conn).await?.iter().any(|u| u == new_name) {
            return Err(DatastoreError::AlreadyExists(format!(
                "user {new_name:?} already exists"
            )));
        }
        // Carry the password over as its hash, then drop the old name.
        let hashes = password_hashes(conn, name).await?;
        let mut rules = vec!["reset"];
        rules.extend_from_slice(TENANT_RULES);
        rules.extend(hashes.iter().map(String::as_str));
        set_user(conn, new_name, &rules).await?;
        conn.ok(&["ACL", "DELUSER", name]).await?;
    }
    if let Some(p) = &update.password {
        let pass = format!(">{p}");
        set_user(conn, new_name, &["resetpass", &pass]).await?;
    }
    save(conn).await
}

pub async fn delete_user(conn: &mut Conn, name: &str, host: &str) -> Result<(), DatastoreError> {
    validate_name(name)?;
    validate_host(host)?;
    require(conn, name).await?;
    conn.ok(&["ACL", "DELUSER", name]).await?;
    save(conn).await
}

/// Take write commands from every tenant user (or give them back).
pub async fn set_read_only(conn: &mut Conn, read_only: bool) -> Result<(), DatastoreError> {
    let rules: &[&str] = if read_only {
        &["-@write"]
    } else {
        &["+@write", "-@dangerous"]
    };
    for u in tenant_users(conn).await? {
        set_user(conn, &u, rules).await?;
    }
    save(conn).await
}

/// `root` with all rights and a new password.
pub async fn enable_root(conn: &mut Conn, password: &str) -> Result<(), DatastoreError> {
    let pass = format!(">{password}");
    set_user(conn, "root", &["reset", "on", "~*", "&*", "+@all", &pass]).await?;
    save(conn).await
}

pub async fn disable_root(conn: &mut Conn) -> Result<(), DatastoreError> {
    conn.ok(&["ACL", "DELUSER", "root"]).await?;
    save(conn).await
}

pub async fn root_enabled(conn: &mut Conn) -> Result<bool, DatastoreError> {
    Ok(conn
        .ok(&["ACL", "USERS"])
        .await?
        .strings()
        .iter()
        .any(|u| u == "root"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_hosts_passwords() {
        assert!(validate_name("app_1.x-y").is_ok());
        assert!(validate_name("default").is_err());
        assert!(validate_name("ROOT").is_err());
        assert!(validate_name("a b").is_err());
        assert!(validate_name("x'; FLUSHALL").is_err());
        assert!(validate_host("%").is_ok());
        assert!(validate_host("10.0.0.1").is_err());
        // Spaces are fine: the password is one RESP argument, one rule.
        assert!(validate_password("u", "x on ~* +@all").is_ok());
        assert!(validate_password("u", "").is_err());
        assert!(validate_password("u", "a\nb").is_err());
    }
}
