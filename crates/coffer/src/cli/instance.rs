//! `coffer instance ...`.

use super::output::{cell, field, print_list, print_one};
use super::{progress, Connection};
use anyhow::{bail, Context};
use clap::Subcommand;
use coffer_client::Client;
use serde_json::{json, Value};
use std::io::Write;
use std::time::{Duration, Instant};

#[derive(Subcommand)]
pub enum InstanceCommand {
    /// Create an instance.
    Create {
        name: String,
        /// Datastore type, e.g. mariadb.
        #[arg(long)]
        datastore: Option<String>,
        /// Datastore version (default: the datastore's default).
        #[arg(long)]
        datastore_version: Option<String>,
        /// Flavor name or id.
        #[arg(long)]
        flavor: String,
        /// Volume size in GB.
        #[arg(long)]
        size: i64,
        /// A database to create (repeatable).
        #[arg(long = "database")]
        databases: Vec<String>,
        /// A user as NAME:PASSWORD, with access to every --database (repeatable).
        #[arg(long = "user")]
        users: Vec<String>,
        /// Restore this backup (name or id) into the new instance.
        #[arg(long)]
        backup: Option<String>,
        /// Attach this configuration group (name or id) from the start.
        #[arg(long)]
        configuration: Option<String>,
        /// Wait until the instance is ACTIVE or ERROR, showing progress.
        #[arg(long)]
        wait: bool,
    },
    /// List instances.
    List,
    /// Show an instance (by name or id).
    Show { instance: String },
    /// Delete an instance (by name or id).
    Delete {
        instance: String,
        /// Wait until it is gone.
        #[arg(long)]
        wait: bool,
    },
    /// Restart an instance's datastore (also applies configuration
    /// changes that wait for a restart).
    Restart {
        instance: String,
        #[arg(long)]
        wait: bool,
    },
    /// Move an instance to another flavor (the datastore restarts with
    /// memory settings sized for it).
    ResizeFlavor {
        instance: String,
        /// Flavor name or id.
        flavor: String,
        #[arg(long)]
        wait: bool,
    },
    /// Grow an instance's volume (volumes never shrink).
    ResizeVolume {
        instance: String,
        /// The new size in GB.
        size: i64,
        #[arg(long)]
        wait: bool,
    },
    /// The configuration values the datastore runs with.
    Configuration { instance: String },
}

const LIST_COLUMNS: &[(&str, &str)] = &[
    ("ID", "id"),
    ("Name", "name"),
    ("Datastore", "datastore.type"),
    ("Version", "datastore.version"),
    ("Status", "status"),
    ("Operating", "operating_status"),
    ("IP", "ip"),
    ("Flavor", "flavor.id"),
    ("Size", "volume.size"),
];

const SHOW_FIELDS: &[(&str, &str)] = &[
    ("id", "id"),
    ("name", "name"),
    ("status", "status"),
    ("operating_status", "operating_status"),
    ("datastore", "datastore.type"),
    ("datastore_version", "datastore.version"),
    ("flavor", "flavor.id"),
    ("ip", "ip"),
    ("volume", "volume.size"),
    ("volume_used", "volume.used"),
    ("created", "created"),
    ("updated", "updated"),
    ("configuration", "configuration.id"),
    ("fault", "fault.message"),
];

/// A flavor id from a name or an id.
async fn flavor_id(client: &Client, flavor: &str) -> anyhow::Result<String> {
    let flavors = client.list_flavors().await?;
    let hit = flavors
        .iter()
        .find(|f| cell(&f["id"]) == flavor || f["name"] == flavor);
    match hit {
        Some(f) => Ok(cell(&f["id"])),
        None => {
            let known: Vec<String> = flavors.iter().map(|f| cell(&f["name"])).collect();
            bail!("no flavor {flavor:?}; known: {}", known.join(", "))
        }
    }
}

fn user_body(spec: &str, databases: &[String]) -> anyhow::Result<Value> {
    let (name, password) = spec.split_once(':').context("--user takes NAME:PASSWORD")?;
    let dbs: Vec<Value> = databases.iter().map(|d| json!({"name": d})).collect();
    Ok(json!({"name": name, "password": password, "databases": dbs}))
}

/// Poll until `done` says so, printing each change of status on stderr.
async fn wait_for(client: &Client, id: &str, gone_ok: bool) -> anyhow::Result<Option<Value>> {
    let start = Instant::now();
    let mut last = String::new();
    let mut err = std::io::stderr();
    let mut drawn = false;
    loop {
        let inst = match client.show_instance(id).await {
            Ok(i) => i,
            Err(e) if gone_ok && e.status() == Some(404) => {
                let _ = writeln!(err, "[{:>6.1}s] deleted", start.elapsed().as_secs_f64());
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        let status = cell(&inst["status"]);
        if let Some(line) = inst.get("progress").and_then(progress::line) {
            progress::draw(&line);
            drawn = true;
        } else if drawn {
            progress::finish();
            drawn = false;
        }
        let now = format!("{status} (datastore: {})", cell(&inst["operating_status"]));
        if now != last && !drawn {
            let _ = writeln!(err, "[{:>6.1}s] {now}", start.elapsed().as_secs_f64());
            last = now;
        }
        let settled = ["ACTIVE", "ERROR", "RESTART_REQUIRED"].contains(&status.as_str());
        if !gone_ok && settled {
            if status == "ERROR" {
                bail!(
                    "instance {id} is in ERROR: {}",
                    cell(field(&inst, "fault.message"))
                );
            }
            return Ok(Some(inst));
        }
        if gone_ok && status == "ERROR" {
            bail!(
                "delete of {id} failed: {}",
                cell(field(&inst, "fault.message"))
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// After an action: wait until the instance settles and show it.
async fn settle(conn: &Connection, client: &Client, id: &str) -> anyhow::Result<()> {
    // The transitional status (REBOOT, RESIZE) first, then a settled one.
    tokio::time::sleep(Duration::from_millis(100)).await;
    if let Some(i) = wait_for(client, id, false).await? {
        print_one(conn.format, &i, SHOW_FIELDS);
    }
    Ok(())
}

impl InstanceCommand {
    pub async fn run(self, conn: &Connection) -> anyhow::Result<()> {
        let client = conn.client();
        match self {
            InstanceCommand::Create {
                name,
                datastore,
                datastore_version,
                flavor,
                size,
                databases,
                users,
                backup,
                configuration,
                wait,
            } => {
                let flavor_ref = flavor_id(&client, &flavor).await?;
                let users: Vec<Value> = users
                    .iter()
                    .map(|u| user_body(u, &databases))
                    .collect::<Result<_, _>>()?;
                let dbs: Vec<Value> = databases.iter().map(|d| json!({"name": d})).collect();
                let mut body = json!({"instance": {
                    "name": name, "flavorRef": flavor_ref, "volume": {"size": size},
                    "databases": dbs, "users": users,
                }});
                if datastore.is_some() || datastore_version.is_some() {
                    body["instance"]["datastore"] =
                        json!({"type": datastore, "version": datastore_version});
                }
                if let Some(c) = configuration {
                    body["instance"]["configuration"] =
                        json!(client.resolve_configuration(&c).await?);
                }
                if let Some(b) = backup {
                    body["instance"]["restorePoint"] =
                        json!({"backupRef": client.resolve_backup(&b).await?});
                }
                let mut inst = client.create_instance(&body).await?;
                if wait {
                    let id = cell(&inst["id"]);
                    inst = wait_for(&client, &id, false).await?.unwrap_or(inst);
                }
                print_one(conn.format, &inst, SHOW_FIELDS);
            }
            InstanceCommand::List => {
                print_list(conn.format, &client.list_instances().await?, LIST_COLUMNS)
            }
            InstanceCommand::Show { instance } => {
                let id = client.resolve_instance(&instance).await?;
                print_one(conn.format, &client.show_instance(&id).await?, SHOW_FIELDS);
            }
            InstanceCommand::Delete { instance, wait } => {
                let id = client.resolve_instance(&instance).await?;
                client.delete_instance(&id).await?;
                eprintln!("instance {id} is being deleted");
                if wait {
                    wait_for(&client, &id, true).await?;
                }
            }
            InstanceCommand::Restart { instance, wait } => {
                let id = client.resolve_instance(&instance).await?;
                client.instance_action(&id, "restart").await?;
                eprintln!("instance {id} is restarting");
                if wait {
                    settle(conn, &client, &id).await?;
                }
            }
            InstanceCommand::ResizeFlavor {
                instance,
                flavor,
                wait,
            } => {
                let id = client.resolve_instance(&instance).await?;
                let flavor_ref = flavor_id(&client, &flavor).await?;
                let body = json!({"resize": {"flavorRef": flavor_ref}});
                client.instance_action_body(&id, &body).await?;
                eprintln!("instance {id} is moving to flavor {flavor_ref}");
                if wait {
                    settle(conn, &client, &id).await?;
                }
            }
            InstanceCommand::ResizeVolume {
                instance,
                size,
                wait,
            } => {
                let id = client.resolve_instance(&instance).await?;
                let body = json!({"resize": {"volume": {"size": size}}});
                client.instance_action_body(&id, &body).await?;
                eprintln!("instance {id} volume is growing to {size} GB");
                if wait {
                    settle(conn, &client, &id).await?;
                }
            }
            InstanceCommand::Configuration { instance } => {
                super::configuration::print_effective(conn, &instance).await?;
            }
        }
        Ok(())
    }
}
