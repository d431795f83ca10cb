//! The Trove-compatible API on its own (`coffer api`, no task manager):
//! wire shapes, paging, and 4xx answers for bad input.

mod common;

use common::Coffer;
use serde_json::{json, Value};

fn create_body(name: &str) -> String {
    json!({"instance": {"name": name, "flavorRef": "1", "volume": {"size": 1},
        "datastore": {"type": "mariadb", "version": "10.11"}}})
    .to_string()
}

fn error_of(body: &Value) -> (&str, u64, &str) {
    let (k, v) = body.as_object().unwrap().iter().next().unwrap();
    (
        k.as_str(),
        v["code"].as_u64().unwrap(),
        v["message"].as_str().unwrap(),
    )
}

#[test]
fn versions_datastores_flavors_openapi() {
    let c = Coffer::api_only();
    let (code, v) = c.http("GET", "//", None);
    assert_eq!(code, 200);
    assert_eq!(v["versions"][0]["id"], "v1.0");
    assert_eq!(v["versions"][0]["status"], "CURRENT");

    let (code, v) = c.http("GET", "/datastores", None);
    assert_eq!(code, 200);
    let ds = &v["datastores"][0];
    assert_eq!(ds["name"], "mariadb");
    assert_eq!(ds["versions"][0]["name"], "10.11");
    assert_eq!(ds["default_version"], ds["versions"][0]["id"]);
    let ds_id = ds["id"].as_str().unwrap();
    let vid = ds["versions"][0]["id"].as_str().unwrap();
    for path in [
        format!("/datastores/{ds_id}"),
        "/datastores/mariadb".to_string(),
    ] {
        let (code, v) = c.http("GET", &path, None);
        assert_eq!(code, 200, "{path}");
        assert_eq!(v["datastore"]["id"], ds_id);
    }
    let (code, v) = c.http("GET", "/datastores/mariadb/versions", None);
    assert_eq!(
        (code, v["versions"][0]["datastore"].as_str()),
        (200, Some(ds_id))
    );
    assert_eq!(
        c.http("GET", "/datastores/mariadb/versions/10.11", None).1["version"]["id"],
        vid
    );
    assert_eq!(
        c.http("GET", &format!("/datastores/versions/{vid}"), None)
            .1["version"]["name"],
        "10.11"
    );
    let (code, v) = c.http("GET", "/datastores/oracle", None);
    assert_eq!(error_of(&v).0, "itemNotFound");
    assert_eq!(code, 404);

    let (code, v) = c.http("GET", "/flavors", None);
    assert_eq!(code, 200);
    let names: Vec<&str> = v["flavors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["small", "medium", "large"]);
    assert_eq!(v["flavors"][0]["id"], 1);
    assert_eq!(v["flavors"][0]["str_id"], "1");
    assert_eq!(v["flavors"][0]["ram"], 512);
    assert_eq!(
        c.http("GET", "/flavors/2", None).1["flavor"]["name"],
        "medium"
    );
    // A name where an id is expected is a 404 (troveclient relies on it).
    let (code, v) = c.http("GET", "/flavors/small", None);
    assert_eq!((code, error_of(&v).0), (404, "itemNotFound"));
    assert_eq!(c.http("GET", "/flavors/99", None).0, 404);

    // Admin flavor management.
    let (code, v) = c.http(
        "POST",
        "/mgmt/flavors",
        Some(r#"{"flavor": {"name": "tiny", "ram": 256, "vcpus": 1}}"#),
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["flavor"]["id"], 4);
    assert_eq!(
        c.http(
            "POST",
            "/mgmt/flavors",
            Some(r#"{"flavor": {"name": "tiny", "ram": 256, "vcpus": 1}}"#)
        )
        .0,
        409
    );
    assert_eq!(c.http("DELETE", "/mgmt/flavors/4", None).0, 202);
    assert_eq!(c.http("GET", "/flavors/4", None).0, 404);

    let (code, doc) = c.http("GET", "//openapi.json", None);
    assert_eq!(code, 200);
    assert_eq!(doc["openapi"], "3.0.3");
    assert!(doc["paths"]["/v1.0/{project_id}/instances"]["post"].is_object());
}

#[test]
fn bad_input_is_4xx_with_a_message() {
    let c = Coffer::api_only();
    let cases: Vec<(&str, &str, Option<String>, u16, &str)> = vec![
        ("POST", "/instances", Some("{not json".into()), 400, "badRequest"),
        ("POST", "/instances", Some("".into()), 400, "badRequest"),
        ("POST", "/instances", Some("[1,2]".into()), 400, "badRequest"),
        ("POST", "/instances", Some(r#"{"instance": {"name": "x", "flavorRef": "1"}}"#.into()), 400, "badRequest"),
        ("POST", "/instances", Some(r#"{"instance": {"name": "x", "flavorRef": "77", "volume": {"size": 1}}}"#.into()), 404, "itemNotFound"),
        ("POST", "/instances", Some(r#"{"instance": {"name": "x", "flavorRef": "1", "volume": {"size": -3}}}"#.into()), 400, "badRequest"),
        ("POST", "/instances", Some(r#"{"instance": {"name": "x", "flavorRef": "1", "volume": {"size": 1}, "datastore": {"type": "oracle"}}}"#.into()), 404, "itemNotFound"),
        ("POST", "/instances", Some(r#"{"instance": {"name": "x", "flavorRef": "1", "volume": {"size": 1}, "datastore": {"type": "mariadb", "version": "1.0"}}}"#.into()), 400, "badRequest"),
        ("POST", "/instances", Some(json!({"instance": {"name": "n".repeat(300), "flavorRef": "1", "volume": {"size": 1}}}).to_string()), 400, "badRequest"),
        ("POST", "/instances", Some(r#"{"instance": {"name": "x", "flavorRef": "1", "volume": {"size": 1}, "databases": [{"name": "x'; DROP DATABASE app; --"}]}}"#.into()), 400, "badRequest"),
        ("POST", "/instances", Some(r#"{"instance": {"name": "x", "flavorRef": "1", "volume": {"size": 1}, "users": [{"name": "u", "password": ""}]}}"#.into()), 400, "badRequest"),
        ("GET", "/instances/db1", None, 404, "itemNotFound"),
        ("GET", "/instances/6f1c3f8e-1111-4222-8333-944444444444", None, 404, "itemNotFound"),
        ("DELETE", "/instances/nope", None, 404, "itemNotFound"),
        ("GET", "/instances?limit=abc", None, 400, "badRequest"),
        ("GET", "/instances?marker=zzz", None, 400, "badRequest"),
        ("GET", "/nothing-here", None, 404, "itemNotFound"),
        ("PUT", "/flavors", None, 405, "badMethod"),
    ];
    for (method, path, body, want_code, want_key) in cases {
        let (code, v) = c.http(method, path, body.as_deref());
        assert_eq!(code, want_code, "{method} {path} {body:?} -> {v}");
        let (key, inner_code, message) = error_of(&v);
        assert_eq!(key, want_key, "{method} {path} -> {v}");
        assert_eq!(inner_code, u64::from(want_code));
        assert!(!message.is_empty());
    }
    // An oversize body is refused, not read.
    let huge = format!(
        "{{\"instance\": {{\"name\": \"{}\"}}}}",
        "x".repeat(2 << 20)
    );
    assert_eq!(c.http("POST", "/instances", Some(&huge)).0, 413);
    // Nothing above created anything.
    assert_eq!(c.http("GET", "/instances", None).1["instances"], json!([]));
}

#[test]
fn create_show_list_paging_and_state_rules() {
    let c = Coffer::api_only();
    let mut ids = Vec::new();
    for i in 0..5 {
        let (code, v) = c.http("POST", "/instances", Some(&create_body(&format!("db{i}"))));
        assert_eq!(code, 200, "{v}");
        let inst = &v["instance"];
        assert_eq!(inst["status"], "BUILD");
        assert_eq!(inst["flavor"]["id"], "1");
        assert_eq!(inst["datastore"]["type"], "mariadb");
        assert_eq!(inst["volume"]["size"], 1);
        ids.push(inst["id"].as_str().unwrap().to_string());
    }
    // Each instance gets its own address from the range.
    let mut ips: Vec<String> = ids
        .iter()
        .map(|id| {
            c.http("GET", &format!("/instances/{id}"), None).1["instance"]["ip"][0]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    ips.dedup();
    assert_eq!(ips.len(), 5);
    assert!(ips[0].starts_with(&format!("127.{}.", c.octet)));
    let (_, shown) = c.http("GET", &format!("/instances/{}", ids[0]), None);
    assert_eq!(shown["instance"]["addresses"][0]["type"], "private");
    assert!(
        shown["instance"]["created"].as_str().unwrap().len() == 19,
        "Trove's timestamp format"
    );

    // Paging: 2 + 2 + 1 in creation order, next links carry the marker.
    let (_, p1) = c.http("GET", "/instances?limit=2", None);
    let page_ids = |p: &Value| -> Vec<String> {
        p["instances"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(page_ids(&p1), ids[0..2]);
    let next = p1["links"][0]["href"].as_str().unwrap();
    assert_eq!(p1["links"][0]["rel"], "next");
    assert!(next.ends_with(&format!("marker={}", ids[1])), "{next}");
    let (_, p2) = c.http(
        "GET",
        &format!("/instances?limit=2&marker={}", ids[1]),
        None,
    );
    assert_eq!(page_ids(&p2), ids[2..4]);
    let (_, p3) = c.http(
        "GET",
        &format!("/instances?limit=2&marker={}", ids[3]),
        None,
    );
    assert_eq!(page_ids(&p3), ids[4..5]);
    assert!(p3.get("links").is_none(), "no links on the last page: {p3}");

    // Projects do not see each other's instances.
    let other = common::http(
        "GET",
        &format!("{}/v1.0/other/instances", c.endpoint()),
        None,
    );
    assert_eq!(other.1["instances"], json!([]));
    let other = common::http(
        "GET",
        &format!("{}/v1.0/other/instances/{}", c.endpoint(), ids[0]),
        None,
    );
    assert_eq!(other.0, 404);

    // A BUILD instance cannot be restarted or deleted: 422 with the status.
    let (code, v) = c.http(
        "POST",
        &format!("/instances/{}/action", ids[0]),
        Some(r#"{"restart": {}}"#),
    );
    assert_eq!(code, 422, "{v}");
    assert!(error_of(&v).2.contains("BUILD"));
    assert_eq!(
        c.http("DELETE", &format!("/instances/{}", ids[0]), None).0,
        422
    );
    assert_eq!(
        c.http(
            "POST",
            &format!("/instances/{}/action", ids[0]),
            Some(r#"{"explode": {}}"#)
        )
        .0,
        400
    );
    assert_eq!(
        c.http(
            "POST",
            &format!("/instances/{}/action", ids[0]),
            Some(r#"{}"#)
        )
        .0,
        400
    );
    // reset_status frees a stuck instance: ERROR with a fault, then delete is accepted.
    assert_eq!(
        c.http(
            "POST",
            &format!("/instances/{}/action", ids[0]),
            Some(r#"{"reset_status": {}}"#)
        )
        .0,
        202
    );
    let (_, v) = c.http("GET", &format!("/instances/{}", ids[0]), None);
    assert_eq!(v["instance"]["status"], "ERROR");
    assert!(v["instance"]["fault"]["message"]
        .as_str()
        .unwrap()
        .contains("reset"));
    assert_eq!(
        c.http("DELETE", &format!("/instances/{}", ids[0]), None).0,
        202
    );
    assert_eq!(
        c.http("GET", &format!("/instances/{}", ids[0]), None).1["instance"]["status"],
        "SHUTDOWN"
    );
    // A flavor in use cannot be deleted.
    assert_eq!(c.http("DELETE", "/mgmt/flavors/1", None).0, 409);
}

#[test]
fn unknown_strategy_is_a_startup_error_listing_known_ones() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("coffer.toml");
    std::fs::write(
        &cfg,
        "[datastores.oracle]\nmanager = \"oracle\"\nversions = [\"23\"]\n",
    )
    .unwrap();
    let out = std::process::Command::new(common::BIN)
        .args(["up", "--state-dir"])
        .arg(dir.path())
        .arg("--config")
        .arg(&cfg)
        .env("COFFER__API__LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown datastore manager strategy \"oracle\"; known: mariadb"),
        "{err}"
    );

    // A malformed configuration names the field.
    std::fs::write(&cfg, "[taskmanager]\nprepare_timeout = \"soon\"\n").unwrap();
    let out = std::process::Command::new(common::BIN)
        .args(["up", "--state-dir"])
        .arg(dir.path())
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("prepare_timeout"));
}

/// Many creates at once all get an address (racing creates that pick the
/// same one retry elsewhere), and no two share one. API only: nothing is
/// provisioned.
#[test]
fn concurrent_creates_get_distinct_addresses() {
    let c = Coffer::start_roles(&["api"], &[("COFFER__QUOTAS__INSTANCES", "-1")]);
    let codes: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..48)
            .map(|n| {
                let c = &c;
                scope.spawn(move || {
                    c.http(
                        "POST",
                        "/instances",
                        Some(&create_body(&format!("race{n}"))),
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut ips = std::collections::BTreeSet::new();
    for (code, v) in &codes {
        assert_eq!(*code, 200, "{v}");
        ips.insert(v["instance"]["ip"][0].as_str().unwrap().to_string());
    }
    assert_eq!(ips.len(), 48, "{ips:?}");
}
