//! Configuration groups: named parameter values for one datastore version,
//! attached to any number of that version's instances.

use crate::{ConfigValue, ConfigurationId, ProjectId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A configuration group as the control plane records it. `values` were
/// checked against the datastore version's parameter schema.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConfigurationGroup {
    pub id: ConfigurationId,
    pub project_id: ProjectId,
    pub name: String,
    pub description: Option<String>,
    pub datastore: String,
    pub datastore_version: String,
    pub values: BTreeMap<String, ConfigValue>,
    pub created: chrono::DateTime<chrono::Utc>,
    pub updated: chrono::DateTime<chrono::Utc>,
}
