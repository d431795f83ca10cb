//! Built-in authentication scenarios of the conformance suite.

use super::common::{assert_conflict, assert_not_found, at};
use coffer_meta::Store;
use coffer_model::{ApiToken, ProjectId};

fn token(id: &str, project: Option<&str>, admin: bool) -> ApiToken {
    ApiToken {
        id: id.into(),
        token_hash: format!("hash-of-{id}"),
        project_id: project.map(|p| ProjectId(p.into())),
        is_admin: admin,
        description: Some("ci".into()),
        created: at(1),
    }
}

pub async fn projects_and_tokens(store: Store) {
    let alpha = ProjectId("alpha".into());
    store.create_project(&alpha).await.unwrap();
    assert_conflict(store.create_project(&alpha).await);
    store
        .create_project(&ProjectId("beta".into()))
        .await
        .unwrap();
    let listed = store.list_projects().await.unwrap();
    assert_eq!(listed, [alpha.clone(), ProjectId("beta".into())]);

    let t1 = token("t1", Some("alpha"), false);
    store.insert_token(&t1).await.unwrap();
    let admin = token("t2", None, true);
    store.insert_token(&admin).await.unwrap();
    assert_not_found(
        store
            .insert_token(&token("t3", Some("nowhere"), false))
            .await,
    );
    let mut same_hash = token("t4", Some("alpha"), false);
    same_hash.token_hash = t1.token_hash.clone();
    assert_conflict(store.insert_token(&same_hash).await);

    assert_eq!(
        store.find_token("hash-of-t1").await.unwrap(),
        Some(t1.clone())
    );
    assert_eq!(
        store.find_token("hash-of-t2").await.unwrap(),
        Some(admin.clone())
    );
    assert_eq!(store.find_token("nope").await.unwrap(), None);
    assert_eq!(store.list_tokens().await.unwrap(), [t1, admin]);
    store.delete_token("t1").await.unwrap();
    assert_eq!(store.find_token("hash-of-t1").await.unwrap(), None);
    assert_not_found(store.delete_token("t1").await);
}
