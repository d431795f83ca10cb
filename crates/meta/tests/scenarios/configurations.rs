//! Configuration-group scenarios of the conformance suite (see conformance.rs).

use super::common::{active, assert_conflict, assert_not_found, at, instance, task};
use coffer_meta::Store;
use coffer_model::{
    ConfigValue, ConfigurationGroup, ConfigurationId, FlavorId, InstanceStatus, ProjectId,
    TaskKind, TaskState,
};
use std::collections::BTreeMap;

fn group(project: &str, name: &str) -> ConfigurationGroup {
    ConfigurationGroup {
        id: ConfigurationId::new(),
        project_id: ProjectId(project.into()),
        name: name.into(),
        description: Some("tuned".into()),
        datastore: "mariadb".into(),
        datastore_version: "10.11".into(),
        values: BTreeMap::from([
            ("max_connections".to_string(), ConfigValue::Integer(200)),
            ("slow_query_log".to_string(), ConfigValue::Boolean(true)),
            ("long_query_time".to_string(), ConfigValue::Float(0.5)),
            ("sql_mode".to_string(), ConfigValue::String("ANSI".into())),
        ]),
        created: at(1),
        updated: at(1),
    }
}

pub async fn configurations_crud_and_pages(store: Store) {
    let a = group("p1", "a");
    let b = group("p1", "b");
    let other = group("p2", "c");
    for g in [&a, &b, &other] {
        store.insert_configuration(g).await.unwrap();
    }
    assert_eq!(store.get_configuration(a.id).await.unwrap(), a);
    let p1 = ProjectId("p1".into());
    let all = store
        .list_configurations(Some(&p1), None, 10)
        .await
        .unwrap();
    assert_eq!(all.iter().map(|g| g.id).collect::<Vec<_>>(), [a.id, b.id]);
    let page = store
        .list_configurations(Some(&p1), Some(a.id), 10)
        .await
        .unwrap();
    assert_eq!(page.iter().map(|g| g.id).collect::<Vec<_>>(), [b.id]);
    assert_not_found(
        store
            .list_configurations(Some(&p1), Some(other.id), 10)
            .await,
    );
    assert_eq!(
        store
            .list_configurations(None, None, 10)
            .await
            .unwrap()
            .len(),
        3
    );

    let mut changed = a.clone();
    changed.name = "renamed".into();
    changed.description = None;
    changed.values = BTreeMap::from([("wait_timeout".to_string(), ConfigValue::Integer(60))]);
    assert!(store
        .update_configuration(&changed)
        .await
        .unwrap()
        .is_empty());
    let got = store.get_configuration(a.id).await.unwrap();
    assert_eq!(
        (got.name.as_str(), got.description, got.values),
        ("renamed", None, changed.values)
    );
    assert!(got.updated > a.updated);

    store.delete_configuration(b.id).await.unwrap();
    assert_not_found(store.get_configuration(b.id).await);
    assert_not_found(store.delete_configuration(b.id).await);
    assert_not_found(store.update_configuration(&b).await);
    assert_not_found(store.get_configuration(ConfigurationId::new()).await);
}

pub async fn attach_detach_and_delete_guard(store: Store) {
    let g = group("p1", "g");
    store.insert_configuration(&g).await.unwrap();
    let inst = active(&store, "p1").await;
    let serving = [InstanceStatus::Active, InstanceStatus::RestartRequired];
    let attach = task(inst.id, TaskKind::ApplyConfiguration, at(5));
    store
        .set_instance_configuration(inst.id, Some(g.id), &serving, &attach)
        .await
        .unwrap();
    assert_eq!(
        store.get_instance(inst.id).await.unwrap().configuration_id,
        Some(g.id)
    );
    assert_eq!(
        store.get_task(attach.id).await.unwrap().kind,
        TaskKind::ApplyConfiguration
    );
    let users = store.configuration_instances(g.id).await.unwrap();
    assert_eq!(users.iter().map(|i| i.id).collect::<Vec<_>>(), [inst.id]);
    let message = assert_conflict(store.delete_configuration(g.id).await);
    assert!(message.contains(&inst.id.to_string()), "{message}");

    // A building instance, or a group that is gone, is refused and nothing changes.
    let building = instance("p1", None);
    super::common::create(&store, &building).await;
    let t = task(building.id, TaskKind::ApplyConfiguration, at(6));
    let message = assert_conflict(
        store
            .set_instance_configuration(building.id, Some(g.id), &serving, &t)
            .await,
    );
    assert!(message.contains("BUILD"), "{message}");
    assert_not_found(store.get_task(t.id).await);
    let t = task(inst.id, TaskKind::ApplyConfiguration, at(7));
    assert_not_found(
        store
            .set_instance_configuration(inst.id, Some(ConfigurationId::new()), &serving, &t)
            .await,
    );

    let detach = task(inst.id, TaskKind::ApplyConfiguration, at(8));
    store
        .set_instance_configuration(inst.id, None, &serving, &detach)
        .await
        .unwrap();
    assert_eq!(
        store.get_instance(inst.id).await.unwrap().configuration_id,
        None
    );
    assert!(store
        .configuration_instances(g.id)
        .await
        .unwrap()
        .is_empty());
    store.delete_configuration(g.id).await.unwrap();
}

pub async fn group_update_queues_one_apply_per_attached_instance(store: Store) {
    let g = group("p1", "g");
    store.insert_configuration(&g).await.unwrap();
    let serving = [InstanceStatus::Active];
    let mut attached = Vec::new();
    for n in 0..2 {
        let inst = active(&store, "p1").await;
        let t = task(inst.id, TaskKind::ApplyConfiguration, at(10 + n));
        store
            .set_instance_configuration(inst.id, Some(g.id), &serving, &t)
            .await
            .unwrap();
        attached.push(inst.id);
    }
    let deleted = active(&store, "p1").await;
    let t = task(deleted.id, TaskKind::ApplyConfiguration, at(20));
    store
        .set_instance_configuration(deleted.id, Some(g.id), &serving, &t)
        .await
        .unwrap();
    store.mark_instance_deleted(deleted.id).await.unwrap();

    let tasks = store.update_configuration(&g).await.unwrap();
    let mut got = Vec::new();
    for id in tasks {
        let t = store.get_task(id).await.unwrap();
        assert_eq!(
            (t.kind, t.state),
            (TaskKind::ApplyConfiguration, TaskState::Pending)
        );
        got.push(t.instance_id);
    }
    assert_eq!(got, attached);
}

pub async fn transition_and_resources(store: Store) {
    let inst = active(&store, "p1").await;
    let from = [InstanceStatus::Active];
    assert!(store
        .transition_instance(inst.id, &from, InstanceStatus::RestartRequired)
        .await
        .unwrap());
    assert!(!store
        .transition_instance(inst.id, &from, InstanceStatus::Error)
        .await
        .unwrap());
    assert!(!store
        .transition_instance(inst.id, &[], InstanceStatus::Error)
        .await
        .unwrap());
    let now = store.get_instance(inst.id).await.unwrap();
    assert_eq!(now.status, InstanceStatus::RestartRequired);

    store
        .set_instance_resources(inst.id, FlavorId(3), 9)
        .await
        .unwrap();
    let now = store.get_instance(inst.id).await.unwrap();
    assert_eq!((now.flavor_id, now.volume_size_gb), (FlavorId(3), 9));
    assert_not_found(
        store
            .set_instance_resources(coffer_model::InstanceId::new(), FlavorId(3), 9)
            .await,
    );
}
