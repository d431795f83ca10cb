//! Two task managers (same host, one PostgreSQL store, RabbitMQ): one is
//! killed with SIGKILL in the middle of 10 concurrent MariaDB creates
//! (while it holds some of them), the other in the middle of backups. Every task still ends — instances ACTIVE or ERROR
//! with a fault, backups COMPLETED or FAILED with a reason — taken over by
//! the survivor once the dead one's lease expires, and nothing ran twice to
//! harm: one agent and one datastore per instance, one backup row per
//! request, one broker user per instance, none left after delete.

mod common;

#[path = "common/backup.rs"]
mod backup;

use common::pg::TempDb;
use common::rabbit::TestVhost;
use common::{instance_processes_of, Coffer};
use serde_json::json;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const LEASE: &str = "3s";

fn post_instance(c: &Coffer, n: usize) -> String {
    let body = json!({"instance": {"name": format!("fo{n}"), "flavorRef": "1",
        "volume": {"size": 1}, "datastore": {"type": "mariadb"}}});
    let (code, v) = c.http("POST", "/instances", Some(&body.to_string()));
    assert_eq!(code, 200, "{v}");
    v["instance"]["id"].as_str().unwrap().to_string()
}

/// (agents, mariadbd servers) running for the instance.
fn processes_of(c: &Coffer, id: &str) -> (usize, usize) {
    let count = |kind| instance_processes_of(c.state_dir(), id, kind).len();
    (count("guest-agent"), count("mariadbd"))
}

/// Wait until task manager `owner` holds an unfinished task of `kind`.
fn wait_holding(db: &TempDb, owner: &str, kind: &str) {
    let sql = format!(
        "SELECT count(*) FROM tasks WHERE lease_owner = '{owner}' AND kind = '{kind}' \
         AND state IN ('pending', 'running')"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while db.count(&sql) == 0 {
        assert!(
            Instant::now() < deadline,
            "{owner} never held a {kind} task"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_killed_task_managers_work_is_finished_by_the_other() {
    let broker = TestVhost::new();
    let db = TempDb::new();
    let mut env = broker.env();
    env.push(("COFFER__METADATA__URL", db.url()));
    env.push(("COFFER__TASKMANAGER__TASK_LEASE", LEASE.into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut c = Coffer::start_roles(&["api"], &env);
    let tm_a = c.spawn_extra(
        "taskmanager",
        &[("COFFER__TASKMANAGER__LEASE_NAME", "tm-a")],
    );
    let tm_b = c.spawn_extra(
        "taskmanager",
        &[("COFFER__TASKMANAGER__LEASE_NAME", "tm-b")],
    );
    std::thread::sleep(Duration::from_secs(1));

    // ---- 10 concurrent creates; task manager A dies in the middle.
    let ids: Vec<String> = std::thread::scope(|s| {
        let posts: Vec<_> = (0..10)
            .map(|n| {
                s.spawn({
                    let c = &c;
                    move || post_instance(c, n)
                })
            })
            .collect();
        posts.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // Kill A while it holds unfinished creates.
    wait_holding(&db, "tm-a", "create_instance");
    c.kill9_child(tm_a);
    let killed = Instant::now();

    let mut active = Vec::new();
    for id in &ids {
        let inst = c.wait_status(id, &["ACTIVE", "ERROR"], Duration::from_secs(90));
        if inst["status"] == "ACTIVE" {
            active.push(id.clone());
        } else {
            let fault = inst["fault"]["message"].as_str().unwrap_or("");
            assert!(!fault.is_empty(), "ERROR without a fault: {inst}");
        }
    }
    // The survivor took over A's creates (they ran a second time, resumed
    // from their last step) soon after the lease ran out.
    let resumed = "SELECT count(*) FROM tasks WHERE kind = 'create_instance' AND attempts >= 2";
    assert!(
        db.count(resumed) >= 1,
        "no create was taken over\n{}",
        c.log()
    );
    assert!(
        killed.elapsed() < Duration::from_secs(60),
        "took {:?}",
        killed.elapsed()
    );
    assert!(
        active.len() >= 8,
        "only {} of 10 ACTIVE\n{}",
        active.len(),
        c.log()
    );
    for id in &active {
        assert_eq!(processes_of(&c, id), (1, 1), "agent and mariadbd of {id}");
    }
    let expected: BTreeSet<String> = ids.iter().map(|id| format!("agent-{id}")).collect();
    let users: BTreeSet<String> = broker.other_users().into_iter().collect();
    assert!(
        users.is_subset(&expected),
        "unexpected broker users: {users:?}"
    );
    for id in &active {
        assert!(
            users.contains(&format!("agent-{id}")),
            "no broker user for {id}"
        );
    }

    // ---- backups taken by B alone; B dies mid-way, and A, back under its
    // own lease name, takes them over when B's leases expire.
    let sources: Vec<&String> = active.iter().take(4).collect();
    let backups: Vec<String> = sources
        .iter()
        .map(|id| backup::start_backup(&c, id, &format!("bk-{id}"), false))
        .collect();
    wait_holding(&db, "tm-b", "create_backup");
    c.kill9_child(tm_b);
    let _tm_a2 = c.spawn_extra(
        "taskmanager",
        &[("COFFER__TASKMANAGER__LEASE_NAME", "tm-a")],
    );
    for b in &backups {
        let v = backup::wait_backup(&c, b, Duration::from_secs(120));
        if v["status"] == "FAILED" {
            assert!(!v["fail_reason"].as_str().unwrap_or("").is_empty(), "{v}");
        }
    }
    let resumed = "SELECT count(*) FROM tasks WHERE kind = 'create_backup' AND attempts >= 2";
    assert!(
        db.count(resumed) >= 1,
        "no backup was taken over\n{}",
        c.log()
    );
    let (code, v) = c.http("GET", "/backups", None);
    assert_eq!(code, 200, "{v}");
    let listed: Vec<&str> = v["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed.len(),
        backups.len(),
        "one backup row per request: {v}"
    );
    for id in &sources {
        let inst = c.wait_status(id, &["ACTIVE"], Duration::from_secs(60));
        assert_eq!(inst["status"], "ACTIVE", "{inst}");
        assert_eq!(processes_of(&c, id), (1, 1), "agent and mariadbd of {id}");
    }

    // ---- delete everything: nothing left on the host or the broker.
    for id in &ids {
        assert_eq!(c.http("DELETE", &format!("/instances/{id}"), None).0, 202);
    }
    for id in &ids {
        c.wait_gone(id, Duration::from_secs(60));
    }
    assert_eq!(c.instance_processes(), Vec::<i32>::new());
    assert_eq!(broker.other_users(), Vec::<String>::new());
}
