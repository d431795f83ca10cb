//! Built-in token authentication and tenant isolation through the real
//! binary: no token or a bad one is 401; a token acts in its own project
//! only (403 elsewhere); admin-only routes are 403 for members; and with
//! project beta's token, every route of the API (read from the served
//! OpenAPI document, which a unit test keeps equal to the router) is tried
//! against project alpha's instance, backup and configuration group —
//! none answers with alpha's data or changes it.

mod common;

use common::{http_as, Coffer, BIN};
use serde_json::{json, Value};
use std::process::Command;
use std::time::Duration;

/// Run an admin command (`coffer project|token ...`) on the state dir.
fn admin(c: &Coffer, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .arg("--state-dir")
        .arg(c.state_dir())
        .envs(c.extra_env())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

struct Tenant<'a> {
    c: &'a Coffer,
    project: &'a str,
    token: String,
}

impl Tenant<'_> {
    fn url(&self, path: &str) -> String {
        format!("{}/v1.0/{}{path}", self.c.endpoint(), self.project)
    }

    fn http(&self, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
        http_as(Some(&self.token), method, &self.url(path), body)
    }

    fn wait(&self, path: &str, key: &str, want: &str) -> Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        loop {
            let (code, v) = self.http("GET", path, None);
            assert_eq!(code, 200, "{v}");
            if v[key]["status"] == want {
                return v[key].clone();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{v}\n{}",
                self.c.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// A plausible body for each write route, so a refusal is about who asks,
/// not about a malformed request.
fn body_for(method: &str, path: &str, ids: &Ids) -> Option<String> {
    let b = match (method, path) {
        ("post", "/v1.0/{project_id}/instances") => {
            json!({"instance": {"name": "x", "flavorRef": "1",
            "volume": {"size": 1}, "datastore": {"type": "redis"},
            "restorePoint": {"backupRef": ids.backup}}})
        }
        ("post", "/v1.0/{project_id}/backups") => {
            json!({"backup": {"name": "steal", "instance": ids.instance}})
        }
        ("post", "/v1.0/{project_id}/configurations") => {
            json!({"configuration": {"name": "x", "values": {"timeout": 5}, "datastore": {"type": "redis"}}})
        }
        ("put" | "patch", "/v1.0/{project_id}/configurations/{configuration_id}") => {
            json!({"configuration": {"values": {"timeout": 7}}})
        }
        ("put" | "patch", "/v1.0/{project_id}/instances/{instance_id}") => {
            json!({"instance": {"configuration": null}})
        }
        ("post", "/v1.0/{project_id}/instances/{instance_id}/action") => json!({"restart": {}}),
        ("post", "/v1.0/{project_id}/instances/{instance_id}/databases") => {
            json!({"databases": [{"name": "x"}]})
        }
        ("post" | "put", "/v1.0/{project_id}/instances/{instance_id}/users") => {
            json!({"users": [{"name": "x", "password": "Pw-12345"}]})
        }
        ("put", "/v1.0/{project_id}/instances/{instance_id}/users/{user}") => {
            json!({"user": {"password": "Pw-54321"}})
        }
        ("put", "/v1.0/{project_id}/instances/{instance_id}/users/{user}/databases") => {
            json!({"databases": [{"name": "x"}]})
        }
        ("post", "/v1.0/{project_id}/mgmt/flavors") => {
            json!({"flavor": {"name": "huge", "ram": 4096, "vcpus": 4, "disk": 1}})
        }
        ("post" | "put" | "patch", _) => json!({}),
        _ => return None,
    };
    Some(b.to_string())
}

struct Ids {
    instance: String,
    backup: String,
    configuration: String,
    version_id: String,
}

#[test]
fn tokens_projects_and_isolation_on_every_route() {
    let c = Coffer::start_roles(&["up"], &[("COFFER__AUTH__MODE", "tokens")]);
    admin(&c, &["project", "create", "alpha"]);
    admin(&c, &["project", "create", "beta"]);
    assert!(admin(&c, &["project", "list"]).contains("beta"));
    let a = Tenant {
        c: &c,
        project: "alpha",
        token: admin(&c, &["token", "create", "--project", "alpha"]),
    };
    let b = Tenant {
        c: &c,
        project: "beta",
        token: admin(&c, &["token", "create", "--project", "beta"]),
    };
    let root = Tenant {
        c: &c,
        project: "alpha",
        token: admin(&c, &["token", "create", "--admin"]),
    };
    assert!(a.token.starts_with("cft_") && a.token != b.token);
    // Only hashes are stored.
    assert!(common::files_containing(c.state_dir(), &a.token).is_empty());

    // 401 without a token or with a bad one; the version document is public.
    let (code, v) = http_as(None, "GET", &a.url("/instances"), None);
    assert_eq!(code, 401, "{v}");
    assert!(v["unauthorized"]["message"]
        .as_str()
        .unwrap()
        .contains("X-Auth-Token"));
    assert_eq!(
        http_as(Some("cft_nonsense"), "GET", &a.url("/instances"), None).0,
        401
    );
    assert_eq!(
        http_as(None, "GET", &format!("{}/", c.endpoint()), None).0,
        200
    );
    // A token acts in its own project only; the admin's in any.
    let (code, v) = http_as(Some(&a.token), "GET", &b.url("/instances"), None);
    assert_eq!(code, 403, "{v}");
    assert_eq!(
        http_as(Some(&root.token), "GET", &b.url("/instances"), None).0,
        200
    );
    // Admin-only routes.
    let flavor = json!({"flavor": {"name": "tiny", "ram": 256, "vcpus": 1, "disk": 1}}).to_string();
    assert_eq!(a.http("POST", "/mgmt/flavors", Some(&flavor)).0, 403);
    let (code, v) = root.http("POST", "/mgmt/flavors", Some(&flavor));
    assert_eq!(code, 200, "{v}");

    // Alpha's resources: an instance, a backup of it, a configuration group.
    let create = json!({"instance": {"name": "a1", "flavorRef": "1", "volume": {"size": 1},
        "datastore": {"type": "redis"}, "users": [{"name": "app", "password": "App-Pw-5521"}]}});
    let (code, v) = a.http("POST", "/instances", Some(&create.to_string()));
    assert_eq!(code, 200, "{v}");
    let instance = v["instance"]["id"].as_str().unwrap().to_string();
    a.wait(&format!("/instances/{instance}"), "instance", "ACTIVE");
    let (code, v) = a.http(
        "POST",
        "/backups",
        Some(&json!({"backup": {"name": "b1", "instance": instance}}).to_string()),
    );
    assert_eq!(code, 202, "{v}");
    let backup = v["backup"]["id"].as_str().unwrap().to_string();
    a.wait(&format!("/backups/{backup}"), "backup", "COMPLETED");
    a.wait(&format!("/instances/{instance}"), "instance", "ACTIVE");
    let group = json!({"configuration": {"name": "g1", "values": {"timeout": 30}, "datastore": {"type": "redis"}}});
    let (code, v) = a.http("POST", "/configurations", Some(&group.to_string()));
    assert_eq!(code, 200, "{v}");
    let configuration = v["configuration"]["id"].as_str().unwrap().to_string();
    let version_id = v["configuration"]["datastore_version_id"]
        .as_str()
        .unwrap()
        .to_string();
    let ids = Ids {
        instance,
        backup,
        configuration,
        version_id,
    };
    let secret_ids = [&ids.instance, &ids.backup, &ids.configuration];

    // Every route, as beta, aimed at alpha's resources.
    let (_, doc) = http_as(None, "GET", &format!("{}/openapi.json", c.endpoint()), None);
    let mut tried = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        if !path.starts_with("/v1.0/") {
            continue;
        }
        for method in ops.as_object().unwrap().keys() {
            let concrete = path
                .replace("{project_id}", "beta")
                .replace("{instance_id}", &ids.instance)
                .replace("{backup_id}", &ids.backup)
                .replace("{configuration_id}", &ids.configuration)
                .replace("{version_id}", &ids.version_id)
                .replace("{datastore}", "redis")
                .replace("{version}", "7.0")
                .replace("{parameter}", "timeout")
                .replace("{flavor_id}", "1")
                .replace("{user}", "app")
                .replace("{database}", "app");
            let body = body_for(method, path, &ids);
            let url = format!("{}{concrete}", c.endpoint());
            let (code, v) = http_as(
                Some(&b.token),
                &method.to_uppercase(),
                &url,
                body.as_deref(),
            );
            tried += 1;
            // An error may echo the id it was asked about, nothing else of alpha's.
            let asked =
                |id: &str| concrete.contains(id) || body.as_deref().is_some_and(|b| b.contains(id));
            let shown = v.to_string();
            for id in secret_ids {
                assert!(
                    asked(id) || !shown.contains(id.as_str()),
                    "{method} {path} shows alpha's {id}: {shown}"
                );
            }
            let foreign = secret_ids.iter().any(|id| asked(id));
            if path.contains("/mgmt/") {
                assert_eq!(code, 403, "{method} {path}: {v}");
            } else if foreign {
                assert!(
                    [400, 404, 422].contains(&code),
                    "{method} {path} on alpha's resource answered {code}: {v}"
                );
            } else {
                assert!(code < 500, "{method} {path}: {code} {v}");
            }
        }
    }
    assert!(tried >= 40, "only {tried} routes tried");

    // Alpha's resources are as they were.
    let (_, v) = a.http("GET", &format!("/instances/{}", ids.instance), None);
    assert_eq!(v["instance"]["status"], "ACTIVE", "{v}");
    assert!(v["instance"].get("configuration").is_none(), "{v}");
    let (_, v) = a.http("GET", &format!("/backups/{}", ids.backup), None);
    assert_eq!(v["backup"]["status"], "COMPLETED", "{v}");
    let (_, v) = a.http(
        "GET",
        &format!("/configurations/{}", ids.configuration),
        None,
    );
    assert_eq!(v["configuration"]["values"], json!({"timeout": 30}), "{v}");
    let (_, v) = a.http("GET", "/instances", None);
    assert_eq!(v["instances"].as_array().unwrap().len(), 1, "{v}");
    let (_, v) = b.http("GET", "/instances", None);
    assert_eq!(v["instances"], json!([]), "{v}");

    // A revoked token stops working at once.
    let listed = admin(&c, &["token", "list"]);
    let beta_line = listed.lines().find(|l| l.contains("\tbeta\t")).unwrap();
    let beta_id = beta_line.split('\t').next().unwrap();
    admin(&c, &["token", "revoke", beta_id]);
    assert_eq!(b.http("GET", "/instances", None).0, 401);
}
