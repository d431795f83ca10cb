//! The state dir holds the control plane's secrets (keys, the SQLite
//! metadata with every project's instances, a `coffer.toml` that may hold
//! credentials): nothing in it is for other local users, datastores
//! included. Every role creates its files owner-only (umask 077); at start
//! this check warns about anything there others can read, made by an older
//! release or by hand. Instance directories are the compute driver's and
//! are left out: it gives each instance's account exactly what it needs.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Files and directories created from now on are the owner's alone.
pub fn owner_only_from_now_on() {
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
}

/// Paths under `state_dir` (not under `skip`) that others may read or
/// write; each one is logged as a warning.
pub fn warn_about_open_files(state_dir: &Path, skip: &Path) -> Vec<PathBuf> {
    let open = open_to_others(state_dir, skip);
    for path in &open {
        tracing::warn!(
            "{} can be read by other local users: run `chmod go-rwx` on it",
            path.display()
        );
    }
    open
}

fn open_to_others(state_dir: &Path, skip: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![state_dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path == skip {
                continue;
            }
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.file_type().is_symlink() {
                continue;
            }
            // Directories may keep the search bit: it opens nothing by itself.
            let mode = meta.permissions().mode();
            let readable = mode & 0o044 != 0 || (meta.is_file() && mode & 0o022 != 0);
            let writable = mode & 0o022 != 0;
            if readable || writable {
                found.push(path.clone());
            }
            if meta.is_dir() {
                stack.push(path);
            }
        }
    }
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_what_others_can_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        let mode = |path: &Path, m| {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(m)).unwrap()
        };
        std::fs::write(p.join("coffer.db"), b"x").unwrap();
        mode(&p.join("coffer.db"), 0o644);
        std::fs::write(p.join("secret.key"), b"x").unwrap();
        mode(&p.join("secret.key"), 0o600);
        std::fs::create_dir(p.join("instances")).unwrap();
        std::fs::write(p.join("instances/agent.json"), b"x").unwrap();
        mode(&p.join("instances/agent.json"), 0o644);
        std::fs::create_dir(p.join("backups")).unwrap();
        mode(&p.join("backups"), 0o711);
        assert_eq!(
            warn_about_open_files(p, &p.join("instances")),
            vec![p.join("coffer.db")]
        );
    }
}
