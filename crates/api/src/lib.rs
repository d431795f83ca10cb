#![forbid(unsafe_code)]
//! The HTTP API: Trove v1.0-compatible routes, wire types and the one
//! error-to-HTTP mapping. It authenticates, validates, writes intent and a
//! durable task to the metadata store, wakes the task manager and answers;
//! it never waits for a datastore.

pub mod auth;
mod body;
mod error;
mod instance_view;
mod links;
mod routes;
mod views;

pub use error::ApiError;

use axum::Router;
use coffer_bus::Bus;
use coffer_meta::Store;
use coffer_secrets::Sealer;
use std::net::Ipv4Addr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// What the API needs to know that is not in the metadata store.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// Instance addresses are taken from this range: (network, prefix length).
    pub address_range: (Ipv4Addr, u8),
    /// Datastore used when a create names none.
    pub default_datastore: String,
    /// Largest volume a tenant may ask for, in GB.
    pub max_volume_gb: i64,
    /// Page size when a list names no `limit`.
    pub default_page_size: usize,
    /// Largest `limit` honoured.
    pub max_page_size: usize,
    /// An ACTIVE instance whose agent was silent this long shows
    /// `operating_status` UNAVAILABLE (with a reason).
    pub agent_silence: std::time::Duration,
    /// How each datastore (by name) is backed up; a datastore missing here
    /// takes no backups.
    pub backups: std::collections::BTreeMap<String, BackupPolicy>,
    /// Parameter schemas of the offered datastore versions.
    pub parameters: coffer_model::ParameterCatalog,
    /// Every project's quota limits unless an admin set its own.
    pub quotas: coffer_model::QuotaSet,
}

/// A datastore's backup strategy, as the API needs to know it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupPolicy {
    pub strategy: String,
    /// Whether the strategy takes incremental backups.
    pub incremental: bool,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            address_range: (Ipv4Addr::new(127, 10, 0, 0), 16),
            default_datastore: "mariadb".into(),
            max_volume_gb: 100,
            default_page_size: 20,
            max_page_size: 1000,
            agent_silence: std::time::Duration::from_secs(10),
            backups: std::collections::BTreeMap::new(),
            parameters: coffer_model::ParameterCatalog::default(),
            quotas: coffer_model::QuotaSet {
                instances: 10,
                volumes: 100,
                backups: 50,
            },
        }
    }
}

/// Shared by every handler.
#[derive(Clone)]
pub struct ApiState {
    pub store: Store,
    pub bus: Arc<dyn Bus>,
    pub sealer: Sealer,
    pub config: Arc<ApiConfig>,
    pub auth: Arc<auth::Auth>,
}

/// The whole API as an axum router.
pub fn router(state: ApiState) -> Router {
    routes::router()
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(body::MAX_BODY))
        .with_state(state)
}

/// Serve on `listener` until `cancel` fires.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: ApiState,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    tracing::info!(address = %listener.local_addr()?, auth = state.auth.name(), "API listening");
    if let auth::Auth::NoAuth = *state.auth {
        tracing::warn!(
            "AUTHENTICATION IS OFF (auth.mode = \"noauth\"): every request is accepted as an admin of any project. For development only; set auth.mode to \"tokens\" or \"keystone\"."
        );
    }
    axum::serve(listener, router(state))
        .with_graceful_shutdown(cancel.cancelled_owned())
        .await
}

/// The OpenAPI document of what is implemented.
pub const OPENAPI: &str = include_str!("../openapi.json");
