//! `coffer datastore ...` and `coffer flavor ...`.

use super::output::{print_list, print_one};
use super::Connection;
use clap::Subcommand;
use reqwest::Method;
use serde_json::json;

#[derive(Subcommand)]
pub enum DatastoreCommand {
    /// List datastores and their versions.
    List,
}

impl DatastoreCommand {
    pub async fn run(self, conn: &Connection) -> anyhow::Result<()> {
        match self {
            DatastoreCommand::List => {
                let mut rows = conn.client().list_datastores().await?;
                for r in &mut rows {
                    let versions: Vec<String> = r["versions"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|v| v["name"].as_str().map(String::from))
                        .collect();
                    r["version_names"] = json!(versions);
                }
                print_list(
                    conn.format,
                    &rows,
                    &[
                        ("ID", "id"),
                        ("Name", "name"),
                        ("Versions", "version_names"),
                    ],
                );
            }
        }
        Ok(())
    }
}

#[derive(Subcommand)]
pub enum FlavorCommand {
    /// List flavors.
    List,
    /// Create a flavor (admin).
    Create {
        name: String,
        /// Memory in MB.
        #[arg(long)]
        ram: i64,
        #[arg(long, default_value_t = 1)]
        vcpus: i64,
        /// Disk in GB.
        #[arg(long, default_value_t = 0)]
        disk: i64,
        /// Integer id (default: the next free one).
        #[arg(long)]
        id: Option<i64>,
    },
    /// Delete a flavor no instance uses (admin).
    Delete { id: i64 },
}

const FLAVOR_COLUMNS: &[(&str, &str)] = &[
    ("ID", "id"),
    ("Name", "name"),
    ("RAM", "ram"),
    ("vCPUs", "vcpus"),
    ("Disk", "disk"),
];

impl FlavorCommand {
    pub async fn run(self, conn: &Connection) -> anyhow::Result<()> {
        let client = conn.client();
        match self {
            FlavorCommand::List => {
                print_list(conn.format, &client.list_flavors().await?, FLAVOR_COLUMNS)
            }
            FlavorCommand::Create {
                name,
                ram,
                vcpus,
                disk,
                id,
            } => {
                let body = json!({"flavor": {"name": name, "ram": ram, "vcpus": vcpus, "disk": disk, "id": id}});
                let created = client
                    .request(Method::POST, "/mgmt/flavors", Some(&body))
                    .await?;
                print_one(conn.format, &created["flavor"], FLAVOR_COLUMNS);
            }
            FlavorCommand::Delete { id } => {
                client
                    .request(Method::DELETE, &format!("/mgmt/flavors/{id}"), None)
                    .await?;
                eprintln!("flavor {id} deleted");
            }
        }
        Ok(())
    }
}
