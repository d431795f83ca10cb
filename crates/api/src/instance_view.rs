//! The instance as Trove's v1.0 API writes it, as typed structs that
//! serialise straight to bytes: a list of hundreds of instances is the
//! API's hottest answer, and building a `serde_json::Value` tree per row
//! (a map node and a string per field) cost more than the database read.

use crate::links::{link_pair, Link};
use coffer_model::{ConfigurationId, Instance, InstanceId, InstanceStatus, OperatingStatus};
use serde::Serialize;
use std::net::Ipv4Addr;
use std::time::Duration;

#[derive(Serialize)]
pub struct Reference<T> {
    pub id: T,
    pub links: [Link; 2],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Serialize)]
pub struct DatastoreRef<'a> {
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_number: Option<&'a str>,
}

#[derive(Serialize)]
pub struct Volume {
    pub size: i64,
    /// GB, as Trove reports it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used_percent: Option<f64>,
}

#[derive(Serialize)]
pub struct Address {
    pub address: Ipv4Addr,
    #[serde(rename = "type")]
    pub kind: &'static str,
}

#[derive(Serialize)]
pub struct Access {
    pub is_public: bool,
}

#[derive(Serialize)]
pub struct FaultView<'a> {
    pub message: &'a str,
    pub created: String,
    pub details: &'static str,
}

/// An instance; the fields after `access` are what only `show` (the
/// detailed view) carries in Trove.
#[derive(Serialize)]
pub struct InstanceView<'a> {
    pub id: InstanceId,
    pub name: &'a str,
    pub status: InstanceStatus,
    pub operating_status: OperatingStatus,
    /// Why the health shows UNAVAILABLE.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operating_status_reason: Option<String>,
    pub links: [Link; 2],
    pub flavor: Reference<String>,
    pub datastore: DatastoreRef<'a>,
    pub region: &'static str,
    pub volume: Volume,
    pub ip: &'a [Ipv4Addr],
    pub addresses: Vec<Address>,
    pub access: Access,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_status_updated: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub configuration: Option<Reference<ConfigurationId>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<FaultView<'a>>,
    /// Restore or build progress (set by `show`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<serde_json::Value>,
}

impl<'a> InstanceView<'a> {
    /// `detail` adds what only `show` returns in Trove; `silence` is how long
    /// an agent may be quiet before its datastore's health shows UNAVAILABLE.
    pub fn new(base: &str, i: &'a Instance, detail: bool, silence: Duration) -> Self {
        let project = i.project_id.0.as_str();
        let ip = i.ip.as_slice();
        let mut view = InstanceView {
            id: i.id,
            name: &i.name,
            status: i.status,
            operating_status: crate::views::operating_status(i, silence),
            operating_status_reason: crate::views::unavailable_reason(i, silence),
            links: link_pair(base, project, &format!("instances/{}", i.id)),
            flavor: Reference {
                id: i.flavor_id.to_string(),
                links: link_pair(base, project, &format!("flavors/{}", i.flavor_id)),
                name: None,
            },
            datastore: DatastoreRef {
                kind: &i.datastore,
                version: &i.datastore_version,
                version_number: None,
            },
            region: "RegionOne",
            volume: Volume {
                size: i.volume_size_gb,
                used: None,
                used_percent: None,
            },
            ip,
            addresses: ip
                .iter()
                .map(|&address| Address {
                    address,
                    kind: "private",
                })
                .collect(),
            access: Access { is_public: false },
            created: None,
            updated: None,
            tenant_id: None,
            service_status_updated: None,
            configuration: None,
            fault: None,
            progress: None,
        };
        if detail {
            view.add_detail(base, i);
        }
        view
    }

    fn add_detail(&mut self, base: &str, i: &'a Instance) {
        use crate::views::timestamp;
        let project = i.project_id.0.as_str();
        self.created = Some(timestamp(i.created));
        self.updated = Some(timestamp(i.updated));
        self.tenant_id = Some(project);
        self.datastore.version_number = Some(&i.datastore_version);
        if let Some(used) = i.volume_used_bytes {
            let used_gb = (used as f64) / f64::from(1u32 << 30);
            self.volume.used = Some((used_gb * 1000.0).round() / 1000.0);
            let percent = used_gb / (i.volume_size_gb.max(1) as f64) * 100.0;
            self.volume.used_percent = Some((percent * 100.0).round() / 100.0);
        }
        self.service_status_updated = i.last_heartbeat.map(timestamp);
        self.configuration = i.configuration_id.map(|c| Reference {
            id: c,
            links: link_pair(base, project, &format!("configurations/{c}")),
            name: None,
        });
        self.fault = i.fault.as_ref().map(|f| FaultView {
            message: &f.message,
            created: timestamp(f.created),
            details: "",
        });
    }
}

/// `{"instances": [...], "links": [...]}`: a page of the instance list.
#[derive(Serialize)]
pub struct InstancePage<'a> {
    pub instances: Vec<InstanceView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub links: Option<serde_json::Value>,
}

/// `{"instance": {...}}`.
#[derive(Serialize)]
pub struct OneInstance<'a> {
    pub instance: InstanceView<'a>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn active() -> Instance {
        let mut i = crate::views::tests::active(Some(0));
        i.configuration_id = Some(ConfigurationId::new());
        i
    }

    fn view(i: &Instance, detail: bool) -> serde_json::Value {
        let v = InstanceView::new("http://h:8779", i, detail, Duration::from_secs(10));
        serde_json::to_value(v).unwrap()
    }

    #[test]
    fn detail_view_has_trove_fields() {
        let i = active();
        let v = view(&i, true);
        assert_eq!(v["ip"], json!(["127.10.0.1"]));
        assert_eq!(
            v["addresses"],
            json!([{"address": "127.10.0.1", "type": "private"}])
        );
        assert_eq!(
            v["volume"],
            json!({"size": 2, "used": 1.0, "used_percent": 50.0})
        );
        assert_eq!(v["flavor"]["id"], "1");
        assert_eq!(
            v["flavor"]["links"][1],
            json!({"href": "http://h:8779/flavors/1", "rel": "bookmark"})
        );
        assert_eq!(
            v["datastore"],
            json!({"type": "mariadb", "version": "10.11", "version_number": "10.11"})
        );
        assert_eq!(
            v["links"][0]["href"],
            format!("http://h:8779/v1.0/p/instances/{}", i.id)
        );
        assert_eq!(v["status"], "ACTIVE");
        assert_eq!(v["operating_status"], "HEALTHY");
        assert_eq!(v["tenant_id"], "p");
        assert_eq!(v["region"], "RegionOne");
        assert_eq!(v["access"], json!({"is_public": false}));
        assert!(v["configuration"]["id"].is_string());
        assert!(v.get("fault").is_none() && v.get("progress").is_none());
    }

    #[test]
    fn list_view_leaves_out_the_detail() {
        let mut i = active();
        i.ip = None;
        let v = view(&i, false);
        for key in [
            "created",
            "updated",
            "tenant_id",
            "configuration",
            "service_status_updated",
        ] {
            assert!(v.get(key).is_none(), "{key} in the list view");
        }
        assert!(v["datastore"].get("version_number").is_none());
        assert!(v["volume"].get("used").is_none());
        assert_eq!(v["ip"], json!([]));
        assert_eq!(v["addresses"], json!([]));
    }
}
