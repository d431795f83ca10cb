//! Volume enforcement through the agent's real status loop, with a stand-in
//! datastore manager that records what it is asked to do: past the volume
//! size the datastore is made read-only and the usage reported; below the
//! low-water mark writes are allowed again; a restart re-applies read-only.

use async_trait::async_trait;
use coffer_agent::{instance_context, Agent};
use coffer_model::{AgentConfig, InstanceId};
use coffer_model::{DatabaseSpec, UserSpec};
use coffer_strategy::{DatastoreError, DatastoreManager, Health, InstanceContext};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct Recorder {
    read_only_calls: Mutex<Vec<bool>>,
}

#[async_trait]
impl DatastoreManager for Recorder {
    fn default_port(&self) -> u16 {
        1
    }
    async fn initialize(&self, _: &InstanceContext) -> Result<(), DatastoreError> {
        Ok(())
    }
    async fn render_config(&self, _: &InstanceContext) -> Result<(), DatastoreError> {
        Ok(())
    }
    async fn start(&self, _: &InstanceContext, _: Duration) -> Result<(), DatastoreError> {
        Ok(())
    }
    async fn stop(&self, _: &InstanceContext, _: Duration) -> Result<(), DatastoreError> {
        Ok(())
    }
    fn pid(&self, _: &InstanceContext) -> Option<u32> {
        Some(1)
    }
    async fn health(&self, _: &InstanceContext) -> Health {
        Health::Healthy
    }
    async fn create_databases(
        &self,
        _: &InstanceContext,
        _: &[DatabaseSpec],
    ) -> Result<(), DatastoreError> {
        Ok(())
    }
    async fn create_users(
        &self,
        _: &InstanceContext,
        _: &[UserSpec],
    ) -> Result<(), DatastoreError> {
        Ok(())
    }
    async fn set_read_only(&self, _: &InstanceContext, on: bool) -> Result<(), DatastoreError> {
        self.read_only_calls.lock().unwrap().push(on);
        Ok(())
    }
}

#[tokio::test]
async fn full_volume_makes_the_datastore_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let recorder = Arc::new(Recorder::default());
    // A 4 MiB volume.
    let config = AgentConfig {
        instance_id: InstanceId::new(),
        manager: "recorder".into(),
        ip: "127.0.0.1".parse().unwrap(),
        ram_mb: 512,
        vcpus: 1,
        volume_size_gb: 1,
        bus_socket: dir.path().join("none.sock"),
        token: String::new(),
        heartbeat_interval_ms: 1000,
        bus_url: None,
        sandbox: None,
    };
    let mut ctx = instance_context(dir.path(), &config, 1);
    ctx.volume_size_bytes = 4 << 20;
    let agent = std::sync::Arc::new(Agent::new(
        recorder.clone(),
        ctx,
        dir.path().join("agent.state"),
    ));
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();

    std::fs::write(data.join("small"), vec![1u8; 1 << 20]).unwrap();
    let s = agent.status().await;
    assert!(!s.volume.full);
    assert!(s.volume.used_bytes >= 1 << 20);
    assert_eq!(s.volume.size_bytes, 4 << 20);
    assert!(recorder.read_only_calls.lock().unwrap().is_empty());

    // Past the size: read-only, reported full.
    std::fs::write(data.join("big"), vec![1u8; 4 << 20]).unwrap();
    let s = agent.status().await;
    assert!(s.volume.full, "{s:?}");
    assert_eq!(*recorder.read_only_calls.lock().unwrap(), vec![true]);
    // Still full on the next beat: nothing asked again.
    assert!(agent.status().await.volume.full);
    assert_eq!(recorder.read_only_calls.lock().unwrap().len(), 1);

    // A restart loses read-only in the server: the agent applies it again.
    agent
        .handle(serde_json::json!({"method": "restart"}))
        .await
        .unwrap();
    assert_eq!(*recorder.read_only_calls.lock().unwrap(), vec![true, true]);

    // Below the low-water mark (90 %): writes allowed again.
    std::fs::remove_file(data.join("big")).unwrap();
    let s = agent.status().await;
    assert!(!s.volume.full);
    assert_eq!(
        *recorder.read_only_calls.lock().unwrap(),
        vec![true, true, false]
    );
}
