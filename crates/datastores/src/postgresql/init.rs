//! `initialize`: a fresh data directory whose bootstrap superuser is the
//! agent's own role, with a generated password.

use super::admin::ADMIN_USER;
use super::os_user::{
    add_search_bit, allow_traversal, command, os_user, own_dir, own_path, OsUser,
};
use super::paths::Paths;
use super::server;
use super::BIN_DIR;
use crate::files::{clear_dir, ensure_private_dir, write_atomic, RemoveOnDrop};
use crate::process::run;
use anyhow::{anyhow, Context};
use coffer_strategy::{DatastoreError, InstanceContext};
use rand::distributions::{Alphanumeric, DistString};
use std::path::Path;
use std::time::Duration;

/// Length of generated passwords (alphanumeric: ~190 bits).
pub const PASSWORD_LEN: usize = 32;
/// initdb takes a fraction of a second; allow for a slow disk.
const INITDB_TIMEOUT: Duration = Duration::from_secs(120);

/// A new random password.
pub fn generate_password() -> String {
    Alphanumeric.sample_string(&mut rand::thread_rng(), PASSWORD_LEN)
}

/// Make `data_dir` an initialised data directory, unless the marker says it
/// already is. Anything else found there (a crash mid-way) is wiped first.
pub async fn initialize(ctx: &InstanceContext, paths: &Paths) -> Result<(), DatastoreError> {
    if paths.marker.exists() {
        if paths.password.exists() {
            return Ok(());
        }
        return Err(anyhow!(
            "{} is initialised but the admin password {} is missing",
            ctx.data_dir.display(),
            paths.password.display()
        )
        .into());
    }
    if let Some(pid) = server::running_pid(paths) {
        return Err(anyhow!(
            "refusing to wipe {}: a server (pid {pid}) runs on it without the initialised marker",
            ctx.data_dir.display()
        )
        .into());
    }
    let user = os_user(ctx)?;
    if ctx.data_dir.exists() {
        tracing::info!(instance = %ctx.instance_id, "wiping half-initialised {}", ctx.data_dir.display());
        clear_dir(&ctx.data_dir)?;
    }
    // initdb wants an empty directory it owns, mode 0700.
    own_dir(&ctx.data_dir, user, 0o700)?;
    prepare_dirs(ctx, paths, user)?;
    ensure_private_dir(&ctx.secret_dir)?;

    let password = generate_password();
    write_atomic(&paths.password, password.as_bytes(), 0o600)?;
    // The password reaches initdb through a file only it can read (never a
    // command line); the file is gone when this function returns.
    write_atomic(&paths.pwfile, password.as_bytes(), 0o600)?;
    let remove_pwfile = RemoveOnDrop(&paths.pwfile);
    own_path(&paths.pwfile, user)?;

    let mut cmd = command(ctx, &Path::new(BIN_DIR).join("initdb"));
    cmd.arg(format!("--pgdata={}", ctx.data_dir.display()))
        .arg(format!("--username={ADMIN_USER}"))
        .arg(format!("--pwfile={}", paths.pwfile.display()))
        .args([
            "--auth-local=scram-sha-256",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            "--data-checksums",
            "--no-instructions",
        ]);
    let started = std::time::Instant::now();
    run(cmd, "initdb", INITDB_TIMEOUT, &[&password]).await?;
    drop(remove_pwfile);

    write_atomic(&paths.marker, b"postgresql\n", 0o600)?;
    own_path(&paths.marker, user)?;
    tracing::info!(instance = %ctx.instance_id, elapsed = ?started.elapsed(), "PostgreSQL data directory initialised");
    Ok(())
}

/// Give the server the directories it writes (sockets, logs) and let it
/// reach every directory it reads; done before initdb and before every
/// start (the run directory may be new after a reboot).
pub fn prepare_dirs(
    ctx: &InstanceContext,
    paths: &Paths,
    user: OsUser,
) -> Result<(), DatastoreError> {
    own_dir(&paths.run_dir, user, 0o700)?;
    own_dir(&paths.log_dir, user, 0o700)?;
    std::fs::create_dir_all(&ctx.conf_dir)
        .with_context(|| format!("creating {}", ctx.conf_dir.display()))?;
    for dir in [&ctx.data_dir, &ctx.run_dir, &ctx.log_dir, &ctx.conf_dir] {
        allow_traversal(dir)?;
    }
    // The server reads its configuration files (0644) by name.
    add_search_bit(&ctx.conf_dir)
}
