//! A tenant with root on its datastore, trying to get out, on each of the
//! three datastores at once through the real binary: what it runs as, what
//! it can write and read on the host, what a runaway query or a fork bomb
//! does to the host and to the other instances.

mod common;

use common::{client, instance_dir, Coffer};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The instances' process cap in this test (the default is 1024): a fork
/// bomb reaches it quickly.
const MAX_PROCESSES: &str = "300";

struct Instance {
    id: String,
    ip: String,
    root_pw: String,
}

fn create(c: &Coffer, datastore: &str) -> String {
    let body = serde_json::json!({"instance": {"name": format!("{datastore}-walled"), "flavorRef": "1",
        "volume": {"size": 1}, "datastore": {"type": datastore}}});
    let (code, v) = c.http("POST", "/instances", Some(&body.to_string()));
    assert_eq!(code, 200, "{v}");
    v["instance"]["id"].as_str().unwrap().to_string()
}

fn ready(c: &Coffer, id: String) -> Instance {
    let inst = c.wait_status(&id, &["ACTIVE", "ERROR"], Duration::from_secs(120));
    assert_eq!(inst["status"], "ACTIVE", "{inst}\n{}", c.log());
    let (code, v) = c.http("POST", &format!("/instances/{id}/root"), None);
    assert_eq!(code, 200, "{v}");
    Instance {
        ip: inst["ip"][0].as_str().unwrap().to_string(),
        root_pw: v["user"]["password"].as_str().unwrap().to_string(),
        id,
    }
}

/// The sandbox the compute driver wrote for the instance.
fn sandbox(c: &Coffer, id: &str) -> Value {
    let raw = std::fs::read(instance_dir(c.state_dir(), id).join("agent.json")).unwrap();
    let config: Value = serde_json::from_slice(&raw).unwrap();
    assert!(config["sandbox"].is_object(), "no sandbox in {config}");
    config["sandbox"].clone()
}

fn cgroup(c: &Coffer, id: &str, controller: &str) -> PathBuf {
    sandbox(c, id)["cgroups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| PathBuf::from(p.as_str().unwrap()))
        .find(|p| p.components().any(|x| x.as_os_str() == controller))
        .unwrap_or_else(|| panic!("no {controller} cgroup"))
}

fn counter(file: &Path, key: &str) -> u64 {
    let text = std::fs::read_to_string(file).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key} "))?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {}: {text}", file.display()))
}

fn mariadb(i: &Instance, stmt: &str) -> Result<String, String> {
    client("mariadb", &i.ip, "root", &i.root_pw, "mysql", stmt)
}

fn psql(i: &Instance, stmt: &str) -> Result<String, String> {
    // Trove's PostgreSQL root is the `postgres` role.
    client(
        "postgresql",
        &i.ip,
        "postgres",
        &i.root_pw,
        "postgres",
        stmt,
    )
}

/// The output of `program` run by PostgreSQL's superuser through
/// `COPY ... FROM PROGRAM`, one row per line.
fn pg_program(i: &Instance, program: &str) -> Result<String, String> {
    let quoted = program.replace('\'', "''");
    let out = psql(
        i,
        &format!(
            "CREATE TEMP TABLE o (line text); COPY o FROM PROGRAM '{quoted}'; SELECT string_agg(line, '|') FROM o"
        ),
    )?;
    // psql prints the other statements' tags first.
    Ok(out.lines().last().unwrap_or_default().to_string())
}

fn redis(i: &Instance, cmd: &str) -> Result<String, String> {
    client("redis", &i.ip, "root", &i.root_pw, "", cmd)
}

/// The pid of the instance's datastore server (the one process of that
/// program naming the instance's directory).
fn server_pid(c: &Coffer, id: &str, program: &str) -> i32 {
    let pids = common::instance_processes_of(c.state_dir(), id, program);
    assert!(!pids.is_empty(), "no {program} of {id}");
    *pids.iter().min().unwrap()
}

#[test]
fn a_tenant_with_root_stays_inside_its_instance() {
    let c = Coffer::start_roles(
        &["up"],
        &[("COFFER__COMPUTE__SANDBOX__MAX_PROCESSES", MAX_PROCESSES)],
    );
    let ids = ["mariadb", "postgresql", "redis"].map(|ds| create(&c, ds));
    let [maria, pg, red] = ids.map(|id| ready(&c, id));
    let state = c.state_dir().to_path_buf();
    let host_file = state.join(format!("escaped-{}", std::process::id()));

    // Each instance has an account of its own, which owns its data.
    let uids: Vec<u64> = [&maria, &pg, &red]
        .iter()
        .map(|i| sandbox(&c, &i.id)["uid"].as_u64().unwrap())
        .collect();
    assert!(uids.iter().all(|u| *u >= 1000), "{uids:?}");
    assert!(uids[0] != uids[1] && uids[1] != uids[2] && uids[0] != uids[2]);

    // --- MariaDB: files only inside its own secure_file_priv directory.
    let files = instance_dir(&state, &maria.id).join("run/files");
    let inside = files.join("inside.txt");
    mariadb(
        &maria,
        &format!("SELECT 'mine' INTO OUTFILE '{}'", inside.display()),
    )
    .unwrap();
    assert_eq!(
        mariadb(
            &maria,
            &format!("SELECT HEX(LOAD_FILE('{}'))", inside.display())
        )
        .unwrap(),
        "6D696E650A",
        "the control: a file inside the instance is written and read back (\"mine\\n\")"
    );
    for target in [
        host_file.clone(),
        PathBuf::from("/etc/cron.d/coffer-escape"),
        PathBuf::from("/tmp/coffer-escape"),
    ] {
        let e = mariadb(
            &maria,
            &format!("SELECT 'owned' INTO OUTFILE '{}'", target.display()),
        )
        .expect_err("INTO OUTFILE outside the instance");
        assert!(
            e.contains("secure-file-priv") || e.contains("Errcode"),
            "{e}"
        );
        assert!(!target.exists(), "{} was written", target.display());
    }
    let other = instance_dir(&state, &red.id).join("conf/redis.conf");
    for secret in [
        state.join("coffer.db"),
        state.join("secret.key"),
        other,
        PathBuf::from("/etc/shadow"),
        PathBuf::from("/etc/passwd"),
    ] {
        assert_eq!(
            mariadb(
                &maria,
                &format!("SELECT LOAD_FILE('{}') IS NULL", secret.display())
            )
            .unwrap(),
            "1",
            "LOAD_FILE read {}",
            secret.display()
        );
    }

    // --- PostgreSQL: a shell through COPY ... PROGRAM runs as the
    // instance's own account, sees the host read-only and nothing of the
    // state dir, the other instances or the host's own cluster.
    assert_eq!(pg_program(&pg, "id -u").unwrap(), uids[1].to_string());
    let own_data = instance_dir(&state, &pg.id).join("data");
    assert!(
        pg_program(&pg, &format!("ls {}", own_data.display()))
            .unwrap()
            .contains("PG_VERSION"),
        "the control: the instance lists its own data directory"
    );
    let maria_data = instance_dir(&state, &maria.id).join("data");
    for denied in [
        format!("ls {}", maria_data.display()),
        format!("ls {}", instance_dir(&state, &maria.id).display()),
        format!("ls {}", state.display()),
        format!("cat {}", state.join("coffer.db").display()),
        // The agents' bus socket (the local bus).
        format!("ls -l {}", state.join("bus.sock").display()),
        format!(
            "cat {}",
            instance_dir(&state, &pg.id).join("agent.json").display()
        ),
        format!(
            "cat {}",
            instance_dir(&state, &pg.id)
                .join("secret/os_admin.password")
                .display()
        ),
        "ls /var/lib/postgresql/15/main".to_string(),
        "cat /etc/shadow".to_string(),
        format!("touch {}", host_file.display()),
        "touch /etc/coffer-escape".to_string(),
        "touch /usr/coffer-escape".to_string(),
    ] {
        let got = pg_program(&pg, &denied);
        assert!(got.is_err(), "`{denied}` worked: {got:?}");
    }
    assert!(!host_file.exists() && !Path::new("/etc/coffer-escape").exists());
    // Its /tmp is its own.
    pg_program(&pg, "touch /tmp/coffer-private-tmp && echo ok").unwrap();
    assert!(!Path::new("/tmp/coffer-private-tmp").exists());

    // --- Redis: root cannot move its files or load code.
    let e = redis(&red, &format!("CONFIG SET dir {}", state.display())).unwrap_err();
    assert!(e.contains("protected"), "{e}");
    let e = redis(&red, "MODULE LOAD /usr/lib/redis/modules/none.so").unwrap_err();
    assert!(e.contains("MODULE"), "{e}");
    assert_eq!(
        redis(&red, "SET k v").unwrap(),
        "OK",
        "the control: root writes data"
    );

    // --- A fork bomb through COPY ... PROGRAM stops at the process cap,
    // and the instance serves again once its children are gone.
    let pids = cgroup(&c, &pg.id, "pids");
    let capped_before = counter(&pids.join("pids.events"), "max");
    let bomb = pg_program(
        &pg,
        "i=0; while [ $i -lt 2000 ]; do sleep 3 & i=$((i+1)); done; echo spawned",
    );
    assert!(bomb.is_err(), "2000 processes started: {bomb:?}");
    assert!(counter(&pids.join("pids.events"), "max") > capped_before);
    let deadline = Instant::now() + Duration::from_secs(30);
    while psql(&pg, "SELECT 1").is_err() {
        assert!(
            Instant::now() < deadline,
            "PostgreSQL does not answer after the fork bomb"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // --- A query past the flavor's memory: killed inside the instance's
    // cgroup, restarted by its agent; the other instances never notice.
    let (pg_pid, redis_pid) = (
        server_pid(&c, &pg.id, "postgres"),
        server_pid(&c, &red.id, "redis-server"),
    );
    let memory = cgroup(&c, &maria.id, "memory");
    let limit: u64 = std::fs::read_to_string(memory.join("memory.limit_in_bytes"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(limit, 512 << 20, "the small flavor's RAM");
    let maria_pid = server_pid(&c, &maria.id, "mariadbd");
    let kills_before = counter(&memory.join("memory.oom_control"), "oom_kill");
    let hog = mariadb(
        &maria,
        "SET SESSION max_heap_table_size = 4294967296; \
         CREATE DATABASE hogs; \
         CREATE TABLE hogs.hog (v VARCHAR(1000)) ENGINE=MEMORY; \
         INSERT INTO hogs.hog SELECT REPEAT('x', 1000) FROM seq_1_to_2000000",
    );
    assert!(hog.is_err(), "2 GB in a 512 MB instance: {hog:?}");
    assert!(counter(&memory.join("memory.oom_control"), "oom_kill") > kills_before);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, v) = c.http("GET", &format!("/instances/{}", maria.id), None);
        let back =
            v["instance"]["status"] == "ACTIVE" && v["instance"]["operating_status"] == "HEALTHY";
        if back && mariadb(&maria, "SELECT 1").is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "MariaDB is not back: {v}\n{}",
            c.log()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_ne!(
        server_pid(&c, &maria.id, "mariadbd"),
        maria_pid,
        "restarted by its agent"
    );
    // Reported: the instance's fault says why.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, v) = c.http("GET", &format!("/instances/{}", maria.id), None);
        let fault = v["instance"]["fault"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if fault.contains("past the flavor's memory") {
            assert_eq!(v["instance"]["status"], "ACTIVE", "{v}");
            break;
        }
        assert!(Instant::now() < deadline, "no fault reported: {v}");
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(
        server_pid(&c, &pg.id, "postgres"),
        pg_pid,
        "PostgreSQL untouched"
    );
    assert_eq!(
        server_pid(&c, &red.id, "redis-server"),
        redis_pid,
        "Redis untouched"
    );

    // A resize brings the new flavor's limits: "large" is 2 GB and 2 vCPUs.
    let (code, v) = c.http(
        "POST",
        &format!("/instances/{}/action", red.id),
        Some(r#"{"resize": {"flavorRef": "3"}}"#),
    );
    assert_eq!(code, 202, "{v}");
    let inst = c.wait_status(&red.id, &["ACTIVE", "ERROR"], Duration::from_secs(60));
    assert_eq!(inst["status"], "ACTIVE", "{inst}");
    let read = |dir: PathBuf, file: &str| {
        std::fs::read_to_string(dir.join(file))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(
        read(cgroup(&c, &red.id, "memory"), "memory.limit_in_bytes"),
        (2048u64 << 20).to_string()
    );
    assert_eq!(
        read(cgroup(&c, &red.id, "cpu"), "cpu.cfs_quota_us"),
        "200000"
    );
    assert_eq!(
        read(cgroup(&c, &pg.id, "cpu"), "cpu.cfs_quota_us"),
        "100000",
        "the small flavor's one vCPU"
    );

    // Deleting an instance takes its cgroups along.
    for i in [&maria, &pg, &red] {
        let dirs = [cgroup(&c, &i.id, "memory"), cgroup(&c, &i.id, "pids")];
        assert_eq!(
            c.http("DELETE", &format!("/instances/{}", i.id), None).0,
            202
        );
        c.wait_gone(&i.id, Duration::from_secs(60));
        for d in dirs {
            assert!(!d.exists(), "{} left behind", d.display());
        }
    }
    assert_eq!(c.instance_processes(), Vec::<i32>::new());
}

#[test]
fn state_files_are_the_owners_alone() {
    use std::os::unix::fs::PermissionsExt;
    let mut c = Coffer::unstarted(None, &["up"], &[]);
    // Left readable by an older release, or by hand: warned about.
    let open = c.state_dir().join("notes.txt");
    std::fs::write(&open, "x").unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
    c.start();
    let mut files = vec!["coffer.toml", "secret.key"];
    if !common::roles_apart() {
        files.extend(["coffer.db", "coffer.db-wal"]);
    }
    for name in files {
        let path = c.state_dir().join(name);
        let mode = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{} is {mode:o}", path.display());
    }
    let log = c.log();
    assert!(
        log.contains(&format!(
            "{} can be read by other local users",
            open.display()
        )),
        "{log}"
    );
}

/// A host (or a configuration) that cannot confine instances makes Coffer
/// refuse to start, saying why and how to opt out; opting out starts it.
#[test]
fn no_walls_no_start_unless_the_operator_says_so() {
    let state = tempfile::tempdir().unwrap();
    let run = |env: &[(&str, &str)], wait: Duration| {
        let mut child = std::process::Command::new(common::BIN)
            .args(["up", "--state-dir"])
            .arg(state.path())
            .env("COFFER__API__LISTEN", "127.0.0.1:0")
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + wait;
        while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let exited = child.try_wait().unwrap();
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (exited, text)
    };
    // No uid range an instance account may take (below 1000: the
    // system's own accounts).
    let (exited, said) = run(
        &[("COFFER__COMPUTE__SANDBOX__FIRST_UID", "100")],
        Duration::from_secs(30),
    );
    assert!(exited.is_some_and(|s| !s.success()), "{said}");
    assert!(
        said.contains("sandbox cannot run on this host")
            && said.contains("enabled = false")
            && said.contains("first_uid"),
        "{said}"
    );
    // Opted out: it runs, and says instances are unconfined.
    let (exited, said) = run(
        &[
            ("COFFER__COMPUTE__SANDBOX__FIRST_UID", "100"),
            ("COFFER__COMPUTE__SANDBOX__ENABLED", "false"),
        ],
        Duration::from_secs(3),
    );
    assert!(exited.is_none(), "exited: {said}");
    assert!(said.contains("the instance sandbox is off"), "{said}");
    common::unmount_volumes(state.path());
}
