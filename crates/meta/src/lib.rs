#![forbid(unsafe_code)]
//! Control-plane state behind one trait, [`MetadataStore`], with two
//! implementations: SQLite (the embedded default, WAL mode) and PostgreSQL
//! (for a multi-host deployment). [`open`] picks one from a URL.
//!
//! Only the control plane (api, taskmanager, conductor) holds a store; the
//! guest agent never does.

mod auth_sql;
mod auth_store;
mod backup_sql;
mod backup_store;
mod configuration_sql;
mod configuration_store;
mod error;
mod migrate;
mod placement_sql;
mod placement_store;
mod postgres;
mod quota_sql;
mod quota_store;
mod rows;
mod sql_store;
mod sqlite;
mod store;
mod task_lease_sql;
mod task_lease_store;
mod writes;

pub use auth_store::AuthStore;
pub use backup_store::BackupStore;
pub use configuration_store::ConfigurationStore;
pub use error::MetaError;
pub use placement_store::PlacementStore;
pub use quota_store::QuotaStore;
pub use store::{open, MetadataStore, Store};
pub use task_lease_store::TaskLeaseStore;
