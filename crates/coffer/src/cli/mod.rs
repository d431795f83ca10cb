//! Client commands: talk to a running Coffer over its HTTP API.

mod accounts;
mod backup;
mod configuration;
mod instance;
mod output;
mod progress;
mod simple;

use clap::{Args, Subcommand};
use coffer_client::Client;
pub use output::Format;

/// Where the API is and who is asking.
#[derive(Args, Clone, Debug)]
pub struct Connection {
    /// Coffer's API endpoint.
    #[arg(
        long,
        global = true,
        env = "COFFER_ENDPOINT",
        default_value = "http://127.0.0.1:8779"
    )]
    pub endpoint: String,
    /// Project (tenant) to act in.
    #[arg(long, global = true, env = "COFFER_PROJECT", default_value = "default")]
    pub project: String,
    /// Auth token sent as X-Auth-Token.
    #[arg(
        long,
        global = true,
        env = "COFFER_TOKEN",
        default_value = "coffer",
        hide_env_values = true
    )]
    pub token: String,
    /// Output format.
    #[arg(short = 'f', long = "format", global = true, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

impl Connection {
    pub fn client(&self) -> Client {
        Client::new(&self.endpoint, &self.project, &self.token)
    }
}

#[derive(Subcommand)]
pub enum ClientCommand {
    /// Create, list, show, delete and restart instances.
    Instance {
        #[command(subcommand)]
        command: instance::InstanceCommand,
        #[command(flatten)]
        conn: Connection,
    },
    /// Back up instances; list, show and delete backups.
    Backup {
        #[command(subcommand)]
        command: backup::BackupCommand,
        #[command(flatten)]
        conn: Connection,
    },
    /// Configuration groups: parameter values for instances.
    Configuration {
        #[command(subcommand)]
        command: configuration::ConfigurationCommand,
        #[command(flatten)]
        conn: Connection,
    },
    /// Datastores on offer.
    Datastore {
        #[command(subcommand)]
        command: simple::DatastoreCommand,
        #[command(flatten)]
        conn: Connection,
    },
    /// Flavors (hardware profiles).
    Flavor {
        #[command(subcommand)]
        command: simple::FlavorCommand,
        #[command(flatten)]
        conn: Connection,
    },
    /// Databases inside an instance.
    Database {
        #[command(subcommand)]
        command: accounts::DatabaseCommand,
        #[command(flatten)]
        conn: Connection,
    },
    /// Users inside an instance.
    User {
        #[command(subcommand)]
        command: accounts::UserCommand,
        #[command(flatten)]
        conn: Connection,
    },
    /// The datastore's superuser.
    Root {
        #[command(subcommand)]
        command: accounts::RootCommand,
        #[command(flatten)]
        conn: Connection,
    },
}

impl ClientCommand {
    pub async fn run(self) -> anyhow::Result<()> {
        match self {
            ClientCommand::Instance { command, conn } => command.run(&conn).await,
            ClientCommand::Backup { command, conn } => command.run(&conn).await,
            ClientCommand::Configuration { command, conn } => command.run(&conn).await,
            ClientCommand::Datastore { command, conn } => command.run(&conn).await,
            ClientCommand::Flavor { command, conn } => command.run(&conn).await,
            ClientCommand::Database { command, conn } => command.run(&conn).await,
            ClientCommand::User { command, conn } => command.run(&conn).await,
            ClientCommand::Root { command, conn } => command.run(&conn).await,
        }
    }
}
