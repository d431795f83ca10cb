//! Loop volumes through the real binary: a tenant filling its 1 GB volume
//! gets ENOSPC from its own filesystem and the host holds at most 1 GB for
//! it; resize-volume grows it and writes work again; kill -9 of Coffer and
//! the agent, a restart and a delete leave no loop device and no mount.

mod common;

use common::{client, instance_dir, instance_processes_of, Coffer};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// The loop devices holding `image`.
fn loop_devices(image: &Path) -> Vec<String> {
    let out = Command::new("losetup")
        .arg("-j")
        .arg(image)
        .output()
        .expect("losetup");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split(':').next().unwrap_or_default().to_string())
        .collect()
}

/// Mount points under `dir` (in this mount namespace).
fn mounts_under(dir: &Path) -> Vec<String> {
    let dir = dir.to_string_lossy().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| p.starts_with(&dir))
        .map(String::from)
        .collect()
}

/// What a shell run by PostgreSQL's superuser prints (last line).
fn sh(ip: &str, pw: &str, program: &str) -> String {
    let quoted = program.replace('\'', "''");
    let out = client(
        "postgresql",
        ip,
        "postgres",
        pw,
        "postgres",
        &format!(
            "CREATE TEMP TABLE o (line text); COPY o FROM PROGRAM '{quoted}'; SELECT string_agg(line, '|') FROM o"
        ),
    )
    .unwrap_or_else(|e| panic!("`{program}`: {e}"));
    out.lines().last().unwrap_or_default().to_string()
}

fn wait_healthy(c: &Coffer, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (_, v) = c.http("GET", &format!("/instances/{id}"), None);
        if v["instance"]["status"] == "ACTIVE" && v["instance"]["operating_status"] == "HEALTHY" {
            return;
        }
        assert!(Instant::now() < deadline, "{v}\n{}", c.log());
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_full_volume_is_the_tenants_alone_and_grows() {
    let mut c = Coffer::up();
    let body = serde_json::json!({"instance": {"name": "full", "flavorRef": "1",
        "volume": {"size": 1}, "datastore": {"type": "postgresql"}}});
    let (code, v) = c.http("POST", "/instances", Some(&body.to_string()));
    assert_eq!(code, 200, "{v}");
    let id = v["instance"]["id"].as_str().unwrap().to_string();
    let inst = c.wait_status(&id, &["ACTIVE", "ERROR"], Duration::from_secs(120));
    assert_eq!(inst["status"], "ACTIVE", "{inst}\n{}", c.log());
    let ip = inst["ip"][0].as_str().unwrap().to_string();
    let (code, v) = c.http("POST", &format!("/instances/{id}/root"), None);
    assert_eq!(code, 200, "{v}");
    let pw = v["user"]["password"].as_str().unwrap().to_string();

    let dir = instance_dir(c.state_dir(), &id);
    let image = dir.join("volume.img");
    assert_eq!(loop_devices(&image).len(), 1, "one loop device");
    assert_eq!(mounts_under(&dir).len(), 1, "{:?}", mounts_under(&dir));

    // Fill it as the tenant: ENOSPC, from the instance's own filesystem.
    let data = dir.join("data");
    let fill = format!(
        "dd if=/dev/zero of={}/fill bs=1M 2>&1 | grep -i -e space -e copied | head -1",
        data.display()
    );
    let said = sh(&ip, &pw, &fill);
    assert!(said.contains("No space left on device"), "{said}");
    let allocated = std::fs::metadata(&image).unwrap().blocks() * 512;
    assert!(
        allocated <= 1 << 30,
        "the host holds {allocated} bytes for a 1 GB volume"
    );
    let filled = std::fs::metadata(data.join("fill")).unwrap().len();
    assert!(filled > 700 << 20, "only {filled} bytes before ENOSPC");

    // resize-volume: the datastore stops, the volume grows, it starts, and
    // writes work again.
    let grow = serde_json::json!({"resize": {"volume": {"size": 2}}}).to_string();
    let (code, v) = c.http("POST", &format!("/instances/{id}/action"), Some(&grow));
    assert_eq!(code, 202, "{v}");
    let inst = c.wait_status(&id, &["ACTIVE", "ERROR"], Duration::from_secs(120));
    assert_eq!(inst["status"], "ACTIVE", "{inst}\n{}", c.log());
    assert_eq!(inst["volume"]["size"], 2, "{inst}");
    wait_healthy(&c, &id);
    let more = format!(
        "dd if=/dev/zero of={}/more bs=1M count=300 2>&1 | grep -i -e space -e copied | head -1",
        data.display()
    );
    let said = sh(&ip, &pw, &more);
    assert!(said.contains("copied"), "{said}");
    assert_eq!(std::fs::metadata(data.join("fill")).unwrap().len(), filled);
    sh(
        &ip,
        &pw,
        &format!("rm {}/fill {}/more", data.display(), data.display()),
    );

    // kill -9 of Coffer and of the agent: the volume stays mounted once;
    // the restarted Coffer revives the agent and mounts nothing twice.
    c.kill9();
    for pid in instance_processes_of(c.state_dir(), &id, "guest-agent") {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    }
    c.start();
    wait_healthy(&c, &id);
    assert_eq!(loop_devices(&image).len(), 1);
    assert_eq!(mounts_under(&dir).len(), 1, "{:?}", mounts_under(&dir));
    assert_eq!(sh(&ip, &pw, "echo alive"), "alive");

    // Delete: no loop device, no mount, no directory.
    assert_eq!(c.http("DELETE", &format!("/instances/{id}"), None).0, 202);
    c.wait_gone(&id, Duration::from_secs(60));
    let attached = Command::new("losetup").arg("-a").output().unwrap();
    let attached = String::from_utf8_lossy(&attached.stdout);
    assert!(!attached.contains(&*image.to_string_lossy()), "{attached}");
    assert!(mounts_under(&dir).is_empty());
    assert!(!dir.exists());
    assert_eq!(c.instance_processes(), Vec::<i32>::new());
}
