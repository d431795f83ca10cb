use crate::body::JsonBody;
use crate::links::base_url;
use crate::{views, ApiError, ApiState};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use coffer_model::{validate_name, Flavor, FlavorId};
use serde::Deserialize;
use serde_json::{json, Value};

pub async fn list(
    State(s): State<ApiState>,
    Path(project): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let base = base_url(&headers);
    let flavors: Vec<Value> = s
        .store
        .list_flavors()
        .await?
        .iter()
        .map(|f| views::flavor(&base, &project, f))
        .collect();
    Ok(Json(json!({ "flavors": flavors })))
}

/// A flavor id from the path; anything that is not one (a name, say) is a 404.
pub fn parse_flavor_id(raw: &str) -> Result<FlavorId, ApiError> {
    raw.parse::<i64>()
        .map(FlavorId)
        .map_err(|_| ApiError::NotFound(format!("Flavor {raw} could not be found")))
}

pub async fn show(
    State(s): State<ApiState>,
    Path((project, raw)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let f = s
        .store
        .get_flavor(parse_flavor_id(&raw)?)
        .await
        .map_err(|_| ApiError::NotFound(format!("Flavor {raw} could not be found")))?;
    Ok(Json(
        json!({ "flavor": views::flavor(&base_url(&headers), &project, &f) }),
    ))
}

#[derive(Deserialize)]
pub struct CreateFlavorBody {
    flavor: NewFlavor,
}

#[derive(Deserialize)]
struct NewFlavor {
    id: Option<i64>,
    name: String,
    ram: i64,
    vcpus: i64,
    #[serde(default)]
    disk: i64,
}

/// `POST /mgmt/flavors` (admin).
pub async fn create(
    State(s): State<ApiState>,
    Path(project): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CreateFlavorBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let f = body.flavor;
    validate_name("flavor name", &f.name, 255).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if f.ram < 64 || f.vcpus < 1 || f.disk < 0 {
        return Err(ApiError::BadRequest(
            "ram must be at least 64 (MB), vcpus at least 1, disk not negative".into(),
        ));
    }
    let existing = s.store.list_flavors().await?;
    if existing
        .iter()
        .any(|e| e.name == f.name || Some(e.id.0) == f.id)
    {
        return Err(ApiError::Conflict(format!(
            "a flavor with name {:?} or id {:?} exists already",
            f.name, f.id
        )));
    }
    let id =
        f.id.unwrap_or_else(|| existing.iter().map(|e| e.id.0).max().unwrap_or(0) + 1);
    if id < 1 {
        return Err(ApiError::BadRequest("flavor id must be positive".into()));
    }
    let flavor = Flavor {
        id: FlavorId(id),
        name: f.name,
        ram_mb: f.ram,
        vcpus: f.vcpus,
        disk_gb: f.disk,
    };
    s.store.upsert_flavor(&flavor).await?;
    Ok((
        StatusCode::OK,
        Json(json!({ "flavor": views::flavor(&base_url(&headers), &project, &flavor) })),
    ))
}

/// `DELETE /mgmt/flavors/{id}` (admin). Refused while instances use it.
pub async fn delete(
    State(s): State<ApiState>,
    Path((_project, raw)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    s.store.delete_flavor(parse_flavor_id(&raw)?).await?;
    Ok(StatusCode::ACCEPTED)
}
