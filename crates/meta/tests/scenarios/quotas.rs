//! Quota scenarios of the conformance suite.

use super::common::{at, instance, task};
use coffer_meta::{MetaError, Store};
use coffer_model::{InstanceStatus, ProjectId, QuotaSet, TaskKind};

fn over<T: std::fmt::Debug>(result: Result<T, MetaError>) -> Vec<String> {
    match result {
        Err(MetaError::QuotaExceeded(r)) => r,
        other => panic!("expected QuotaExceeded, got {other:?}"),
    }
}

pub async fn quotas_limit_instances_volumes_and_backups(store: Store) {
    let p = ProjectId("q1".into());
    let defaults = QuotaSet {
        instances: 2,
        volumes: 5,
        backups: 1,
    };
    assert_eq!(store.project_quotas(&p, &defaults).await.unwrap(), defaults);
    assert_eq!(store.quota_usage(&p).await.unwrap(), QuotaSet::default());

    let mut first = instance("q1", None);
    first.volume_size_gb = 3;
    store
        .create_instance(
            &first,
            &task(first.id, TaskKind::CreateInstance, at(1)),
            Some(&defaults),
        )
        .await
        .unwrap();
    // 3 + 3 GB is over 5.
    let mut big = instance("q1", None);
    big.volume_size_gb = 3;
    let t = task(big.id, TaskKind::CreateInstance, at(2));
    assert_eq!(
        over(store.create_instance(&big, &t, Some(&defaults)).await),
        ["volumes"]
    );
    assert!(
        store.get_instance(big.id).await.is_err(),
        "nothing was created"
    );
    big.volume_size_gb = 2;
    store
        .create_instance(&big, &t, Some(&defaults))
        .await
        .unwrap();
    let third = instance("q1", None);
    let t = task(third.id, TaskKind::CreateInstance, at(3));
    assert_eq!(
        over(store.create_instance(&third, &t, Some(&defaults)).await),
        ["instances", "volumes"]
    );
    // Unchecked creates (and other projects) are not limited.
    store
        .create_instance(
            &instance("q2", None),
            &task(third.id, TaskKind::CreateInstance, at(4)),
            Some(&defaults),
        )
        .await
        .unwrap();
    assert_eq!(
        store.quota_usage(&p).await.unwrap(),
        QuotaSet {
            instances: 2,
            volumes: 5,
            backups: 0
        }
    );

    // A raised limit lets the third in; a deleted instance frees its share.
    store.set_project_quota(&p, "instances", 3).await.unwrap();
    store.set_project_quota(&p, "volumes", -1).await.unwrap();
    let limits = store.project_quotas(&p, &defaults).await.unwrap();
    assert_eq!(
        limits,
        QuotaSet {
            instances: 3,
            volumes: -1,
            backups: 1
        }
    );
    let t = task(third.id, TaskKind::CreateInstance, at(5));
    store
        .create_instance(&third, &t, Some(&defaults))
        .await
        .unwrap();
    store.mark_instance_deleted(third.id).await.unwrap();
    assert_eq!(store.quota_usage(&p).await.unwrap().instances, 2);

    // Backups: one allowed.
    store
        .set_instance_status(first.id, InstanceStatus::Active, None)
        .await
        .unwrap();
    let b1 = super::backups::backup(&first, None);
    store
        .start_backup(
            &b1,
            &task(first.id, TaskKind::CreateBackup, at(6)),
            Some(&defaults),
        )
        .await
        .unwrap();
    store
        .set_instance_status(first.id, InstanceStatus::Active, None)
        .await
        .unwrap();
    let b2 = super::backups::backup(&first, None);
    let t = task(first.id, TaskKind::CreateBackup, at(7));
    assert_eq!(
        over(store.start_backup(&b2, &t, Some(&defaults)).await),
        ["backups"]
    );
    assert_eq!(
        store.get_instance(first.id).await.unwrap().status,
        InstanceStatus::Active
    );
    assert_eq!(store.quota_usage(&p).await.unwrap().backups, 1);
}
