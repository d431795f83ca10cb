//! Tenant users as Redis ACL users: the checks on names and passwords, and
//! the rules each kind of user gets.
//!
//! Every rule travels as its own RESP argument, so a password is always
//! exactly one `>password` rule, whatever characters it holds (a password
//! that reads like rules, `x on ~* +@all`, is just that password);
//! `ACL SAVE` stores only its SHA-256 hash.

use super::admin::ADMIN_USER;
use coffer_model::UserSpec;
use coffer_strategy::DatastoreError;

/// Redis's own anonymous user: kept `off`.
pub const DEFAULT_USER: &str = "default";
/// The superuser `enable_root` creates.
pub const ROOT_USER: &str = "root";
/// Accounts a tenant may not create, see or change (any letter case, to
/// avoid look-alikes of them).
const RESERVED: &[&str] = &[DEFAULT_USER, ADMIN_USER, ROOT_USER];
/// Longest user name.
const MAX_NAME: usize = 64;
/// Longest password, in characters.
const MAX_PASSWORD: usize = 128;

/// What a tenant user may run: everything but `@dangerous` (FLUSHALL,
/// CONFIG, DEBUG, SHUTDOWN, ACL, MONITOR, KEYS, INFO...), and while the
/// instance is read-only, nothing in `@write`. Starts from `-@all`, so
/// applying it replaces whatever command rules the user had.
pub fn command_rules(read_only: bool) -> Vec<&'static str> {
    let mut rules = vec!["-@all", "+@all", "-@dangerous"];
    if read_only {
        rules.push("-@write");
    }
    rules
}

/// Every rule of a tenant user, from scratch (`reset` drops passwords,
/// keys, channels and commands it had, so a retried create converges), and
/// `passwords` as given (`>plain` or `#hash`).
pub fn tenant_rules(read_only: bool, passwords: &[String]) -> Vec<String> {
    let mut rules: Vec<String> = ["reset", "on", "~*", "&*"].map(String::from).to_vec();
    rules.extend(command_rules(read_only).into_iter().map(String::from));
    rules.extend(passwords.iter().cloned());
    rules
}

/// The superuser's rules: everything, with one new password.
pub fn root_rules(password: &str) -> Vec<String> {
    let mut rules: Vec<String> = ["reset", "on", "~*", "&*", "+@all"]
        .map(String::from)
        .to_vec();
    rules.push(format!(">{password}"));
    rules
}

fn invalid(msg: String) -> DatastoreError {
    DatastoreError::InvalidInput(msg)
}

/// Whether `name` is one of the accounts tenants never see.
pub fn is_reserved(name: &str) -> bool {
    RESERVED.iter().any(|r| r.eq_ignore_ascii_case(name))
}

/// Name: 1..=64 of `A-Z a-z 0-9 _ . -`, not starting with `-`, not a
/// reserved account.
pub fn validate_name(name: &str) -> Result<(), DatastoreError> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(invalid(format!(
            "user name {name:?} must be 1 to {MAX_NAME} characters long"
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
    if name.starts_with('-') {
        return Err(invalid(format!(
            "user name {name:?} must not start with '-'"
        )));
    }
    if is_reserved(name) {
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

/// Password: 1..=128 characters, no control characters. Never quoted in a
/// message.
pub fn validate_password(name: &str, password: &str) -> Result<(), DatastoreError> {
    if password.is_empty() || password.chars().count() > MAX_PASSWORD {
        return Err(invalid(format!(
            "the password of user {name:?} must be 1 to {MAX_PASSWORD} characters long"
        )));
    }
    if password.chars().any(char::is_control) {
        return Err(invalid(format!(
            "the password of user {name:?} contains a control character"
        )));
    }
    Ok(())
}

/// A whole user spec; a user cannot be given databases on Redis.
pub fn validate_user(user: &UserSpec) -> Result<(), DatastoreError> {
    validate_name(&user.name)?;
    validate_host(&user.host)?;
    validate_password(&user.name, &user.password)?;
    if !user.databases.is_empty() {
        return Err(super::no_databases());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, password: &str) -> UserSpec {
        UserSpec {
            name: name.into(),
            password: password.into(),
            host: "%".into(),
            databases: vec![],
        }
    }

    #[test]
    fn names() {
        // "on" is no keyword to Redis in the name position.
        for ok in ["app", "app_1.x-y", "A", "on", &"u".repeat(64)] {
            validate_name(ok).unwrap();
        }
        for bad in [
            "",
            &"u".repeat(65),
            "default",
            "os_admin",
            "root",
            "ROOT",
            "Default",
            "a b",
            "-x",
            "x'; FLUSHALL",
            "app\n",
            ">pw",
            "~*",
        ] {
            let e = validate_name(bad).unwrap_err();
            assert!(matches!(e, DatastoreError::InvalidInput(_)), "{bad:?}");
        }
    }

    #[test]
    fn hosts_passwords_and_specs() {
        validate_host("%").unwrap();
        assert!(validate_host("10.0.0.1").is_err());
        assert!(validate_host("").is_err());
        // Spaces are fine: the password is one RESP argument, one rule.
        validate_password("u", "x on ~* +@all").unwrap();
        validate_password("u", &"p".repeat(128)).unwrap();
        assert!(validate_password("u", "").is_err());
        assert!(validate_password("u", &"p".repeat(129)).is_err());
        let e = validate_password("u", "hunter2\n").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");

        validate_user(&user("app", "secret")).unwrap();
        let mut u = user("app", "secret");
        u.databases = vec!["db".into()];
        assert!(matches!(
            validate_user(&u),
            Err(DatastoreError::NotSupported(_))
        ));
        let mut u = user("app", "secret");
        u.host = "localhost".into();
        assert!(matches!(
            validate_user(&u),
            Err(DatastoreError::InvalidInput(_))
        ));
    }

    #[test]
    fn rules() {
        let pw = vec![">x on ~* +@all".to_string()];
        assert_eq!(
            tenant_rules(false, &pw),
            [
                "reset",
                "on",
                "~*",
                "&*",
                "-@all",
                "+@all",
                "-@dangerous",
                ">x on ~* +@all"
            ]
        );
        assert_eq!(
            tenant_rules(true, &[]),
            [
                "reset",
                "on",
                "~*",
                "&*",
                "-@all",
                "+@all",
                "-@dangerous",
                "-@write"
            ]
        );
        assert_eq!(command_rules(false), ["-@all", "+@all", "-@dangerous"]);
        assert_eq!(
            root_rules("pw"),
            ["reset", "on", "~*", "&*", "+@all", ">pw"]
        );
    }
}
