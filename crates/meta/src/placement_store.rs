//! Where each instance's server runs, when compute hosts are remote: the
//! host is recorded (once) before it is asked to create the server, so a
//! create resumed after a crash goes back to the same host, and an
//! instance's host is known without asking every host. A supertrait of
//! [`MetadataStore`](crate::MetadataStore).

use crate::MetaError;
use async_trait::async_trait;
use coffer_model::InstanceId;

#[async_trait]
pub trait PlacementStore: Send + Sync + 'static {
    /// The host recorded for instance `id` (deleted instances too: their
    /// servers are removed before the row is marked deleted). `None`: never
    /// placed. NotFound when there is no such instance.
    async fn instance_host(&self, id: InstanceId) -> Result<Option<String>, MetaError>;

    /// Record `host` for instance `id` unless one is recorded already, and
    /// return the recorded one: the first placement wins, so two task
    /// managers placing the same instance agree.
    async fn place_instance(&self, id: InstanceId, host: &str) -> Result<String, MetaError>;
}
