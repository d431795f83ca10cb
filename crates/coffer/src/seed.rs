//! Make the metadata store offer what the configuration says: datastores
//! and their versions (ids kept stable across restarts), and the default
//! flavors on a store that has none.

use crate::config::Config;
use coffer_meta::{MetaError, Store};
use coffer_model::{Datastore, DatastoreId, DatastoreVersion, DatastoreVersionId, Flavor};

pub async fn seed(store: &Store, config: &Config) -> anyhow::Result<()> {
    // An unknown strategy name is a start-up error that lists the known ones.
    let registry = coffer_datastores::registry();
    for ds in config.datastores.values() {
        registry.get(&ds.manager)?;
    }
    // Roles started together seed at once: the loser of a race re-reads
    // the winner's ids and converges.
    let mut attempt = 0;
    loop {
        match seed_datastores(store, config).await {
            Err(e) if attempt < 3 && is_conflict(&e) => attempt += 1,
            other => break other?,
        }
    }
    if store.list_flavors().await?.is_empty() {
        for f in Flavor::defaults() {
            store.upsert_flavor(&f).await?;
        }
    }
    Ok(())
}

fn is_conflict(e: &anyhow::Error) -> bool {
    matches!(e.downcast_ref::<MetaError>(), Some(MetaError::Conflict(_)))
}

async fn seed_datastores(store: &Store, config: &Config) -> anyhow::Result<()> {
    let existing = store.list_datastores().await?;
    for (name, section) in &config.datastores {
        let old = existing.iter().find(|d| &d.name == name);
        let id = old.map(|d| d.id).unwrap_or_else(DatastoreId::new);
        let versions: Vec<DatastoreVersion> = section
            .versions
            .iter()
            .map(|v| DatastoreVersion {
                id: old
                    .and_then(|d| d.versions.iter().find(|x| &x.name == v))
                    .map(|x| x.id)
                    .unwrap_or_else(DatastoreVersionId::new),
                datastore_id: id,
                name: v.clone(),
                manager: section.manager.clone(),
                active: true,
            })
            .collect();
        let default_version = versions.first().map(|v| v.id);
        store
            .upsert_datastore(&Datastore {
                id,
                name: name.clone(),
                default_version,
                versions,
            })
            .await?;
    }
    if store.list_flavors().await?.is_empty() {
        for f in Flavor::defaults() {
            store.upsert_flavor(&f).await?;
        }
    }
    Ok(())
}
