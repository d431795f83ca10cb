//! Configuration groups on a running MariaDB: dynamic changes applied with
//! `SET GLOBAL`, and the running values read back from
//! `information_schema.GLOBAL_VARIABLES`.

use super::admin::{connect, CONNECT_TIMEOUT};
use super::config::{self, Memory};
use super::paths::Paths;
use coffer_strategy::{ConfigChange, DatastoreError, InstanceContext};
use sqlx::mysql::MySqlConnection;
use sqlx::{Connection, Executor, Row};
use std::collections::BTreeMap;

/// MariaDB's code for "Variable '...' is a read only variable": the
/// variable takes effect only at a restart.
const ER_INCORRECT_GLOBAL_LOCAL_VAR: u16 = 1238;

/// Apply the dynamic changes with `SET GLOBAL` (a change the group no
/// longer makes goes back to the flavor's value when `my.cnf` sets one,
/// else to the server's default). Returns the names needing a restart, in
/// the order of `changes`: the `restart_required` ones and any the server
/// calls read-only. Stops at the first other failure, with an error naming
/// the parameter.
pub async fn apply(
    ctx: &InstanceContext,
    paths: &Paths,
    changes: &[ConfigChange],
) -> Result<Vec<String>, DatastoreError> {
    let live: Vec<&ConfigChange> = changes.iter().filter(|c| !c.restart_required).collect();
    let mut read_only = Vec::new();
    if !live.is_empty() {
        let mut conn = connect(paths, CONNECT_TIMEOUT).await?;
        let result = apply_live(ctx, &mut conn, &live).await;
        let _ = conn.close().await;
        read_only = result?;
    }
    Ok(changes
        .iter()
        .filter(|c| c.restart_required || read_only.contains(&c.name))
        .map(|c| c.name.clone())
        .collect())
}

/// `SET GLOBAL` each change; the names the server refused as read-only.
async fn apply_live(
    ctx: &InstanceContext,
    conn: &mut MySqlConnection,
    changes: &[&ConfigChange],
) -> Result<Vec<String>, DatastoreError> {
    let mut read_only = Vec::new();
    for change in changes {
        let statement = set_global(ctx.ram_mb, change)?;
        let Err(e) = conn.execute(statement.as_str()).await else {
            continue;
        };
        let code = e
            .as_database_error()
            .and_then(|db| db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>())
            .map(|m| m.number());
        if code == Some(ER_INCORRECT_GLOBAL_LOCAL_VAR) {
            read_only.push(change.name.clone());
        } else {
            return Err(DatastoreError::Command {
                command: format!("SET GLOBAL {}", change.name),
                detail: e.to_string(),
            });
        }
    }
    Ok(read_only)
}

/// The `SET GLOBAL` statement for one change.
fn set_global(ram_mb: i64, change: &ConfigChange) -> Result<String, DatastoreError> {
    let name = &change.name;
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(DatastoreError::InvalidInput(format!(
            "{name:?} is not a MariaDB system variable name"
        )));
    }
    let value = match (&change.value, config::sized_value(ram_mb, name)) {
        (Some(v), _) => config::sql_value(v),
        (None, Some(flavor)) => flavor.sql(),
        (None, None) => "DEFAULT".to_string(),
    };
    Ok(format!("SET GLOBAL {name} = {value}"))
}

/// The running values of the flavor-derived options and of every
/// override, as `SHOW GLOBAL VARIABLES` shows them (a name the server
/// does not know is left out).
pub async fn effective(
    ctx: &InstanceContext,
    paths: &Paths,
) -> Result<BTreeMap<String, String>, DatastoreError> {
    let mut wanted: Vec<String> = Memory::for_ram(ctx.ram_mb)
        .options()
        .iter()
        .map(|(name, _)| name.to_string())
        .collect();
    wanted.extend(ctx.overrides.keys().cloned());
    let mut conn = connect(paths, CONNECT_TIMEOUT).await?;
    let rows = sqlx::query(
        "SELECT CAST(LOWER(VARIABLE_NAME) AS CHAR), CAST(VARIABLE_VALUE AS CHAR) \
         FROM information_schema.GLOBAL_VARIABLES",
    )
    .fetch_all(&mut conn)
    .await;
    let _ = conn.close().await;
    let rows = rows.map_err(|e| query_failed("reading GLOBAL_VARIABLES", e))?;
    let mut out = BTreeMap::new();
    for row in rows {
        let name: String = row.try_get(0).map_err(|e| query_failed("a variable", e))?;
        if wanted.contains(&name) {
            let value: Option<String> = row.try_get(1).map_err(|e| query_failed(&name, e))?;
            out.insert(name, value.unwrap_or_default());
        }
    }
    Ok(out)
}

fn query_failed(what: &str, e: sqlx::Error) -> DatastoreError {
    DatastoreError::Command {
        command: what.to_string(),
        detail: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coffer_model::ConfigValue;

    fn change(name: &str, value: Option<ConfigValue>) -> ConfigChange {
        ConfigChange {
            name: name.into(),
            value,
            restart_required: false,
        }
    }

    #[test]
    fn statements() {
        let set = |name, value| set_global(512, &change(name, value)).unwrap();
        assert_eq!(
            set("max_connections", Some(ConfigValue::Integer(250))),
            "SET GLOBAL max_connections = 250"
        );
        assert_eq!(
            set("slow_query_log", Some(ConfigValue::Boolean(true))),
            "SET GLOBAL slow_query_log = ON"
        );
        assert_eq!(
            set(
                "sql_mode",
                Some(ConfigValue::String("ANSI,TRADITIONAL".into()))
            ),
            "SET GLOBAL sql_mode = 'ANSI,TRADITIONAL'"
        );
        // Back to the flavor's value, or the server's default.
        assert_eq!(
            set("max_connections", None),
            "SET GLOBAL max_connections = 100"
        );
        assert_eq!(
            set("innodb_buffer_pool_size", None),
            "SET GLOBAL innodb_buffer_pool_size = 268435456"
        );
        assert_eq!(
            set("wait_timeout", None),
            "SET GLOBAL wait_timeout = DEFAULT"
        );
        for bad in ["", "a-b", "a;b", "A"] {
            let e = set_global(512, &change(bad, None)).unwrap_err();
            assert!(matches!(e, DatastoreError::InvalidInput(_)), "{bad:?}");
        }
    }
}
