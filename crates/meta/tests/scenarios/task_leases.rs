//! Task-lease scenarios of the conformance suite: several task managers
//! share one store, and each task is run by the one holding its lease.

use super::common::{at, task};
use coffer_meta::Store;
use coffer_model::{InstanceId, Task, TaskId, TaskKind, TaskState};
use std::collections::HashSet;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(30);
const SHORT: Duration = Duration::from_millis(200);

/// Insert `n` pending tasks created at `at(0)`, `at(1)`, ... (oldest first).
async fn pending(store: &Store, n: i64) -> Vec<Task> {
    let mut tasks = Vec::new();
    for k in 0..n {
        let t = task(InstanceId::new(), TaskKind::RestartInstance, at(k));
        store.insert_task(&t).await.expect("insert task");
        tasks.push(t);
    }
    tasks
}

fn task_ids(tasks: &[Task]) -> Vec<TaskId> {
    tasks.iter().map(|t| t.id).collect()
}

async fn claim(store: &Store, owner: &str, lease: Duration, limit: usize) -> Vec<TaskId> {
    task_ids(
        &store
            .claim_tasks(owner, lease, limit)
            .await
            .expect("claim tasks"),
    )
}

async fn claim_one(store: &Store, id: TaskId, owner: &str, lease: Duration) -> Option<Task> {
    store
        .claim_task(id, owner, lease)
        .await
        .expect("claim task")
}

pub async fn claimed_tasks_belong_to_one_owner(store: Store) {
    let tasks = pending(&store, 3).await;
    let all = task_ids(&tasks);

    // Oldest first, at most `limit`, returned as stored.
    assert_eq!(claim(&store, "a", LONG, 2).await, all[..2]);
    let got = store.claim_tasks("a", LONG, 10).await.expect("claim");
    assert_eq!(got, tasks, "the owner's own tasks come back, renewed");
    assert!(claim(&store, "b", LONG, 10).await.is_empty());
    assert!(claim_one(&store, all[0], "b", LONG).await.is_none());
    assert_eq!(
        claim_one(&store, all[0], "a", LONG).await.map(|t| t.id),
        Some(all[0]),
        "claiming a task one holds already extends its lease"
    );

    // Renewal and release work only for the holder.
    assert!(!store.renew_lease(all[0], "b", LONG).await.expect("renew"));
    assert!(store.renew_lease(all[0], "a", LONG).await.expect("renew"));
    store.release_task(all[0], "b").await.expect("release");
    assert!(claim_one(&store, all[0], "b", LONG).await.is_none());
    store.release_task(all[0], "a").await.expect("release");
    assert_eq!(
        claim_one(&store, all[0], "b", LONG).await.map(|t| t.id),
        Some(all[0])
    );
    assert!(!store.renew_lease(all[0], "a", LONG).await.expect("renew"));
    store.release_task(all[1], "a").await.expect("release");
    assert_eq!(claim(&store, "b", LONG, 10).await, all[..2]);

    // Unknown tasks cannot be claimed, renewed or released (quietly).
    let unknown = TaskId::new();
    assert!(claim_one(&store, unknown, "a", LONG).await.is_none());
    assert!(!store.renew_lease(unknown, "a", LONG).await.expect("renew"));
    store.release_task(unknown, "a").await.expect("release");
}

pub async fn expired_leases_are_taken_over(store: Store) {
    let all = task_ids(&pending(&store, 2).await);
    assert_eq!(claim(&store, "a", SHORT, 10).await, all);
    assert!(claim(&store, "b", LONG, 10).await.is_empty());
    assert!(claim_one(&store, all[0], "b", LONG).await.is_none());

    tokio::time::sleep(SHORT + Duration::from_millis(150)).await;
    assert_eq!(
        claim_one(&store, all[0], "b", LONG).await.map(|t| t.id),
        Some(all[0])
    );
    assert_eq!(claim(&store, "c", LONG, 10).await, all[1..]);

    // The old owner learns it lost them, cannot free them, and cannot
    // write over the new owner's progress.
    for id in &all {
        assert!(!store.renew_lease(*id, "a", LONG).await.expect("renew"));
        store.release_task(*id, "a").await.expect("release");
        let written = store
            .update_leased_task(*id, "a", TaskState::Done, "stale", 1, None)
            .await
            .expect("update");
        assert!(!written, "a lost lease still wrote");
        assert_eq!(
            store.get_task(*id).await.expect("get").state,
            TaskState::Pending
        );
    }
    // The holder can.
    let written = store
        .update_leased_task(all[0], "b", TaskState::Running, "step1", 1, None)
        .await
        .expect("update");
    assert!(written);
    assert_eq!(store.get_task(all[0]).await.expect("get").step, "step1");
    assert!(claim(&store, "d", LONG, 10).await.is_empty());

    // An expired lease nobody took is still its owner's to renew.
    store.release_task(all[0], "b").await.expect("release");
    assert_eq!(
        claim_one(&store, all[0], "e", SHORT).await.map(|t| t.id),
        Some(all[0])
    );
    tokio::time::sleep(SHORT + Duration::from_millis(150)).await;
    assert!(store.renew_lease(all[0], "e", LONG).await.expect("renew"));
    assert!(claim_one(&store, all[0], "f", LONG).await.is_none());
}

pub async fn finished_tasks_are_never_claimed(store: Store) {
    let all = task_ids(&pending(&store, 4).await);
    store
        .update_task(all[0], TaskState::Done, "done", 1, None)
        .await
        .expect("finish");
    store
        .update_task(all[1], TaskState::Failed, "x", 1, Some("broken"))
        .await
        .expect("fail");
    store
        .update_task(all[2], TaskState::Running, "step", 1, None)
        .await
        .expect("run");
    assert_eq!(claim(&store, "a", LONG, 10).await, all[2..]);
    for id in &all[..2] {
        assert!(claim_one(&store, *id, "a", LONG).await.is_none());
        assert!(claim_one(&store, *id, "b", LONG).await.is_none());
    }

    // A task that finishes while held is not claimed again, even after
    // its lease is released or expires.
    store
        .update_task(all[2], TaskState::Done, "done", 2, None)
        .await
        .expect("finish");
    store.release_task(all[2], "a").await.expect("release");
    assert_eq!(claim(&store, "b", LONG, 10).await, Vec::<TaskId>::new());
    assert_eq!(claim(&store, "a", LONG, 10).await, all[3..]);

    // Claiming leaves the task's own columns alone.
    let got = store.get_task(all[3]).await.expect("get");
    assert_eq!((got.state, got.attempts), (TaskState::Pending, 0));
    assert_eq!(
        store
            .unfinished_tasks()
            .await
            .expect("unfinished")
            .iter()
            .map(|t| t.id)
            .collect::<Vec<_>>(),
        all[3..]
    );
}

pub async fn concurrent_claims_hand_each_task_to_one_owner(store: Store) {
    const OWNERS: usize = 8;
    const LIMIT: usize = 5;
    let all: HashSet<TaskId> = task_ids(&pending(&store, 20).await).into_iter().collect();
    // Several rounds: the later ones start with the pool's connections open,
    // so the claimers really overlap.
    for round in 0..5 {
        let handles: Vec<_> = (0..OWNERS)
            .map(|n| {
                let store = store.clone();
                let owner = format!("owner-{round}-{n}");
                tokio::spawn(async move {
                    let got = store.claim_tasks(&owner, LONG, LIMIT).await;
                    (owner, got)
                })
            })
            .collect();
        let mut claimed = HashSet::new();
        let mut holders = Vec::new();
        for handle in handles {
            let (owner, got) = handle.await.expect("claimer finished");
            let got = got.unwrap_or_else(|e| panic!("round {round}: {owner}: {e:?}"));
            assert!(got.len() <= LIMIT, "round {round}: {owner} took {got:?}");
            for t in &got {
                assert!(
                    claimed.insert(t.id),
                    "round {round}: task {} handed out twice",
                    t.id
                );
                holders.push((t.id, owner.clone()));
            }
        }
        assert_eq!(claimed, all, "round {round}: every task claimed");
        // Each holder holds what it was given, and nobody else can take it.
        for (id, owner) in &holders {
            assert!(store.renew_lease(*id, owner, LONG).await.expect("renew"));
            assert!(claim_one(&store, *id, "stranger", LONG).await.is_none());
        }
        for (id, owner) in &holders {
            store.release_task(*id, owner).await.expect("release");
        }
    }
}

/// Restarts, configuration applies and resizes of one instance run one at
/// a time, oldest first; other kinds, and other instances, do not wait.
pub async fn datastore_changes_of_an_instance_run_in_order(store: Store) {
    let one = InstanceId::new();
    let other = InstanceId::new();
    let add = |instance, kind, n| {
        let store = store.clone();
        async move {
            let t = task(instance, kind, at(n));
            store.insert_task(&t).await.expect("insert task");
            t.id
        }
    };
    let apply1 = add(one, TaskKind::ApplyConfiguration, 0).await;
    let apply2 = add(one, TaskKind::ApplyConfiguration, 1).await;
    let backup = add(one, TaskKind::CreateBackup, 2).await;
    let restart = add(one, TaskKind::RestartInstance, 3).await;
    let elsewhere = add(other, TaskKind::ApplyConfiguration, 4).await;

    assert_eq!(
        claim(&store, "a", LONG, 10).await,
        vec![apply1, backup, elsewhere],
        "only the oldest datastore change of an instance is claimable"
    );
    assert!(claim_one(&store, apply2, "b", LONG).await.is_none());
    assert!(claim(&store, "b", LONG, 10).await.is_empty());

    // Running still holds the others back; finishing (or failing) frees
    // the next one, for any task manager.
    store
        .update_task(apply1, TaskState::Running, "step", 1, None)
        .await
        .expect("run");
    assert!(claim_one(&store, apply2, "b", LONG).await.is_none());
    store
        .update_task(apply1, TaskState::Failed, "x", 1, Some("broken"))
        .await
        .expect("fail");
    assert_eq!(claim(&store, "b", LONG, 10).await, vec![apply2]);
    assert!(claim_one(&store, restart, "b", LONG).await.is_none());
    store
        .update_task(apply2, TaskState::Done, "done", 1, None)
        .await
        .expect("finish");
    assert_eq!(
        claim_one(&store, restart, "c", LONG).await.map(|t| t.id),
        Some(restart)
    );
}

/// An instance's compute host is recorded once: the first placement wins,
/// and it is still known after the instance is deleted.
pub async fn placement_is_recorded_once(store: Store) {
    use super::common::{active, assert_not_found};
    let inst = active(&store, "p").await;
    assert_eq!(store.instance_host(inst.id).await.unwrap(), None);
    assert_eq!(store.place_instance(inst.id, "h1").await.unwrap(), "h1");
    assert_eq!(
        store.place_instance(inst.id, "h2").await.unwrap(),
        "h1",
        "a second placement gets the first"
    );
    assert_eq!(
        store.instance_host(inst.id).await.unwrap().as_deref(),
        Some("h1")
    );
    store.mark_instance_deleted(inst.id).await.unwrap();
    assert_eq!(
        store.instance_host(inst.id).await.unwrap().as_deref(),
        Some("h1")
    );
    assert_not_found(store.instance_host(InstanceId::new()).await);
    assert_not_found(store.place_instance(InstanceId::new(), "h1").await);
}
