//! Tenant databases, users and root: the agent checks names by the
//! datastore's rules, refuses duplicates, and runs the manager's methods.

use crate::handler::Agent;
use coffer_bus::messages::{AgentError, AgentErrorKind, AgentRequest};
use coffer_model::UserSpec;
use coffer_strategy::DatastoreError;
use serde_json::Value;

/// The bus form of a failure: datastore errors keep their kind.
pub fn agent_error(e: anyhow::Error) -> AgentError {
    let kind = match e.downcast_ref::<DatastoreError>() {
        Some(DatastoreError::InvalidInput(_)) => AgentErrorKind::InvalidInput,
        Some(DatastoreError::NotSupported(_)) => AgentErrorKind::NotSupported,
        Some(DatastoreError::NotFound(_)) => AgentErrorKind::NotFound,
        Some(DatastoreError::AlreadyExists(_)) => AgentErrorKind::AlreadyExists,
        _ => AgentErrorKind::Failed,
    };
    AgentError {
        kind,
        message: format!("{e:#}"),
    }
}

fn json<T: serde::Serialize>(v: T) -> anyhow::Result<Value> {
    Ok(serde_json::to_value(v)?)
}

fn exists(what: String) -> anyhow::Error {
    DatastoreError::AlreadyExists(what).into()
}

impl Agent {
    /// Handle an account request; `None` if `request` is not one.
    pub(crate) async fn handle_account(
        &self,
        request: &AgentRequest,
    ) -> Option<Result<Value, AgentError>> {
        let result = match request {
            AgentRequest::ListDatabases => self.list_databases().await,
            AgentRequest::CreateDatabases { databases } => self.create_databases(databases).await,
            AgentRequest::DeleteDatabase { name } => {
                self.op(self.manager.delete_database(&self.ctx(), name))
                    .await
            }
            AgentRequest::ListUsers => self.list_users().await,
            AgentRequest::CreateUsers { users } => self.create_users(users).await,
            AgentRequest::UpdateUser { name, host, update } => {
                self.op(self.manager.update_user(&self.ctx(), name, host, update))
                    .await
            }
            AgentRequest::DeleteUser { name, host } => {
                self.op(self.manager.delete_user(&self.ctx(), name, host))
                    .await
            }
            AgentRequest::GrantAccess {
                name,
                host,
                databases,
            } => {
                self.op(self
                    .manager
                    .grant_access(&self.ctx(), name, host, databases))
                    .await
            }
            AgentRequest::RevokeAccess {
                name,
                host,
                database,
            } => {
                self.op(self
                    .manager
                    .revoke_access(&self.ctx(), name, host, database))
                    .await
            }
            AgentRequest::EnableRoot => match self.manager.enable_root(&self.ctx()).await {
                Ok(password) => json(password),
                Err(e) => Err(e.into()),
            },
            AgentRequest::DisableRoot => self.op(self.manager.disable_root(&self.ctx())).await,
            AgentRequest::RootStatus => match self.manager.root_enabled(&self.ctx()).await {
                Ok(enabled) => json(enabled),
                Err(e) => Err(e.into()),
            },
            _ => return None,
        };
        Some(result.map_err(agent_error))
    }

    async fn op(
        &self,
        f: impl std::future::Future<Output = Result<(), DatastoreError>>,
    ) -> anyhow::Result<Value> {
        f.await?;
        Ok(Value::Null)
    }

    async fn list_databases(&self) -> anyhow::Result<Value> {
        json(self.manager.list_databases(&self.ctx()).await?)
    }

    async fn list_users(&self) -> anyhow::Result<Value> {
        json(self.manager.list_users(&self.ctx()).await?)
    }

    async fn create_databases(
        &self,
        databases: &[coffer_model::DatabaseSpec],
    ) -> anyhow::Result<Value> {
        for d in databases {
            self.manager.validate_database_name(&d.name)?;
        }
        let existing = self.manager.list_databases(&self.ctx()).await?;
        if let Some(d) = databases.iter().find(|d| existing.contains(&d.name)) {
            return Err(exists(format!("database {:?} already exists", d.name)));
        }
        self.manager
            .create_databases(&self.ctx(), databases)
            .await?;
        Ok(Value::Null)
    }

    async fn create_users(&self, users: &[UserSpec]) -> anyhow::Result<Value> {
        for u in users {
            self.manager.validate_user(u)?;
            for d in &u.databases {
                self.manager.validate_database_name(d)?;
            }
        }
        let existing = self.manager.list_users(&self.ctx()).await?;
        // Host names are case-insensitive (MariaDB stores them lower-cased).
        if let Some(u) = users.iter().find(|u| {
            existing
                .iter()
                .any(|e| e.name == u.name && e.host.eq_ignore_ascii_case(&u.host))
        }) {
            return Err(exists(format!(
                "user {:?}@{:?} already exists",
                u.name, u.host
            )));
        }
        // Users may only be given databases that exist.
        let wanted: Vec<&String> = users.iter().flat_map(|u| &u.databases).collect();
        if !wanted.is_empty() {
            let dbs = self.manager.list_databases(&self.ctx()).await?;
            if let Some(missing) = wanted.iter().find(|d| !dbs.contains(d)) {
                return Err(DatastoreError::NotFound(format!(
                    "database {missing:?} does not exist"
                ))
                .into());
            }
        }
        self.manager.create_users(&self.ctx(), users).await?;
        Ok(Value::Null)
    }
}
