//! The `MetadataStore` conformance suite: every scenario is written once and
//! run against both backends, SQLite (a file in a temporary directory) and
//! PostgreSQL (a fresh database per test on the server at
//! `COFFER_TEST_PG_URL`, by default `postgres://postgres@127.0.0.1:5432/postgres`,
//! dropped afterwards). A test whose server is unreachable fails and says how
//! to start it.

#[path = "scenarios/auth.rs"]
mod auth;
#[path = "scenarios/backups.rs"]
mod backups;
mod common;
#[path = "scenarios/configurations.rs"]
mod configurations;
#[path = "scenarios/quotas.rs"]
mod quotas;
#[path = "scenarios/task_leases.rs"]
mod task_leases;
use auth::*;
use backups::*;
use configurations::*;
use quotas::*;
use task_leases::*;

use coffer_meta::{open, MetaError, Store};
use coffer_model::{
    DatastoreVersion, DatastoreVersionId, Fault, Flavor, FlavorId, InstanceId, InstanceStatus,
    OperatingStatus, ProjectId, Task, TaskId, TaskKind, TaskState,
};
use common::{
    active, assert_conflict, assert_not_found, at, create, datastore, ids, instance, ip, task,
};
use std::net::Ipv4Addr;

/// One test per scenario and backend: `mod sqlite` and `mod postgres`.
macro_rules! conformance {
    (store: [$($scenario:ident),* $(,)?], url: [$($url_scenario:ident),* $(,)?]) => {
        conformance!(@backend sqlite, Sqlite, [$($scenario),*], [$($url_scenario),*]);
        conformance!(@backend postgres, Postgres, [$($scenario),*], [$($url_scenario),*]);
    };
    (@backend $module:ident, $backend:ident,
        [$($scenario:ident),*], [$($url_scenario:ident),*]) => {
        mod $module {
            use super::common::{run, run_url, Backend};
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    run(Backend::$backend, super::$scenario).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $url_scenario() {
                    run_url(Backend::$backend, super::$url_scenario).await;
                }
            )*
        }
    };
}

conformance!(
    store: [
        migrate_twice,
        flavors_crud,
        delete_flavor_in_use_conflicts,
        datastores_upsert_and_list,
        create_and_get_instance,
        unknown_and_deleted_are_not_found,
        list_instances_pages,
        live_instances_never_share_an_ip,
        set_instance_status_sets_and_clears_fault,
        set_instance_fault_keeps_the_status,
        start_instance_task_compares_and_sets,
        record_heartbeat_updates_health,
        tasks_update_and_resume,
        concurrent_start_instance_task_has_one_winner,
        start_backup_needs_an_active_instance,
        backups_update_list_and_delete,
        progress_set_get_clear,
        configurations_crud_and_pages,
        attach_detach_and_delete_guard,
        group_update_queues_one_apply_per_attached_instance,
        transition_and_resources,
        projects_and_tokens,
        quotas_limit_instances_volumes_and_backups,
        claimed_tasks_belong_to_one_owner,
        expired_leases_are_taken_over,
        finished_tasks_are_never_claimed,
        concurrent_claims_hand_each_task_to_one_owner,
        datastore_changes_of_an_instance_run_in_order,
        placement_is_recorded_once,
    ],
    url: [concurrent_open_migrates_once]
);

// ---------------------------------------------------------------- scenarios

async fn migrate_twice(store: Store) {
    store.migrate().await.expect("second migration");
    store.migrate().await.expect("third migration");
    let (a, b) = tokio::join!(store.migrate(), store.migrate());
    a.expect("concurrent migration");
    b.expect("concurrent migration");
    assert!(store.list_flavors().await.expect("list flavors").is_empty());
}

async fn concurrent_open_migrates_once(url: String) {
    let (a, b, c) = tokio::join!(open(&url), open(&url), open(&url));
    for store in [a, b, c] {
        let store = store.expect("open concurrently");
        assert!(store
            .list_datastores()
            .await
            .expect("list datastores")
            .is_empty());
    }
}

async fn flavors_crud(store: Store) {
    let mut defaults = Flavor::defaults();
    for flavor in defaults.iter().rev() {
        store.upsert_flavor(flavor).await.expect("insert flavor");
    }
    assert_eq!(store.list_flavors().await.expect("list"), defaults);
    assert_eq!(
        store.get_flavor(FlavorId(2)).await.expect("get"),
        defaults[1]
    );
    assert_not_found(store.get_flavor(FlavorId(99)).await);

    defaults[1].name = "medium-plus".to_string();
    defaults[1].ram_mb = 1536;
    store
        .upsert_flavor(&defaults[1])
        .await
        .expect("replace flavor");
    assert_eq!(
        store.get_flavor(FlavorId(2)).await.expect("get"),
        defaults[1]
    );

    store.delete_flavor(FlavorId(1)).await.expect("delete");
    assert_not_found(store.get_flavor(FlavorId(1)).await);
    assert_not_found(store.delete_flavor(FlavorId(1)).await);
    assert_eq!(store.list_flavors().await.expect("list"), defaults[1..]);
}

async fn delete_flavor_in_use_conflicts(store: Store) {
    for flavor in Flavor::defaults() {
        store.upsert_flavor(&flavor).await.expect("insert flavor");
    }
    let user = instance("p1", None);
    create(&store, &user).await;
    let message = assert_conflict(store.delete_flavor(user.flavor_id).await);
    assert!(message.contains(&user.id.to_string()), "{message}");
    assert!(
        store.get_flavor(user.flavor_id).await.is_ok(),
        "flavor kept"
    );

    store
        .mark_instance_deleted(user.id)
        .await
        .expect("delete instance");
    store
        .delete_flavor(user.flavor_id)
        .await
        .expect("delete unused flavor");
}

async fn datastores_upsert_and_list(store: Store) {
    let mut mariadb = datastore("mariadb", &[("10.6", false), ("10.11", true)]);
    let postgresql = datastore("postgresql", &[("16", true)]);
    let empty = datastore("aaa-empty", &[]);
    for ds in [&postgresql, &mariadb, &empty] {
        store.upsert_datastore(ds).await.expect("upsert datastore");
    }
    let mut sorted_mariadb = mariadb.clone();
    sorted_mariadb.versions.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(
        store.list_datastores().await.expect("list"),
        vec![empty.clone(), sorted_mariadb, postgresql.clone()]
    );

    // Replacing drops the versions that are no longer listed.
    mariadb.versions = vec![DatastoreVersion {
        id: DatastoreVersionId::new(),
        datastore_id: mariadb.id,
        name: "11.4".to_string(),
        manager: "mariadb".to_string(),
        active: true,
    }];
    mariadb.default_version = Some(mariadb.versions[0].id);
    store
        .upsert_datastore(&mariadb)
        .await
        .expect("replace datastore");
    assert_eq!(
        store.list_datastores().await.expect("list"),
        vec![empty, mariadb.clone(), postgresql]
    );

    let impostor = datastore("mariadb", &[("1", true)]);
    assert_conflict(store.upsert_datastore(&impostor).await);
    assert_eq!(store.list_datastores().await.expect("list")[1], mariadb);
}

async fn create_and_get_instance(store: Store) {
    let mut inst = instance("p1", ip(5));
    inst.volume_used_bytes = Some(4096);
    inst.last_heartbeat = Some(at(7));
    inst.fault = Some(Fault {
        message: "earlier trouble".to_string(),
        created: at(3),
    });
    let build = task(inst.id, TaskKind::CreateInstance, at(1));
    store
        .create_instance(&inst, &build, None)
        .await
        .expect("create");

    assert_eq!(
        store.get_instance(inst.id).await.expect("get instance"),
        inst
    );
    assert_eq!(store.get_task(build.id).await.expect("get task"), build);
    assert_eq!(
        store.unfinished_tasks().await.expect("unfinished"),
        vec![build.clone()]
    );

    let again = task(inst.id, TaskKind::CreateInstance, at(2));
    assert_conflict(store.create_instance(&inst, &again, None).await);
    assert_not_found(store.get_task(again.id).await);
}

async fn unknown_and_deleted_are_not_found(store: Store) {
    let unknown = InstanceId::new();
    let t = task(unknown, TaskKind::RestartInstance, at(0));
    assert_not_found(store.get_instance(unknown).await);
    assert_not_found(
        store
            .set_instance_status(unknown, InstanceStatus::Active, None)
            .await,
    );
    assert_not_found(
        store
            .record_heartbeat(unknown, OperatingStatus::Healthy, None, None, at(1))
            .await,
    );
    assert_not_found(store.mark_instance_deleted(unknown).await);
    assert_not_found(
        store
            .start_instance_task(
                unknown,
                &[InstanceStatus::Active],
                InstanceStatus::Reboot,
                &t,
            )
            .await,
    );
    assert_not_found(store.get_task(t.id).await);
    assert_not_found(store.update_task(t.id, TaskState::Done, "x", 1, None).await);

    let gone = active(&store, "p1").await;
    store.mark_instance_deleted(gone.id).await.expect("delete");
    assert_not_found(store.get_instance(gone.id).await);
    assert_not_found(store.mark_instance_deleted(gone.id).await);
    assert_not_found(
        store
            .set_instance_status(gone.id, InstanceStatus::Error, None)
            .await,
    );
    assert_not_found(
        store
            .record_heartbeat(gone.id, OperatingStatus::Healthy, None, None, at(1))
            .await,
    );
    assert_not_found(
        store
            .start_instance_task(
                gone.id,
                &[InstanceStatus::Active],
                InstanceStatus::Reboot,
                &t,
            )
            .await,
    );
    assert!(store
        .list_instances(None, None, 10)
        .await
        .expect("list")
        .is_empty());
}

async fn list_instances_pages(store: Store) {
    let mut all = Vec::new();
    for (n, project) in ["p1", "p1", "p2", "p1", "p2"].into_iter().enumerate() {
        let mut inst = instance(project, None);
        inst.name = format!("db{n}");
        // Creation order, not id or timestamp order, decides the listing.
        inst.created = at(100 - i64::try_from(n).expect("small"));
        create(&store, &inst).await;
        all.push(inst);
    }
    let all_ids = ids(&all);
    let list = |project: Option<&'static str>, marker: Option<InstanceId>, limit| {
        let store = store.clone();
        async move {
            let project = project.map(|p| ProjectId(p.to_string()));
            store.list_instances(project.as_ref(), marker, limit).await
        }
    };

    assert_eq!(list(None, None, 100).await.expect("list all"), all);
    assert_eq!(
        ids(&list(None, None, 2).await.expect("page 1")),
        all_ids[..2]
    );
    assert_eq!(
        ids(&list(None, Some(all_ids[1]), 2).await.expect("page 2")),
        all_ids[2..4]
    );
    assert_eq!(
        ids(&list(None, Some(all_ids[3]), 2).await.expect("page 3")),
        all_ids[4..]
    );
    assert!(list(None, Some(all_ids[4]), 2)
        .await
        .expect("past the end")
        .is_empty());
    assert!(list(None, None, 0).await.expect("limit 0").is_empty());

    let p1 = vec![all_ids[0], all_ids[1], all_ids[3]];
    assert_eq!(ids(&list(Some("p1"), None, 10).await.expect("p1")), p1);
    assert_eq!(
        ids(&list(Some("p1"), Some(all_ids[1]), 10)
            .await
            .expect("p1 after")),
        p1[2..]
    );
    assert_eq!(
        ids(&list(Some("p2"), None, 1).await.expect("p2")),
        [all_ids[2]]
    );
    assert!(list(Some("p3"), None, 10).await.expect("p3").is_empty());

    // A marker must be a live instance visible in the same listing.
    assert_not_found(list(None, Some(InstanceId::new()), 10).await);
    assert_not_found(list(Some("p1"), Some(all_ids[2]), 10).await);
    store
        .mark_instance_deleted(all_ids[1])
        .await
        .expect("delete");
    assert_not_found(list(None, Some(all_ids[1]), 10).await);
    assert_eq!(
        ids(&list(None, Some(all_ids[0]), 10)
            .await
            .expect("skips deleted")),
        [all_ids[2], all_ids[3], all_ids[4]]
    );
}

async fn live_instances_never_share_an_ip(store: Store) {
    let first = instance("p1", ip(5));
    create(&store, &first).await;
    for _ in 0..2 {
        create(&store, &instance("p1", None)).await;
    }

    let clash = instance("p2", ip(5));
    let clash_task = task(clash.id, TaskKind::CreateInstance, at(1));
    let message = assert_conflict(store.create_instance(&clash, &clash_task, None).await);
    assert!(message.contains("10.0.0.5"), "{message}");
    assert_not_found(store.get_instance(clash.id).await);
    assert_not_found(store.get_task(clash_task.id).await);
    assert_eq!(
        store.used_ips().await.expect("used ips"),
        vec![Ipv4Addr::new(10, 0, 0, 5)]
    );

    store.mark_instance_deleted(first.id).await.expect("delete");
    assert!(store.used_ips().await.expect("used ips").is_empty());
    store
        .create_instance(&clash, &clash_task, None)
        .await
        .expect("reuse a freed ip");
    assert_eq!(store.get_instance(clash.id).await.expect("get").ip, ip(5));
    assert_eq!(
        store.used_ips().await.expect("used ips"),
        vec![Ipv4Addr::new(10, 0, 0, 5)]
    );
}

async fn set_instance_status_sets_and_clears_fault(store: Store) {
    let inst = instance("p1", None);
    create(&store, &inst).await;
    let fault = Fault {
        message: "volume could not be attached".to_string(),
        created: at(50),
    };
    store
        .set_instance_status(inst.id, InstanceStatus::Error, Some(&fault))
        .await
        .expect("set ERROR");
    let got = store.get_instance(inst.id).await.expect("get");
    assert_eq!(got.status, InstanceStatus::Error);
    assert_eq!(got.fault, Some(fault));
    assert!(got.updated > inst.updated, "updated moves forward");

    store
        .set_instance_status(inst.id, InstanceStatus::Active, None)
        .await
        .expect("set ACTIVE");
    let got = store.get_instance(inst.id).await.expect("get");
    assert_eq!(got.status, InstanceStatus::Active);
    assert_eq!(got.fault, None);
}

async fn set_instance_fault_keeps_the_status(store: Store) {
    let inst = instance("p1", None);
    create(&store, &inst).await;
    store
        .set_instance_status(inst.id, InstanceStatus::Active, None)
        .await
        .expect("set ACTIVE");
    let fault = Fault {
        message: "killed for its memory".to_string(),
        created: at(60),
    };
    store
        .set_instance_fault(inst.id, &fault)
        .await
        .expect("set fault");
    let got = store.get_instance(inst.id).await.expect("get");
    assert_eq!(got.status, InstanceStatus::Active);
    assert_eq!(got.fault, Some(fault.clone()));
    store.mark_instance_deleted(inst.id).await.expect("delete");
    assert!(matches!(
        store.set_instance_fault(inst.id, &fault).await,
        Err(MetaError::NotFound { .. })
    ));
}

async fn start_instance_task_compares_and_sets(store: Store) {
    let inst = instance("p1", None);
    create(&store, &inst).await;
    let from = [InstanceStatus::Active, InstanceStatus::Error];

    let early = task(inst.id, TaskKind::RestartInstance, at(1));
    let message = assert_conflict(
        store
            .start_instance_task(inst.id, &from, InstanceStatus::Reboot, &early)
            .await,
    );
    assert_eq!(
        message,
        format!(
            "instance {} is BUILD; this needs one of ACTIVE, ERROR",
            inst.id
        )
    );
    assert_not_found(store.get_task(early.id).await);
    assert_eq!(
        store.get_instance(inst.id).await.expect("get").status,
        InstanceStatus::Build
    );

    store
        .set_instance_status(inst.id, InstanceStatus::Error, None)
        .await
        .expect("set ERROR");
    let restart = task(inst.id, TaskKind::RestartInstance, at(2));
    store
        .start_instance_task(inst.id, &from, InstanceStatus::Reboot, &restart)
        .await
        .expect("start restart");
    assert_eq!(
        store.get_instance(inst.id).await.expect("get").status,
        InstanceStatus::Reboot
    );
    assert_eq!(
        store.get_task(restart.id).await.expect("task inserted"),
        restart
    );

    let second = task(inst.id, TaskKind::DeleteInstance, at(3));
    let message = assert_conflict(
        store
            .start_instance_task(inst.id, &from, InstanceStatus::Shutdown, &second)
            .await,
    );
    assert!(message.contains("is REBOOT"), "{message}");
    assert_not_found(store.get_task(second.id).await);
}

async fn record_heartbeat_updates_health(store: Store) {
    let inst = active(&store, "p1").await;
    store
        .record_heartbeat(
            inst.id,
            OperatingStatus::Healthy,
            Some(1 << 20),
            Some(2),
            at(10),
        )
        .await
        .expect("heartbeat");
    let got = store.get_instance(inst.id).await.expect("get");
    assert_eq!(got.operating_status, OperatingStatus::Healthy);
    assert_eq!(got.volume_used_bytes, Some(1 << 20));
    assert_eq!(got.agent_protocol, Some(2));
    assert_eq!(got.last_heartbeat, Some(at(10)));
    assert_eq!(got.status, InstanceStatus::Active);

    // A heartbeat without a measurement (or protocol) keeps the last one.
    store
        .record_heartbeat(inst.id, OperatingStatus::Running, None, None, at(20))
        .await
        .expect("heartbeat");
    let got = store.get_instance(inst.id).await.expect("get");
    assert_eq!(got.operating_status, OperatingStatus::Running);
    assert_eq!(got.volume_used_bytes, Some(1 << 20));
    assert_eq!(got.agent_protocol, Some(2));
    assert_eq!(got.last_heartbeat, Some(at(20)));
}

async fn tasks_update_and_resume(store: Store) {
    let inst = instance("p1", None);
    let build = task(inst.id, TaskKind::CreateInstance, at(30));
    store
        .create_instance(&inst, &build, None)
        .await
        .expect("create");
    let older = task(inst.id, TaskKind::RestartInstance, at(10));
    let finished = task(inst.id, TaskKind::RestartInstance, at(5));
    let newest = task(inst.id, TaskKind::DeleteInstance, at(40));
    for t in [&older, &finished, &newest] {
        store.insert_task(t).await.expect("insert task");
    }
    assert_conflict(store.insert_task(&older).await);

    store
        .update_task(older.id, TaskState::Running, "allocate_volume", 2, None)
        .await
        .expect("update");
    store
        .update_task(finished.id, TaskState::Done, "done", 1, None)
        .await
        .expect("update");
    store
        .update_task(
            newest.id,
            TaskState::Failed,
            "stop",
            3,
            Some("guest agent gone"),
        )
        .await
        .expect("update");

    let got = store.get_task(older.id).await.expect("get");
    assert_eq!(
        (got.state, got.step.as_str(), got.attempts),
        (TaskState::Running, "allocate_volume", 2)
    );
    assert_eq!(got.payload, older.payload);
    assert!(got.updated > older.updated, "updated moves forward");
    let failed = store.get_task(newest.id).await.expect("get");
    assert_eq!(failed.error.as_deref(), Some("guest agent gone"));

    let resume: Vec<TaskId> = store
        .unfinished_tasks()
        .await
        .expect("unfinished")
        .iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(resume, [older.id, build.id]);

    store
        .update_task(older.id, TaskState::Failed, "allocate_volume", 3, None)
        .await
        .expect("fail");
    store
        .update_task(build.id, TaskState::Done, "done", 1, None)
        .await
        .expect("finish");
    assert!(store
        .unfinished_tasks()
        .await
        .expect("unfinished")
        .is_empty());
}

async fn concurrent_start_instance_task_has_one_winner(store: Store) {
    let inst = active(&store, "p1").await;
    // Several rounds: the later ones start with the pool's connections open,
    // so the contenders really overlap.
    for round in 0..5 {
        store
            .set_instance_status(inst.id, InstanceStatus::Active, None)
            .await
            .expect("reset to ACTIVE");
        let contenders: Vec<Task> = (0..10)
            .map(|n| task(inst.id, TaskKind::RestartInstance, at(n)))
            .collect();
        let handles: Vec<_> = contenders
            .iter()
            .cloned()
            .map(|t| {
                let (store, id) = (store.clone(), inst.id);
                tokio::spawn(async move {
                    let from = [InstanceStatus::Active];
                    store
                        .start_instance_task(id, &from, InstanceStatus::Reboot, &t)
                        .await
                })
            })
            .collect();
        let (mut won, mut lost) = (0, 0);
        for handle in handles {
            match handle.await.expect("task finished") {
                Ok(()) => won += 1,
                Err(MetaError::Conflict(_)) => lost += 1,
                Err(other) => panic!("round {round}: unexpected error: {other:?}"),
            }
        }
        assert_eq!((won, lost), (1, 9), "round {round}");
        let mut inserted = 0;
        for t in &contenders {
            match store.get_task(t.id).await {
                Ok(_) => inserted += 1,
                Err(MetaError::NotFound { .. }) => {}
                Err(other) => panic!("round {round}: unexpected error: {other:?}"),
            }
        }
        assert_eq!(
            inserted, 1,
            "round {round}: only the winner's task is stored"
        );
        assert_eq!(
            store.get_instance(inst.id).await.expect("get").status,
            InstanceStatus::Reboot
        );
    }
}
