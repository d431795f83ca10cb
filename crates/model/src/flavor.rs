use crate::FlavorId;
use serde::{Deserialize, Serialize};

/// A hardware profile. `ram_mb` drives the datastore's memory settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flavor {
    pub id: FlavorId,
    pub name: String,
    pub ram_mb: i64,
    pub vcpus: i64,
    /// Root disk in GB; informational for local compute.
    pub disk_gb: i64,
}

impl Flavor {
    /// The flavors a new deployment starts with.
    pub fn defaults() -> Vec<Flavor> {
        let f = |id, name: &str, ram_mb, vcpus, disk_gb| Flavor {
            id: FlavorId(id),
            name: name.to_string(),
            ram_mb,
            vcpus,
            disk_gb,
        };
        vec![
            f(1, "small", 512, 1, 5),
            f(2, "medium", 1024, 1, 10),
            f(3, "large", 2048, 2, 20),
        ]
    }
}
