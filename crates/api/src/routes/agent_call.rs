//! Calls from the API to an instance's guest agent, for the requests Trove
//! answers from the datastore itself (users, databases, root).

use crate::{ApiError, ApiState};
use coffer_bus::messages::{AgentError, AgentErrorKind, AgentRequest};
use coffer_bus::{agent_topic, BusError};
use coffer_model::Instance;
use serde_json::Value;
use std::time::Duration;

const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Ask `instance`'s agent and map its refusals to Trove's error kinds.
/// The instance must be serving (ACTIVE or RESTART_REQUIRED).
pub async fn call(
    s: &ApiState,
    instance: &Instance,
    request: AgentRequest,
) -> Result<Value, ApiError> {
    if !instance.status.is_serving() {
        return Err(ApiError::Unprocessable(format!(
            "Instance {} is not ready. (Status is {})",
            instance.id, instance.status
        )));
    }
    agent_knows(instance, &request)?;
    let body = serde_json::to_value(&request).map_err(|e| ApiError::Internal(e.to_string()))?;
    match s
        .bus
        .call(&agent_topic(instance.id), body, CALL_TIMEOUT)
        .await
    {
        Ok(v) => Ok(v),
        Err(BusError::Remote(raw)) => Err(from_agent(AgentError::decode(&raw))),
        Err(e @ (BusError::NoRoute(_) | BusError::Timeout(..))) => {
            Err(ApiError::Unavailable(format!(
                "the guest agent of instance {} did not answer ({e}); try again shortly",
                instance.id
            )))
        }
        Err(e) => Err(ApiError::Internal(format!(
            "talking to the guest agent: {e}"
        ))),
    }
}

/// Refuse now (409) work whose task would send `request` to an agent too
/// old to know it, instead of letting the task fail later.
pub fn agent_knows(instance: &Instance, request: &AgentRequest) -> Result<(), ApiError> {
    request
        .check_agent(instance.agent_protocol)
        .map_err(from_agent)
}

fn from_agent(e: AgentError) -> ApiError {
    match e.kind {
        AgentErrorKind::InvalidInput => ApiError::BadRequest(e.message),
        // Trove answers a duplicate database or user with 400.
        AgentErrorKind::AlreadyExists => ApiError::BadRequest(e.message),
        AgentErrorKind::NotFound => ApiError::NotFound(e.message),
        AgentErrorKind::NotSupported => ApiError::NotImplemented(e.message),
        // The control plane is newer than the agent: upgrade the agent.
        AgentErrorKind::TooOld => ApiError::Conflict(e.message),
        AgentErrorKind::Failed => {
            tracing::error!("guest agent failed: {}", e.message);
            ApiError::Internal(format!("the datastore failed: {}", e.message))
        }
    }
}
