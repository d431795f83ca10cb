use crate::{FlavorId, InstanceId, ProjectId};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::Ipv4Addr;

/// Instance status as Trove reports it in `status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InstanceStatus {
    /// Being provisioned.
    Build,
    /// Running and answering.
    Active,
    /// Restarting the datastore.
    Reboot,
    /// Being deleted.
    Shutdown,
    /// A backup of it is running; it keeps serving.
    Backup,
    /// A workflow failed; `fault` says why.
    Error,
    /// Changing its flavor or volume.
    Resize,
    /// Running, but configuration changes wait for a restart.
    RestartRequired,
}

impl InstanceStatus {
    pub const ALL: [InstanceStatus; 8] = [
        InstanceStatus::Build,
        InstanceStatus::Active,
        InstanceStatus::Reboot,
        InstanceStatus::Shutdown,
        InstanceStatus::Backup,
        InstanceStatus::Error,
        InstanceStatus::Resize,
        InstanceStatus::RestartRequired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            InstanceStatus::Build => "BUILD",
            InstanceStatus::Active => "ACTIVE",
            InstanceStatus::Reboot => "REBOOT",
            InstanceStatus::Shutdown => "SHUTDOWN",
            InstanceStatus::Backup => "BACKUP",
            InstanceStatus::Error => "ERROR",
            InstanceStatus::Resize => "RESIZE",
            InstanceStatus::RestartRequired => "RESTART_REQUIRED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Statuses a `--wait` stops at: nothing more will happen without a new request.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            InstanceStatus::Active | InstanceStatus::Error | InstanceStatus::RestartRequired
        )
    }

    /// The datastore runs and answers requests (accounts, configuration).
    pub fn is_serving(self) -> bool {
        matches!(
            self,
            InstanceStatus::Active | InstanceStatus::RestartRequired
        )
    }
}

impl fmt::Display for InstanceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The datastore's own health as the guest agent last reported it
/// (Trove's `operating_status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OperatingStatus {
    /// No report yet.
    New,
    /// The datastore answers queries.
    Healthy,
    /// The process runs but does not answer yet.
    Running,
    /// Stopped on purpose.
    Shutdown,
    /// Stopped unexpectedly, or the agent went silent.
    Crashed,
    /// Nothing is known.
    Unknown,
    /// The guest agent has been silent too long (its host or the network
    /// to it may be down); shown, never stored.
    Unavailable,
}

impl OperatingStatus {
    /// The statuses an agent reports and the store keeps (not
    /// `Unavailable`, which only a view shows).
    pub const ALL: [OperatingStatus; 6] = [
        OperatingStatus::New,
        OperatingStatus::Healthy,
        OperatingStatus::Running,
        OperatingStatus::Shutdown,
        OperatingStatus::Crashed,
        OperatingStatus::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OperatingStatus::New => "NEW",
            OperatingStatus::Healthy => "HEALTHY",
            OperatingStatus::Running => "RUNNING",
            OperatingStatus::Shutdown => "SHUTDOWN",
            OperatingStatus::Crashed => "CRASHED",
            OperatingStatus::Unknown => "UNKNOWN",
            OperatingStatus::Unavailable => "UNAVAILABLE",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl fmt::Display for OperatingStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an instance is in ERROR.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    pub message: String,
    pub created: chrono::DateTime<chrono::Utc>,
}

/// Volume usage as the agent measures it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct VolumeUsage {
    pub used_bytes: u64,
    pub size_bytes: u64,
    /// True when the agent has made the datastore refuse writes because the
    /// volume is full.
    pub full: bool,
}

/// A database to create at instance create time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseSpec {
    pub name: String,
}

/// A user to create at instance create time, with access to `databases`.
/// Hand-written `Debug` so the password never reaches a log line.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserSpec {
    pub name: String,
    pub password: String,
    #[serde(default = "default_host")]
    pub host: String,
    #[serde(default)]
    pub databases: Vec<String>,
}

fn default_host() -> String {
    "%".to_string()
}

impl fmt::Debug for UserSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserSpec")
            .field("name", &self.name)
            .field("password", &"<redacted>")
            .field("host", &self.host)
            .field("databases", &self.databases)
            .finish()
    }
}

/// A tenant user as a datastore reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    pub name: String,
    pub host: String,
    /// Databases the user has access to, sorted.
    pub databases: Vec<String>,
}

/// Changes to a user; `None` leaves a field as it is. Hand-written `Debug`
/// hides the password.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserUpdate {
    pub name: Option<String>,
    pub password: Option<String>,
    pub host: Option<String>,
}

impl fmt::Debug for UserUpdate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserUpdate")
            .field("name", &self.name)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("host", &self.host)
            .finish()
    }
}

/// The control plane's record of one instance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    pub id: InstanceId,
    pub project_id: ProjectId,
    pub name: String,
    pub status: InstanceStatus,
    pub operating_status: OperatingStatus,
    pub flavor_id: FlavorId,
    pub datastore: String,
    pub datastore_version: String,
    pub volume_size_gb: i64,
    pub volume_used_bytes: Option<i64>,
    pub ip: Option<Ipv4Addr>,
    pub fault: Option<Fault>,
    pub created: chrono::DateTime<chrono::Utc>,
    pub updated: chrono::DateTime<chrono::Utc>,
    pub last_heartbeat: Option<chrono::DateTime<chrono::Utc>>,
    /// The attached configuration group.
    #[serde(default)]
    pub configuration_id: Option<crate::ConfigurationId>,
    /// The agent protocol version its agent announced in its last
    /// heartbeat (`None`: not heard yet).
    #[serde(default)]
    pub agent_protocol: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip() {
        for s in InstanceStatus::ALL {
            assert_eq!(InstanceStatus::parse(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
        for s in OperatingStatus::ALL {
            assert_eq!(OperatingStatus::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn user_debug_hides_password() {
        let u = UserSpec {
            name: "app".into(),
            password: "hunter2".into(),
            host: "%".into(),
            databases: vec![],
        };
        assert!(!format!("{u:?}").contains("hunter2"));
    }
}
