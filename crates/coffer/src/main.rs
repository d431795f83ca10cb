#![forbid(unsafe_code)]
//! `coffer`: one binary, with the roles (`up`, `api`, `taskmanager`,
//! `conductor`, `compute`, `guest-agent`) and the client and admin
//! commands as subcommands.

mod broker;
mod cli;
mod config;
mod parameters;
mod roles;
mod seed;
mod state_perms;
mod tokens;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "coffer",
    version,
    about = "Database-as-a-Service control plane (Trove-compatible)"
)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
pub struct ServerArgs {
    /// Where Coffer keeps its state (metadata, instances, keys, sockets).
    #[arg(
        long,
        global = true,
        env = "COFFER_STATE_DIR",
        default_value = ".coffer"
    )]
    state_dir: PathBuf,
    /// Configuration file (default: coffer.toml in the state dir).
    #[arg(long, global = true, env = "COFFER_CONFIG")]
    config: Option<PathBuf>,
}

// Parsed once per run: the size of the client variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run every role in one process on embedded defaults.
    Up(ServerArgs),
    /// Run the REST API only.
    Api(ServerArgs),
    /// Run the task manager and conductor only.
    Taskmanager(ServerArgs),
    /// Run a conductor only (the writer of what agents report; with the
    /// `amqp` bus, as many as wanted).
    Conductor(ServerArgs),
    /// Run a compute host: start and stop this host's instances when a
    /// task manager asks over RabbitMQ, and keep their agents running.
    Compute(ServerArgs),
    /// Compute hosts on the broker (on a control-plane host).
    ComputeHost {
        #[command(subcommand)]
        command: ComputeHostCommand,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Run one instance's guest agent (started by the compute driver).
    GuestAgent {
        #[arg(long)]
        instance_dir: PathBuf,
    },
    /// Projects of the built-in token authentication (on the control-plane host).
    Project {
        #[command(subcommand)]
        command: tokens::ProjectCommand,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Tokens of the built-in authentication: create (shown once), list, revoke.
    Token {
        #[command(subcommand)]
        command: tokens::TokenCommand,
        #[command(flatten)]
        server: ServerArgs,
    },
    #[command(flatten)]
    Client(cli::ClientCommand),
}

#[derive(Subcommand)]
enum ComputeHostCommand {
    /// Make host NAME's broker user and queue; print the lines of its
    /// coffer.toml (they hold its broker password).
    Add { name: String },
    /// Remove host NAME's broker user and queue.
    Remove { name: String },
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.command {
        Command::Up(a) => {
            init_logging();
            roles::up(&a).await
        }
        Command::Api(a) => {
            init_logging();
            roles::api(&a).await
        }
        Command::Taskmanager(a) => {
            init_logging();
            roles::taskmanager(&a).await
        }
        Command::Conductor(a) => {
            init_logging();
            roles::conductor(&a).await
        }
        Command::Compute(a) => {
            init_logging();
            roles::compute(&a).await
        }
        Command::ComputeHost { command, server } => match command {
            ComputeHostCommand::Add { name } => broker::add_compute_host(&server, &name)
                .await
                .map(|toml| print!("{toml}")),
            ComputeHostCommand::Remove { name } => {
                broker::remove_compute_host(&server, &name).await
            }
        },
        Command::GuestAgent { instance_dir } => {
            init_logging();
            coffer_agent::run(&instance_dir).await
        }
        Command::Project { command, server } => command.run(&server).await,
        Command::Token { command, server } => command.run(&server).await,
        Command::Client(c) => c.run().await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
