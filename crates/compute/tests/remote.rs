//! The remote driver and `coffer compute`'s side of it, over the
//! in-process bus, with two hosts running stand-in agents (shell scripts):
//! placement, every method, a host's own supervision, and a host that
//! stops answering.

mod common;

use coffer_bus::{Bus, InProcessBus};
use coffer_compute::{
    ComputeDriver, ComputeError, LocalProcessDriver, Placements, RemoteCompute, ServerState,
};
use coffer_model::{AgentConfig, InstanceId};
use common::{config, fake_agent};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Placements in memory (the control plane keeps them in its store).
#[derive(Default)]
struct Memory(Mutex<HashMap<InstanceId, String>>);

#[async_trait::async_trait]
impl Placements for Memory {
    async fn host_of(&self, id: InstanceId) -> anyhow::Result<Option<String>> {
        Ok(self.0.lock().unwrap().get(&id).cloned())
    }
    async fn place(&self, id: InstanceId, host: &str) -> anyhow::Result<String> {
        let mut m = self.0.lock().unwrap();
        Ok(m.entry(id).or_insert_with(|| host.to_string()).clone())
    }
}

struct Host {
    root: PathBuf,
    cancel: CancellationToken,
}

fn start_host(bus: &Arc<InProcessBus>, tmp: &Path, name: &str) -> Host {
    let root = tmp.join(name);
    let driver = Arc::new(LocalProcessDriver::new(root.clone(), fake_agent(tmp)).unwrap());
    let cancel = CancellationToken::new();
    let (bus, c, name) = (
        bus.clone() as Arc<dyn Bus>,
        cancel.clone(),
        name.to_string(),
    );
    tokio::spawn(async move {
        coffer_compute::host::serve(driver, bus, &name, Duration::from_millis(100), c)
            .await
            .unwrap();
    });
    Host { root, cancel }
}

fn agent_pid(root: &Path, id: InstanceId) -> i32 {
    std::fs::read_to_string(root.join(id.to_string()).join("agent.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn servers_on_two_hosts() {
    let tmp = tempfile::tempdir().unwrap();
    let bus = Arc::new(InProcessBus::new());
    let h1 = start_host(&bus, tmp.path(), "h1");
    let h2 = start_host(&bus, tmp.path(), "h2");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let placements = Arc::new(Memory::default());
    let hosts = vec!["h1".to_string(), "h2".to_string()];
    let remote = RemoteCompute::new(bus.clone(), hosts.clone(), placements.clone()).unwrap();

    // New servers go to the host with the fewest.
    let ids: Vec<InstanceId> = (0..3).map(|_| InstanceId::new()).collect();
    for id in &ids {
        remote.create(&config(*id)).await.unwrap();
    }
    let on = |root: &Path, id: &InstanceId| root.join(id.to_string()).join("agent.json").exists();
    assert!(on(&h1.root, &ids[0]) && on(&h2.root, &ids[1]) && on(&h1.root, &ids[2]));
    assert!(!on(&h2.root, &ids[0]) && !on(&h1.root, &ids[1]));
    // Creating again is idempotent: same host, same agent.
    let pid = agent_pid(&h1.root, ids[0]);
    remote.create(&config(ids[0])).await.unwrap();
    assert_eq!(agent_pid(&h1.root, ids[0]), pid);
    assert!(!on(&h2.root, &ids[0]));

    let mut listed = remote.list().await.unwrap();
    listed.sort_by_key(|i| i.to_string());
    let mut want = ids.clone();
    want.sort_by_key(|i| i.to_string());
    assert_eq!(listed, want);
    for id in &ids {
        assert_eq!(remote.state(*id).await.unwrap(), ServerState::Running);
    }

    // A dead agent is started again by its host, unasked; a stopped one is not.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while agent_pid(&h1.root, ids[0]) == pid
        || remote.state(ids[0]).await.unwrap() != ServerState::Running
    {
        assert!(
            Instant::now() < deadline,
            "the host did not restart a dead agent"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    remote.stop(ids[1]).await.unwrap();
    assert_eq!(remote.state(ids[1]).await.unwrap(), ServerState::Stopped);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(remote.state(ids[1]).await.unwrap(), ServerState::Stopped);
    remote.ensure_running(ids[1]).await.unwrap();
    assert_eq!(remote.state(ids[1]).await.unwrap(), ServerState::Running);
    remote.resize(ids[1], 1024, 1, 3).await.unwrap();
    let saved: AgentConfig = serde_json::from_slice(
        &std::fs::read(h2.root.join(ids[1].to_string()).join("agent.json")).unwrap(),
    )
    .unwrap();
    assert_eq!((saved.ram_mb, saved.volume_size_gb), (1024, 3));

    // Unknown servers, with every host answering.
    let unknown = InstanceId::new();
    assert_eq!(remote.state(unknown).await.unwrap(), ServerState::Missing);
    assert!(matches!(
        remote.ensure_running(unknown).await,
        Err(ComputeError::NotFound(_))
    ));
    assert!(matches!(
        remote.resize(unknown, 1, 1, 1).await,
        Err(ComputeError::NotFound(_))
    ));
    remote.destroy(unknown).await.unwrap();
    remote.stop(unknown).await.unwrap();

    // h2 stops answering: requests for its server fail naming it (never
    // "not found"); h1's servers are served, and new servers go to h1.
    h2.cancel.cancel();
    tokio::time::sleep(Duration::from_millis(100)).await;
    bus.unsubscribe_if_closed("compute.h2");
    assert_eq!(remote.state(ids[0]).await.unwrap(), ServerState::Running);
    for e in [
        remote.state(ids[1]).await.map(|_| ()),
        remote.ensure_running(ids[1]).await,
        remote.destroy(ids[1]).await,
        remote.list().await.map(|_| ()),
    ] {
        let e = e.expect_err("a silent host taken for an empty one");
        assert!(
            !matches!(e, ComputeError::NotFound(_)) && e.to_string().contains("h2"),
            "{e}"
        );
    }
    let late = InstanceId::new();
    for _ in 0..2 {
        remote.create(&config(late)).await.unwrap();
        assert!(on(&h1.root, &late));
    }
    // A server placed on h2 whose create is resumed waits for h2, rather
    // than starting a second one elsewhere.
    let pinned = InstanceId::new();
    placements.place(pinned, "h2").await.unwrap();
    let e = remote.create(&config(pinned)).await.unwrap_err();
    assert!(e.to_string().contains("h2"), "{e}");
    assert!(!on(&h1.root, &pinned));
    // With every host silent, a create says so.
    h1.cancel.cancel();
    tokio::time::sleep(Duration::from_millis(100)).await;
    bus.unsubscribe_if_closed("compute.h1");
    let e = remote.create(&config(InstanceId::new())).await.unwrap_err();
    assert!(e.to_string().contains("no compute host answers"), "{e}");

    // Clean up through the hosts' own drivers.
    for (root, id) in [
        (&h1.root, ids[0]),
        (&h2.root, ids[1]),
        (&h1.root, ids[2]),
        (&h1.root, late),
    ] {
        let local = LocalProcessDriver::new(root.clone(), fake_agent(tmp.path())).unwrap();
        local.destroy(id).await.unwrap();
        assert!(!root.join(id.to_string()).exists());
    }
}
