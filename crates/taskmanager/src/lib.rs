#![forbid(unsafe_code)]
//! The task manager runs each workflow (create, delete, restart) as a
//! resumable state machine whose progress is a task row in the metadata
//! store; the conductor turns agents' news into metadata updates.
//!
//! After a crash, [`TaskManager::recover`] resumes every unfinished task
//! from its last completed step (each step is idempotent) and removes
//! servers that belong to no live instance.
//!
//! Several task managers may share one metadata store: each claims a task
//! (a lease in the store, renewed while the task runs) before running it,
//! so every task runs in one of them, and a task of a task manager that
//! died is taken over when its lease expires.

mod backups;
mod conductor;
mod configuration;
mod lease;
mod manager;
mod placements;
mod workflows;

pub use backups::BackupSettings;
pub use conductor::run_conductor;
pub use manager::{TaskManager, TaskManagerConfig};
pub use placements::StorePlacements;
