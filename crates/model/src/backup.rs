//! Backups as the control plane records them.

use crate::{BackupId, InstanceId, ProjectId};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Backup status as Trove reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BackupStatus {
    /// Accepted; the agent has not started yet.
    New,
    /// The agent is streaming it to storage.
    Building,
    /// Stored whole and verified by its checksum; restorable.
    Completed,
    /// Did not complete; `fault` says why. Nothing of it is restorable.
    Failed,
    /// The stored object could not be removed; deleting again retries.
    DeleteFailed,
}

impl BackupStatus {
    pub const ALL: [BackupStatus; 5] = [
        BackupStatus::New,
        BackupStatus::Building,
        BackupStatus::Completed,
        BackupStatus::Failed,
        BackupStatus::DeleteFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BackupStatus::New => "NEW",
            BackupStatus::Building => "BUILDING",
            BackupStatus::Completed => "COMPLETED",
            BackupStatus::Failed => "FAILED",
            BackupStatus::DeleteFailed => "DELETE_FAILED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Statuses a `--wait` stops at.
    pub fn is_terminal(self) -> bool {
        !matches!(self, BackupStatus::New | BackupStatus::Building)
    }
}

impl fmt::Display for BackupStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The control plane's record of one backup.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Backup {
    pub id: BackupId,
    pub project_id: ProjectId,
    pub name: String,
    pub description: Option<String>,
    /// The instance it was taken of (which may since have been deleted).
    pub instance_id: InstanceId,
    /// The backup this one is incremental to; `None` for a full backup.
    pub parent_id: Option<BackupId>,
    pub status: BackupStatus,
    pub datastore: String,
    pub datastore_version: String,
    /// The `BackupStrategy` that produced it (restores use the same name).
    pub strategy: String,
    /// Where the object is, e.g. `swift://backups/<id>.cbk` (once stored).
    pub location: Option<String>,
    /// The object's key inside the configured storage.
    pub object_key: String,
    /// Bytes the datastore's backup tool produced.
    pub plain_bytes: Option<i64>,
    /// Bytes stored (compressed and encrypted).
    pub stored_bytes: Option<i64>,
    /// SHA-256 (hex) of the stored object.
    pub checksum: Option<String>,
    /// The per-backup data key, wrapped by the master key: useless without it.
    pub wrapped_key: String,
    /// Which master key wrapped it (a fingerprint, not the key).
    pub key_id: String,
    /// Compression codec, e.g. `zstd:3`.
    pub codec: String,
    /// What the strategy reported (LSNs...): an incremental's input.
    pub info: serde_json::Value,
    /// Why it failed.
    pub fault: Option<String>,
    pub created: chrono::DateTime<chrono::Utc>,
    pub updated: chrono::DateTime<chrono::Utc>,
}

/// How far a long operation (a backup, a restore) has got, as the agent
/// last reported it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct Progress {
    /// What is running: `backup` or `restore`.
    pub phase: String,
    /// Datastore bytes processed so far.
    pub bytes_done: u64,
    /// Datastore bytes in all, when known (restores know it).
    pub bytes_total: Option<u64>,
    /// Recent throughput.
    pub bytes_per_second: u64,
    /// Stored (compressed, encrypted) bytes so far.
    pub stored_bytes: u64,
}

/// The input of a backup task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupTaskPayload {
    pub backup_id: BackupId,
}

/// Where a new instance's data comes from: a completed backup and its
/// parents, full backup first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestorePlan {
    pub backup_id: BackupId,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip() {
        for s in BackupStatus::ALL {
            assert_eq!(BackupStatus::parse(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
        assert!(!BackupStatus::Building.is_terminal());
        assert!(BackupStatus::Failed.is_terminal());
    }
}
