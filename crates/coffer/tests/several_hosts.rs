//! Several hosts: the control plane (`coffer taskmanager`, `conductor`,
//! `api`, on PostgreSQL and RabbitMQ) in one network namespace, a compute
//! host (`coffer compute`, with its instances' agents and datastores) in
//! another, joined by a veth link; the compute host reaches the broker
//! only across that link. Create, write, backup, restart, restore and
//! delete across the hosts; then cut the link for longer than the
//! heartbeat timeout: the instance shows UNAVAILABLE with a reason, a
//! create that needs the host fails with a message naming it, a backup
//! asked for meanwhile waits and is done once the link is back, and the
//! instance comes back HEALTHY by itself. The compute daemon killed with
//! -9 leaves its instances running, and a new one serves them.

#[path = "common/backup.rs"]
mod backup;
mod common;

use backup::PW;
use common::netns::Hosts;
use common::pg::TempDb;
use common::rabbit::TestVhost;
use common::{instance_processes_of, Coffer, BIN};
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The compute host's daemon, run in its namespace from `dir`.
fn start_compute(ns: &str, dir: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("compute.log"))
        .unwrap();
    Hosts::exec(ns, BIN)
        .args(["compute", "--state-dir"])
        .arg(dir)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("starting coffer compute")
}

fn redis(ns: &str, ip: &str, args: &[&str]) -> String {
    let out = Hosts::exec(ns, "redis-cli")
        .args(["-h", ip, "--user", "app", "--pass", PW, "--no-auth-warning"])
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Poll the instance until `check` holds for its view.
fn wait_view(
    c: &Coffer,
    id: &str,
    what: &str,
    within: Duration,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let (code, v) = c.http("GET", &format!("/instances/{id}"), None);
        assert_eq!(code, 200, "{v}");
        if check(&v["instance"]) {
            return v["instance"].clone();
        }
        assert!(Instant::now() < deadline, "{what}: {v}\n{}", c.log());
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn control_plane_and_compute_host_in_separate_namespaces() {
    let mut hosts = Hosts::new();
    let broker = TestVhost::new();
    let db = TempDb::new();
    let (cp, ch) = (hosts.control.clone(), hosts.compute.clone());
    // The control plane's host reaches the broker, its management API and
    // PostgreSQL; the compute host only the control plane's address.
    for port in [5672, 15672, 5432] {
        hosts.bring_in(&cp, port);
    }
    let mut env: Vec<(&str, String)> = broker.env();
    env.push(("COFFER__METADATA__URL", db.url()));
    env.push(("COFFER__COMPUTE__DRIVER", "remote".into()));
    env.push(("COFFER__COMPUTE__HOSTS", r#"["h1"]"#.into()));
    env.push((
        "COFFER__BUS__AGENT_BROKER",
        format!("{}:5672", hosts.control_ip),
    ));
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut c = Coffer::unstarted(Some(&cp), &["taskmanager", "conductor", "api"], &env_refs);
    hosts.bring_out(&cp, c.port);
    c.start();

    // Register the compute host on the control plane; it gets the lines of
    // its configuration (its own broker login, the broker across the link).
    let out = Hosts::exec(&cp, BIN)
        .args(["compute-host", "add", "h1", "--state-dir"])
        .arg(c.state_dir())
        .envs(env_refs.iter().copied())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let host_toml = String::from_utf8(out.stdout).unwrap();
    assert!(
        host_toml.contains(&format!("amqp://{}:5672/", hosts.control_ip)),
        "{host_toml}"
    );
    let host_dir = c.state_dir().join("host-h1");
    std::fs::create_dir_all(&host_dir).unwrap();
    std::fs::write(host_dir.join("coffer.toml"), &host_toml).unwrap();
    let mut compute = start_compute(&ch, &host_dir);

    // Create: the server, its agent and its datastore live on the compute
    // host, none on the control plane's.
    let (id, ip) = backup::active(&c, "remote", "redis", None);
    let inst = wait_view(&c, &id, "healthy", Duration::from_secs(20), |i| {
        i["operating_status"] == "HEALTHY"
    });
    assert!(inst.get("operating_status_reason").is_none(), "{inst}");
    let servers = instance_processes_of(&host_dir, &id, "redis-server");
    assert_eq!(servers.len(), 1, "one redis-server on the compute host");
    let agents = instance_processes_of(&host_dir, &id, "guest-agent");
    assert_eq!(agents.len(), 1, "one agent on the compute host");
    let (on_cp, on_ch) = (Hosts::pids(&cp), Hosts::pids(&ch));
    assert!(on_ch.contains(&servers[0]) && on_ch.contains(&agents[0]));
    assert!(!on_cp.contains(&servers[0]) && !on_cp.contains(&agents[0]));
    assert!(
        !c.state_dir().join("instances").exists(),
        "nothing runs on the control plane's host"
    );
    assert_eq!(redis(&ch, &ip, &["SET", "k", "before"]), "OK");

    // Backup and restart across the hosts.
    let first = backup::backup(&c, &id, "across", false);
    let first_id = first["id"].as_str().unwrap().to_string();
    assert_eq!(redis(&ch, &ip, &["SET", "k", "after"]), "OK");
    c.restart_instance(&id);
    assert_eq!(redis(&ch, &ip, &["GET", "k"]), "after");
    let servers = instance_processes_of(&host_dir, &id, "redis-server");

    // Cut the link for longer than the heartbeat timeout (10 s).
    hosts.cut();
    let cut_at = Instant::now();
    let inst = wait_view(&c, &id, "unavailable", Duration::from_secs(30), |i| {
        i["operating_status"] == "UNAVAILABLE"
    });
    assert_eq!(inst["status"], "ACTIVE", "{inst}");
    let reason = inst["operating_status_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("no report from the guest agent"), "{inst}");
    // (The last heartbeat came at most an interval, 300 ms, before the cut.)
    assert!(cut_at.elapsed() >= Duration::from_secs(9), "{inst}");

    // Meanwhile: a backup is accepted and waits for the agent; a create
    // cannot be placed and fails with the reason, in bounded time.
    let during = backup::start_backup(&c, &id, "during-the-cut", false);
    let body = json!({"instance": {"name": "no-host", "flavorRef": "1", "volume": {"size": 1},
        "datastore": {"type": "redis"}}});
    let (code, v) = c.http("POST", "/instances", Some(&body.to_string()));
    assert_eq!(code, 200, "{v}");
    let orphan = v["instance"]["id"].as_str().unwrap().to_string();
    let failed = c.wait_status(&orphan, &["ERROR", "ACTIVE"], Duration::from_secs(90));
    assert_eq!(failed["status"], "ERROR", "{failed}");
    let fault = failed["fault"]["message"].as_str().unwrap_or_default();
    assert!(fault.contains("compute host h1"), "{failed}");

    // The link returns: the agent reports again by itself, and the backup
    // asked for during the cut is done.
    hosts.mend();
    let inst = wait_view(
        &c,
        &id,
        "healthy after the cut",
        Duration::from_secs(120),
        |i| i["operating_status"] == "HEALTHY",
    );
    assert!(inst.get("operating_status_reason").is_none(), "{inst}");
    let b = backup::wait_backup(&c, &during, Duration::from_secs(120));
    assert_eq!(b["status"], "COMPLETED", "{b}\n{}", c.log());
    c.wait_status(&id, &["ACTIVE"], Duration::from_secs(30));
    assert_eq!(
        instance_processes_of(&host_dir, &id, "redis-server"),
        servers,
        "the datastore ran through the cut"
    );

    // Restore the first backup onto the compute host: its data is there.
    let (restored, restored_ip) = backup::active(&c, "restored", "redis", Some(&first_id));
    assert_eq!(redis(&ch, &restored_ip, &["GET", "k"]), "before");

    // The compute daemon dies (kill -9): the instances run on; a new
    // daemon serves the next restart.
    compute.kill().unwrap();
    compute.wait().unwrap();
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        instance_processes_of(&host_dir, &id, "redis-server"),
        servers
    );
    assert_eq!(redis(&ch, &ip, &["GET", "k"]), "after");
    compute = start_compute(&ch, &host_dir);
    c.restart_instance(&id);
    assert_eq!(redis(&ch, &ip, &["GET", "k"]), "after");

    // Delete everything: nothing left on the host or on the broker but
    // the host's own login, which goes with `compute-host remove`.
    for gone in [&id, &restored, &orphan] {
        assert_eq!(c.http("DELETE", &format!("/instances/{gone}"), None).0, 202);
    }
    for gone in [&id, &restored, &orphan] {
        c.wait_gone(gone, Duration::from_secs(90));
    }
    let left: Vec<i32> = Hosts::pids(&ch)
        .into_iter()
        .filter(|p| *p != compute.id() as i32)
        .collect();
    assert_eq!(
        left,
        Vec::<i32>::new(),
        "processes left on the compute host"
    );
    assert_eq!(broker.other_users(), vec!["compute-h1".to_string()]);
    let out = Hosts::exec(&cp, BIN)
        .args(["compute-host", "remove", "h1", "--state-dir"])
        .arg(c.state_dir())
        .envs(env_refs.iter().copied())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(broker.other_users(), Vec::<String>::new());
    let _ = Command::new("kill")
        .args(["-9", &compute.id().to_string()])
        .status();
    let _ = compute.wait();
}
