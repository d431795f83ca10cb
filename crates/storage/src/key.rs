//! What a key may be, and which stored names are not objects.
//!
//! Keys are relative paths of `/`-separated names. They are checked here
//! once so that every backend sees the same thing: an empty name, `.` or
//! `..`, or a leading `/` would mean different places on a filesystem and
//! in an object store. Names starting with `.partial/` (fs) and
//! `.segments/` (Swift's large-object parts) hold pieces of objects, never
//! objects: they are refused as keys and skipped by listings.

use crate::StorageError;

/// `fs::PARTIAL_DIR` and `swift::SEGMENTS`, as directories.
const RESERVED: [&str; 2] = [".partial/", crate::swift::SEGMENTS];

/// Check an object key.
pub(crate) fn check(key: &str) -> Result<(), StorageError> {
    let bad = |why: &str| Err(StorageError::Config(format!("object key {key:?} {why}")));
    if key.is_empty() || key.ends_with('/') {
        return bad("must name an object");
    }
    check_prefix(key)
}

/// Check a listing prefix: a key, a key's start, or empty for everything.
pub(crate) fn check_prefix(prefix: &str) -> Result<(), StorageError> {
    let bad = |why: &str| Err(StorageError::Config(format!("key {prefix:?} {why}")));
    if prefix.starts_with('/') {
        return bad("must not start with '/'");
    }
    if prefix.contains('\0') {
        return bad("must not contain NUL");
    }
    let names: Vec<&str> = prefix.split('/').collect();
    let last = names.len() - 1;
    for (i, name) in names.iter().enumerate() {
        // The last name of a prefix may be empty ("a/") or partial ("a/b").
        if (name.is_empty() && i != last) || *name == "." || *name == ".." {
            return bad("must not have empty, '.' or '..' names");
        }
    }
    if is_hidden(prefix) {
        return bad("is reserved for partial objects");
    }
    Ok(())
}

/// Whether a stored name is part of an object rather than an object.
pub(crate) fn is_hidden(path: &str) -> bool {
    RESERVED.iter().any(|r| path.starts_with(r))
}

/// The directory to list for `prefix` (up to its last `/`): listing is by
/// directory in OpenDAL, by string prefix here.
pub(crate) fn dir_of(prefix: &str) -> &str {
    match prefix.rfind('/') {
        Some(i) => &prefix[..=i],
        None => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        for ok in ["a", "a/b.cbk", "2024/x/y", "a.b"] {
            assert!(check(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/a",
            "a/",
            "a//b",
            "./a",
            "a/../b",
            ".segments/x",
            ".partial/y",
        ] {
            assert!(check(bad).is_err(), "{bad}");
        }
        for ok in ["", "a/", "a/b", "a"] {
            assert!(check_prefix(ok).is_ok(), "{ok}");
        }
        assert_eq!(dir_of("a/b/c"), "a/b/");
        assert_eq!(dir_of("a/"), "a/");
        assert_eq!(dir_of("abc"), "");
    }
}
