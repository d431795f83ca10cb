//! The OS account the server runs as, and the file permissions it needs:
//! the instance's own account in its sandbox, else Debian's `postgres`.
//! PostgreSQL refuses to run as root, while the agent is root.

use anyhow::{anyhow, Context};
use coffer_strategy::DatastoreError;
use coffer_strategy::InstanceContext;
use std::fs::Permissions;
use std::os::unix::fs::{lchown, PermissionsExt};
use std::path::Path;
use tokio::process::Command;

/// The OS account of the server and its tools (Debian's `postgres`).
pub const OS_USER: &str = "postgres";

/// Numeric ids of the OS account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OsUser {
    pub uid: u32,
    pub gid: u32,
}

/// The sandbox's account, or (unconfined) `OS_USER` looked up in
/// /etc/passwd (Debian's postgresql-common creates it there as a system
/// account).
pub fn os_user(ctx: &InstanceContext) -> Result<OsUser, DatastoreError> {
    if let Some(sandbox) = &ctx.sandbox {
        return Ok(OsUser {
            uid: sandbox.uid,
            gid: sandbox.gid,
        });
    }
    let passwd = std::fs::read_to_string("/etc/passwd").context("reading /etc/passwd")?;
    parse_passwd(&passwd, OS_USER).ok_or_else(|| {
        anyhow!("no OS user {OS_USER:?} in /etc/passwd: install postgresql-15 (apt-get install postgresql-15)").into()
    })
}

fn parse_passwd(passwd: &str, name: &str) -> Option<OsUser> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next()? == name).then_some(())?;
        let _password = fields.next()?;
        let uid = fields.next()?.parse().ok()?;
        let gid = fields.next()?.parse().ok()?;
        Some(OsUser { uid, gid })
    })
}

/// A command running `program` in the instance's sandbox, or (unconfined)
/// as `OS_USER`. `setpriv` execs the program, so the spawned pid is the
/// program's own. Either way the environment is emptied (no PG* variable
/// or locale of the agent leaks in) and the working directory is `/`,
/// which the account can always enter.
pub fn command(ctx: &InstanceContext, program: &Path) -> Command {
    if ctx.sandbox.is_some() {
        return crate::sandbox::command(ctx, program);
    }
    let mut cmd = Command::new("setpriv");
    cmd.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .current_dir("/")
        .args([
            "--reuid",
            OS_USER,
            "--regid",
            OS_USER,
            "--init-groups",
            "--",
        ])
        .arg(program);
    cmd
}

/// Create `dir` if missing, give it to `user` and set `mode`.
pub fn own_dir(dir: &Path, user: OsUser, mode: u32) -> Result<(), DatastoreError> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    // The instance directory's links to its volume lead to the real ones.
    let dir = &crate::files::trusted_target(dir);
    own_path(dir, user)?;
    std::fs::set_permissions(dir, Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", dir.display()))?;
    Ok(())
}

/// Give the file or directory `path` (the link itself, if it is one: never
/// what it points to) to `user`.
pub fn own_path(path: &Path, user: OsUser) -> Result<(), DatastoreError> {
    lchown(path, Some(user.uid), Some(user.gid))
        .with_context(|| format!("giving {} to uid {}", path.display(), user.uid))?;
    Ok(())
}

/// Make every directory above `dir` searchable by others (`o+x`), so
/// that the `postgres` account can reach `dir`: the instance directory and
/// its parents belong to root and may be mode 0700 (a test's tempdir, the
/// compute driver's instance directory). Only the search bit is added,
/// never read or write: others can open a path they already know, not list
/// or change anything. `dir` itself is left alone (a data directory must
/// stay 0700), and so are the agent's own directories beside it (such as
/// `secret_dir`, which stays 0700 and closed). Both the path as given and
/// its resolved form are walked, so a symlinked component is covered too.
pub fn allow_traversal(dir: &Path) -> Result<(), DatastoreError> {
    let resolved =
        std::fs::canonicalize(dir).with_context(|| format!("resolving {}", dir.display()))?;
    for d in dir.ancestors().skip(1).chain(resolved.ancestors().skip(1)) {
        if !d.as_os_str().is_empty() {
            add_search_bit(d)?;
        }
    }
    Ok(())
}

/// Add `o+x` to the directory `dir` if it lacks it.
pub fn add_search_bit(dir: &Path) -> Result<(), DatastoreError> {
    let meta = std::fs::metadata(dir).with_context(|| format!("reading {}", dir.display()))?;
    let mode = meta.permissions().mode();
    if meta.is_dir() && mode & 0o001 == 0 {
        tracing::info!(
            "adding o+x to {} so that {OS_USER} can reach the instance",
            dir.display()
        );
        std::fs::set_permissions(dir, Permissions::from_mode((mode & 0o7777) | 0o001))
            .with_context(|| format!("adding o+x to {}", dir.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn passwd_lines() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n\
                      postgres:x:101:104:PostgreSQL administrator,,,:/var/lib/postgresql:/bin/bash\n";
        assert_eq!(
            parse_passwd(passwd, "postgres"),
            Some(OsUser { uid: 101, gid: 104 })
        );
        assert_eq!(parse_passwd(passwd, "post"), None);
        assert_eq!(parse_passwd("postgres:x:oops:1\n", "postgres"), None);
    }

    #[test]
    fn traversal_adds_only_the_search_bit() {
        let top = tempfile::tempdir().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o7777;
        std::fs::set_permissions(top.path(), Permissions::from_mode(0o700)).unwrap();
        let inner = top.path().join("a/b");
        std::fs::create_dir_all(&inner).unwrap();
        std::fs::set_permissions(top.path().join("a"), Permissions::from_mode(0o750)).unwrap();
        std::fs::set_permissions(&inner, Permissions::from_mode(0o700)).unwrap();
        allow_traversal(&inner).unwrap();
        assert_eq!(mode(top.path()), 0o701);
        assert_eq!(mode(&top.path().join("a")), 0o751);
        assert_eq!(mode(&inner), 0o700, "the directory itself is left alone");
        add_search_bit(&inner).unwrap();
        assert_eq!(mode(&inner), 0o701);
    }
}
