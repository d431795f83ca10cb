//! Harness for process-level tests: start the real `coffer` binary in a
//! temporary state dir on free ports and a private address range, talk to
//! it over HTTP, and on drop kill every process that mentions the state dir
//! (coffer, agents, datastore servers).

#![allow(dead_code)]

pub mod netns;
pub mod pg;
pub mod rabbit;

use serde_json::Value;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_coffer");

static NEXT_RANGE: AtomicU32 = AtomicU32::new(0);

pub struct Coffer {
    pub dir: tempfile::TempDir,
    pub port: u16,
    /// Second octet of this test's 127.X.0.0/16 instance range.
    pub octet: u32,
    /// The running coffer processes, one per role.
    pub children: Vec<Child>,
    roles: Vec<&'static str>,
    env: Vec<(String, String)>,
    /// The network namespace the processes run in (`None`: this one).
    netns: Option<String>,
    /// With `COFFER_TEST_ROLES_APART=1`: the PostgreSQL database and broker
    /// vhost of this test's separate roles (dropped after the processes).
    _apart: Option<(pg::TempDb, rabbit::TestVhost)>,
}

/// True when the suite runs `coffer up` as separate roles on PostgreSQL and
/// RabbitMQ (`COFFER_TEST_ROLES_APART=1`, the second pass of scripts/test.sh).
pub fn roles_apart() -> bool {
    std::env::var("COFFER_TEST_ROLES_APART").is_ok_and(|v| v == "1")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Coffer {
    /// `coffer up` in a new state dir.
    pub fn up() -> Self {
        Self::start_roles(&["up"], &[])
    }

    /// `coffer api` only: requests are accepted but nothing runs them.
    pub fn api_only() -> Self {
        Self::start_roles(&["api"], &[])
    }

    /// The given roles as separate processes sharing one state dir, with
    /// extra environment (e.g. a PostgreSQL metadata URL).
    pub fn start_roles(roles: &[&'static str], env: &[(&str, &str)]) -> Self {
        let mut c = Self::unstarted(None, roles, env);
        c.start();
        c
    }

    /// As [`Self::start_roles`], but not started yet, and inside network
    /// namespace `netns` when given (the caller bridges its 127.0.0.1:`port`
    /// here before `start`).
    pub fn unstarted(netns: Option<&str>, roles: &[&'static str], env: &[(&str, &str)]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("coffer-test-")
            .tempdir()
            .unwrap();
        // Distinct ranges per test process and per test, so parallel tests never share an address.
        let n = NEXT_RANGE.fetch_add(1, Ordering::SeqCst);
        let octet = 20 + (n + (std::process::id() % 50) * 4) % 200;
        let mut env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let (roles, apart) = if roles == ["up"] && roles_apart() {
            // The same test against the roles as separate processes: task
            // manager (with a conductor) and API, PostgreSQL metadata, the
            // bus on RabbitMQ.
            let (db, vhost) = (pg::TempDb::new(), rabbit::TestVhost::new());
            env.push(("COFFER__METADATA__URL".into(), db.url()));
            env.extend(vhost.env().into_iter().map(|(k, v)| (k.to_string(), v)));
            (vec!["taskmanager", "api"], Some((db, vhost)))
        } else {
            (roles.to_vec(), None)
        };
        Coffer {
            dir,
            port: free_port(),
            octet,
            children: Vec::new(),
            roles,
            env,
            netns: netns.map(String::from),
            _apart: apart,
        }
    }

    /// Run one statement with one text parameter (`$1`) on this coffer's
    /// metadata store, behind its back: SQLite in the state dir, or the
    /// PostgreSQL database of the separate roles.
    #[allow(dead_code)]
    pub fn exec_metadata(&self, sql: &str, param: &str) {
        let (sql, param) = (sql.to_string(), param.to_string());
        let sqlite = self.state_dir().join("coffer.db");
        let pg_url = self._apart.as_ref().map(|(db, _)| db.url());
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(async move {
                use sqlx::Connection;
                match pg_url {
                    Some(url) => {
                        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
                        sqlx::query(&sql)
                            .bind(param)
                            .execute(&mut conn)
                            .await
                            .unwrap();
                    }
                    None => {
                        let url = format!("sqlite://{}", sqlite.display());
                        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
                        sqlx::query(&sql)
                            .bind(param)
                            .execute(&mut conn)
                            .await
                            .unwrap();
                    }
                }
            });
    }

    /// The environment the coffer processes get beyond the common one
    /// (admin commands on the state dir need it too: the metadata URL).
    #[allow(dead_code)]
    pub fn extra_env(&self) -> Vec<(String, String)> {
        self.env.clone()
    }

    /// Set (or replace) an environment variable for the next `start`.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
    }

    pub fn state_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Start (or start again) the coffer processes and wait for the API.
    pub fn start(&mut self) {
        for role in self.roles.clone() {
            let child = self.spawn(role);
            self.children.push(child);
        }
        self.wait_api();
    }

    /// One more process of `role`, with environment of its own on top of
    /// the common one (e.g. a second task manager's lease name); its pid.
    pub fn spawn_extra(&mut self, role: &str, env: &[(&str, &str)]) -> u32 {
        let child = self.spawn_with(role, env);
        let pid = child.id();
        self.children.push(child);
        pid
    }

    /// kill -9 the process `spawn_extra` started as `pid` (the others run on).
    pub fn kill9_child(&mut self, pid: u32) {
        let i = self
            .children
            .iter()
            .position(|c| c.id() == pid)
            .expect("a process of this coffer");
        let mut child = self.children.remove(i);
        child.kill().unwrap();
        child.wait().unwrap();
    }

    fn spawn(&self, role: &str) -> Child {
        self.spawn_with(role, &[])
    }

    fn spawn_with(&self, role: &str, extra: &[(&str, &str)]) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("coffer.log"))
            .unwrap();
        let mut cmd = match &self.netns {
            Some(ns) => netns::Hosts::exec(ns, BIN),
            None => Command::new(BIN),
        };
        cmd.arg(role)
            .arg("--state-dir")
            .arg(self.dir.path())
            .env("COFFER__API__LISTEN", format!("127.0.0.1:{}", self.port))
            .env(
                "COFFER__COMPUTE__ADDRESS_RANGE",
                format!("127.{}.0.0/16", self.octet),
            )
            .env("COFFER__AGENT__HEARTBEAT_INTERVAL", "300ms")
            .env("COFFER__TASKMANAGER__POLL_INTERVAL", "300ms")
            .env("RUST_LOG", "info,sqlx=warn")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .envs(extra.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting coffer")
    }

    fn wait_api(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(r) = raw_http::blocking_get(&format!("{}/", self.endpoint())) {
                if r.0 == 200 {
                    return;
                }
            }
            for child in &mut self.children {
                if let Some(status) = child.try_wait().unwrap() {
                    panic!("coffer exited with {status}:\n{}", self.log());
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("coffer API did not come up:\n{}", self.log());
    }

    /// Fail at once if a coffer process died (rather than time out later).
    pub fn assert_servers_alive(&self) {
        for c in &self.children {
            let stat =
                std::fs::read_to_string(format!("/proc/{}/stat", c.id())).unwrap_or_default();
            let dead = stat.is_empty()
                || stat
                    .rsplit_once(')')
                    .is_some_and(|(_, r)| r.trim_start().starts_with('Z'));
            assert!(!dead, "a coffer process exited:\n{}", self.log());
        }
    }

    /// kill -9 the coffer processes (agents and datastores live on).
    pub fn kill9(&mut self) {
        for mut c in self.children.drain(..) {
            // Some may be dead already (`kill9_child`).
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("coffer.log")).unwrap_or_default()
    }

    /// Run the CLI against this coffer; returns (success, stdout, stderr).
    pub fn cli(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(BIN)
            .args(args)
            .env("COFFER_ENDPOINT", self.endpoint())
            .env("COFFER_PROJECT", "demo")
            .output()
            .expect("running coffer CLI");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into(),
            String::from_utf8_lossy(&out.stderr).into(),
        )
    }

    /// HTTP to `/v1.0/demo{path}` (or the root if `path` starts with `//`).
    pub fn http(&self, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
        let url = match path.strip_prefix("//") {
            Some(root) => format!("{}/{root}", self.endpoint()),
            None => format!("{}/v1.0/demo{path}", self.endpoint()),
        };
        http(method, &url, body)
    }

    /// Processes (other than the coffer server) whose command line names the state dir.
    pub fn instance_processes(&self) -> Vec<i32> {
        let servers: Vec<i32> = self.children.iter().map(|c| c.id() as i32).collect();
        pids_mentioning(&self.dir.path().to_string_lossy())
            .into_iter()
            .filter(|p| !servers.contains(p))
            .collect()
    }

    pub fn wait_status(&self, id: &str, want: &[&str], timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let (code, body) = self.http("GET", &format!("/instances/{id}"), None);
            assert_eq!(code, 200, "{body}");
            let status = body["instance"]["status"].as_str().unwrap().to_string();
            self.assert_servers_alive();
            if want.contains(&status.as_str()) {
                return body["instance"].clone();
            }
            if Instant::now() > deadline {
                panic!(
                    "instance {id} is {status}, wanted {want:?}\n{body}\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Restart instance `id` through the API and wait until it is ACTIVE.
    pub fn restart_instance(&self, id: &str) -> Value {
        let (code, v) = self.http(
            "POST",
            &format!("/instances/{id}/action"),
            Some(r#"{"restart": {}}"#),
        );
        assert_eq!(code, 202, "{v}");
        let inst = self.wait_status(id, &["ACTIVE", "ERROR"], Duration::from_secs(60));
        assert_eq!(inst["status"], "ACTIVE", "{inst}\n{}", self.log());
        inst
    }

    pub fn wait_gone(&self, id: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.http("GET", &format!("/instances/{id}"), None).0 != 404 {
            assert!(
                Instant::now() < deadline,
                "instance {id} not deleted\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Coffer {
    fn drop(&mut self) {
        self.kill9();
        let pids = pids_mentioning(&self.dir.path().to_string_lossy());
        for p in &pids {
            let _ = Command::new("kill").arg("-9").arg(p.to_string()).status();
        }
        unmount_volumes(self.dir.path());
        remove_cgroups(&self.dir.path().join("instances"));
    }
}

/// Unmount the loop volumes of the instances a test left under `state`
/// (their loop devices go with the mounts).
pub fn unmount_volumes(state: &Path) {
    let prefix = state.canonicalize().unwrap_or_else(|_| state.to_path_buf());
    let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<PathBuf> = table
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(PathBuf::from)
        .filter(|p| p.starts_with(&prefix))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in points {
        // The processes just killed may hold it for a moment.
        let gone = (0..30).any(|_| {
            let ok = Command::new("umount")
                .arg(&p)
                .output()
                .is_ok_and(|o| o.status.success());
            if !ok {
                std::thread::sleep(Duration::from_millis(100));
            }
            ok
        });
        if !gone {
            let _ = Command::new("umount").arg("-l").arg(&p).output();
        }
    }
}

/// The sandbox cgroups of the instances left under `instances` (a test
/// that ends without deleting them), once their processes are gone.
fn remove_cgroups(instances: &Path) {
    let Ok(entries) = std::fs::read_dir(instances) else {
        return;
    };
    for e in entries.flatten() {
        for controller in ["memory", "cpu", "pids"] {
            let dir = Path::new("/sys/fs/cgroup")
                .join(controller)
                .join("coffer")
                .join(e.file_name());
            for _ in 0..50 {
                match std::fs::remove_dir(&dir) {
                    Err(e) if e.raw_os_error() == Some(16) => {
                        std::thread::sleep(Duration::from_millis(100))
                    }
                    _ => break,
                }
            }
        }
    }
}

/// Live pids of instance `id`'s processes (command line naming its dir)
/// whose command line also contains `kind` (e.g. `guest-agent`, `mariadbd`).
#[allow(dead_code)]
pub fn instance_processes_of(state: &Path, id: &str, kind: &str) -> Vec<i32> {
    let dir = instance_dir(state, id);
    pids_mentioning(&dir.to_string_lossy())
        .into_iter()
        .filter(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            String::from_utf8_lossy(&cmd).contains(kind) && !sandbox_helper(*pid)
        })
        .collect()
}

/// The processes that start a datastore in its sandbox (the shell joining
/// its cgroups, setpriv, and bubblewrap, which stays as the sandbox's
/// parent): their command lines name the program, but they are not it.
fn sandbox_helper(pid: i32) -> bool {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    matches!(comm.trim(), "bwrap" | "setpriv" | "sh")
}

/// Live (non-zombie) pids whose command line contains `needle`.
pub fn pids_mentioning(needle: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let zombie = stat
            .rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z'));
        if !zombie
            && String::from_utf8_lossy(&cmd)
                .replace('\0', " ")
                .contains(needle)
        {
            out.push(pid);
        }
    }
    out
}

/// A tiny blocking HTTP/1.1 client, so tests need no async runtime.
pub fn http(method: &str, url: &str, body: Option<&str>) -> (u16, Value) {
    http_as(Some("test"), method, url, body)
}

/// `http` with this `X-Auth-Token` (or none).
pub fn http_as(token: Option<&str>, method: &str, url: &str, body: Option<&str>) -> (u16, Value) {
    let (code, text) = raw_http::request_as(token, method, url, body)
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let value = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (code, value)
}

/// Path of the data directory of an instance.
pub fn instance_dir(state: &Path, id: &str) -> PathBuf {
    state.join("instances").join(id)
}

pub mod raw_http {
    //! Minimal HTTP over std's TcpStream (keeps the tests free of an async runtime).
    use std::io::{Read, Write};
    use std::net::TcpStream;

    pub fn blocking_get(url: &str) -> std::io::Result<(u16, String)> {
        blocking_request("GET", url, None)
    }

    pub fn blocking_request(
        method: &str,
        url: &str,
        body: Option<&str>,
    ) -> std::io::Result<(u16, String)> {
        request_as(Some("test"), method, url, body)
    }

    pub fn request_as(
        token: Option<&str>,
        method: &str,
        url: &str,
        body: Option<&str>,
    ) -> std::io::Result<(u16, String)> {
        let rest = url.strip_prefix("http://").expect("http URL");
        let (host, path) = rest
            .split_once('/')
            .map(|(h, p)| (h, format!("/{p}")))
            .unwrap_or((rest, "/".into()));
        let mut s = TcpStream::connect(host)?;
        let body = body.unwrap_or("");
        let auth = token
            .map(|t| format!("X-Auth-Token: {t}\r\n"))
            .unwrap_or_default();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes())?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)?;
        let text = String::from_utf8_lossy(&raw).to_string();
        let (head, payload) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let code = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let payload = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(payload)
        } else {
            payload.to_string()
        };
        Ok((code, payload))
    }

    fn dechunk(mut s: &str) -> String {
        let mut out = String::new();
        while let Some((size, rest)) = s.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            out.push_str(&rest[..n]);
            s = &rest[n + 2..];
        }
        out
    }
}

/// Files under `dir` whose bytes contain `needle`.
/// A loop volume's image is read through its mount point (`volume/`,
/// which the walk enters) rather than as 1 GB of mostly holes.
pub fn files_containing(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                stack.push(path);
            } else if ft.is_file() && e.file_name() != "volume.img" {
                let bytes = std::fs::read(&path).unwrap_or_default();
                if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                    hits.push(path);
                }
            }
        }
    }
    hits
}

/// Run a statement as `user` with the datastore's own client.
pub fn client(
    datastore: &str,
    ip: &str,
    user: &str,
    password: &str,
    db: &str,
    stmt: &str,
) -> Result<String, String> {
    let out = match datastore {
        "mariadb" => Command::new("mariadb")
            .args([
                "--no-defaults",
                "-h",
                ip,
                "-u",
                user,
                &format!("-p{password}"),
                db,
                "-N",
                "-e",
                stmt,
            ])
            .output(),
        "postgresql" => Command::new("psql")
            .args([
                "-h",
                ip,
                "-U",
                user,
                "-d",
                db,
                "-tA",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                stmt,
            ])
            .env("PGPASSWORD", password)
            .env("PGCONNECT_TIMEOUT", "5")
            .output(),
        "redis" => Command::new("redis-cli")
            .args([
                "-h",
                ip,
                "--user",
                user,
                "--pass",
                password,
                "--no-auth-warning",
            ])
            .args(stmt.split_whitespace())
            .output(),
        other => panic!("no client for {other}"),
    }
    .expect("the datastore's client is installed");
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
    // redis-cli exits 0 on most errors and prints them on stdout.
    let failed = !out.status.success()
        || stdout.starts_with("ERR")
        || stdout.starts_with("NOPERM")
        || stdout.starts_with("WRONGPASS")
        || stdout.starts_with("NOAUTH");
    if failed {
        Err(format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)))
    } else {
        Ok(stdout)
    }
}
