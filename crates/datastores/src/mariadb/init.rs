//! `initialize`: a fresh data directory with the agent's admin account.

use super::admin::ADMIN_USER;
use super::paths::Paths;
use super::server;
use crate::files::{clear_dir, ensure_private_dir, write_atomic, RemoveOnDrop};
use crate::process::run;
use crate::sandbox::{self, server_dir, write_tool_secret};
use anyhow::{anyhow, Context};
use coffer_strategy::{DatastoreError, InstanceContext};
use rand::distributions::{Alphanumeric, DistString};
use std::time::Duration;

/// Length of the generated admin password (alphanumeric: ~190 bits).
const PASSWORD_LEN: usize = 32;
/// install-db takes about half a second; allow for a slow disk.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(120);

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
    if ctx.data_dir.exists() {
        tracing::info!(instance = %ctx.instance_id, "wiping half-initialised {}", ctx.data_dir.display());
        clear_dir(&ctx.data_dir)?;
    } else {
        std::fs::create_dir_all(&ctx.data_dir)
            .with_context(|| format!("creating {}", ctx.data_dir.display()))?;
    }
    server_dir(ctx, &ctx.data_dir, 0o700)?;
    ensure_private_dir(&ctx.secret_dir)?;
    server_dir(ctx, &paths.tmp_dir, 0o700)?;

    let password = Alphanumeric.sample_string(&mut rand::thread_rng(), PASSWORD_LEN);
    write_atomic(&paths.password, password.as_bytes(), 0o600)?;
    write_tool_secret(ctx, &paths.init_sql, init_sql(&password).as_bytes())?;
    let remove_init_sql = RemoveOnDrop(&paths.init_sql);

    let mut cmd = sandbox::command(ctx, "mariadb-install-db");
    // --no-defaults must come first, or /etc/mysql/my.cnf leaks in.
    cmd.arg("--no-defaults")
        .arg(format!("--datadir={}", ctx.data_dir.display()))
        .arg(format!("--tmpdir={}", paths.tmp_dir.display()));
    if ctx.sandbox.is_none() {
        // Unconfined, the agent's root runs the server too.
        cmd.arg("--user=root");
    }
    cmd.args(["--skip-test-db", "--skip-name-resolve"])
        // root stays on unix-socket auth: over TCP every local process is
        // 127.0.0.1, so a password-less root there would be everyone's.
        .arg("--auth-root-authentication-method=socket")
        .arg(format!("--extra-file={}", paths.init_sql.display()));
    let started = std::time::Instant::now();
    run(cmd, "mariadb-install-db", INSTALL_TIMEOUT, &[&password]).await?;
    drop(remove_init_sql);

    write_atomic(&paths.marker, b"mariadb\n", 0o644)?;
    tracing::info!(instance = %ctx.instance_id, elapsed = ?started.elapsed(), "MariaDB data directory initialised");
    Ok(())
}

/// Gives `os_admin` `PROXY ON ''@'%'` with grant option, as a row: the
/// bootstrap and the init file may not `GRANT PROXY`. Reloaded by the
/// `FLUSH PRIVILEGES` that follows it.
pub(crate) const PROXY_GRANT: &str = "REPLACE INTO mysql.proxies_priv \
     (Host, User, Proxied_host, Proxied_user, With_grant) \
     VALUES ('localhost', 'os_admin', '', '', 1);";

/// The SQL install-db runs after creating the system tables. FLUSH
/// PRIVILEGES first: without it the bootstrap server refuses CREATE USER.
/// The password is alphanumeric, so it needs no escaping.
fn init_sql(password: &str) -> String {
    debug_assert!(password.chars().all(|c| c.is_ascii_alphanumeric()));
    format!(
        "FLUSH PRIVILEGES;\n\
         CREATE USER '{ADMIN_USER}'@'localhost' IDENTIFIED BY '{password}';\n\
         GRANT ALL PRIVILEGES ON *.* TO '{ADMIN_USER}'@'localhost' WITH GRANT OPTION;\n\
         -- PROXY ON ''@'%' with grant option (a logical restore gives it to\n\
         -- root); GRANT PROXY is refused to the bootstrap, so by table.\n\
         {PROXY_GRANT}\n\
         -- install-db adds a proxy grant for root@<hostname>, which\n\
         -- skip-name-resolve ignores with a warning at every start.\n\
         DELETE FROM mysql.proxies_priv WHERE Host <> 'localhost';\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_sql_creates_the_admin() {
        let sql = init_sql("abc123");
        assert!(sql.starts_with("FLUSH PRIVILEGES;\n"));
        assert!(sql.contains(PROXY_GRANT) && PROXY_GRANT.contains(&format!("'{ADMIN_USER}'")));
        assert!(sql.contains("CREATE USER 'os_admin'@'localhost' IDENTIFIED BY 'abc123';"));
        assert!(sql
            .contains("GRANT ALL PRIVILEGES ON *.* TO 'os_admin'@'localhost' WITH GRANT OPTION;"));
    }
}
