//! Several task managers over one metadata store: each task runs in
//! exactly one of them, a dead one's task is taken over once its lease
//! expires, and one that lost a lease records nothing more of that task.

use async_trait::async_trait;
use chrono::Utc;
use coffer_bus::{Bus, InProcessBus};
use coffer_compute::{ComputeDriver, ComputeError, ServerState};
use coffer_meta::Store;
use coffer_model::{
    AgentConfig, CreateInstancePayload, FlavorId, Instance, InstanceId, InstanceStatus,
    OperatingStatus, ParameterCatalog, ProjectId, Task, TaskId, TaskKind, TaskState,
};
use coffer_secrets::Sealer;
use coffer_taskmanager::{TaskManager, TaskManagerConfig};
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// A compute host that only counts: `stop` calls per instance, and
/// `create` calls, which wait until `release_creates` is notified.
#[derive(Default)]
struct CountingCompute {
    stops: Mutex<HashMap<InstanceId, usize>>,
    creates: Mutex<usize>,
    release_creates: Notify,
}

#[async_trait]
impl ComputeDriver for CountingCompute {
    async fn create(&self, _config: &AgentConfig) -> Result<(), ComputeError> {
        *self.creates.lock().expect("lock") += 1;
        self.release_creates.notified().await;
        Ok(())
    }
    async fn ensure_running(&self, _id: InstanceId) -> Result<(), ComputeError> {
        Ok(())
    }
    async fn state(&self, _id: InstanceId) -> Result<ServerState, ComputeError> {
        Ok(ServerState::Missing)
    }
    async fn stop(&self, id: InstanceId) -> Result<(), ComputeError> {
        *self.stops.lock().expect("lock").entry(id).or_default() += 1;
        Ok(())
    }
    async fn destroy(&self, _id: InstanceId) -> Result<(), ComputeError> {
        Ok(())
    }
    async fn resize(
        &self,
        _id: InstanceId,
        _ram: i64,
        _cpus: i64,
        _gb: i64,
    ) -> Result<(), ComputeError> {
        Ok(())
    }
    async fn list(&self) -> Result<Vec<InstanceId>, ComputeError> {
        Ok(Vec::new())
    }
    fn verify_agent_token(&self, _id: InstanceId, _token: &str) -> bool {
        false
    }
}

fn config(task_lease: Duration) -> TaskManagerConfig {
    TaskManagerConfig {
        agent_connect_timeout: Duration::from_secs(5),
        prepare_timeout: Duration::from_secs(5),
        action_timeout: Duration::from_secs(5),
        max_attempts: 3,
        heartbeat_interval: Duration::from_secs(2),
        bus_socket: "/nonexistent/bus.sock".into(),
        poll_interval: Duration::from_secs(1),
        task_lease,
        owner: None,
        parameters: ParameterCatalog::default(),
    }
}

fn manager(store: Store, compute: Arc<CountingCompute>, lease: Duration) -> Arc<TaskManager> {
    TaskManager::new(
        store,
        Arc::new(InProcessBus::new()) as Arc<dyn Bus>,
        compute as Arc<dyn ComputeDriver>,
        Sealer::from_key(&[7; 32]).expect("a 32-byte key"),
        config(lease),
        None,
    )
}

/// An instance with its create task. Created in `status`: anything but
/// BUILD makes the create workflow fail at once (stopping the server),
/// BUILD makes it call `ComputeDriver::create`.
async fn instance_with_task(store: &Store, n: u8, status: InstanceStatus) -> Task {
    let now = Utc::now();
    let instance = Instance {
        id: InstanceId::new(),
        project_id: ProjectId("p1".into()),
        name: format!("db{n}"),
        status,
        operating_status: OperatingStatus::New,
        flavor_id: FlavorId(1),
        datastore: "mariadb".into(),
        datastore_version: "10.11".into(),
        volume_size_gb: 1,
        volume_used_bytes: None,
        ip: Some(Ipv4Addr::new(10, 9, 0, n)),
        fault: None,
        created: now,
        updated: now,
        last_heartbeat: None,
        configuration_id: None,
        agent_protocol: None,
    };
    let payload = CreateInstancePayload {
        manager: "mariadb".into(),
        ram_mb: 512,
        vcpus: 1,
        databases: Vec::new(),
        users_sealed: None,
        restore: None,
    };
    let task = Task {
        id: TaskId::new(),
        kind: TaskKind::CreateInstance,
        instance_id: instance.id,
        state: TaskState::Pending,
        step: String::new(),
        attempts: 0,
        payload: serde_json::to_value(&payload).expect("payload"),
        error: None,
        created: now,
        updated: now,
    };
    store
        .create_instance(&instance, &task, None)
        .await
        .expect("create instance");
    task
}

/// Wait until every task in `ids` is finished.
async fn wait_finished(store: &Store, ids: &[TaskId]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    for id in ids {
        loop {
            let task = store.get_task(*id).await.expect("get task");
            if task.state.is_terminal() {
                break;
            }
            assert!(Instant::now() < deadline, "task {id} never finished");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The store a test's task managers share (one connection pool each, as
/// separate processes would have).
async fn shared_store(dir: &tempfile::TempDir) -> String {
    let url = format!("sqlite://{}", dir.path().join("meta.db").display());
    coffer_meta::open(&url).await.expect("open the store");
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_task_runs_in_one_task_manager() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = shared_store(&dir).await;
    let store = coffer_meta::open(&url).await.expect("open");
    let mut tasks = Vec::new();
    for n in 1..=12 {
        tasks.push(instance_with_task(&store, n, InstanceStatus::Active).await);
    }
    let compute = Arc::new(CountingCompute::default());
    let mut managers = Vec::new();
    for _ in 0..4 {
        let own = coffer_meta::open(&url).await.expect("open");
        managers.push(manager(own, compute.clone(), Duration::from_secs(30)));
    }
    let recoveries: Vec<_> = managers
        .iter()
        .map(|m| {
            let m = m.clone();
            tokio::spawn(async move { m.recover().await })
        })
        .collect();
    for r in recoveries {
        r.await.expect("recovery finished").expect("recover");
    }
    let ids: Vec<TaskId> = tasks.iter().map(|t| t.id).collect();
    wait_finished(&store, &ids).await;
    // Let any duplicate run finish too before counting.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let stops = compute.stops.lock().expect("lock").clone();
    for t in &tasks {
        assert_eq!(
            stops.get(&t.instance_id),
            Some(&1),
            "task {} ran once",
            t.id
        );
        let got = store.get_task(t.id).await.expect("get");
        assert_eq!((got.state, got.attempts), (TaskState::Failed, 1));
        let inst = store.get_instance(t.instance_id).await.expect("get");
        assert_eq!(inst.status, InstanceStatus::Error);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_owners_task_is_taken_over_after_its_lease() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = shared_store(&dir).await;
    let store = coffer_meta::open(&url).await.expect("open");
    let task = instance_with_task(&store, 1, InstanceStatus::Active).await;
    let lease = Duration::from_millis(400);
    // A task manager claimed it, then died.
    let claimed = store
        .claim_task(task.id, "dead", lease)
        .await
        .expect("claim");
    assert!(claimed.is_some());

    let compute = Arc::new(CountingCompute::default());
    let tm = manager(store.clone(), compute.clone(), lease);
    tm.recover().await.expect("recover");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let got = store.get_task(task.id).await.expect("get");
    assert_eq!(
        got.state,
        TaskState::Pending,
        "not run while the lease holds"
    );
    assert!(compute.stops.lock().expect("lock").is_empty());

    tokio::time::sleep(lease).await;
    tm.recover().await.expect("recover after expiry");
    wait_finished(&store, &[task.id]).await;
    assert_eq!(
        compute.stops.lock().expect("lock").get(&task.instance_id),
        Some(&1)
    );
    // Released at the end: nobody holds it (and finished, nobody can).
    assert!(!store
        .renew_lease(task.id, tm.owner(), lease)
        .await
        .expect("renew"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_lease_stops_recording_progress() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = shared_store(&dir).await;
    let store = coffer_meta::open(&url).await.expect("open");
    let task = instance_with_task(&store, 1, InstanceStatus::Build).await;
    let compute = Arc::new(CountingCompute::default());
    let lease = Duration::from_millis(300);
    let tm = manager(store.clone(), compute.clone(), lease);
    tm.recover().await.expect("recover");
    // The workflow is inside `ComputeDriver::create`, holding the lease.
    wait_until("the create call", || {
        *compute.creates.lock().expect("lock") == 1
    })
    .await;
    tokio::time::sleep(lease).await;
    assert!(store
        .claim_task(task.id, "thief", lease)
        .await
        .expect("claim")
        .is_none());

    // Someone takes it over (as if the lease had expired unrenewed).
    store
        .release_task(task.id, tm.owner())
        .await
        .expect("release");
    let stolen = store
        .claim_task(task.id, "thief", Duration::from_secs(30))
        .await
        .expect("claim");
    assert!(stolen.is_some());
    // Past the next renewal, the task manager knows; then the step ends.
    tokio::time::sleep(lease).await;
    compute.release_creates.notify_waiters();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let got = store.get_task(task.id).await.expect("get");
    assert_eq!(
        (got.state, got.step.as_str(), got.attempts),
        (TaskState::Running, "", 1),
        "no progress recorded after the lease was lost"
    );
    let inst = store.get_instance(task.instance_id).await.expect("get");
    assert_eq!(inst.status, InstanceStatus::Build, "no failure recorded");
    assert!(compute.stops.lock().expect("lock").is_empty());
    assert!(store
        .renew_lease(task.id, "thief", lease)
        .await
        .expect("renew"));
}
