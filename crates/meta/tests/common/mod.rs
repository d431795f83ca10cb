//! The harness and fixtures of the conformance suite: a fresh store of each
//! backend per test, and instances and tasks to put in it.

use chrono::{DateTime, Utc};
use coffer_meta::{open, MetaError, Store};
use coffer_model::{
    Datastore, DatastoreId, DatastoreVersion, DatastoreVersionId, FlavorId, Instance, InstanceId,
    InstanceStatus, OperatingStatus, ProjectId, Task, TaskId, TaskKind, TaskState,
};
use sqlx::{Connection, Executor, PgConnection};
use std::future::Future;
use std::net::Ipv4Addr;

// ---------------------------------------------------------------- harness

/// Which store a test runs against.
#[derive(Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Run `scenario` with the URL of a fresh, empty store of `backend`, then
/// remove that store, whether or not the scenario panicked.
pub async fn run_url<F, Fut>(backend: Backend, scenario: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let outcome = match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("create a temporary directory");
            let url = format!("sqlite://{}", dir.path().join("meta.db").display());
            tokio::spawn(scenario(url)).await
        }
        Backend::Postgres => {
            let admin_url =
                std::env::var("COFFER_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_PG_URL.to_string());
            let mut admin = PgConnection::connect(&admin_url).await.unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL is not reachable at {admin_url} ({e}). These tests need it: start \
                     it with `pg_ctlcluster --skip-systemctl-redirect 15 main start` (trust auth \
                     for user postgres on 127.0.0.1:5432), or point COFFER_TEST_PG_URL at another \
                     server."
                )
            });
            let name = format!("coffer_test_{}", InstanceId::new().0.simple());
            admin
                .execute(format!("CREATE DATABASE {name}").as_str())
                .await
                .expect("create the test database");
            let outcome = tokio::spawn(scenario(with_database(&admin_url, &name))).await;
            admin
                .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                .await
                .expect("drop the test database");
            outcome
        }
    };
    if let Err(err) = outcome {
        match err.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(err) => panic!("scenario did not finish: {err}"),
        }
    }
}

/// Run `scenario` on a freshly opened (and so migrated) store of `backend`.
pub async fn run<F, Fut>(backend: Backend, scenario: F)
where
    F: FnOnce(Store) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    run_url(backend, |url| async move {
        let store = open(&url).await.expect("open the store");
        scenario(store).await;
    })
    .await;
}

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let server = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    format!("{server}/{name}{query}")
}

// ---------------------------------------------------------------- fixtures

/// A fixed instant with millisecond precision (what the stores keep).
pub fn at(offset_ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(1_700_000_000_000 + offset_ms).expect("valid timestamp")
}

pub fn instance(project: &str, ip: Option<Ipv4Addr>) -> Instance {
    Instance {
        id: InstanceId::new(),
        project_id: ProjectId(project.to_string()),
        name: "db1".to_string(),
        status: InstanceStatus::Build,
        operating_status: OperatingStatus::New,
        flavor_id: FlavorId(2),
        datastore: "mariadb".to_string(),
        datastore_version: "10.11".to_string(),
        volume_size_gb: 5,
        volume_used_bytes: None,
        ip,
        fault: None,
        created: at(0),
        updated: at(0),
        last_heartbeat: None,
        configuration_id: None,
        agent_protocol: None,
    }
}

pub fn task(instance_id: InstanceId, kind: TaskKind, created: DateTime<Utc>) -> Task {
    Task {
        id: TaskId::new(),
        kind,
        instance_id,
        state: TaskState::Pending,
        step: String::new(),
        attempts: 0,
        payload: serde_json::json!({ "manager": "mariadb", "ram_mb": 1024 }),
        error: None,
        created,
        updated: created,
    }
}

/// Create `instance` with its create task.
pub async fn create(store: &Store, instance: &Instance) {
    let build = task(instance.id, TaskKind::CreateInstance, instance.created);
    store
        .create_instance(instance, &build, None)
        .await
        .expect("create instance");
}

/// Create an instance of `project` and set it ACTIVE.
pub async fn active(store: &Store, project: &str) -> Instance {
    let inst = instance(project, None);
    create(store, &inst).await;
    store
        .set_instance_status(inst.id, InstanceStatus::Active, None)
        .await
        .expect("set ACTIVE");
    inst
}

pub fn ip(last: u8) -> Option<Ipv4Addr> {
    Some(Ipv4Addr::new(10, 0, 0, last))
}

#[track_caller]
pub fn assert_not_found<T: std::fmt::Debug>(result: Result<T, MetaError>) {
    assert!(
        matches!(result, Err(MetaError::NotFound { .. })),
        "expected NotFound, got {result:?}"
    );
}

#[track_caller]
pub fn assert_conflict<T: std::fmt::Debug>(result: Result<T, MetaError>) -> String {
    match result {
        Err(MetaError::Conflict(message)) => message,
        other => panic!("expected Conflict, got {other:?}"),
    }
}

pub fn ids(instances: &[Instance]) -> Vec<InstanceId> {
    instances.iter().map(|i| i.id).collect()
}

pub fn datastore(name: &str, versions: &[(&str, bool)]) -> Datastore {
    let id = DatastoreId::new();
    let versions: Vec<DatastoreVersion> = versions
        .iter()
        .map(|&(version, active)| DatastoreVersion {
            id: DatastoreVersionId::new(),
            datastore_id: id,
            name: version.to_string(),
            manager: name.to_string(),
            active,
        })
        .collect();
    Datastore {
        id,
        name: name.to_string(),
        default_version: versions.first().map(|v| v.id),
        versions,
    }
}
