//! Names, quoting and the SQL statements the MariaDB manager sends.
//!
//! Tenant-supplied names are validated first, then quoted, so a name that
//! passes validation is created literally whatever it contains.

use coffer_model::{DatabaseSpec, UserSpec};
use coffer_strategy::DatastoreError;

/// Longest database name MariaDB accepts.
pub const MAX_DATABASE_LEN: usize = 64;
/// Longest user name MariaDB accepts (since 10.0).
pub const MAX_USER_LEN: usize = 80;
/// Longest host part of an account MariaDB accepts.
pub const MAX_HOST_LEN: usize = 255;

/// The server's own databases: never listed, created or dropped for a
/// tenant (compared case-insensitively).
pub const SYSTEM_DATABASES: &[&str] = &["mysql", "information_schema", "performance_schema", "sys"];
/// Accounts a tenant may not create, change or see (compared
/// case-insensitively).
const RESERVED_USERS: &[&str] = &["root", "os_admin", "mariadb.sys", "mysql", "public"];

/// `name` as a backtick-quoted identifier (backticks doubled).
pub fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// `value` as a single-quoted string literal. A quote is doubled and a
/// backslash escaped: correct in the default SQL mode, and still no way out
/// of the literal under `NO_BACKSLASH_ESCAPES`.
pub fn quote_str(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
}

/// `'user'@'host'`.
pub fn account(user: &UserSpec) -> String {
    account_of(&user.name, &user.host)
}

/// `'name'@'host'`.
pub fn account_of(name: &str, host: &str) -> String {
    format!("{}@{}", quote_str(name), quote_str(host))
}

/// The database part of a GRANT: `_` and `%` are wildcards there, so they
/// (and the escape character itself) are escaped; a grant on `a_b` must not
/// also open `axb`.
pub fn grant_target(database: &str) -> String {
    format!("{}.*", quote_ident(&escape_grant_db(database)))
}

/// `database` as a grant names it, and as `mysql.db` stores it.
pub fn escape_grant_db(database: &str) -> String {
    database
        .replace('\\', "\\\\")
        .replace('_', "\\_")
        .replace('%', "\\%")
}

/// `CREATE DATABASE IF NOT EXISTS ...`.
pub fn create_database(db: &DatabaseSpec) -> String {
    format!("CREATE DATABASE IF NOT EXISTS {}", quote_ident(&db.name))
}

/// The statements that create `user` or set it again: it never exists
/// without its password, and a retry converges. Holds the password: never
/// log these.
pub fn user_statements(user: &UserSpec) -> Vec<String> {
    let acct = account(user);
    let pw = quote_str(&user.password);
    let mut out = vec![
        format!("CREATE USER IF NOT EXISTS {acct} IDENTIFIED BY {pw}"),
        format!("ALTER USER {acct} IDENTIFIED BY {pw}"),
    ];
    out.extend(
        user.databases
            .iter()
            .map(|db| format!("GRANT ALL PRIVILEGES ON {} TO {acct}", grant_target(db))),
    );
    out
}

/// What a statement does, without the secret it may hold: the text before
/// ` IDENTIFIED BY` (safe for errors and logs).
pub fn label(statement: &str) -> &str {
    statement
        .split(" IDENTIFIED BY ")
        .next()
        .unwrap_or(statement)
}

/// `SET GLOBAL read_only = ...`.
pub fn set_read_only(read_only: bool) -> String {
    format!(
        "SET GLOBAL read_only = {}",
        if read_only { "ON" } else { "OFF" }
    )
}

/// Check a database name: 1..=64 characters, printable, no surrounding
/// spaces, within the Basic Multilingual Plane, not a system schema.
pub fn validate_database(name: &str) -> Result<(), DatastoreError> {
    check_name("database name", name, MAX_DATABASE_LEN)?;
    check_reserved("database name", name, SYSTEM_DATABASES)
}

/// Check a user: its account, every database it is granted, and the
/// password. The password never appears in a message.
pub fn validate_user(user: &UserSpec) -> Result<(), DatastoreError> {
    validate_account(&user.name, &user.host)?;
    validate_password(&user.name, &user.password)?;
    user.databases
        .iter()
        .try_for_each(|db| validate_database(db))
}

/// Check an account: the name (1..=80 characters, not a system account)
/// and the host (no spaces).
pub fn validate_account(name: &str, host: &str) -> Result<(), DatastoreError> {
    check_name("user name", name, MAX_USER_LEN)?;
    check_reserved("user name", name, RESERVED_USERS)?;
    check_name("host", host, MAX_HOST_LEN)?;
    if host.chars().any(char::is_whitespace) {
        return Err(invalid(format!("host {host:?} must not contain spaces")));
    }
    Ok(())
}

/// Check the password of user `name`: non-empty, no control characters.
/// The password never appears in a message.
pub fn validate_password(name: &str, password: &str) -> Result<(), DatastoreError> {
    if password.is_empty() {
        return Err(invalid(format!("user {name:?} needs a password")));
    }
    if password.chars().any(char::is_control) {
        return Err(invalid(format!(
            "the password of user {name:?} contains a control character"
        )));
    }
    Ok(())
}

/// Whether `name` is a system account a tenant never sees.
pub fn is_reserved_user(name: &str) -> bool {
    RESERVED_USERS.iter().any(|r| r.eq_ignore_ascii_case(name))
}

fn check_name(what: &str, name: &str, max: usize) -> Result<(), DatastoreError> {
    let len = name.chars().count();
    if len == 0 || len > max {
        return Err(invalid(format!(
            "{what} {name:?} must be 1 to {max} characters long"
        )));
    }
    if name
        .chars()
        .any(|c| c.is_control() || u32::from(c) > 0xFFFF)
    {
        return Err(invalid(format!(
            "{what} {name:?} may only contain printable characters of the Basic Multilingual Plane"
        )));
    }
    if name.trim() != name {
        return Err(invalid(format!(
            "{what} {name:?} must not start or end with a space"
        )));
    }
    Ok(())
}

fn check_reserved(what: &str, name: &str, reserved: &[&str]) -> Result<(), DatastoreError> {
    if reserved.iter().any(|r| r.eq_ignore_ascii_case(name)) {
        return Err(invalid(format!("{what} {name:?} is reserved")));
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
    fn quoting() {
        assert_eq!(quote_ident("app"), "`app`");
        assert_eq!(quote_ident("we`ird'db"), "`we``ird'db`");
        assert_eq!(
            quote_ident("x`; DROP DATABASE app; --"),
            "`x``; DROP DATABASE app; --`"
        );
        assert_eq!(quote_str("it's"), "'it''s'");
        assert_eq!(quote_str(r"a\'b"), r"'a\\''b'");
        assert_eq!(
            quote_str("x'; DROP DATABASE app; --"),
            "'x''; DROP DATABASE app; --'"
        );
        assert_eq!(grant_target("a_b%c\\d"), r"`a\_b\%c\\d`.*");
        assert_eq!(grant_target("we`ird"), "`we``ird`.*");
    }

    #[test]
    fn statements() {
        let db = DatabaseSpec {
            name: "x'; DROP DATABASE app; --".into(),
        };
        assert_eq!(
            create_database(&db),
            "CREATE DATABASE IF NOT EXISTS `x'; DROP DATABASE app; --`"
        );
        let u = user("o'neil", "p'w\\", &["app", "my_db"]);
        assert_eq!(
            user_statements(&u),
            vec![
                r"CREATE USER IF NOT EXISTS 'o''neil'@'%' IDENTIFIED BY 'p''w\\'",
                r"ALTER USER 'o''neil'@'%' IDENTIFIED BY 'p''w\\'",
                "GRANT ALL PRIVILEGES ON `app`.* TO 'o''neil'@'%'",
                r"GRANT ALL PRIVILEGES ON `my\_db`.* TO 'o''neil'@'%'",
            ]
        );
        assert_eq!(label(&user_statements(&u)[1]), "ALTER USER 'o''neil'@'%'");
        assert_eq!(label("CREATE DATABASE `a`"), "CREATE DATABASE `a`");
        assert_eq!(set_read_only(true), "SET GLOBAL read_only = ON");
        assert_eq!(set_read_only(false), "SET GLOBAL read_only = OFF");
    }

    #[test]
    fn database_names() {
        for ok in [
            "app",
            "we`ird'db",
            "x'; DROP DATABASE app; --",
            "données",
            &"d".repeat(64),
        ] {
            validate_database(ok).unwrap();
        }
        for bad in ["", " app", "app ", "a\nb", "a\0b", "😀", &"d".repeat(65)] {
            assert!(
                matches!(validate_database(bad), Err(DatastoreError::InvalidInput(_))),
                "{bad:?}"
            );
        }
        for reserved in [
            "mysql",
            "MySQL",
            "information_schema",
            "performance_schema",
            "sys",
        ] {
            let e = validate_database(reserved).unwrap_err();
            assert!(e.to_string().contains("is reserved"), "{e}");
        }
    }

    #[test]
    fn users() {
        validate_user(&user("app", "secret", &["app"])).unwrap();
        validate_user(&user(&"u".repeat(80), "s", &[])).unwrap();
        for name in [
            "root",
            "ROOT",
            "os_admin",
            "mariadb.sys",
            "",
            &"u".repeat(81),
        ] {
            assert!(validate_user(&user(name, "s", &[])).is_err(), "{name:?}");
        }
        assert!(validate_user(&user("app", "", &[])).is_err());
        assert!(validate_user(&user("app", "s", &["mysql"])).is_err());
        let e = validate_user(&user("app", "hunter2\n", &[])).unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let mut u = user("app", "s", &[]);
        u.host = "10.0.0.%".into();
        validate_user(&u).unwrap();
        u.host = "a b".into();
        assert!(validate_user(&u).is_err());
    }
}
