//! `/instances/{id}/databases`: the tenant's databases inside the datastore.

use super::agent_call::call;
use super::instances::find;
use super::paging::page;
use crate::body::JsonBody;
use crate::links::base_url;
use crate::{ApiError, ApiState};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use coffer_bus::messages::AgentRequest;
use coffer_model::DatabaseSpec;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

#[derive(Deserialize)]
pub struct CreateDatabases {
    databases: Vec<NamedRequest>,
}

/// `{"name": ...}`, the shape of a database reference in Trove's bodies.
#[derive(Deserialize)]
pub struct NamedRequest {
    pub name: String,
}

pub async fn list(
    State(s): State<ApiState>,
    Path((project, raw)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let i = find(&s, &project, &raw).await?;
    let names: Vec<String> =
        serde_json::from_value(call(&s, &i, AgentRequest::ListDatabases).await?)
            .map_err(|e| ApiError::Internal(format!("unreadable answer from the agent: {e}")))?;
    let base = base_url(&headers);
    let (names, links) = page(
        names,
        String::clone,
        &q,
        s.config.default_page_size,
        |limit, marker| {
            format!(
                "{base}/v1.0/{project}/instances/{}/databases?limit={limit}&marker={marker}",
                i.id
            )
        },
    )?;
    let mut out =
        json!({ "databases": names.iter().map(|n| json!({"name": n})).collect::<Vec<_>>() });
    if let Some(l) = links {
        out["links"] = l;
    }
    Ok(Json(out))
}

pub async fn create(
    State(s): State<ApiState>,
    Path((project, raw)): Path<(String, String)>,
    JsonBody(body): JsonBody<CreateDatabases>,
) -> Result<StatusCode, ApiError> {
    let i = find(&s, &project, &raw).await?;
    if body.databases.is_empty() {
        return Err(ApiError::BadRequest("no databases given".into()));
    }
    let databases = body
        .databases
        .into_iter()
        .map(|d| DatabaseSpec { name: d.name })
        .collect();
    call(&s, &i, AgentRequest::CreateDatabases { databases }).await?;
    Ok(StatusCode::ACCEPTED)
}

pub async fn delete(
    State(s): State<ApiState>,
    Path((project, raw, name)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    let i = find(&s, &project, &raw).await?;
    call(&s, &i, AgentRequest::DeleteDatabase { name }).await?;
    Ok(StatusCode::ACCEPTED)
}
