#![forbid(unsafe_code)]
//! The strategy traits and the registry that picks implementations by name.
//!
//! This crate depends on no datastore, no storage SDK and no bus: it states
//! contracts. Implementations live in `coffer-datastores` (and later crates)
//! and register under a name; configuration selects them.

mod backup;
mod datastore;
mod registry;

pub use backup::{BackupSource, BackupStrategy, RestoreSink, RestoreStrategy};
pub use datastore::{ConfigChange, DatastoreError, DatastoreManager, Health, InstanceContext};
pub use registry::{Registry, UnknownStrategy};
