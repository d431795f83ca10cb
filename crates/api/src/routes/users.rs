//! `/instances/{id}/users`: the tenant's users inside the datastore, and
//! their access to databases. A user is named `name` or `name@host`.

use super::agent_call::call;
use super::databases::NamedRequest;
use super::instances::find;
use super::paging::page;
use crate::body::JsonBody;
use crate::links::base_url;
use crate::{ApiError, ApiState};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use coffer_bus::messages::AgentRequest;
use coffer_model::{validate_password, Instance, UserInfo, UserSpec, UserUpdate};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

#[derive(Deserialize)]
pub struct CreateUsers {
    users: Vec<NewUser>,
}

#[derive(Deserialize)]
struct NewUser {
    name: String,
    password: String,
    host: Option<String>,
    #[serde(default)]
    databases: Vec<NamedRequest>,
}

#[derive(Deserialize)]
pub struct UpdateBody {
    user: UserUpdate,
}

#[derive(Deserialize)]
pub struct PasswordsBody {
    users: Vec<NewUser>,
}

#[derive(Deserialize)]
pub struct AccessBody {
    databases: Vec<NamedRequest>,
}

/// `name@host` → (name, host); a plain name means any host (`%`).
fn split_user(raw: &str) -> (String, String) {
    match raw.rsplit_once('@') {
        Some((name, host)) if !name.is_empty() && !host.is_empty() => {
            (name.to_string(), host.to_string())
        }
        _ => (raw.to_string(), "%".to_string()),
    }
}

fn view(u: &UserInfo) -> Value {
    let dbs: Vec<Value> = u.databases.iter().map(|d| json!({"name": d})).collect();
    json!({"name": u.name, "host": u.host, "databases": dbs})
}

async fn users_of(s: &ApiState, i: &Instance) -> Result<Vec<UserInfo>, ApiError> {
    serde_json::from_value(call(s, i, AgentRequest::ListUsers).await?)
        .map_err(|e| ApiError::Internal(format!("unreadable answer from the agent: {e}")))
}

/// The user `raw` names, or a 404.
async fn user_of(s: &ApiState, i: &Instance, raw: &str) -> Result<UserInfo, ApiError> {
    let (name, host) = split_user(raw);
    users_of(s, i)
        .await?
        .into_iter()
        .find(|u| u.name == name && u.host == host)
        .ok_or_else(|| ApiError::NotFound(format!("User {raw} cannot be found on the instance.")))
}

fn checked_password(name: &str, password: &str) -> Result<(), ApiError> {
    validate_password(name, password).map_err(ApiError::BadRequest)
}

pub async fn list(
    State(s): State<ApiState>,
    Path((project, raw)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let i = find(&s, &project, &raw).await?;
    let users = users_of(&s, &i).await?;
    let base = base_url(&headers);
    let (users, links) = page(
        users,
        |u| u.name.clone(),
        &q,
        s.config.default_page_size,
        |limit, marker| {
            format!(
                "{base}/v1.0/{project}/instances/{}/users?limit={limit}&marker={marker}",
                i.id
            )
        },
    )?;
    let mut out = json!({ "users": users.iter().map(view).collect::<Vec<_>>() });
    if let Some(l) = links {
        out["links"] = l;
    }
    Ok(Json(out))
}

pub async fn create(
    State(s): State<ApiState>,
    Path((project, raw)): Path<(String, String)>,
    JsonBody(body): JsonBody<CreateUsers>,
) -> Result<StatusCode, ApiError> {
    let i = find(&s, &project, &raw).await?;
    if body.users.is_empty() {
        return Err(ApiError::BadRequest("no users given".into()));
    }
    let mut users = Vec::new();
    for u in body.users {
        checked_password(&u.name, &u.password)?;
        users.push(UserSpec {
            name: u.name,
            password: u.password,
            host: u.host.unwrap_or_else(|| "%".into()),
            databases: u.databases.into_iter().map(|d| d.name).collect(),
        });
    }
    call(&s, &i, AgentRequest::CreateUsers { users }).await?;
    Ok(StatusCode::ACCEPTED)
}

pub async fn show(
    State(s): State<ApiState>,
    Path((project, raw, user)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let i = find(&s, &project, &raw).await?;
    Ok(Json(
        json!({ "user": view(&user_of(&s, &i, &user).await?) }),
    ))
}

pub async fn update(
    State(s): State<ApiState>,
    Path((project, raw, user)): Path<(String, String, String)>,
    JsonBody(body): JsonBody<UpdateBody>,
) -> Result<StatusCode, ApiError> {
    let i = find(&s, &project, &raw).await?;
    let (name, host) = split_user(&user);
    let update = body.user;
    if update.name.is_none() && update.password.is_none() && update.host.is_none() {
        return Err(ApiError::BadRequest(
            "nothing to change: give name, password or host".into(),
        ));
    }
    if let Some(p) = &update.password {
        checked_password(&name, p)?;
    }
    call(&s, &i, AgentRequest::UpdateUser { name, host, update }).await?;
    Ok(StatusCode::ACCEPTED)
}

/// `PUT /users`: change several users' passwords.
pub async fn change_passwords(
    State(s): State<ApiState>,
    Path((project, raw)): Path<(String, String)>,
    JsonBody(body): JsonBody<PasswordsBody>,
) -> Result<StatusCode, ApiError> {
    let i = find(&s, &project, &raw).await?;
    for u in &body.users {
        checked_password(&u.name, &u.password)?;
    }
    for u in body.users {
        let update = UserUpdate {
            password: Some(u.password),
            ..UserUpdate::default()
        };
        let host = u.host.unwrap_or_else(|| "%".into());
        call(
            &s,
            &i,
            AgentRequest::UpdateUser {
                name: u.name,
                host,
                update,
            },
        )
        .await?;
    }
    Ok(StatusCode::ACCEPTED)
}

pub async fn delete(
    State(s): State<ApiState>,
    Path((project, raw, user)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    let i = find(&s, &project, &raw).await?;
    let (name, host) = split_user(&user);
    call(&s, &i, AgentRequest::DeleteUser { name, host }).await?;
    Ok(StatusCode::ACCEPTED)
}

pub async fn list_access(
    State(s): State<ApiState>,
    Path((project, raw, user)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let i = find(&s, &project, &raw).await?;
    let u = user_of(&s, &i, &user).await?;
    Ok(Json(
        json!({ "databases": u.databases.iter().map(|d| json!({"name": d})).collect::<Vec<_>>() }),
    ))
}

pub async fn grant(
    State(s): State<ApiState>,
    Path((project, raw, user)): Path<(String, String, String)>,
    JsonBody(body): JsonBody<AccessBody>,
) -> Result<StatusCode, ApiError> {
    let i = find(&s, &project, &raw).await?;
    let (name, host) = split_user(&user);
    let databases = body.databases.into_iter().map(|d| d.name).collect();
    call(
        &s,
        &i,
        AgentRequest::GrantAccess {
            name,
            host,
            databases,
        },
    )
    .await?;
    Ok(StatusCode::ACCEPTED)
}

pub async fn revoke(
    State(s): State<ApiState>,
    Path((project, raw, user, database)): Path<(String, String, String, String)>,
) -> Result<StatusCode, ApiError> {
    let i = find(&s, &project, &raw).await?;
    let (name, host) = split_user(&user);
    call(
        &s,
        &i,
        AgentRequest::RevokeAccess {
            name,
            host,
            database,
        },
    )
    .await?;
    Ok(StatusCode::ACCEPTED)
}

#[cfg(test)]
mod tests {
    use super::split_user;

    #[test]
    fn user_names_with_hosts() {
        assert_eq!(split_user("app"), ("app".into(), "%".into()));
        assert_eq!(
            split_user("app@10.0.0.1"),
            ("app".into(), "10.0.0.1".into())
        );
        assert_eq!(split_user("app@"), ("app@".into(), "%".into()));
    }
}
