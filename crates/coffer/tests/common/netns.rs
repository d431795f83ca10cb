//! Two hosts on this machine, as network namespaces joined by a veth pair
//! (addresses of a private test range, inside the namespaces only): one
//! for the control plane, one for a compute host. The machine's services
//! (RabbitMQ, its management API, PostgreSQL) listen on the root
//! namespace's 127.0.0.1 only, so `socat` bridges carry them into the
//! control plane's namespace through Unix sockets, which namespaces share;
//! the compute host reaches the broker only across the veth link, through
//! the control plane. Dropping kills every process in both namespaces and
//! every bridge, and deletes the namespaces.

#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Hosts {
    /// Namespace of the control plane.
    pub control: String,
    /// Namespace of the compute host.
    pub compute: String,
    /// The control plane's address on the link, as the compute host sees it.
    pub control_ip: String,
    pub compute_ip: String,
    /// The control plane's end of the link.
    veth: String,
    sockets: tempfile::TempDir,
    bridges: Vec<Child>,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("running ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Hosts {
    pub fn new() -> Self {
        let tag = format!("{:x}", std::process::id() % 0xfffff);
        let k = std::process::id() % 250 + 1;
        let (control, compute) = (format!("coffer-cp-{tag}"), format!("coffer-ch-{tag}"));
        let (veth, peer) = (format!("ccp{tag}"), format!("cch{tag}"));
        let control_ip = format!("10.251.{k}.1");
        let compute_ip = format!("10.251.{k}.2");
        // Leftovers of a killed run with the same pid.
        for ns in [&control, &compute] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
        let hosts = Hosts {
            control,
            compute,
            control_ip,
            compute_ip,
            veth,
            sockets: tempfile::Builder::new()
                .prefix("coffer-bridges-")
                .tempdir()
                .unwrap(),
            bridges: Vec::new(),
        };
        let (cp, ch) = (hosts.control.as_str(), hosts.compute.as_str());
        ip(&["netns", "add", cp]);
        ip(&["netns", "add", ch]);
        ip(&[
            "link",
            "add",
            &hosts.veth,
            "netns",
            cp,
            "type",
            "veth",
            "peer",
            "name",
            &peer,
            "netns",
            ch,
        ]);
        for (ns, dev, addr) in [
            (cp, hosts.veth.as_str(), hosts.control_ip.as_str()),
            (ch, peer.as_str(), hosts.compute_ip.as_str()),
        ] {
            ip(&["-n", ns, "link", "set", "lo", "up"]);
            ip(&["-n", ns, "addr", "add", &format!("{addr}/30"), "dev", dev]);
            ip(&["-n", ns, "link", "set", dev, "up"]);
        }
        hosts
    }

    /// A command run inside namespace `ns`: its network only. (`ip netns
    /// exec` would also give it a mount namespace with a fresh /sys, in
    /// which the cgroups that instances' sandboxes need are not mounted.)
    pub fn exec(ns: &str, program: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/var/run/netns/{ns}"))
            .arg("--")
            .arg(program);
        c
    }

    fn socat(&mut self, ns: Option<&str>, from: String, to: String) {
        let mut cmd = match ns {
            Some(ns) => Self::exec(ns, "socat"),
            None => Command::new("socat"),
        };
        use std::os::unix::process::CommandExt;
        let child = cmd
            .args([from, to])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("socat (scripts/install-test-deps.sh installs it)");
        self.bridges.push(child);
    }

    /// Make `127.0.0.1:port` of the root namespace reachable on `port` of
    /// every address of namespace `ns`.
    pub fn bring_in(&mut self, ns: &str, port: u16) {
        let sock = self.sockets.path().join(format!("in-{ns}-{port}.sock"));
        self.socat(
            None,
            format!("UNIX-LISTEN:{},fork", sock.display()),
            format!("TCP:127.0.0.1:{port}"),
        );
        wait_for(|| sock.exists(), "the root side of a bridge");
        self.socat(
            Some(ns),
            format!("TCP-LISTEN:{port},reuseaddr,fork"),
            format!("UNIX-CONNECT:{}", sock.display()),
        );
        let ns_owned = ns.to_string();
        wait_for(
            || listening(&ns_owned, port),
            "the namespace side of a bridge",
        );
    }

    /// Make `127.0.0.1:port` inside namespace `ns` reachable on
    /// `127.0.0.1:port` of the root namespace.
    pub fn bring_out(&mut self, ns: &str, port: u16) {
        let sock = self.sockets.path().join(format!("out-{ns}-{port}.sock"));
        self.socat(
            Some(ns),
            format!("UNIX-LISTEN:{},fork", sock.display()),
            format!("TCP:127.0.0.1:{port}"),
        );
        wait_for(|| sock.exists(), "the namespace side of a bridge");
        self.socat(
            None,
            format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork"),
            format!("UNIX-CONNECT:{}", sock.display()),
        );
        wait_for(
            || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
            "the root side of a bridge",
        );
    }

    /// Take the link between the hosts down.
    pub fn cut(&self) {
        ip(&["-n", &self.control, "link", "set", &self.veth, "down"]);
    }

    /// Bring it back.
    pub fn mend(&self) {
        ip(&["-n", &self.control, "link", "set", &self.veth, "up"]);
    }

    /// Pids of the processes inside namespace `ns`.
    pub fn pids(ns: &str) -> Vec<i32> {
        let out = Command::new("ip")
            .args(["netns", "pids", ns])
            .output()
            .expect("ip netns pids");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }
}

fn listening(ns: &str, port: u16) -> bool {
    Hosts::exec(ns, "ss")
        .args(["-Hltn", &format!("sport = :{port}")])
        .output()
        .is_ok_and(|o| !o.stdout.is_empty())
}

fn wait_for(mut ready: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ready() {
        assert!(Instant::now() < deadline, "{what} did not come up");
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for ns in [&self.control, &self.compute] {
            for pid in Self::pids(ns) {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        }
        for b in &mut self.bridges {
            // The group: forked connection handlers too.
            let _ = Command::new("kill")
                .args(["-s", "KILL", "--", &format!("-{}", b.id())])
                .status();
            let _ = b.wait();
        }
        for ns in [&self.control, &self.compute] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}
