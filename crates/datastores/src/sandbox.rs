//! Every process of a datastore starts here: as the agent's own user when
//! the instance has no sandbox, else inside it (`InstanceContext::sandbox`):
//!
//! 1. a shell (still root) writes its pid into the instance's cgroups, so
//!    the flavor's memory, CPU and process limits bind it and all it forks;
//! 2. `setpriv` drops to the instance's own uid and gid, with no
//!    supplementary groups and no way to gain privileges again (setuid
//!    programs included);
//! 3. `bwrap`, unprivileged, makes the mount namespace: the host read-only,
//!    a private /tmp, /var/tmp, /run and /dev, every hidden path (all
//!    instances, the control plane's state, home directories, the host's
//!    database servers' data) an empty tmpfs it may not list, and only this instance's data, run, log and scratch
//!    directories bound back writable (its configuration read-only). No
//!    capabilities, no nested user namespaces, its own IPC namespace and
//!    session. The network and the pid namespace are the host's: servers
//!    write pid files the agent reads, and listen on the instance's
//!    loopback address.
//!
//! The agent's own files (its configuration with the bus token, `secret/`)
//! are not bound, and are root's 0600/0700 besides.

use anyhow::Context;
use coffer_strategy::{DatastoreError, InstanceContext};
use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use tokio::process::Command;

/// PATH inside: the system's programs only.
const PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// Joins the cgroups named before `--` (writing its own pid, which exec
/// keeps), then execs the rest.
const JOIN_CGROUPS: &str = r#"while [ "$#" -gt 0 ] && [ "$1" != -- ]; do echo "$$" > "$1" || exit 125; shift; done; shift; exec "$@""#;

/// Paths always private inside: fresh, empty and writable.
const PRIVATE: &[&str] = &["/tmp", "/var/tmp", "/run"];

/// A command running `program` for the instance: inside its sandbox when
/// it has one, else plainly. Callers add the program's arguments.
pub(crate) fn command(ctx: &InstanceContext, program: impl AsRef<OsStr>) -> Command {
    let Some(sandbox) = &ctx.sandbox else {
        return Command::new(program);
    };
    let mut cmd = Command::new("sh");
    cmd.env_clear()
        .env("PATH", PATH)
        .current_dir("/")
        .arg("-c")
        .arg(JOIN_CGROUPS)
        .arg("coffer-sandbox");
    for cgroup in &sandbox.cgroups {
        cmd.arg(cgroup.join("cgroup.procs"));
    }
    cmd.arg("--")
        .arg("setpriv")
        .arg(format!("--reuid={}", sandbox.uid))
        .arg(format!("--regid={}", sandbox.gid))
        .args(["--clear-groups", "--no-new-privs", "--", "bwrap"])
        .args(bwrap_args(ctx))
        .arg("--")
        .arg(program);
    cmd
}

/// The mount namespace and the rest of bubblewrap's options.
fn bwrap_args(ctx: &InstanceContext) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = Vec::new();
    let mut push = |words: &[&OsStr]| args.extend(words.iter().map(|w| w.to_os_string()));
    push(&["--ro-bind".as_ref(), "/".as_ref(), "/".as_ref()]);
    push(&["--dev".as_ref(), "/dev".as_ref()]);
    push(&["--proc".as_ref(), "/proc".as_ref()]);
    for p in PRIVATE {
        push(&["--tmpfs".as_ref(), p.as_ref()]);
    }
    let sandbox = ctx.sandbox.as_ref().expect("only called with a sandbox");
    // Search only: the instance reaches its own directories (bound below)
    // through them, but listing or reading anything else there fails.
    for hidden in sandbox.hidden.iter().filter(|p| p.exists()) {
        push(&[
            "--perms".as_ref(),
            "0111".as_ref(),
            "--tmpfs".as_ref(),
            hidden.as_os_str(),
        ]);
    }
    if ctx.conf_dir.exists() {
        push(&[
            "--ro-bind".as_ref(),
            ctx.conf_dir.as_os_str(),
            ctx.conf_dir.as_os_str(),
        ]);
    }
    for dir in writable_dirs(ctx).iter().filter(|d| d.exists()) {
        push(&["--bind".as_ref(), dir.as_os_str(), dir.as_os_str()]);
    }
    for word in [
        "--unshare-user",
        "--disable-userns",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--new-session",
        "--cap-drop",
        "ALL",
        "--chdir",
        "/",
    ] {
        push(&[word.as_ref()]);
    }
    args
}

/// The directories the datastore writes.
fn writable_dirs(ctx: &InstanceContext) -> Vec<PathBuf> {
    let mut dirs = vec![
        ctx.data_dir.clone(),
        ctx.run_dir.clone(),
        ctx.log_dir.clone(),
        server_conf_dir(ctx),
    ];
    if let Some(sandbox) = &ctx.sandbox {
        dirs.extend(sandbox.writable.iter().cloned());
    }
    dirs
}

/// Configuration the server itself rewrites (Redis's ACL file): the one
/// part of `conf_dir` it may write.
pub(crate) fn server_conf_dir(ctx: &InstanceContext) -> PathBuf {
    ctx.conf_dir.join("server")
}

/// Create `dir` if missing, with `mode`, owned by the account the
/// datastore runs as (the sandbox's; left to the agent's user without
/// one). Never follows a symlink the datastore may have put there.
pub(crate) fn server_dir(
    ctx: &InstanceContext,
    dir: &Path,
    mode: u32,
) -> Result<(), DatastoreError> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    // The instance directory's links to its volume lead to the real ones.
    let dir = &crate::files::trusted_target(dir);
    give(ctx, dir)?;
    let meta =
        std::fs::symlink_metadata(dir).with_context(|| format!("reading {}", dir.display()))?;
    if !meta.is_dir() {
        return Err(anyhow::anyhow!("{} is not a directory", dir.display()).into());
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", dir.display()))?;
    Ok(())
}

/// Give `path` (a file or directory the agent made for the datastore) to
/// the sandbox's account; nothing without a sandbox. The link itself, if
/// `path` is one: never what it points to.
pub(crate) fn give(ctx: &InstanceContext, path: &Path) -> Result<(), DatastoreError> {
    if let Some(sandbox) = &ctx.sandbox {
        std::os::unix::fs::lchown(path, Some(sandbox.uid), Some(sandbox.gid))
            .with_context(|| format!("giving {} to {}", path.display(), sandbox.user))?;
    }
    Ok(())
}

/// Where secrets for the datastore's own tools go (a defaults file, an
/// init file with a password): readable by the account the tools run as,
/// so the sandbox's run directory when there is one (`secret_dir` is the
/// agent's alone), else `secret_dir`.
pub(crate) fn tool_secret_dir(ctx: &InstanceContext) -> PathBuf {
    match ctx.sandbox {
        Some(_) => ctx.run_dir.join("secret"),
        None => ctx.secret_dir.clone(),
    }
}

/// Write `contents` to `path` (in [`tool_secret_dir`]) as a 0600 file of
/// the account the tools run as.
pub(crate) fn write_tool_secret(
    ctx: &InstanceContext,
    path: &Path,
    contents: &[u8],
) -> Result<(), DatastoreError> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    server_dir(ctx, dir, 0o700)?;
    crate::files::write_atomic(path, contents, 0o600)?;
    give(ctx, path)
}

/// A [`SecretFile`](crate::files::SecretFile) in [`tool_secret_dir`],
/// owned by the account the tools run as.
pub(crate) fn tool_secret_file(
    ctx: &InstanceContext,
    stem: &str,
    ext: &str,
    contents: &[u8],
) -> Result<crate::files::SecretFile, DatastoreError> {
    let dir = tool_secret_dir(ctx);
    server_dir(ctx, &dir, 0o700)?;
    let file = crate::files::SecretFile::create(&dir, stem, ext, contents)?;
    give(ctx, file.path())?;
    Ok(file)
}

/// Make the configuration directory: the agent's alone without a
/// sandbox (0700); with one, searchable by the datastore's account but
/// not listable or writable (0711), its files readable through their group.
pub(crate) fn config_dir(ctx: &InstanceContext) -> Result<(), DatastoreError> {
    let mode = if ctx.sandbox.is_some() { 0o711 } else { 0o700 };
    std::fs::create_dir_all(&ctx.conf_dir)
        .with_context(|| format!("creating {}", ctx.conf_dir.display()))?;
    std::fs::set_permissions(&ctx.conf_dir, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", ctx.conf_dir.display()))?;
    Ok(())
}

/// Replace a private configuration file the server reads: 0600 without a
/// sandbox; with one, 0640 in the group of the datastore's account (which
/// can read it, never write it).
pub(crate) fn write_config(
    ctx: &InstanceContext,
    path: &Path,
    contents: &[u8],
) -> Result<(), DatastoreError> {
    let Some(sandbox) = &ctx.sandbox else {
        crate::files::write_atomic(path, contents, 0o600)?;
        return Ok(());
    };
    crate::files::write_atomic(path, contents, 0o640)?;
    std::os::unix::fs::lchown(path, None, Some(sandbox.gid))
        .with_context(|| format!("giving {} to group {}", path.display(), sandbox.gid))?;
    Ok(())
}

/// Lay out the instance's directories for its datastore: data, run, log
/// and scratch owned by the datastore's account (0700), the
/// configuration root's (0711: reached by name, never listed), and the
/// server's own part of it the account's. Called by the agent at its start.
pub fn prepare(ctx: &InstanceContext) -> Result<(), DatastoreError> {
    let Some(_) = &ctx.sandbox else {
        return Ok(());
    };
    config_dir(ctx)?;
    for dir in writable_dirs(ctx) {
        server_dir(ctx, &dir, 0o700)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use coffer_model::{InstanceId, Sandbox};

    fn ctx(sandbox: Option<Sandbox>) -> InstanceContext {
        let base = Path::new("/srv/i/1");
        InstanceContext {
            instance_id: InstanceId::new(),
            data_dir: base.join("data"),
            conf_dir: base.join("conf"),
            run_dir: base.join("run"),
            log_dir: base.join("log"),
            secret_dir: base.join("secret"),
            ip: "127.0.0.1".parse().unwrap(),
            port: 1,
            ram_mb: 512,
            volume_size_bytes: 0,
            overrides: Default::default(),
            sandbox,
        }
    }

    #[test]
    fn unconfined_without_a_sandbox() {
        let cmd = command(&ctx(None), "mariadbd");
        assert_eq!(cmd.as_std().get_program(), "mariadbd");
    }

    #[test]
    fn confined_with_one() {
        let sandbox = Sandbox {
            user: "coffer-70001".into(),
            uid: 70001,
            gid: 70002,
            cgroups: vec!["/sys/fs/cgroup/memory/coffer/x".into()],
            hidden: vec!["/".into()],
            writable: vec![],
        };
        let cmd = command(&ctx(Some(sandbox)), "mariadbd");
        let args: Vec<String> = cmd
            .as_std()
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let at = |w: &str| {
            args.iter()
                .position(|a| a == w)
                .unwrap_or_else(|| panic!("{w} in {args:?}"))
        };
        assert_eq!(args[3], "/sys/fs/cgroup/memory/coffer/x/cgroup.procs");
        assert!(at("--") < at("setpriv") && at("setpriv") < at("bwrap"));
        assert!(args.contains(&"--reuid=70001".to_string()));
        assert!(args.contains(&"--regid=70002".to_string()));
        assert!(args.contains(&"--no-new-privs".to_string()));
        assert!(args.contains(&"--disable-userns".to_string()));
        assert_eq!(args.last().unwrap(), "mariadbd");
        // The hidden "/" exists and is covered; the instance's directories
        // do not exist here, so nothing is bound.
        assert!(!args.contains(&"--bind".to_string()));
        assert_eq!(cmd.as_std().get_envs().count(), 1, "only PATH");
    }
}
