//! The last step of every MariaDB restore: start the server with a new
//! `os_admin` password of this instance's own.
//!
//! The restored grant tables are the source instance's, so `os_admin`
//! holds the source's password (and a tenant with root could even have
//! changed or dropped it). The server's `init-file` runs as the bootstrap
//! thread with every privilege, before the server accepts any connection,
//! whatever the grant tables say: so it (re)creates `os_admin` with a new
//! generated password. The file is 0600 in the tools' secret dir, named by
//! `my.cnf` for that one start only, and removed afterwards.

use super::admin::ADMIN_USER;
use super::config;
use super::init::PROXY_GRANT;
use super::paths::Paths;
use super::server;
use crate::files::{ensure_private_dir, write_atomic, RemoveOnDrop};
use crate::sandbox::write_tool_secret;
use coffer_strategy::{DatastoreError, InstanceContext};
use rand::distributions::{Alphanumeric, DistString};
use std::time::Duration;

/// Length of the generated admin password (as `initialize` makes it).
const PASSWORD_LEN: usize = 32;
/// A restored server may have a large buffer pool to set up and InnoDB
/// undo to roll back.
pub const START_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a failed first start may take to stop.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// Write the initialised marker and a new admin password, start the server
/// once with the re-keying init file, then render the configuration
/// without it. The instance is then as `initialize + render_config +
/// start` leaves one. A failed start is stopped again.
pub async fn start_with_new_admin_password(
    ctx: &InstanceContext,
    paths: &Paths,
) -> Result<(), DatastoreError> {
    ensure_private_dir(&ctx.secret_dir)?;
    let password = Alphanumeric.sample_string(&mut rand::thread_rng(), PASSWORD_LEN);
    write_atomic(&paths.password, password.as_bytes(), 0o600)?;
    write_tool_secret(ctx, &paths.rekey_sql, rekey_sql(&password).as_bytes())?;
    let remove_rekey_sql = RemoveOnDrop(&paths.rekey_sql);
    write_atomic(&paths.marker, b"mariadb\n", 0o644)?;

    config::write(ctx, paths, Some(&paths.rekey_sql))?;
    let started = server::start(ctx, paths, START_TIMEOUT).await;
    // Whatever happened, the next start must not look for the init file.
    let rendered = config::write(ctx, paths, None);
    drop(remove_rekey_sql);
    if let Err(e) = started {
        if let Err(stop) = server::stop(paths, STOP_TIMEOUT).await {
            tracing::warn!(instance = %ctx.instance_id, "stopping the restored server after a failed start: {stop}");
        }
        return Err(e);
    }
    rendered
}

/// The init file. The password is alphanumeric, so it needs no escaping;
/// the account is unlocked and never expires, whatever the source said.
fn rekey_sql(password: &str) -> String {
    debug_assert!(password.chars().all(|c| c.is_ascii_alphanumeric()));
    let account = format!("'{ADMIN_USER}'@'localhost'");
    format!(
        "CREATE USER IF NOT EXISTS {account} IDENTIFIED BY '{password}';\n\
         ALTER USER {account} IDENTIFIED BY '{password}' PASSWORD EXPIRE NEVER ACCOUNT UNLOCK;\n\
         GRANT ALL PRIVILEGES ON *.* TO {account} WITH GRANT OPTION;\n\
         {PROXY_GRANT}\n\
         FLUSH PRIVILEGES;\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rekey_sql_sets_the_password_and_every_privilege() {
        let sql = rekey_sql("abc123");
        assert!(sql
            .contains("CREATE USER IF NOT EXISTS 'os_admin'@'localhost' IDENTIFIED BY 'abc123';"));
        assert!(sql.contains("ALTER USER 'os_admin'@'localhost' IDENTIFIED BY 'abc123'"));
        assert!(sql
            .contains("GRANT ALL PRIVILEGES ON *.* TO 'os_admin'@'localhost' WITH GRANT OPTION;"));
    }
}
