//! The configuration-group half of the metadata store. A supertrait of
//! [`MetadataStore`](crate::MetadataStore), so every store holds it.

use crate::MetaError;
use async_trait::async_trait;
use coffer_model::{
    ConfigurationGroup, ConfigurationId, FlavorId, Instance, InstanceId, InstanceStatus, ProjectId,
    Task, TaskId,
};

#[async_trait]
pub trait ConfigurationStore: Send + Sync + 'static {
    async fn insert_configuration(&self, group: &ConfigurationGroup) -> Result<(), MetaError>;

    async fn get_configuration(&self, id: ConfigurationId)
        -> Result<ConfigurationGroup, MetaError>;

    /// Live groups in creation order, optionally of one project, after
    /// `marker` (exclusive), at most `limit`. NotFound if the marker is not
    /// in this listing.
    async fn list_configurations(
        &self,
        project: Option<&ProjectId>,
        marker: Option<ConfigurationId>,
        limit: usize,
    ) -> Result<Vec<ConfigurationGroup>, MetaError>;

    /// Atomically: save the group's name, description and values, and
    /// queue an apply-configuration task for every live instance it is
    /// attached to. Returns those tasks' ids.
    async fn update_configuration(
        &self,
        group: &ConfigurationGroup,
    ) -> Result<Vec<TaskId>, MetaError>;

    /// It disappears from gets and lists. Conflict while a live instance
    /// has it attached.
    async fn delete_configuration(&self, id: ConfigurationId) -> Result<(), MetaError>;

    /// Live instances the group is attached to, in creation order.
    async fn configuration_instances(
        &self,
        id: ConfigurationId,
    ) -> Result<Vec<Instance>, MetaError>;

    /// Atomically: if the instance's status is one of `from`, attach
    /// `configuration` (`None` detaches) and insert `task`; otherwise
    /// Conflict naming the status. NotFound when the group is gone.
    async fn set_instance_configuration(
        &self,
        id: InstanceId,
        configuration: Option<ConfigurationId>,
        from: &[InstanceStatus],
        task: &Task,
    ) -> Result<(), MetaError>;

    /// Set the status to `to` if it is one of `from`; false (and nothing
    /// changed) otherwise.
    async fn transition_instance(
        &self,
        id: InstanceId,
        from: &[InstanceStatus],
        to: InstanceStatus,
    ) -> Result<bool, MetaError>;

    /// Record the result of a resize.
    async fn set_instance_resources(
        &self,
        id: InstanceId,
        flavor_id: FlavorId,
        volume_size_gb: i64,
    ) -> Result<(), MetaError>;
}
