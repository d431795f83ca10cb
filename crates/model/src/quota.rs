//! Quotas: how much of each resource a project may hold.

use serde::{Deserialize, Serialize};

/// A number per quota resource: limits (`-1` = unlimited), usage or a
/// request's additions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaSet {
    pub instances: i64,
    /// Volume gigabytes.
    pub volumes: i64,
    pub backups: i64,
}

impl QuotaSet {
    /// The resources, as Trove names them.
    pub const RESOURCES: [&'static str; 3] = ["instances", "volumes", "backups"];

    pub fn get(&self, resource: &str) -> Option<i64> {
        match resource {
            "instances" => Some(self.instances),
            "volumes" => Some(self.volumes),
            "backups" => Some(self.backups),
            _ => None,
        }
    }

    /// False for an unknown resource.
    pub fn set(&mut self, resource: &str, value: i64) -> bool {
        match resource {
            "instances" => self.instances = value,
            "volumes" => self.volumes = value,
            "backups" => self.backups = value,
            _ => return false,
        }
        true
    }

    /// The resources that `usage` plus `adding` would take over these
    /// limits (only those `adding` grows).
    pub fn exceeded_by(&self, usage: &QuotaSet, adding: &QuotaSet) -> Vec<&'static str> {
        Self::RESOURCES
            .into_iter()
            .filter(|r| {
                let (limit, used, add) = (
                    self.get(r).unwrap_or(-1),
                    usage.get(r).unwrap_or(0),
                    adding.get(r).unwrap_or(0),
                );
                add > 0 && limit >= 0 && used + add > limit
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exceeding() {
        let limits = QuotaSet {
            instances: 2,
            volumes: 10,
            backups: -1,
        };
        let used = QuotaSet {
            instances: 2,
            volumes: 4,
            backups: 100,
        };
        let one = QuotaSet {
            instances: 1,
            volumes: 6,
            backups: 0,
        };
        assert_eq!(limits.exceeded_by(&used, &one), ["instances"]);
        let big = QuotaSet {
            instances: 0,
            volumes: 7,
            backups: 1,
        };
        assert_eq!(limits.exceeded_by(&used, &big), ["volumes"]);
        // Over a limit already, but not growing it: allowed.
        assert!(limits.exceeded_by(&used, &QuotaSet::default()).is_empty());
        let mut q = QuotaSet::default();
        assert!(q.set("backups", 3) && !q.set("ram", 1));
        assert_eq!(q.get("backups"), Some(3));
    }
}
