//! Wire shapes of resources, as Trove's v1.0 API writes them.

use crate::links::links;
use coffer_model::{Datastore, DatastoreVersion, Flavor, Instance, OperatingStatus};
use serde_json::{json, Value};

/// Trove's timestamp format: ISO 8601 without a zone, in UTC.
pub fn timestamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S").to_string()
}

pub fn flavor(base: &str, project: &str, f: &Flavor) -> Value {
    json!({
        "id": f.id.0,
        "str_id": f.id.to_string(),
        "name": f.name,
        "ram": f.ram_mb,
        "vcpus": f.vcpus,
        "disk": f.disk_gb,
        "ephemeral": 0,
        "links": links(base, project, &format!("flavors/{}", f.id)),
    })
}

pub fn version(base: &str, project: &str, ds: &Datastore, v: &DatastoreVersion) -> Value {
    json!({
        "id": v.id,
        "name": v.name,
        "version": v.name,
        "datastore": ds.id,
        "active": v.active,
        "manager": v.manager,
        "image": null,
        "packages": "",
        "links": links(base, project, &format!("datastores/versions/{}", v.id)),
    })
}

pub fn datastore(base: &str, project: &str, ds: &Datastore) -> Value {
    let versions: Vec<Value> = ds
        .versions
        .iter()
        .filter(|v| v.active)
        .map(|v| {
            json!({
                "id": v.id,
                "name": v.name,
                "version": v.name,
                "links": links(base, project, &format!("datastores/versions/{}", v.id)),
            })
        })
        .collect();
    let mut out = json!({
        "id": ds.id,
        "name": ds.name,
        "links": links(base, project, &format!("datastores/{}", ds.id)),
        "versions": versions,
    });
    if let Some(d) = ds.default_version {
        out["default_version"] = json!(d);
    }
    out
}

/// The datastore health to show: what the agent last reported, or
/// UNAVAILABLE for a live instance whose agent has been silent longer than
/// `silence`.
pub fn operating_status(i: &Instance, silence: std::time::Duration) -> OperatingStatus {
    if silent_for(i, silence).is_some() {
        OperatingStatus::Unavailable
    } else {
        i.operating_status
    }
}

/// Why a live instance shows UNAVAILABLE, in words.
pub fn unavailable_reason(i: &Instance, silence: std::time::Duration) -> Option<String> {
    Some(match silent_for(i, silence)? {
        Some(age) => format!(
            "no report from the guest agent for {} s (its host or the network to it may be down)",
            age.as_secs()
        ),
        None => "the guest agent has never reported".to_string(),
    })
}

/// `Some(age of the last heartbeat)` (`Some(None)`: never one) when a live
/// instance's agent has been silent longer than `silence`.
fn silent_for(i: &Instance, silence: std::time::Duration) -> Option<Option<std::time::Duration>> {
    if !i.status.is_serving() {
        return None;
    }
    match i.last_heartbeat {
        None => Some(None),
        Some(hb) => match (chrono::Utc::now() - hb).to_std() {
            Ok(age) if age > silence => Some(Some(age)),
            _ => None,
        },
    }
}

/// A configuration parameter as Trove lists it.
pub fn parameter(p: &coffer_model::Parameter, v: &DatastoreVersion) -> Value {
    let mut out = json!({
        "name": p.name,
        "type": p.kind.as_str(),
        "restart_required": p.restart_required,
        "datastore_version_id": v.id,
    });
    for (key, value) in [("min", &p.min), ("max", &p.max)] {
        if let Some(n) = value {
            out[key] = json!(n);
        }
    }
    if !p.allowed_values.is_empty() {
        out["allowed_values"] = json!(p.allowed_values);
    }
    if let Some(unit) = &p.unit {
        out["unit"] = json!(unit);
    }
    if let Some(d) = &p.description {
        out["description"] = json!(d);
    }
    out
}

/// A configuration group. `detail` adds its values (show and create).
pub fn configuration(
    base: &str,
    g: &coffer_model::ConfigurationGroup,
    version_id: Option<coffer_model::DatastoreVersionId>,
    detail: bool,
) -> Value {
    let project = g.project_id.0.as_str();
    let mut out = json!({
        "id": g.id,
        "name": g.name,
        "description": g.description,
        "datastore_name": g.datastore,
        "datastore_version_name": g.datastore_version,
        "datastore_version_number": g.datastore_version,
        "datastore_version_id": version_id,
        "created": timestamp(g.created),
        "updated": timestamp(g.updated),
        "project_id": project,
        "links": links(base, project, &format!("configurations/{}", g.id)),
    });
    if detail {
        out["values"] = json!(g.values);
    }
    out
}

/// A backup. `size` is in GB as Trove reports it; `size_bytes`,
/// `stored_bytes`, `checksum` and (while it runs) `progress` are Coffer's.
pub fn backup(
    base: &str,
    b: &coffer_model::Backup,
    progress: Option<&coffer_model::Progress>,
) -> Value {
    let project = b.project_id.0.as_str();
    let gb = |n: i64| ((n as f64) / f64::from(1u32 << 30) * 1000.0).round() / 1000.0;
    let mut out = json!({
        "id": b.id,
        "name": b.name,
        "description": b.description,
        "status": b.status,
        "instance_id": b.instance_id,
        "parent_id": b.parent_id,
        "locationRef": b.location,
        "size": b.stored_bytes.map(gb),
        "size_bytes": b.plain_bytes,
        "stored_bytes": b.stored_bytes,
        "checksum": b.checksum,
        "datastore": {"type": b.datastore, "version": b.datastore_version},
        "project_id": project,
        "created": timestamp(b.created),
        "updated": timestamp(b.updated),
        "links": links(base, project, &format!("backups/{}", b.id)),
    });
    if let Some(f) = &b.fault {
        out["fail_reason"] = json!(f);
    }
    if let Some(p) = progress {
        out["progress"] = progress_view(p);
    }
    out
}

/// How far a backup or restore has got.
pub fn progress_view(p: &coffer_model::Progress) -> Value {
    let mut out = json!({
        "phase": p.phase,
        "bytes_done": p.bytes_done,
        "bytes_per_second": p.bytes_per_second,
        "stored_bytes": p.stored_bytes,
    });
    if let Some(total) = p.bytes_total {
        out["bytes_total"] = json!(total);
        if total > 0 {
            let pct = (p.bytes_done as f64 / total as f64 * 100.0).min(100.0);
            out["percent"] = json!((pct * 10.0).round() / 10.0);
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use coffer_model::{FlavorId, InstanceId, InstanceStatus, ProjectId};
    use std::time::Duration;

    /// An ACTIVE, HEALTHY MariaDB instance whose agent last spoke
    /// `heartbeat_age_s` ago (never: `None`).
    pub(crate) fn active(heartbeat_age_s: Option<i64>) -> Instance {
        let now = chrono::Utc::now();
        Instance {
            id: InstanceId::new(),
            project_id: ProjectId("p".into()),
            name: "db".into(),
            status: InstanceStatus::Active,
            operating_status: OperatingStatus::Healthy,
            flavor_id: FlavorId(1),
            datastore: "mariadb".into(),
            datastore_version: "10.11".into(),
            volume_size_gb: 2,
            volume_used_bytes: Some(1 << 30),
            ip: Some("127.10.0.1".parse().unwrap()),
            fault: None,
            created: now,
            updated: now,
            last_heartbeat: heartbeat_age_s.map(|s| now - chrono::Duration::seconds(s)),
            configuration_id: None,
            agent_protocol: None,
        }
    }

    #[test]
    fn silent_agent_shows_unavailable_with_a_reason() {
        let silence = Duration::from_secs(10);
        assert_eq!(
            operating_status(&active(Some(1)), silence),
            OperatingStatus::Healthy
        );
        assert_eq!(unavailable_reason(&active(Some(1)), silence), None);
        assert_eq!(
            operating_status(&active(Some(60)), silence),
            OperatingStatus::Unavailable
        );
        let reason = unavailable_reason(&active(Some(60)), silence).unwrap();
        assert!(reason.contains("for 60 s"), "{reason}");
        assert_eq!(
            operating_status(&active(None), silence),
            OperatingStatus::Unavailable
        );
        let mut building = active(None);
        building.status = InstanceStatus::Build;
        building.operating_status = OperatingStatus::New;
        assert_eq!(operating_status(&building, silence), OperatingStatus::New);
        assert_eq!(unavailable_reason(&building, silence), None);
    }
}
