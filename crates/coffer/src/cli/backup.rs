//! `coffer backup ...`.

use super::output::{cell, field, print_list, print_one};
use super::{progress, Connection};
use anyhow::bail;
use clap::Subcommand;
use coffer_client::Client;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

#[derive(Subcommand)]
pub enum BackupCommand {
    /// Back up an instance.
    Create {
        name: String,
        /// Instance name or id.
        #[arg(long)]
        instance: String,
        #[arg(long)]
        description: Option<String>,
        /// Incremental to the instance's newest completed backup.
        #[arg(long)]
        incremental: bool,
        /// Incremental to this backup (name or id).
        #[arg(long)]
        parent: Option<String>,
        /// Wait until it is COMPLETED or FAILED, with a progress bar.
        #[arg(long)]
        wait: bool,
    },
    /// List backups.
    List {
        /// Only backups of this instance (name or id).
        #[arg(long)]
        instance: Option<String>,
    },
    /// Show a backup (by name or id).
    Show { backup: String },
    /// Delete a backup and the incrementals built on it.
    Delete {
        backup: String,
        /// Wait until it is gone.
        #[arg(long)]
        wait: bool,
    },
}

const LIST_COLUMNS: &[(&str, &str)] = &[
    ("ID", "id"),
    ("Name", "name"),
    ("Instance", "instance_id"),
    ("Status", "status"),
    ("Parent", "parent_id"),
    ("Bytes", "size_bytes"),
    ("Stored", "stored_bytes"),
    ("Created", "created"),
];

const SHOW_FIELDS: &[(&str, &str)] = &[
    ("id", "id"),
    ("name", "name"),
    ("description", "description"),
    ("status", "status"),
    ("instance_id", "instance_id"),
    ("parent_id", "parent_id"),
    ("datastore", "datastore.type"),
    ("datastore_version", "datastore.version"),
    ("size_bytes", "size_bytes"),
    ("stored_bytes", "stored_bytes"),
    ("checksum", "checksum"),
    ("location", "locationRef"),
    ("created", "created"),
    ("updated", "updated"),
    ("fail_reason", "fail_reason"),
];

/// Poll the backup until it ends (or, with `gone_ok`, disappears),
/// drawing its progress.
async fn wait_for(client: &Client, id: &str, gone_ok: bool) -> anyhow::Result<Option<Value>> {
    let start = Instant::now();
    let mut last_status = String::new();
    let mut drawn = false;
    loop {
        let b = match client.show_backup(id).await {
            Ok(b) => b,
            Err(e) if gone_ok && e.status() == Some(404) => {
                if drawn {
                    progress::finish();
                }
                eprintln!("[{:>6.1}s] deleted", start.elapsed().as_secs_f64());
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        let status = cell(&b["status"]);
        if let Some(line) = b.get("progress").and_then(progress::line) {
            progress::draw(&line);
            drawn = true;
        } else if status != last_status {
            if drawn {
                progress::finish();
                drawn = false;
            }
            eprintln!("[{:>6.1}s] {status}", start.elapsed().as_secs_f64());
        }
        last_status = status.clone();
        match status.as_str() {
            "COMPLETED" | "FAILED" | "DELETE_FAILED" if !gone_ok || status != "COMPLETED" => {
                if drawn {
                    progress::finish();
                }
                if status != "COMPLETED" {
                    bail!(
                        "backup {id} is {status}: {}",
                        cell(field(&b, "fail_reason"))
                    );
                }
                return Ok(Some(b));
            }
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

impl BackupCommand {
    pub async fn run(self, conn: &Connection) -> anyhow::Result<()> {
        let client = conn.client();
        match self {
            BackupCommand::Create {
                name,
                instance,
                description,
                incremental,
                parent,
                wait,
            } => {
                let instance = client.resolve_instance(&instance).await?;
                let mut body = json!({"backup": {
                    "name": name, "instance": instance,
                    "incremental": if incremental { 1 } else { 0 },
                }});
                if let Some(d) = description {
                    body["backup"]["description"] = json!(d);
                }
                if let Some(p) = parent {
                    body["backup"]["parent_id"] = json!(client.resolve_backup(&p).await?);
                }
                let mut backup = client.create_backup(&body).await?;
                if wait {
                    let id = cell(&backup["id"]);
                    backup = wait_for(&client, &id, false).await?.unwrap_or(backup);
                }
                print_one(conn.format, &backup, SHOW_FIELDS);
            }
            BackupCommand::List { instance } => {
                let instance = match instance {
                    Some(i) => Some(client.resolve_instance(&i).await?),
                    None => None,
                };
                let rows = client.list_backups(instance.as_deref()).await?;
                print_list(conn.format, &rows, LIST_COLUMNS);
            }
            BackupCommand::Show { backup } => {
                let id = client.resolve_backup(&backup).await?;
                print_one(conn.format, &client.show_backup(&id).await?, SHOW_FIELDS);
            }
            BackupCommand::Delete { backup, wait } => {
                let id = client.resolve_backup(&backup).await?;
                client.delete_backup(&id).await?;
                eprintln!("backup {id} is being deleted");
                if wait {
                    wait_for(&client, &id, true).await?;
                }
            }
        }
        Ok(())
    }
}
