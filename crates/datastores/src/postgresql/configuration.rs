//! Configuration groups on a running PostgreSQL. `render_config` has
//! written the overrides into `postgresql.conf`, so applying them is a
//! reload; the running values come from `pg_settings`.

use super::admin::{self, ADMIN_DATABASE, CONNECT_TIMEOUT};
use super::config::SIZED;
use super::paths::Paths;
use coffer_strategy::{ConfigChange, DatastoreError, InstanceContext};
use sqlx::postgres::PgConnection;
use sqlx::Connection;
use std::collections::BTreeMap;

/// Reload the configuration if any change is dynamic, and return once new
/// sessions see it. Returns the names needing a restart, in the order of
/// `changes`: the `restart_required` ones and any the server holds as
/// pending a restart. A file the server refuses part of is an error naming
/// the parameter.
pub async fn apply(paths: &Paths, changes: &[ConfigChange]) -> Result<Vec<String>, DatastoreError> {
    let live: Vec<String> = changes
        .iter()
        .filter(|c| !c.restart_required)
        .map(|c| c.name.clone())
        .collect();
    let mut pending = Vec::new();
    if !live.is_empty() {
        let mut conn = admin::connect(paths, ADMIN_DATABASE, CONNECT_TIMEOUT).await?;
        let result = reload(&mut conn, &live).await;
        let _ = conn.close().await;
        pending = result?;
    }
    Ok(changes
        .iter()
        .filter(|c| c.restart_required || pending.contains(&c.name))
        .map(|c| c.name.clone())
        .collect())
}

/// Check the files as the server reads them, reload, and return which of
/// `live` still wait for a restart.
async fn reload(conn: &mut PgConnection, live: &[String]) -> Result<Vec<String>, DatastoreError> {
    // `pg_file_settings` marks every line it would not apply; a
    // restart-only parameter that changed is one of them, and expected —
    // so is one removed from the file (a row without a name whose error
    // says it needs a restart; `lc_messages` is C, so the text is fixed).
    let refused: Option<(Option<String>, Option<String>, String)> = sqlx::query_as(
        "SELECT f.name, f.setting, f.error FROM pg_file_settings f \
         LEFT JOIN pg_settings s ON s.name = f.name \
         WHERE f.error IS NOT NULL AND s.context IS DISTINCT FROM 'postmaster' \
         AND f.error NOT LIKE '%cannot be changed without restarting the server%' \
         ORDER BY f.seqno LIMIT 1",
    )
    .fetch_optional(&mut *conn)
    .await
    .map_err(|e| admin::query_failed("reading pg_file_settings", e))?;
    if let Some((name, setting, error)) = refused {
        let name = name.unwrap_or_else(|| "(a line)".into());
        let setting = setting.unwrap_or_default();
        return Err(DatastoreError::InvalidInput(format!(
            "PostgreSQL refuses configuration parameter {name} = {setting}: {error} (the server log says why)"
        )));
    }
    admin::reload(conn).await?;
    sqlx::query_scalar("SELECT name FROM pg_settings WHERE pending_restart AND name = ANY($1)")
        .bind(live)
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| admin::query_failed("reading pg_settings", e))
}

/// The running values of the flavor-sized parameters and of every
/// override, as `pg_settings.setting` holds them (in the parameter's base
/// unit, as the schema counts them). A name the server does not know is
/// left out. The agent's own session lifts a tenant's timeouts (so this
/// read cannot be cancelled by them); for those parameters the value in
/// force for tenants is the configuration file's, or the built-in default.
pub async fn effective(
    ctx: &InstanceContext,
    paths: &Paths,
) -> Result<BTreeMap<String, String>, DatastoreError> {
    let mut wanted: Vec<String> = SIZED.iter().map(|s| s.to_string()).collect();
    wanted.extend(ctx.overrides.keys().cloned());
    let mut conn = admin::connect(paths, ADMIN_DATABASE, CONNECT_TIMEOUT).await?;
    let rows: Result<Vec<(String, String)>, _> = sqlx::query_as(
        "SELECT s.name, CASE WHEN s.source = 'client' THEN COALESCE( \
           (SELECT f.setting FROM pg_file_settings f \
            WHERE f.name = s.name AND f.applied ORDER BY f.seqno DESC LIMIT 1), \
           s.boot_val) ELSE s.setting END \
         FROM pg_settings s WHERE s.name = ANY($1)",
    )
    .bind(&wanted)
    .fetch_all(&mut conn)
    .await;
    let _ = conn.close().await;
    let rows = rows.map_err(|e| admin::query_failed("reading pg_settings", e))?;
    Ok(rows.into_iter().collect())
}
