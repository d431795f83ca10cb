//! Quoting and the SQL statements the PostgreSQL manager sends.
//!
//! Tenant-supplied names are validated first (`names`), then quoted, so a
//! name that passes validation is created literally whatever it contains.
//! The admin connection forces `standard_conforming_strings = on`, so
//! inside a string literal only the quote itself needs doubling.

pub use super::names::{
    validate_database, validate_host, validate_password, validate_user, validate_user_name,
};

/// The only host a user may have: PostgreSQL roles are not per host.
pub const ANY_HOST: &str = "%";
/// The superuser that `enable_root` opens to the network.
pub const ROOT_USER: &str = "postgres";
/// The system databases, never listed and never touched for tenants.
pub const SYSTEM_DATABASES: &[&str] = &["postgres", "template0", "template1"];

/// `name` as a double-quoted identifier (double quotes doubled).
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `value` as a single-quoted string literal (single quotes doubled; a
/// backslash is an ordinary character with standard-conforming strings).
pub fn quote_str(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// `CREATE DATABASE ...`.
pub fn create_database(name: &str) -> String {
    format!("CREATE DATABASE {}", quote_ident(name))
}

/// Only granted users may connect to a tenant database (PostgreSQL lets
/// PUBLIC connect to a new database by default).
pub fn revoke_public(database: &str) -> String {
    format!(
        "REVOKE ALL ON DATABASE {} FROM PUBLIC",
        quote_ident(database)
    )
}

/// The attributes every tenant role gets: it logs in, and is nothing more.
const TENANT_ATTRIBUTES: &str =
    "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS";

/// `CREATE ROLE` for a tenant user. Holds the password: never log it.
pub fn create_role(name: &str, password: &str) -> String {
    format!(
        "CREATE ROLE {} WITH {TENANT_ATTRIBUTES} PASSWORD {}",
        quote_ident(name),
        quote_str(password)
    )
}

/// `ALTER ROLE` setting a tenant user's attributes and password again, so
/// a retried create converges. Holds the password: never log it.
pub fn reset_role(name: &str, password: &str) -> String {
    format!(
        "ALTER ROLE {} WITH {TENANT_ATTRIBUTES} PASSWORD {}",
        quote_ident(name),
        quote_str(password)
    )
}

/// `ALTER ROLE ... PASSWORD`. Holds the password: never log it.
pub fn set_password(name: &str, password: &str) -> String {
    format!(
        "ALTER ROLE {} WITH PASSWORD {}",
        quote_ident(name),
        quote_str(password)
    )
}

/// `ALTER ROLE ... RENAME TO ...`.
pub fn rename_role(from: &str, to: &str) -> String {
    format!(
        "ALTER ROLE {} RENAME TO {}",
        quote_ident(from),
        quote_ident(to)
    )
}

/// Database-level grant: CONNECT, CREATE (schemas) and TEMPORARY.
pub fn grant_database(database: &str, user: &str) -> String {
    format!(
        "GRANT ALL PRIVILEGES ON DATABASE {} TO {}",
        quote_ident(database),
        quote_ident(user)
    )
}

/// The reverse of `grant_database`.
pub fn revoke_database(database: &str, user: &str) -> String {
    format!(
        "REVOKE ALL PRIVILEGES ON DATABASE {} FROM {}",
        quote_ident(database),
        quote_ident(user)
    )
}

/// Run inside the database: PostgreSQL 15 no longer lets PUBLIC create in
/// the `public` schema, so a granted user needs this to create tables.
pub fn grant_schema(user: &str) -> String {
    format!("GRANT ALL ON SCHEMA public TO {}", quote_ident(user))
}

/// The reverse of `grant_schema`.
pub fn revoke_schema(user: &str) -> String {
    format!("REVOKE ALL ON SCHEMA public FROM {}", quote_ident(user))
}

/// What a statement does, without the secret it may hold: the text before
/// ` PASSWORD ` (safe for errors and logs).
pub fn label(statement: &str) -> &str {
    statement.split(" PASSWORD ").next().unwrap_or(statement)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("app"), "\"app\"");
        assert_eq!(quote_ident("we\"ird'db"), "\"we\"\"ird'db\"");
        assert_eq!(
            quote_ident("x'; DROP DATABASE app; --"),
            "\"x'; DROP DATABASE app; --\""
        );
        assert_eq!(quote_str("it's"), "'it''s'");
        assert_eq!(quote_str(r"a\'b"), r"'a\''b'");
        assert_eq!(
            quote_str("x'; DROP DATABASE app; --"),
            "'x''; DROP DATABASE app; --'"
        );
    }

    #[test]
    fn statements() {
        assert_eq!(
            create_database("x\"; DROP DATABASE app; --"),
            "CREATE DATABASE \"x\"\"; DROP DATABASE app; --\""
        );
        assert_eq!(
            revoke_public("app"),
            "REVOKE ALL ON DATABASE \"app\" FROM PUBLIC"
        );
        let create = create_role("o'ne\"il", "p'w\\");
        assert_eq!(
            create,
            "CREATE ROLE \"o'ne\"\"il\" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE \
             NOREPLICATION NOBYPASSRLS PASSWORD 'p''w\\'"
        );
        assert!(!label(&create).contains("p''w"));
        assert!(label(&reset_role("a", "s")).starts_with("ALTER ROLE \"a\" WITH LOGIN"));
        assert_eq!(label(&set_password("a", "s")), "ALTER ROLE \"a\" WITH");
        assert_eq!(
            rename_role("a", "b\""),
            "ALTER ROLE \"a\" RENAME TO \"b\"\"\""
        );
        assert_eq!(
            grant_database("app", "u"),
            "GRANT ALL PRIVILEGES ON DATABASE \"app\" TO \"u\""
        );
        assert_eq!(
            revoke_database("app", "u"),
            "REVOKE ALL PRIVILEGES ON DATABASE \"app\" FROM \"u\""
        );
        assert_eq!(grant_schema("u"), "GRANT ALL ON SCHEMA public TO \"u\"");
        assert_eq!(revoke_schema("u"), "REVOKE ALL ON SCHEMA public FROM \"u\"");
    }
}
