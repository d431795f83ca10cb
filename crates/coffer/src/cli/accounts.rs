//! `coffer database ...`, `coffer user ...`, `coffer root ...`: what lives
//! inside an instance's datastore.

use super::output::{print_list, print_one};
use super::Connection;
use anyhow::Context;
use clap::Subcommand;
use reqwest::Method;
use serde_json::{json, Value};

#[derive(Subcommand)]
pub enum DatabaseCommand {
    /// Create databases in an instance.
    Create {
        instance: String,
        names: Vec<String>,
    },
    /// List an instance's databases.
    List { instance: String },
    /// Drop a database.
    Delete { instance: String, name: String },
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a user (NAME:PASSWORD), optionally with access to databases.
    Create {
        instance: String,
        user: String,
        /// Host the user may connect from (default: any).
        #[arg(long)]
        host: Option<String>,
        /// A database the user may use (repeatable).
        #[arg(long = "database")]
        databases: Vec<String>,
    },
    /// List an instance's users.
    List { instance: String },
    /// Show a user (NAME or NAME@HOST).
    Show { instance: String, user: String },
    /// Change a user's name, password or host.
    Update {
        instance: String,
        user: String,
        #[arg(long)]
        new_name: Option<String>,
        #[arg(long)]
        new_password: Option<String>,
        #[arg(long)]
        new_host: Option<String>,
    },
    /// Drop a user.
    Delete { instance: String, user: String },
    /// Give a user access to databases.
    Grant {
        instance: String,
        user: String,
        databases: Vec<String>,
    },
    /// Take a user's access to a database away.
    Revoke {
        instance: String,
        user: String,
        database: String,
    },
}

#[derive(Subcommand)]
pub enum RootCommand {
    /// Enable root with a new generated password (shown once).
    Enable { instance: String },
    /// Whether root is enabled.
    Show { instance: String },
    /// Disable root.
    Disable { instance: String },
}

fn names(list: &[String]) -> Vec<Value> {
    list.iter().map(|n| json!({"name": n})).collect()
}

/// `/instances/{id}` for a name or id.
async fn base(conn: &Connection, instance: &str) -> anyhow::Result<String> {
    Ok(format!(
        "/instances/{}",
        conn.client().resolve_instance(instance).await?
    ))
}

fn path_part(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'@' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl DatabaseCommand {
    pub async fn run(self, conn: &Connection) -> anyhow::Result<()> {
        let c = conn.client();
        match self {
            DatabaseCommand::Create {
                instance,
                names: list,
            } => {
                let body = json!({"databases": names(&list)});
                c.request(
                    Method::POST,
                    &format!("{}/databases", base(conn, &instance).await?),
                    Some(&body),
                )
                .await?;
                eprintln!("created: {}", list.join(", "));
            }
            DatabaseCommand::List { instance } => {
                let v = c
                    .get(&format!(
                        "{}/databases?limit=1000",
                        base(conn, &instance).await?
                    ))
                    .await?;
                print_list(
                    conn.format,
                    v["databases"].as_array().map(Vec::as_slice).unwrap_or(&[]),
                    &[("Name", "name")],
                );
            }
            DatabaseCommand::Delete { instance, name } => {
                let path = format!(
                    "{}/databases/{}",
                    base(conn, &instance).await?,
                    path_part(&name)
                );
                c.request(Method::DELETE, &path, None).await?;
                eprintln!("deleted: {name}");
            }
        }
        Ok(())
    }
}

const USER_COLUMNS: &[(&str, &str)] = &[
    ("Name", "name"),
    ("Host", "host"),
    ("Databases", "database_names"),
];

fn with_names(mut u: Value) -> Value {
    let dbs: Vec<Value> = u["databases"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| d["name"].clone())
        .collect();
    u["database_names"] = json!(dbs);
    u
}

impl UserCommand {
    pub async fn run(self, conn: &Connection) -> anyhow::Result<()> {
        let c = conn.client();
        match self {
            UserCommand::Create {
                instance,
                user,
                host,
                databases,
            } => {
                let (name, password) = user
                    .split_once(':')
                    .context("the user is given as NAME:PASSWORD")?;
                let mut u =
                    json!({"name": name, "password": password, "databases": names(&databases)});
                if let Some(h) = host {
                    u["host"] = json!(h);
                }
                let body = json!({"users": [u]});
                c.request(
                    Method::POST,
                    &format!("{}/users", base(conn, &instance).await?),
                    Some(&body),
                )
                .await?;
                eprintln!("created user {name}");
            }
            UserCommand::List { instance } => {
                let v = c
                    .get(&format!(
                        "{}/users?limit=1000",
                        base(conn, &instance).await?
                    ))
                    .await?;
                let rows: Vec<Value> = v["users"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .cloned()
                    .map(with_names)
                    .collect();
                print_list(conn.format, &rows, USER_COLUMNS);
            }
            UserCommand::Show { instance, user } => {
                let v = c
                    .get(&format!(
                        "{}/users/{}",
                        base(conn, &instance).await?,
                        path_part(&user)
                    ))
                    .await?;
                print_one(conn.format, &with_names(v["user"].clone()), USER_COLUMNS);
            }
            UserCommand::Update {
                instance,
                user,
                new_name,
                new_password,
                new_host,
            } => {
                let body =
                    json!({"user": {"name": new_name, "password": new_password, "host": new_host}});
                let path = format!(
                    "{}/users/{}",
                    base(conn, &instance).await?,
                    path_part(&user)
                );
                c.request(Method::PUT, &path, Some(&body)).await?;
                eprintln!("updated user {user}");
            }
            UserCommand::Delete { instance, user } => {
                let path = format!(
                    "{}/users/{}",
                    base(conn, &instance).await?,
                    path_part(&user)
                );
                c.request(Method::DELETE, &path, None).await?;
                eprintln!("deleted user {user}");
            }
            UserCommand::Grant {
                instance,
                user,
                databases,
            } => {
                let path = format!(
                    "{}/users/{}/databases",
                    base(conn, &instance).await?,
                    path_part(&user)
                );
                c.request(
                    Method::PUT,
                    &path,
                    Some(&json!({"databases": names(&databases)})),
                )
                .await?;
                eprintln!("granted {user} access to {}", databases.join(", "));
            }
            UserCommand::Revoke {
                instance,
                user,
                database,
            } => {
                let path = format!(
                    "{}/users/{}/databases/{}",
                    base(conn, &instance).await?,
                    path_part(&user),
                    path_part(&database)
                );
                c.request(Method::DELETE, &path, None).await?;
                eprintln!("revoked {user}'s access to {database}");
            }
        }
        Ok(())
    }
}

impl RootCommand {
    pub async fn run(self, conn: &Connection) -> anyhow::Result<()> {
        let c = conn.client();
        match self {
            RootCommand::Enable { instance } => {
                let v = c
                    .request(
                        Method::POST,
                        &format!("{}/root", base(conn, &instance).await?),
                        None,
                    )
                    .await?;
                print_one(
                    conn.format,
                    &v["user"],
                    &[("name", "name"), ("password", "password")],
                );
            }
            RootCommand::Show { instance } => {
                let v = c
                    .get(&format!("{}/root", base(conn, &instance).await?))
                    .await?;
                print_one(conn.format, &v, &[("rootEnabled", "rootEnabled")]);
            }
            RootCommand::Disable { instance } => {
                c.request(
                    Method::DELETE,
                    &format!("{}/root", base(conn, &instance).await?),
                    None,
                )
                .await?;
                eprintln!("root disabled");
            }
        }
        Ok(())
    }
}
