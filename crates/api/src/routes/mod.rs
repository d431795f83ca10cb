//! Route table. Every path here is documented in `openapi.json` (a test
//! checks both lists agree).

mod agent_call;
mod backups;
mod configurations;
mod databases;
mod datastores;
mod flavors;
mod instance_configuration;
mod instances;
mod paging;
mod parameters;
mod quotas;
mod resize;
mod root;
mod users;
mod versions;

use crate::{ApiError, ApiState};
use axum::routing::{delete, get, post};
use axum::Router;

/// (method, path) of every route, as OpenAPI spells paths; kept next to
/// the router so a new route is listed (and documented) in the same change.
#[cfg(test)]
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/"),
    ("get", "/openapi.json"),
    ("get", "/v1.0/{project_id}/datastores"),
    ("get", "/v1.0/{project_id}/datastores/{datastore}"),
    ("get", "/v1.0/{project_id}/datastores/{datastore}/versions"),
    (
        "get",
        "/v1.0/{project_id}/datastores/{datastore}/versions/{version}",
    ),
    ("get", "/v1.0/{project_id}/datastores/versions/{version_id}"),
    (
        "get",
        "/v1.0/{project_id}/datastores/{datastore}/versions/{version}/parameters",
    ),
    (
        "get",
        "/v1.0/{project_id}/datastores/{datastore}/versions/{version}/parameters/{parameter}",
    ),
    (
        "get",
        "/v1.0/{project_id}/datastores/versions/{version_id}/parameters",
    ),
    (
        "get",
        "/v1.0/{project_id}/datastores/versions/{version_id}/parameters/{parameter}",
    ),
    ("get", "/v1.0/{project_id}/configurations"),
    ("post", "/v1.0/{project_id}/configurations"),
    (
        "get",
        "/v1.0/{project_id}/configurations/{configuration_id}",
    ),
    (
        "put",
        "/v1.0/{project_id}/configurations/{configuration_id}",
    ),
    (
        "patch",
        "/v1.0/{project_id}/configurations/{configuration_id}",
    ),
    (
        "delete",
        "/v1.0/{project_id}/configurations/{configuration_id}",
    ),
    (
        "get",
        "/v1.0/{project_id}/configurations/{configuration_id}/instances",
    ),
    ("get", "/v1.0/{project_id}/flavors"),
    ("get", "/v1.0/{project_id}/flavors/{flavor_id}"),
    ("post", "/v1.0/{project_id}/mgmt/flavors"),
    ("get", "/v1.0/{project_id}/limits"),
    ("get", "/v1.0/{project_id}/mgmt/quotas/{tenant_id}"),
    ("put", "/v1.0/{project_id}/mgmt/quotas/{tenant_id}"),
    ("get", "/v1.0/{project_id}/mgmt/instances"),
    ("delete", "/v1.0/{project_id}/mgmt/flavors/{flavor_id}"),
    ("get", "/v1.0/{project_id}/instances"),
    ("post", "/v1.0/{project_id}/instances"),
    ("get", "/v1.0/{project_id}/instances/{instance_id}"),
    ("put", "/v1.0/{project_id}/instances/{instance_id}"),
    ("patch", "/v1.0/{project_id}/instances/{instance_id}"),
    ("delete", "/v1.0/{project_id}/instances/{instance_id}"),
    (
        "get",
        "/v1.0/{project_id}/instances/{instance_id}/configuration",
    ),
    ("post", "/v1.0/{project_id}/instances/{instance_id}/action"),
    (
        "get",
        "/v1.0/{project_id}/instances/{instance_id}/databases",
    ),
    (
        "post",
        "/v1.0/{project_id}/instances/{instance_id}/databases",
    ),
    (
        "delete",
        "/v1.0/{project_id}/instances/{instance_id}/databases/{database}",
    ),
    ("get", "/v1.0/{project_id}/instances/{instance_id}/users"),
    ("post", "/v1.0/{project_id}/instances/{instance_id}/users"),
    ("put", "/v1.0/{project_id}/instances/{instance_id}/users"),
    (
        "get",
        "/v1.0/{project_id}/instances/{instance_id}/users/{user}",
    ),
    (
        "put",
        "/v1.0/{project_id}/instances/{instance_id}/users/{user}",
    ),
    (
        "delete",
        "/v1.0/{project_id}/instances/{instance_id}/users/{user}",
    ),
    (
        "get",
        "/v1.0/{project_id}/instances/{instance_id}/users/{user}/databases",
    ),
    (
        "put",
        "/v1.0/{project_id}/instances/{instance_id}/users/{user}/databases",
    ),
    (
        "delete",
        "/v1.0/{project_id}/instances/{instance_id}/users/{user}/databases/{database}",
    ),
    ("get", "/v1.0/{project_id}/instances/{instance_id}/root"),
    ("post", "/v1.0/{project_id}/instances/{instance_id}/root"),
    ("delete", "/v1.0/{project_id}/instances/{instance_id}/root"),
    ("get", "/v1.0/{project_id}/instances/{instance_id}/backups"),
    ("get", "/v1.0/{project_id}/backups"),
    ("post", "/v1.0/{project_id}/backups"),
    ("get", "/v1.0/{project_id}/backups/{backup_id}"),
    ("delete", "/v1.0/{project_id}/backups/{backup_id}"),
];

pub fn router() -> Router<ApiState> {
    let project = Router::new()
        .route("/datastores", get(datastores::list))
        .route("/datastores/{datastore}", get(datastores::show))
        .route(
            "/datastores/{datastore}/versions",
            get(datastores::list_versions),
        )
        .route(
            "/datastores/{datastore}/versions/{version}",
            get(datastores::show_version),
        )
        .route(
            "/datastores/versions/{version_id}",
            get(datastores::show_version_by_id),
        )
        .route(
            "/datastores/{datastore}/versions/{version}/parameters",
            get(parameters::list),
        )
        .route(
            "/datastores/{datastore}/versions/{version}/parameters/{parameter}",
            get(parameters::show),
        )
        .route(
            "/datastores/versions/{version_id}/parameters",
            get(parameters::list_by_version_id),
        )
        .route(
            "/datastores/versions/{version_id}/parameters/{parameter}",
            get(parameters::show_by_version_id),
        )
        .route(
            "/configurations",
            get(configurations::list).post(configurations::create),
        )
        .route(
            "/configurations/{configuration_id}",
            get(configurations::show)
                .put(configurations::replace)
                .patch(configurations::merge)
                .delete(configurations::delete),
        )
        .route(
            "/configurations/{configuration_id}/instances",
            get(configurations::instances),
        )
        .route("/flavors", get(flavors::list))
        .route("/flavors/{flavor_id}", get(flavors::show))
        .route("/mgmt/flavors", post(flavors::create))
        .route("/limits", get(quotas::limits))
        .route(
            "/mgmt/quotas/{tenant_id}",
            get(quotas::show).put(quotas::update),
        )
        .route("/mgmt/instances", get(instances::list_all))
        .route("/mgmt/flavors/{flavor_id}", delete(flavors::delete))
        .route("/instances", get(instances::list).post(instances::create))
        .route(
            "/instances/{instance_id}",
            get(instances::show)
                .put(instance_configuration::put)
                .patch(instance_configuration::patch)
                .delete(instances::delete),
        )
        .route(
            "/instances/{instance_id}/configuration",
            get(instance_configuration::show),
        )
        .route("/instances/{instance_id}/action", post(instances::action))
        .route(
            "/instances/{instance_id}/databases",
            get(databases::list).post(databases::create),
        )
        .route(
            "/instances/{instance_id}/databases/{database}",
            delete(databases::delete),
        )
        .route(
            "/instances/{instance_id}/users",
            get(users::list)
                .post(users::create)
                .put(users::change_passwords),
        )
        .route(
            "/instances/{instance_id}/users/{user}",
            get(users::show).put(users::update).delete(users::delete),
        )
        .route(
            "/instances/{instance_id}/users/{user}/databases",
            get(users::list_access).put(users::grant),
        )
        .route(
            "/instances/{instance_id}/users/{user}/databases/{database}",
            delete(users::revoke),
        )
        .route(
            "/instances/{instance_id}/root",
            get(root::show).post(root::enable).delete(root::disable),
        )
        .route(
            "/instances/{instance_id}/backups",
            get(backups::list_of_instance),
        )
        .route("/backups", get(backups::list).post(backups::create))
        .route(
            "/backups/{backup_id}",
            get(backups::show).delete(backups::delete),
        );
    Router::new()
        .route("/", get(versions::versions))
        .route("/openapi.json", get(versions::openapi))
        .nest("/v1.0/{project_id}", project)
        .fallback(|| async { ApiError::NotFound("no such resource".into()) })
        .method_not_allowed_fallback(|| async {
            ApiError::MethodNotAllowed("this method is not allowed on this resource".into())
        })
}

#[cfg(test)]
mod tests {
    use super::ROUTES;
    use std::collections::BTreeSet;

    /// The OpenAPI document lists exactly the routes the router serves.
    #[test]
    fn openapi_matches_routes() {
        let doc: serde_json::Value = serde_json::from_str(crate::OPENAPI).unwrap();
        let mut documented = BTreeSet::new();
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for method in ops.as_object().unwrap().keys() {
                documented.insert((method.clone(), path.clone()));
            }
        }
        let served: BTreeSet<_> = ROUTES
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        assert_eq!(documented, served);
    }
}
