#![forbid(unsafe_code)]
//! The vocabulary every role shares: ids, statuses, flavors, datastores and
//! instance records. Nothing here does I/O.

mod agent_config;
mod auth;
mod backup;
mod configuration;
mod datastore;
mod flavor;
mod ids;
mod instance;
mod parameters;
mod quota;
mod sandbox;
mod task;
mod validate;

pub use agent_config::AgentConfig;
pub use auth::ApiToken;
pub use backup::{Backup, BackupStatus, BackupTaskPayload, Progress, RestorePlan};
pub use configuration::ConfigurationGroup;
pub use datastore::{Datastore, DatastoreVersion};
pub use flavor::Flavor;
pub use ids::{
    BackupId, ConfigurationId, DatastoreId, DatastoreVersionId, FlavorId, InstanceId, ProjectId,
    TaskId,
};
pub use instance::{
    DatabaseSpec, Fault, Instance, InstanceStatus, OperatingStatus, UserInfo, UserSpec, UserUpdate,
    VolumeUsage,
};
pub use parameters::{
    ConfigValue, InvalidParameter, Overrides, Parameter, ParameterCatalog, ParameterSchema,
    ParameterType, Setting, MAX_STRING_VALUE,
};
pub use quota::QuotaSet;
pub use sandbox::Sandbox;
pub use task::{CreateInstancePayload, ResizePayload, Task, TaskKind, TaskState};
pub use validate::{
    validate_identifier, validate_name, validate_password, NameError, MAX_NAME_LEN,
};
