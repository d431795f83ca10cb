//! Backup scenarios of the conformance suite (see conformance.rs).

use super::common::{active, assert_conflict, assert_not_found, at, create, instance, task};
use coffer_meta::Store;
use coffer_model::{Backup, BackupId, BackupStatus, InstanceStatus, Progress, ProjectId, TaskKind};

pub fn backup(inst: &coffer_model::Instance, parent: Option<BackupId>) -> Backup {
    let id = BackupId::new();
    Backup {
        id,
        project_id: inst.project_id.clone(),
        name: format!("b-{id}"),
        description: Some("nightly".into()),
        instance_id: inst.id,
        parent_id: parent,
        status: BackupStatus::New,
        datastore: "mariadb".into(),
        datastore_version: "10.11".into(),
        strategy: "mariabackup".into(),
        location: None,
        object_key: format!("{id}.cbk"),
        plain_bytes: None,
        stored_bytes: None,
        checksum: None,
        wrapped_key: "wrapped".into(),
        key_id: "k1".into(),
        codec: "zstd:3".into(),
        info: serde_json::json!({}),
        fault: None,
        created: at(1),
        updated: at(1),
    }
}

pub async fn start_backup_needs_an_active_instance(store: Store) {
    let building = instance("p1", None);
    create(&store, &building).await;
    let b = backup(&building, None);
    let t = task(building.id, TaskKind::CreateBackup, at(2));
    let message = assert_conflict(store.start_backup(&b, &t, None).await);
    assert!(message.contains("is BUILD"), "{message}");
    assert_not_found(store.get_backup(b.id).await);
    assert_not_found(store.get_task(t.id).await);

    let inst = active(&store, "p1").await;
    let b = backup(&inst, None);
    let t = task(inst.id, TaskKind::CreateBackup, at(3));
    store
        .start_backup(&b, &t, None)
        .await
        .expect("start backup");
    assert_eq!(store.get_backup(b.id).await.expect("get"), b);
    assert_eq!(store.get_task(t.id).await.expect("task"), t);
    assert_eq!(
        store.get_instance(inst.id).await.expect("get").status,
        InstanceStatus::Backup
    );
    // A second backup while the first runs is refused.
    let again = backup(&inst, None);
    let message = assert_conflict(
        store
            .start_backup(&again, &task(inst.id, TaskKind::CreateBackup, at(4)), None)
            .await,
    );
    assert!(message.contains("is BACKUP"), "{message}");
}

pub async fn backups_update_list_and_delete(store: Store) {
    let inst = active(&store, "p1").await;
    let other = active(&store, "p2").await;
    let full = backup(&inst, None);
    let incr = backup(&inst, Some(full.id));
    let foreign = backup(&other, None);
    for b in [&full, &incr, &foreign] {
        store.insert_backup(b).await.expect("insert");
    }
    let mut done = full.clone();
    done.status = BackupStatus::Completed;
    done.location = Some("fs:///b/x.cbk".into());
    done.plain_bytes = Some(1 << 40);
    done.stored_bytes = Some(12345);
    done.checksum = Some("ab".repeat(32));
    done.info = serde_json::json!({"to_lsn": 42});
    store.update_backup(&done).await.expect("update");
    let got = store.get_backup(full.id).await.expect("get");
    assert_eq!(got.status, BackupStatus::Completed);
    assert_eq!(got.plain_bytes, Some(1 << 40));
    assert_eq!(got.info["to_lsn"], 42);
    assert_eq!(got.location.as_deref(), Some("fs:///b/x.cbk"));

    let p1 = ProjectId("p1".into());
    let all = store
        .list_backups(None, None, None, 10)
        .await
        .expect("list");
    assert_eq!(all.len(), 3);
    let mine = store
        .list_backups(Some(&p1), None, None, 10)
        .await
        .expect("list");
    assert_eq!(
        mine.iter().map(|b| b.id).collect::<Vec<_>>(),
        vec![full.id, incr.id]
    );
    let page = store
        .list_backups(Some(&p1), Some(inst.id), Some(full.id), 10)
        .await
        .expect("page");
    assert_eq!(page.iter().map(|b| b.id).collect::<Vec<_>>(), vec![incr.id]);
    assert_not_found(
        store
            .list_backups(Some(&p1), None, Some(foreign.id), 10)
            .await,
    );
    let of_other = store
        .list_backups(None, Some(other.id), None, 10)
        .await
        .expect("by instance");
    assert_eq!(of_other.len(), 1);

    let children = store.child_backups(full.id).await.expect("children");
    assert_eq!(
        children.iter().map(|b| b.id).collect::<Vec<_>>(),
        vec![incr.id]
    );
    store.mark_backup_deleted(incr.id).await.expect("delete");
    assert_not_found(store.get_backup(incr.id).await);
    assert_not_found(store.mark_backup_deleted(incr.id).await);
    assert!(store
        .child_backups(full.id)
        .await
        .expect("children")
        .is_empty());
    assert_not_found(store.update_backup(&incr).await);
}

pub async fn progress_set_get_clear(store: Store) {
    assert_eq!(store.get_progress("x").await.expect("get"), None);
    let mut p = Progress {
        phase: "backup".into(),
        bytes_done: 10,
        bytes_total: None,
        bytes_per_second: 5,
        stored_bytes: 3,
    };
    store.set_progress("x", &p).await.expect("set");
    assert_eq!(store.get_progress("x").await.expect("get"), Some(p.clone()));
    p.bytes_done = 20;
    p.bytes_total = Some(40);
    store.set_progress("x", &p).await.expect("set again");
    assert_eq!(store.get_progress("x").await.expect("get"), Some(p));
    store.clear_progress("x").await.expect("clear");
    store.clear_progress("x").await.expect("clear twice");
    assert_eq!(store.get_progress("x").await.expect("get"), None);
}
