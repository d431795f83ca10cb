//! A vhost and control-plane login of one test's own on the machine's
//! RabbitMQ (management API on 127.0.0.1:15672, as guest), removed on drop
//! together with every user that has rights on it (the agents' users).

use serde_json::Value;
use std::process::Command;

pub const MGMT: &str = "http://127.0.0.1:15672";

pub struct TestVhost {
    pub vhost: String,
    pub user: String,
    pub password: String,
}

/// One management API request as guest: (HTTP status, JSON body or Null).
pub fn mgmt(method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-s",
        "-u",
        "guest:guest",
        "-X",
        method,
        "-w",
        "\n%{http_code}",
    ]);
    if let Some(b) = body {
        cmd.args(["-H", "content-type: application/json", "-d", b]);
    }
    let out = cmd
        .arg(format!("{MGMT}/api/{path}"))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (
        code.trim().parse().unwrap_or(0),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

impl TestVhost {
    pub fn new() -> Self {
        let tag = format!("{}-{}", std::process::id(), rand_tag());
        let t = TestVhost {
            vhost: format!("coffer-test-{tag}"),
            user: format!("ctl-{tag}"),
            password: format!("pw{}", rand_tag()),
        };
        let (code, _) = mgmt("PUT", &format!("vhosts/{}", t.vhost), Some("{}"));
        assert!(
            code == 201 || code == 204,
            "the RabbitMQ management API (scripts/install-test-deps.sh enables it): {code}"
        );
        let user = format!(r#"{{"password": "{}", "tags": ""}}"#, t.password);
        assert!(mgmt("PUT", &format!("users/{}", t.user), Some(&user)).0 < 300);
        let all = r#"{"configure": ".*", "write": ".*", "read": ".*"}"#;
        let path = format!("permissions/{}/{}", t.vhost, t.user);
        assert!(mgmt("PUT", &path, Some(all)).0 < 300);
        t
    }

    /// The `[bus]` settings of a control plane on this vhost.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("COFFER__BUS__KIND", "amqp".into()),
            (
                "COFFER__BUS__URL",
                format!("amqp://127.0.0.1:5672/{}", self.vhost),
            ),
            ("COFFER__BUS__USER", self.user.clone()),
            ("COFFER__BUS__PASSWORD", self.password.clone()),
            ("COFFER__BUS__MANAGEMENT_USER", "guest".into()),
            ("COFFER__BUS__MANAGEMENT_PASSWORD", "guest".into()),
        ]
    }

    /// Users with rights on this vhost, besides the control plane's.
    pub fn other_users(&self) -> Vec<String> {
        let (_, v) = mgmt("GET", &format!("vhosts/{}/permissions", self.vhost), None);
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["user"].as_str().map(String::from))
            .filter(|u| u != &self.user && u != "guest")
            .collect()
    }

    /// Queue names of the vhost.
    pub fn queues(&self) -> Vec<String> {
        let (_, v) = mgmt("GET", &format!("queues/{}", self.vhost), None);
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|q| q["name"].as_str().map(String::from))
            .collect()
    }
}

fn rand_tag() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{n:08x}")
}

impl Drop for TestVhost {
    fn drop(&mut self) {
        for u in self.other_users() {
            mgmt("DELETE", &format!("users/{u}"), None);
        }
        mgmt("DELETE", &format!("users/{}", self.user), None);
        mgmt("DELETE", &format!("vhosts/{}", self.vhost), None);
    }
}
