//! The real OpenStack clients, unpatched, against Coffer: the `openstack
//! database ...` commands of python-openstackclient with the troveclient
//! plugin (`--os-auth-type admin_token` with a built-in token, and `none`
//! against noauth), and troveclient's Python API. They are installed by
//! scripts/install-test-deps.sh into /var/tmp/coffer-clients (override
//! with COFFER_CLIENTS_VENV).

mod common;

use common::{Coffer, BIN};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// A path in the checkout under test (cargo sets CARGO_MANIFEST_DIR when it
/// runs a test; a build reused from another checkout would bake in that
/// one's path).
fn in_checkout(relative: &str) -> PathBuf {
    let dir = std::env::var("CARGO_MANIFEST_DIR")
        .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string());
    PathBuf::from(dir).join(relative)
}

fn venv() -> PathBuf {
    let dir =
        std::env::var("COFFER_CLIENTS_VENV").unwrap_or_else(|_| "/var/tmp/coffer-clients".into());
    let dir = PathBuf::from(dir);
    assert!(
        dir.join("bin/openstack").exists(),
        "{} has no openstack client: run scripts/install-test-deps.sh",
        dir.display()
    );
    dir
}

/// `openstack` with the given auth arguments and environment.
#[derive(Default)]
struct Os {
    auth: Vec<String>,
    env: Vec<(String, String)>,
}

impl Os {
    fn run(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new(venv().join("bin/openstack"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .args(&self.auth)
            .args(args)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        if out.status.success() {
            Ok(stdout)
        } else {
            Err(format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)))
        }
    }

    fn ok(&self, args: &[&str]) -> String {
        self.run(args)
            .unwrap_or_else(|e| panic!("openstack {args:?}:\n{e}"))
    }

    /// A command with `-f json`, parsed.
    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-f", "json"]);
        let out = self.ok(&all);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
    }

    /// Poll `instance show` until its status is one of `want`.
    fn wait_instance(&self, name: &str, want: &[&str]) -> Value {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let v = self.json(&["database", "instance", "show", name]);
            if want.contains(&v["status"].as_str().unwrap_or_default()) {
                return v;
            }
            assert!(Instant::now() < deadline, "{name} stays {}", v["status"]);
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

fn names(list: &Value, key: &str) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|x| x[key].as_str().unwrap_or_default().to_string())
        .collect()
}

fn make_token(c: &Coffer, project: &str) -> String {
    let run = |args: &[&str]| {
        let out = Command::new(BIN)
            .args(args)
            .arg("--state-dir")
            .arg(c.state_dir())
            .envs(c.extra_env())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    run(&["project", "create", project]);
    run(&["token", "create", "--project", project])
}

/// Every command of the issue's list, with a built-in token.
#[test]
fn openstack_cli_with_admin_token() {
    let c = Coffer::start_roles(&["up"], &[("COFFER__AUTH__MODE", "tokens")]);
    let token = make_token(&c, "alpha");
    let endpoint = format!("{}/v1.0/alpha", c.endpoint());
    let os = Os {
        auth: [
            "--os-auth-type",
            "admin_token",
            "--os-token",
            &token,
            "--os-endpoint",
            &endpoint,
        ]
        .map(String::from)
        .to_vec(),
        ..Os::default()
    };
    // A wrong token is refused by the server (401), and the client says so.
    let bad = Os {
        auth: [
            "--os-auth-type",
            "admin_token",
            "--os-token",
            "cft_wrong",
            "--os-endpoint",
            &endpoint,
        ]
        .map(String::from)
        .to_vec(),
        ..Os::default()
    };
    let e = bad.run(&["database", "instance", "list"]).unwrap_err();
    assert!(
        e.contains("401") || e.to_lowercase().contains("unauthorized"),
        "{e}"
    );

    every_command(&os, &c);
}

/// The issue's command list, in one project, as `os` authenticates.
fn every_command(os: &Os, c: &Coffer) {
    let ds = os.json(&["datastore", "list"]);
    assert!(names(&ds, "Name").contains(&"mariadb".to_string()), "{ds}");
    let shown = os.json(&["datastore", "show", "mariadb"]);
    assert_eq!(shown["name"], "mariadb", "{shown}");
    let flavors = os.json(&["database", "flavor", "list"]);
    assert!(
        names(&flavors, "Name").contains(&"small".to_string()),
        "{flavors}"
    );
    assert_eq!(
        os.json(&["database", "flavor", "show", "small"])["ram"],
        512
    );

    let created = os.json(&[
        "database",
        "instance",
        "create",
        "db1",
        "--flavor",
        "small",
        "--size",
        "1",
        "--datastore",
        "mariadb",
        "--datastore-version",
        "10.11",
        "--databases",
        "d1",
        "--users",
        "u1:Pw-u1-12345",
    ]);
    assert_eq!(created["name"], "db1", "{created}");
    let inst = os.wait_instance("db1", &["ACTIVE", "ERROR"]);
    assert_eq!(inst["status"], "ACTIVE", "{inst}\n{}", c.log());
    let listed = os.json(&["database", "instance", "list"]);
    assert_eq!(names(&listed, "Name"), ["db1"], "{listed}");

    os.ok(&["database", "db", "create", "db1", "d2"]);
    let dbs = os.json(&["database", "db", "list", "db1"]);
    assert_eq!(names(&dbs, "Name"), ["d1", "d2"], "{dbs}");
    os.ok(&[
        "database",
        "user",
        "create",
        "db1",
        "u2",
        "Pw-u2-12345",
        "--databases",
        "d2",
    ]);
    let users = os.json(&["database", "user", "list", "db1"]);
    assert_eq!(names(&users, "Name"), ["u1", "u2"], "{users}");
    let u2 = os.json(&["database", "user", "show", "db1", "u2"]);
    assert_eq!(u2["name"], "u2", "{u2}");
    os.ok(&["database", "user", "delete", "db1", "u2"]);
    os.ok(&["database", "db", "delete", "db1", "d2"]);
    assert_eq!(
        names(&os.json(&["database", "db", "list", "db1"]), "Name"),
        ["d1"]
    );
    assert_eq!(
        names(&os.json(&["database", "user", "list", "db1"]), "Name"),
        ["u1"]
    );

    let root = os.json(&["database", "root", "enable", "db1"]);
    assert_eq!(root["name"], "root", "{root}");
    assert!(root["password"].as_str().unwrap().len() >= 16, "{root}");
    assert_eq!(
        os.json(&["database", "root", "show", "db1"])["is_root_enabled"],
        true
    );
    os.ok(&["database", "root", "disable", "db1"]);
    assert_eq!(
        os.json(&["database", "root", "show", "db1"])["is_root_enabled"],
        false
    );

    let cfg = os.json(&[
        "database",
        "configuration",
        "create",
        "cfg1",
        r#"{"max_connections": 250}"#,
        "--datastore",
        "mariadb",
        "--datastore-version",
        "10.11",
    ]);
    assert_eq!(cfg["name"], "cfg1", "{cfg}");
    assert_eq!(
        names(&os.json(&["database", "configuration", "list"]), "Name"),
        ["cfg1"]
    );
    os.ok(&["database", "configuration", "attach", "db1", "cfg1"]);
    let shown = os.json(&["database", "configuration", "show", "cfg1"]);
    assert_eq!(shown["instance_count"], 1, "{shown}");
    os.wait_instance("db1", &["ACTIVE"]);
    os.ok(&["database", "configuration", "detach", "db1"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while os.json(&["database", "configuration", "show", "cfg1"])["instance_count"] != 0 {
        assert!(Instant::now() < deadline, "still attached");
        std::thread::sleep(Duration::from_millis(300));
    }
    os.ok(&["database", "configuration", "delete", "cfg1"]);

    os.ok(&["database", "instance", "restart", "db1"]);
    os.wait_instance("db1", &["ACTIVE"]);
    let b = os.json(&[
        "database",
        "backup",
        "create",
        "bk1",
        "--instance",
        "db1",
        "--description",
        "nightly",
    ]);
    assert_eq!(b["name"], "bk1", "{b}");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let b = os.json(&["database", "backup", "show", "bk1"]);
        if b["status"] == "COMPLETED" {
            break;
        }
        assert!(b["status"] != "FAILED" && Instant::now() < deadline, "{b}");
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(
        names(&os.json(&["database", "backup", "list"]), "Name"),
        ["bk1"]
    );
    os.wait_instance("db1", &["ACTIVE"]);
    os.ok(&["database", "backup", "delete", "bk1"]);
    os.ok(&["database", "instance", "delete", "db1"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !os
        .json(&["database", "instance", "list"])
        .as_array()
        .unwrap()
        .is_empty()
    {
        assert!(Instant::now() < deadline, "db1 not deleted");
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// `--os-auth-type none` against noauth, and troveclient's Python API.
#[test]
fn noauth_cli_and_python_api() {
    let c = Coffer::up();
    let endpoint = format!("{}/v1.0/demo", c.endpoint());
    let os = Os {
        auth: ["--os-auth-type", "none", "--os-endpoint", &endpoint]
            .map(String::from)
            .to_vec(),
        ..Os::default()
    };
    let flavors = os.json(&["database", "flavor", "list"]);
    assert_eq!(flavors.as_array().unwrap().len(), 3, "{flavors}");
    os.ok(&[
        "database",
        "instance",
        "create",
        "c1",
        "--flavor",
        "1",
        "--size",
        "1",
        "--datastore",
        "redis",
    ]);
    os.wait_instance("c1", &["ACTIVE"]);

    let script = r#"
import json, sys
from keystoneauth1 import session
from keystoneauth1.token_endpoint import Token
from troveclient.v1 import client
endpoint = sys.argv[1]
trove = client.Client(session=session.Session(auth=Token(endpoint, "anything")))
out = {
    "instances": [(i.name, i.status) for i in trove.instances.list()],
    "flavors": sorted(f.name for f in trove.flavors.list()),
    "datastores": sorted(d.name for d in trove.datastores.list()),
    "backups": [b.name for b in trove.backups.list()],
    "configurations": [g.name for g in trove.configurations.list()],
}
inst = trove.instances.list()[0]
out["show"] = trove.instances.get(inst.id).datastore["type"]
group = trove.configurations.create("py", json.dumps({"timeout": 60}), datastore="redis", datastore_version="7.0")
out["group"] = trove.configurations.get(group.id).values
trove.configurations.delete(group.id)
print(json.dumps(out))
"#;
    let out = Command::new(venv().join("bin/python"))
        .args(["-c", script, &endpoint])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        got["instances"],
        serde_json::json!([["c1", "ACTIVE"]]),
        "{got}"
    );
    assert_eq!(
        got["flavors"],
        serde_json::json!(["large", "medium", "small"])
    );
    assert_eq!(
        got["datastores"],
        serde_json::json!(["mariadb", "postgresql", "redis"])
    );
    assert_eq!(got["show"], "redis");
    assert_eq!(got["group"], serde_json::json!({"timeout": 60}));
}

/// The same command list through troveclient's Python API
/// (tests/clients/troveclient_api.py), against noauth.
#[test]
fn troveclient_python_api_covers_the_command_list() {
    let c = Coffer::up();
    let endpoint = format!("{}/v1.0/demo", c.endpoint());
    let script = in_checkout("tests/clients/troveclient_api.py");
    let out = Command::new(venv().join("bin/python"))
        .arg(script)
        .arg(&endpoint)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        c.log()
    );
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();
    let want = serde_json::json!({
        "datastores": ["mariadb", "postgresql", "redis"],
        "datastore": "mariadb",
        "flavors": ["large", "medium", "small"],
        "flavor": 512,
        "status": "ACTIVE",
        "instances": ["py1"],
        "databases": ["d1", "d2"],
        "users": ["u1", "u2"],
        "user": ["d2"],
        "after_delete": [["d1"], ["u1"]],
        "root": ["root", true, true],
        "root_after": false,
        "configurations": ["pycfg"],
        "attached": 1,
        "backup": ["COMPLETED", ["pybk"]],
        "deleted": true,
    });
    assert_eq!(seen, want);
}

/// A user of the test Keystone (scripts/keystone.sh), by password.
fn keystone_user(user: &str, password: &str, project: &str) -> Os {
    let env = [
        ("OS_AUTH_URL", "http://127.0.0.1:5000/v3"),
        ("OS_IDENTITY_API_VERSION", "3"),
        ("OS_USER_DOMAIN_NAME", "Default"),
        ("OS_PROJECT_DOMAIN_NAME", "Default"),
        ("OS_REGION_NAME", "RegionOne"),
        ("OS_USERNAME", user),
        ("OS_PASSWORD", password),
        ("OS_PROJECT_NAME", project),
    ];
    Os {
        auth: Vec::new(),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

fn keystone_script(args: &[&str]) -> String {
    let script = in_checkout("../../scripts/keystone.sh");
    let out = Command::new("bash")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "keystone.sh {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// With a real Keystone: the command list as a member, two projects that
/// cannot see each other, admin-only routes, bad tokens.
#[test]
fn openstack_cli_with_keystone() {
    keystone_script(&["start"]);
    let c = Coffer::start_roles(
        &["up"],
        &[
            ("COFFER__AUTH__MODE", "keystone"),
            ("COFFER__AUTH__SERVICE_PASSWORD", "coffer-service-pw"),
            ("COFFER__AUTH__CACHE_TTL", "2s"),
        ],
    );
    keystone_script(&["endpoint", &format!("{}/v1.0/$(project_id)s", c.endpoint())]);
    let alice = keystone_user("alice", "alice-pw", "alpha");
    let bob = keystone_user("bob", "bob-pw", "beta");
    let carol = keystone_user("carol", "carol-pw", "alpha");
    let token = |os: &Os| {
        os.ok(&["token", "issue", "-f", "value", "-c", "id"])
            .trim()
            .to_string()
    };
    let project_id = |os: &Os| {
        os.ok(&["token", "issue", "-f", "value", "-c", "project_id"])
            .trim()
            .to_string()
    };
    let (alpha, beta) = (project_id(&alice), project_id(&bob));
    let url = |project: &str, path: &str| format!("{}/v1.0/{project}{path}", c.endpoint());

    // Unauthenticated and bad tokens are 401; another project's URL 403.
    assert_eq!(
        common::http_as(None, "GET", &url(&alpha, "/instances"), None).0,
        401
    );
    assert_eq!(
        common::http_as(
            Some("gAAAAnonsense"),
            "GET",
            &url(&alpha, "/instances"),
            None
        )
        .0,
        401
    );
    let bob_token = token(&bob);
    let (code, v) = common::http_as(Some(&bob_token), "GET", &url(&alpha, "/instances"), None);
    assert_eq!(code, 403, "{v}");
    // Members may not manage flavors; a Keystone admin may.
    let flavor = r#"{"flavor": {"name": "ks-tiny", "ram": 256, "vcpus": 1, "disk": 1}}"#;
    let alice_token = token(&alice);
    let (code, _) = common::http_as(
        Some(&alice_token),
        "POST",
        &url(&alpha, "/mgmt/flavors"),
        Some(flavor),
    );
    assert_eq!(code, 403);
    let carol_token = token(&carol);
    let (code, v) = common::http_as(
        Some(&carol_token),
        "POST",
        &url(&alpha, "/mgmt/flavors"),
        Some(flavor),
    );
    assert_eq!(code, 200, "{v}");

    every_command(&alice, &c);

    // Bob sees none of alice's instances, even by id.
    alice.ok(&[
        "database",
        "instance",
        "create",
        "solo",
        "--flavor",
        "small",
        "--size",
        "1",
        "--datastore",
        "redis",
    ]);
    let solo = alice.wait_instance("solo", &["ACTIVE"]);
    let solo_id = solo["id"].as_str().unwrap();
    assert_eq!(
        bob.json(&["database", "instance", "list"]),
        serde_json::json!([])
    );
    assert!(bob.run(&["database", "instance", "show", solo_id]).is_err());
    let (code, _) = common::http_as(
        Some(&bob_token),
        "GET",
        &url(&beta, &format!("/instances/{solo_id}")),
        None,
    );
    assert_eq!(code, 404);
    // The admin reads alpha's quotas through the client (it resolves the
    // project name in Keystone).
    let quotas = carol.ok(&["database", "quota", "show", "alpha"]);
    assert!(quotas.contains("instances"), "{quotas}");
    alice.ok(&["database", "instance", "delete", "solo"]);
}
