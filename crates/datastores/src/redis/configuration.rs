//! Configuration groups on a running Redis: dynamic changes applied with
//! `CONFIG SET`, the running values read with `CONFIG GET`.

use super::admin;
use super::config::{self, sized};
use super::paths::Paths;
use super::resp::Reply;
use coffer_strategy::{ConfigChange, DatastoreError, InstanceContext};
use std::collections::BTreeMap;

/// Apply the dynamic changes with `CONFIG SET` (a change the group no
/// longer makes goes back to the flavor's value when `redis.conf` sets
/// one; any other waits for the restart, Redis having no "default" to set).
/// Returns the names needing a restart, in the order of `changes`: the
/// `restart_required` ones, those without a value to go back to, and any
/// the server calls immutable. Stops at the first other failure, with an
/// error naming the parameter.
pub async fn apply(
    ctx: &InstanceContext,
    paths: &Paths,
    changes: &[ConfigChange],
) -> Result<Vec<String>, DatastoreError> {
    let mut not_live = Vec::new();
    let live: Vec<&ConfigChange> = changes.iter().filter(|c| !c.restart_required).collect();
    if !live.is_empty() {
        let mut conn = admin::connect(paths).await?;
        for change in live {
            let name = change.name.as_str();
            let value = match &change.value {
                Some(v) => config::command_value(v),
                None => match config::sized_value(ctx.ram_mb, name) {
                    Some(flavor) => flavor,
                    None => {
                        not_live.push(name);
                        continue;
                    }
                },
            };
            match conn.call(&["CONFIG", "SET", name, &value]).await? {
                Reply::Error(e) if e.contains("immutable config") => not_live.push(name),
                Reply::Error(e) => {
                    return Err(DatastoreError::Command {
                        command: format!("redis CONFIG SET {name}"),
                        detail: e,
                    })
                }
                _ => {}
            }
        }
    }
    Ok(changes
        .iter()
        .filter(|c| c.restart_required || not_live.contains(&c.name.as_str()))
        .map(|c| c.name.clone())
        .collect())
}

/// The running values of the flavor-sized settings and of every override,
/// as `CONFIG GET` shows them (a name the server does not know is left
/// out).
pub async fn effective(
    ctx: &InstanceContext,
    paths: &Paths,
) -> Result<BTreeMap<String, String>, DatastoreError> {
    let mut args = vec!["CONFIG", "GET"];
    let sized = sized(ctx.ram_mb);
    args.extend(sized.iter().map(|(name, _)| *name));
    args.extend(ctx.overrides.keys().map(String::as_str));
    let reply = admin::connect(paths).await?.ok(&args).await?;
    let flat = reply.strings();
    Ok(flat
        .chunks_exact(2)
        .map(|pair| (pair[0].clone(), pair[1].clone()))
        .collect())
}
