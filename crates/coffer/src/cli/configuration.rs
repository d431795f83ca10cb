//! `coffer configuration ...`: configuration groups and the parameters a
//! datastore version takes.

use super::output::{cell, print_list, print_one};
use super::Connection;
use anyhow::Context;
use clap::Subcommand;
use reqwest::Method;
use serde_json::{json, Value};

#[derive(Subcommand)]
pub enum ConfigurationCommand {
    /// Create a configuration group.
    Create {
        name: String,
        /// The values as a JSON object, e.g. '{"max_connections": 200}'.
        #[arg(long)]
        values: String,
        #[arg(long)]
        datastore: Option<String>,
        #[arg(long)]
        datastore_version: Option<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// List configuration groups.
    List,
    /// Show a group (name or id) with its values.
    Show { configuration: String },
    /// Replace a group's values (or, with --merge, add to them); attached
    /// instances get the new values.
    Update {
        configuration: String,
        #[arg(long)]
        values: String,
        /// Merge into the current values instead of replacing them.
        #[arg(long)]
        merge: bool,
    },
    /// Delete a group no instance uses.
    Delete { configuration: String },
    /// Attach a group to an instance.
    Attach {
        instance: String,
        configuration: String,
    },
    /// Detach an instance's group.
    Detach { instance: String },
    /// The instances a group is attached to.
    Instances { configuration: String },
    /// The parameters a datastore version takes (or one of them).
    Parameters {
        datastore: String,
        version: String,
        /// Show only this parameter.
        #[arg(long)]
        name: Option<String>,
    },
}

const GROUP_FIELDS: &[(&str, &str)] = &[
    ("id", "id"),
    ("name", "name"),
    ("description", "description"),
    ("datastore", "datastore_name"),
    ("datastore_version", "datastore_version_name"),
    ("values", "values"),
    ("instance_count", "instance_count"),
    ("created", "created"),
    ("updated", "updated"),
];

const PARAMETER_COLUMNS: &[(&str, &str)] = &[
    ("Name", "name"),
    ("Type", "type"),
    ("Min", "min"),
    ("Max", "max"),
    ("Allowed", "allowed_values"),
    ("Unit", "unit"),
    ("Restart", "restart_required"),
];

fn values(raw: &str) -> anyhow::Result<Value> {
    let v: Value = serde_json::from_str(raw).context("--values must be a JSON object")?;
    anyhow::ensure!(v.is_object(), "--values must be a JSON object");
    Ok(v)
}

impl ConfigurationCommand {
    pub async fn run(self, conn: &Connection) -> anyhow::Result<()> {
        let client = conn.client();
        match self {
            ConfigurationCommand::Create {
                name,
                values: raw,
                datastore,
                datastore_version,
                description,
            } => {
                let mut body = json!({"configuration": {
                    "name": name, "values": values(&raw)?, "description": description,
                }});
                if datastore.is_some() || datastore_version.is_some() {
                    body["configuration"]["datastore"] =
                        json!({"type": datastore, "version": datastore_version});
                }
                let created = client.create_configuration(&body).await?;
                print_one(conn.format, &created, GROUP_FIELDS);
            }
            ConfigurationCommand::List => print_list(
                conn.format,
                &client.list_configurations().await?,
                &[
                    ("ID", "id"),
                    ("Name", "name"),
                    ("Datastore", "datastore_name"),
                    ("Version", "datastore_version_name"),
                    ("Description", "description"),
                ],
            ),
            ConfigurationCommand::Show { configuration } => {
                let id = client.resolve_configuration(&configuration).await?;
                print_one(
                    conn.format,
                    &client.show_configuration(&id).await?,
                    GROUP_FIELDS,
                );
            }
            ConfigurationCommand::Update {
                configuration,
                values: raw,
                merge,
            } => {
                let id = client.resolve_configuration(&configuration).await?;
                let body = json!({"configuration": {"values": values(&raw)?}});
                let method = if merge { Method::PATCH } else { Method::PUT };
                client
                    .request(method, &format!("/configurations/{id}"), Some(&body))
                    .await?;
                print_one(
                    conn.format,
                    &client.show_configuration(&id).await?,
                    GROUP_FIELDS,
                );
            }
            ConfigurationCommand::Delete { configuration } => {
                let id = client.resolve_configuration(&configuration).await?;
                client
                    .request(Method::DELETE, &format!("/configurations/{id}"), None)
                    .await?;
                eprintln!("configuration group {id} deleted");
            }
            ConfigurationCommand::Attach {
                instance,
                configuration,
            } => {
                let id = client.resolve_instance(&instance).await?;
                let group = client.resolve_configuration(&configuration).await?;
                client.set_instance_configuration(&id, Some(&group)).await?;
                eprintln!("configuration group {group} is being applied to instance {id}");
            }
            ConfigurationCommand::Detach { instance } => {
                let id = client.resolve_instance(&instance).await?;
                client.set_instance_configuration(&id, None).await?;
                eprintln!("configuration group of instance {id} is being detached");
            }
            ConfigurationCommand::Instances { configuration } => {
                let id = client.resolve_configuration(&configuration).await?;
                let listed = client
                    .get(&format!("/configurations/{id}/instances"))
                    .await?;
                let rows = listed["instances"].as_array().cloned().unwrap_or_default();
                print_list(conn.format, &rows, &[("ID", "id"), ("Name", "name")]);
            }
            ConfigurationCommand::Parameters {
                datastore,
                version,
                name,
            } => {
                let base = format!("/datastores/{datastore}/versions/{version}/parameters");
                match name {
                    Some(n) => {
                        let p = client.get(&format!("{base}/{n}")).await?;
                        print_one(conn.format, &p, PARAMETER_COLUMNS);
                    }
                    None => {
                        let all = client.get(&base).await?;
                        let rows = all["configuration-parameters"]
                            .as_array()
                            .cloned()
                            .unwrap_or_default();
                        print_list(conn.format, &rows, PARAMETER_COLUMNS);
                    }
                }
            }
        }
        Ok(())
    }
}

/// The values an instance's datastore runs with, as a two-column table.
pub async fn print_effective(conn: &Connection, instance: &str) -> anyhow::Result<()> {
    let client = conn.client();
    let id = client.resolve_instance(instance).await?;
    let got = client
        .get(&format!("/instances/{id}/configuration"))
        .await?;
    let values = &got["instance"]["configuration"];
    if conn.format == super::Format::Json {
        println!("{}", serde_json::to_string_pretty(values)?);
        return Ok(());
    }
    let rows: Vec<Value> = values
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| json!({"name": k, "value": cell(v)}))
        .collect();
    print_list(conn.format, &rows, &[("Name", "name"), ("Value", "value")]);
    Ok(())
}
