//! Tenant names and passwords, checked by PostgreSQL's own rules before
//! anything reaches the server.

use super::sql::{ANY_HOST, SYSTEM_DATABASES};
use coffer_model::UserSpec;
use coffer_strategy::DatastoreError;

/// Longest identifier PostgreSQL keeps (`NAMEDATALEN - 1` bytes); longer
/// ones are silently truncated, so they are refused instead.
pub const MAX_NAME_BYTES: usize = 63;

/// Roles a tenant may not create or touch (compared case-insensitively),
/// besides every name starting with `pg_` (PostgreSQL reserves those).
const RESERVED_USERS: &[&str] = &[
    "postgres",
    "os_admin",
    "root",
    "public",
    "none",
    "current_user",
    "current_role",
    "session_user",
];

/// Check a database name: 1..=63 bytes, printable, no surrounding spaces,
/// not a system database.
pub fn validate_database(name: &str) -> Result<(), DatastoreError> {
    check_name("database name", name)?;
    if SYSTEM_DATABASES
        .iter()
        .any(|r| r.eq_ignore_ascii_case(name))
    {
        return Err(invalid(format!("database name {name:?} is reserved")));
    }
    Ok(())
}

/// Check a user name: 1..=63 bytes, printable, not a system role.
pub fn validate_user_name(name: &str) -> Result<(), DatastoreError> {
    check_name("user name", name)?;
    let lower = name.to_ascii_lowercase();
    if RESERVED_USERS.contains(&lower.as_str()) || lower.starts_with("pg_") {
        return Err(invalid(format!("user name {name:?} is reserved")));
    }
    Ok(())
}

/// Check a host: PostgreSQL roles are not per host, so only `%` is taken.
pub fn validate_host(host: &str) -> Result<(), DatastoreError> {
    if host != ANY_HOST {
        return Err(invalid(format!(
            "host {host:?} is not supported: PostgreSQL users are not per host, use \"%\""
        )));
    }
    Ok(())
}

/// Check a password: non-empty, no control characters, and not in a form
/// PostgreSQL would take as an already hashed secret (`md5` + 32 hex
/// digits, or a `SCRAM-SHA-256$` verifier): that user could never log in
/// with it. The password never appears in a message.
pub fn validate_password(user: &str, password: &str) -> Result<(), DatastoreError> {
    if password.is_empty() {
        return Err(invalid(format!("user {user:?} needs a password")));
    }
    if password.chars().any(char::is_control) {
        return Err(invalid(format!(
            "the password of user {user:?} contains a control character"
        )));
    }
    let md5_like = password.len() == 35
        && password.starts_with("md5")
        && password[3..].chars().all(|c| c.is_ascii_hexdigit());
    if md5_like || password.starts_with("SCRAM-SHA-256$") {
        return Err(invalid(format!(
            "the password of user {user:?} looks like a hashed secret, which PostgreSQL would store as is"
        )));
    }
    Ok(())
}

/// Check a whole user: name, host, password and every database named.
pub fn validate_user(user: &UserSpec) -> Result<(), DatastoreError> {
    validate_user_name(&user.name)?;
    validate_host(&user.host)?;
    validate_password(&user.name, &user.password)?;
    user.databases
        .iter()
        .try_for_each(|db| validate_database(db))
}

fn check_name(what: &str, name: &str) -> Result<(), DatastoreError> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(invalid(format!(
            "{what} {name:?} must be 1 to {MAX_NAME_BYTES} bytes long"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid(format!(
            "{what} {name:?} may only contain printable characters"
        )));
    }
    if name.trim() != name {
        return Err(invalid(format!(
            "{what} {name:?} must not start or end with a space"
        )));
    }
    Ok(())
}

fn invalid(msg: String) -> DatastoreError {
    DatastoreError::InvalidInput(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, password: &str, dbs: &[&str]) -> UserSpec {
        UserSpec {
            name: name.into(),
            password: password.into(),
            host: "%".into(),
            databases: dbs.iter().map(|d| d.to_string()).collect(),
        }
    }

    #[test]
    fn database_names() {
        for ok in [
            "app",
            "App",
            "we\"ird'db",
            "x'; DROP DATABASE app; --",
            "données",
            &"d".repeat(63),
        ] {
            validate_database(ok).unwrap();
        }
        // 32 two-byte characters are 64 bytes: too long.
        for bad in [
            "",
            " app",
            "app ",
            "a\nb",
            "a\0b",
            &"d".repeat(64),
            &"é".repeat(32),
        ] {
            assert!(
                matches!(validate_database(bad), Err(DatastoreError::InvalidInput(_))),
                "{bad:?}"
            );
        }
        for reserved in ["postgres", "Postgres", "template0", "TEMPLATE1"] {
            let e = validate_database(reserved).unwrap_err();
            assert!(e.to_string().contains("is reserved"), "{e}");
        }
    }

    #[test]
    fn users() {
        validate_user(&user("app", "secret", &["app"])).unwrap();
        validate_user(&user(&"u".repeat(63), "s", &[])).unwrap();
        validate_user(&user("o'neil", "p'w\\\"", &[])).unwrap();
        for name in [
            "root",
            "ROOT",
            "os_admin",
            "postgres",
            "public",
            "pg_monitor",
            "PG_x",
            "none",
            "",
            &"u".repeat(64),
        ] {
            assert!(validate_user(&user(name, "s", &[])).is_err(), "{name:?}");
        }
        assert!(validate_user(&user("app", "", &[])).is_err());
        assert!(validate_user(&user("app", "s", &["template1"])).is_err());
        let e = validate_user(&user("app", "hunter2\n", &[])).unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let hashed = format!("md5{}", "a".repeat(32));
        assert!(validate_user(&user("app", &hashed, &[])).is_err());
        validate_user(&user("app", &format!("md5{}", "z".repeat(32)), &[])).unwrap();
        assert!(validate_user(&user("app", "SCRAM-SHA-256$4096:x", &[])).is_err());
        let mut u = user("app", "s", &[]);
        u.host = "10.0.0.%".into();
        let e = validate_user(&u).unwrap_err();
        assert!(e.to_string().contains("not per host"), "{e}");
        validate_host("%").unwrap();
    }
}
