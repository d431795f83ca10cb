//! Checks on user-supplied names that hold for every datastore.

use thiserror::Error;

/// Longest instance name accepted (Trove's column is 255 wide).
pub const MAX_NAME_LEN: usize = 255;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum NameError {
    #[error("{what} must not be empty")]
    Empty { what: &'static str },
    #[error("{what} is longer than {max} characters")]
    TooLong { what: &'static str, max: usize },
    #[error("{what} contains a control character")]
    Control { what: &'static str },
}

/// A display name: non-empty, at most `max` characters, no control characters.
pub fn validate_name(what: &'static str, name: &str, max: usize) -> Result<(), NameError> {
    if name.trim().is_empty() {
        return Err(NameError::Empty { what });
    }
    if name.chars().count() > max {
        return Err(NameError::TooLong { what, max });
    }
    if name.chars().any(char::is_control) {
        return Err(NameError::Control { what });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name("name", "db1", 255).is_ok());
        assert_eq!(
            validate_name("name", " ", 255),
            Err(NameError::Empty { what: "name" })
        );
        assert!(matches!(
            validate_name("name", &"x".repeat(256), 255),
            Err(NameError::TooLong { .. })
        ));
        assert!(matches!(
            validate_name("name", "a\nb", 255),
            Err(NameError::Control { .. })
        ));
    }
}

/// A database or user name as the API accepts it before any datastore sees
/// it: 1 to 64 characters from `A-Z a-z 0-9 _ - $`. Datastore managers
/// check their own rules (reserved names) and quote everything anyway.
pub fn validate_identifier(what: &'static str, name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err(format!("{what} {name:?} must be 1 to 64 characters long"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '$')))
    {
        return Err(format!(
            "{what} {name:?} contains {c:?}; use letters, digits, '_', '-' or '$'"
        ));
    }
    Ok(())
}

/// A password: 1 to 128 characters, no control characters.
pub fn validate_password(user: &str, password: &str) -> Result<(), String> {
    if password.is_empty() || password.chars().count() > 128 {
        return Err(format!(
            "the password of user {user:?} must be 1 to 128 characters long"
        ));
    }
    if password.chars().any(char::is_control) {
        return Err(format!(
            "the password of user {user:?} contains a control character"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod identifier_tests {
    use super::*;

    #[test]
    fn identifiers() {
        assert!(validate_identifier("database", "app_1-x$").is_ok());
        assert!(validate_identifier("database", "x'; DROP DATABASE app; --").is_err());
        assert!(validate_identifier("database", "").is_err());
        assert!(validate_identifier("database", &"a".repeat(65)).is_err());
        assert!(validate_password("u", "s3cret pass!").is_ok());
        assert!(validate_password("u", "").is_err());
        assert!(validate_password("u", "a\u{0}b").is_err());
    }
}
