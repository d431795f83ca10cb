//! The `resize` action: a new flavor (`flavorRef`) or a larger volume
//! (`volume.size`).

use super::instances::{flavor_ref, start_task};
use crate::{ApiError, ApiState};
use coffer_meta::MetaError;
use coffer_model::{Instance, InstanceStatus, QuotaSet, ResizePayload, Task, TaskKind};
use serde_json::Value;

pub async fn resize(s: &ApiState, i: &Instance, body: &Value) -> Result<(), ApiError> {
    let request = coffer_bus::messages::AgentRequest::Resize {
        ram_mb: 0,
        volume_size_gb: 0,
    };
    super::agent_call::agent_knows(i, &request)?;
    let obj = body.as_object().ok_or_else(|| {
        ApiError::BadRequest("resize takes an object with flavorRef or volume".into())
    })?;
    let payload = match (obj.get("flavorRef"), obj.get("volume")) {
        (Some(f), None) => flavor(s, i, f).await?,
        (None, Some(v)) => volume(s, i, v).await?,
        _ => {
            return Err(ApiError::BadRequest(
                "resize takes exactly one of flavorRef and volume".into(),
            ))
        }
    };
    // A new flavor restarts the datastore, which also applies any
    // configuration change waiting for a restart.
    let from: &[InstanceStatus] = match payload {
        ResizePayload::Flavor { .. } => &[InstanceStatus::Active, InstanceStatus::RestartRequired],
        ResizePayload::Volume { .. } => &[InstanceStatus::Active],
    };
    let body = serde_json::to_value(&payload).map_err(|e| ApiError::Internal(e.to_string()))?;
    let task = Task::pending(TaskKind::ResizeInstance, i.id, body);
    start_task(s, i, task, from, InstanceStatus::Resize).await?;
    tracing::info!(instance = %i.id, ?payload, "resize accepted");
    Ok(())
}

async fn flavor(s: &ApiState, i: &Instance, raw: &Value) -> Result<ResizePayload, ApiError> {
    let id = flavor_ref(raw)?;
    let f = s.store.get_flavor(id).await.map_err(|e| match e {
        MetaError::NotFound { .. } => {
            ApiError::NotFound(format!("Flavor {raw} could not be found"))
        }
        other => other.into(),
    })?;
    if f.id == i.flavor_id {
        return Err(ApiError::BadRequest(format!(
            "The new flavor id must be different than the current flavor id of '{}'.",
            i.flavor_id
        )));
    }
    Ok(ResizePayload::Flavor {
        flavor_id: f.id,
        ram_mb: f.ram_mb,
        vcpus: f.vcpus,
    })
}

async fn volume(s: &ApiState, i: &Instance, raw: &Value) -> Result<ResizePayload, ApiError> {
    let size = match raw.get("size") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(t)) => t.trim().parse().ok(),
        _ => None,
    }
    .ok_or_else(|| {
        ApiError::BadRequest("volume resize needs 'size', a whole number of GB".into())
    })?;
    if size <= i.volume_size_gb {
        return Err(ApiError::BadRequest(format!(
            "The new volume 'size' must be larger than the current volume size of '{}' GB: volumes cannot shrink.",
            i.volume_size_gb
        )));
    }
    if size > s.config.max_volume_gb {
        return Err(ApiError::BadRequest(format!(
            "Volume 'size' may be at most {} GB; got {size}",
            s.config.max_volume_gb
        )));
    }
    // The project's volume quota counts the growth. Checked here, not in
    // the transaction that starts the resize: a race can overshoot by one
    // resize, never by a new instance.
    let limits = s
        .store
        .project_quotas(&i.project_id, &s.config.quotas)
        .await?;
    let usage = s.store.quota_usage(&i.project_id).await?;
    let adding = QuotaSet {
        volumes: size - i.volume_size_gb,
        ..QuotaSet::default()
    };
    let over = limits.exceeded_by(&usage, &adding);
    if !over.is_empty() {
        let over = over.into_iter().map(String::from).collect();
        return Err(MetaError::QuotaExceeded(over).into());
    }
    Ok(ResizePayload::Volume { size_gb: size })
}
