use crate::{DatastoreId, DatastoreVersionId};
use serde::{Deserialize, Serialize};

/// A datastore type offered to tenants, e.g. `mariadb`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Datastore {
    pub id: DatastoreId,
    pub name: String,
    pub default_version: Option<DatastoreVersionId>,
    pub versions: Vec<DatastoreVersion>,
}

/// One version of a datastore. `manager` names the `DatastoreManager` strategy
/// that runs it (looked up in the strategy registry).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatastoreVersion {
    pub id: DatastoreVersionId,
    pub datastore_id: DatastoreId,
    pub name: String,
    pub manager: String,
    pub active: bool,
}

impl Datastore {
    /// The active version named `name`, or the default when `name` is `None`.
    /// Accepts a version id as well as a name.
    pub fn version(&self, name: Option<&str>) -> Option<&DatastoreVersion> {
        match name {
            None => self
                .default_version
                .and_then(|id| self.versions.iter().find(|v| v.id == id))
                .or_else(|| self.versions.iter().find(|v| v.active)),
            Some(n) => self
                .versions
                .iter()
                .find(|v| v.name == n || v.id.to_string() == n),
        }
    }
}
