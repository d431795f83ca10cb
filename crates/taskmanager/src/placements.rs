//! The remote compute driver's placements, kept in the metadata store.

use async_trait::async_trait;
use coffer_compute::Placements;
use coffer_meta::{MetaError, Store};
use coffer_model::InstanceId;

/// [`Placements`] in the instances' rows.
pub struct StorePlacements(pub Store);

#[async_trait]
impl Placements for StorePlacements {
    async fn host_of(&self, id: InstanceId) -> anyhow::Result<Option<String>> {
        match self.0.instance_host(id).await {
            Ok(host) => Ok(host),
            // No row, no server placed for it.
            Err(MetaError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn place(&self, id: InstanceId, host: &str) -> anyhow::Result<String> {
        Ok(self.0.place_instance(id, host).await?)
    }
}
