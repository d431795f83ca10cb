//! `coffer project ...` and `coffer token ...`: the built-in
//! authentication's projects and tokens, managed on the control-plane host
//! against its metadata store. A token is shown once, when it is made;
//! only its SHA-256 is stored.

use crate::ServerArgs;
use clap::Subcommand;
use coffer_model::{ApiToken, ProjectId};
use rand::distributions::{Alphanumeric, DistString};

#[derive(Subcommand)]
pub enum ProjectCommand {
    /// Make a project tokens can act in.
    Create { name: String },
    /// List projects.
    List,
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Make a token and print it (once).
    Create {
        /// The project it acts in.
        #[arg(long, required_unless_present = "admin")]
        project: Option<String>,
        /// A cloud-admin token: any project, and the admin-only endpoints.
        #[arg(long)]
        admin: bool,
        #[arg(long)]
        description: Option<String>,
    },
    /// List tokens (ids, never the tokens).
    List,
    /// Revoke a token by its id.
    Revoke { id: String },
}

impl ProjectCommand {
    pub async fn run(self, args: &ServerArgs) -> anyhow::Result<()> {
        let store = crate::roles::open_store(args).await?;
        match self {
            ProjectCommand::Create { name } => {
                coffer_model::validate_identifier("project name", &name)
                    .map_err(|e| anyhow::anyhow!(e))?;
                store.create_project(&ProjectId(name.clone())).await?;
                println!("{name}");
            }
            ProjectCommand::List => {
                for p in store.list_projects().await? {
                    println!("{}", p.0);
                }
            }
        }
        Ok(())
    }
}

impl TokenCommand {
    pub async fn run(self, args: &ServerArgs) -> anyhow::Result<()> {
        let store = crate::roles::open_store(args).await?;
        match self {
            TokenCommand::Create {
                project,
                admin,
                description,
            } => {
                let mut rng = rand::thread_rng();
                let token = format!("cft_{}", Alphanumeric.sample_string(&mut rng, 40));
                let record = ApiToken {
                    id: Alphanumeric.sample_string(&mut rng, 10).to_lowercase(),
                    token_hash: coffer_api::auth::token_hash(&token),
                    project_id: project.map(ProjectId),
                    is_admin: admin,
                    description,
                    created: chrono::Utc::now(),
                };
                store.insert_token(&record).await?;
                eprintln!(
                    "token {} for {}; it is shown only now:",
                    record.id,
                    record
                        .project_id
                        .as_ref()
                        .map(|p| format!("project {}", p.0))
                        .unwrap_or_else(|| "every project (admin)".into())
                );
                println!("{token}");
            }
            TokenCommand::List => {
                for t in store.list_tokens().await? {
                    println!(
                        "{}\t{}\t{}\t{}",
                        t.id,
                        t.project_id.map(|p| p.0).unwrap_or_else(|| "*".into()),
                        if t.is_admin { "admin" } else { "member" },
                        t.description.unwrap_or_default()
                    );
                }
            }
            TokenCommand::Revoke { id } => {
                store.delete_token(&id).await?;
                eprintln!("token {id} revoked");
            }
        }
        Ok(())
    }
}
