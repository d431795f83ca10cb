//! `initialize`: a fresh data directory, the agent's admin password and the
//! initial ACL file. Redis needs no bootstrap tool: an empty `dir` is a new
//! dataset.

use super::config::initial_acl;
use super::paths::Paths;
use super::server;
use crate::files::{clear_dir, ensure_private_dir, write_atomic};
use crate::sandbox::{give, server_dir};
use anyhow::{anyhow, Context};
use coffer_strategy::{DatastoreError, InstanceContext};
use rand::distributions::{Alphanumeric, DistString};

/// Length of the generated admin password (alphanumeric: ~190 bits).
pub const PASSWORD_LEN: usize = 32;

/// A new generated password.
pub fn generate_password() -> String {
    Alphanumeric.sample_string(&mut rand::thread_rng(), PASSWORD_LEN)
}

/// Make `data_dir` an initialised data directory, unless the marker says it
/// already is. Anything else found there (a crash mid-way) is wiped first.
pub async fn initialize(ctx: &InstanceContext, paths: &Paths) -> Result<(), DatastoreError> {
    if paths.marker.exists() {
        return check_initialized(ctx, paths);
    }
    if let Some(pid) = server::running_pid(paths) {
        return Err(anyhow!(
            "refusing to wipe {}: a server (pid {pid}) runs on it without the initialised marker",
            ctx.data_dir.display()
        )
        .into());
    }
    if ctx.data_dir.exists() {
        tracing::info!(instance = %ctx.instance_id, "wiping half-initialised {}", ctx.data_dir.display());
        clear_dir(&ctx.data_dir)?;
    }
    // Tenant data (AOF, RDB) is for the server only.
    server_dir(ctx, &ctx.data_dir, 0o700)?;
    ensure_private_dir(&ctx.secret_dir)?;
    conf_dirs(ctx, paths)?;

    let password = generate_password();
    write_atomic(&paths.password, password.as_bytes(), 0o600)?;
    write_acl(ctx, paths, &initial_acl(&password))?;
    remove_stale(&paths.read_only_flag)?;
    write_atomic(&paths.marker, b"redis\n", 0o600)?;
    tracing::info!(instance = %ctx.instance_id, "Redis data directory initialised");
    Ok(())
}

/// An initialised instance is kept as it is; a lost ACL file is recreated
/// with the admin user only (tenant users are lost, and the log says so);
/// a lost admin password cannot be recovered here.
fn check_initialized(ctx: &InstanceContext, paths: &Paths) -> Result<(), DatastoreError> {
    if !paths.password.exists() {
        return Err(anyhow!(
            "{} is initialised but the admin password {} is missing",
            ctx.data_dir.display(),
            paths.password.display()
        )
        .into());
    }
    if !paths.acl.exists() {
        tracing::warn!(instance = %ctx.instance_id, "{} is missing; recreating it with the admin user only", paths.acl.display());
        let password = super::admin::read_password(paths)?;
        conf_dirs(ctx, paths)?;
        write_acl(ctx, paths, &initial_acl(&password))?;
    }
    Ok(())
}

/// The configuration directory, and the server's own part of it where the
/// ACL file lives: the ACL file holds password hashes and the server
/// rewrites it (`ACL SAVE`) with its own file mode, so its directory is
/// what keeps it private. An ACL file of the old layout is moved there.
pub fn conf_dirs(ctx: &InstanceContext, paths: &Paths) -> Result<(), DatastoreError> {
    crate::sandbox::config_dir(ctx)?;
    let own = crate::sandbox::server_conf_dir(ctx);
    server_dir(ctx, &own, 0o700)?;
    if paths.old_acl.exists() && !paths.acl.exists() {
        std::fs::rename(&paths.old_acl, &paths.acl).with_context(|| {
            format!("moving {} into {}", paths.old_acl.display(), own.display())
        })?;
        give(ctx, &paths.acl)?;
    }
    Ok(())
}

/// A new ACL file, the server's to rewrite.
fn write_acl(ctx: &InstanceContext, paths: &Paths, text: &str) -> Result<(), DatastoreError> {
    write_atomic(&paths.acl, text.as_bytes(), 0o600)?;
    give(ctx, &paths.acl)
}

fn remove_stale(path: &std::path::Path) -> Result<(), DatastoreError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(anyhow::Error::new(e)
            .context(format!("removing {}", path.display()))
            .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coffer_model::InstanceId;
    use std::os::unix::fs::MetadataExt;

    fn ctx(base: &std::path::Path) -> InstanceContext {
        InstanceContext {
            instance_id: InstanceId::new(),
            data_dir: base.join("data"),
            conf_dir: base.join("conf"),
            run_dir: base.join("run"),
            log_dir: base.join("log"),
            secret_dir: base.join("secret"),
            ip: "127.10.0.3".parse().unwrap(),
            port: 6379,
            ram_mb: 512,
            volume_size_bytes: 1 << 30,
            overrides: Default::default(),
            sandbox: None,
        }
    }

    fn mode(p: &std::path::Path) -> u32 {
        std::fs::metadata(p).unwrap().mode() & 0o777
    }

    #[tokio::test]
    async fn initialize_is_idempotent_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let c = ctx(dir.path());
        let p = Paths::new(&c);
        // Leftovers of a crash mid-way (no marker) are wiped.
        std::fs::create_dir_all(&c.data_dir).unwrap();
        std::fs::write(c.data_dir.join("dump.rdb"), b"junk").unwrap();
        initialize(&c, &p).await.unwrap();
        assert!(!c.data_dir.join("dump.rdb").exists());
        assert!(p.marker.exists());
        for d in [&c.data_dir, &c.secret_dir, &c.conf_dir] {
            assert_eq!(mode(d), 0o700, "{}", d.display());
        }
        assert_eq!(mode(&p.password), 0o600);
        assert_eq!(mode(&p.acl), 0o600);
        let password = std::fs::read_to_string(&p.password).unwrap();
        assert_eq!(password.len(), PASSWORD_LEN);
        let acl = std::fs::read_to_string(&p.acl).unwrap();
        assert!(!acl.contains(&password), "plain password in {acl}");
        assert!(acl.contains(&super::super::config::acl_hash(&password)));

        // Again: nothing changes, data is kept.
        std::fs::write(c.data_dir.join("appendonly.aof"), b"data").unwrap();
        initialize(&c, &p).await.unwrap();
        assert_eq!(std::fs::read_to_string(&p.password).unwrap(), password);
        assert!(c.data_dir.join("appendonly.aof").exists());

        // A lost ACL file comes back with the same admin password.
        std::fs::remove_file(&p.acl).unwrap();
        initialize(&c, &p).await.unwrap();
        assert_eq!(std::fs::read_to_string(&p.acl).unwrap(), acl);

        // A lost admin password is an error, not a silent reset.
        std::fs::remove_file(&p.password).unwrap();
        let e = initialize(&c, &p).await.unwrap_err();
        assert!(e.to_string().contains("admin password"), "{e}");
    }
}
