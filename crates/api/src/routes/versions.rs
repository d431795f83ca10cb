use crate::links::base_url;
use axum::http::{header, HeaderMap};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

/// `GET /`: the API versions, as Trove lists them.
pub async fn versions(headers: HeaderMap) -> Json<Value> {
    let base = base_url(&headers);
    Json(json!({
        "versions": [{
            "id": "v1.0",
            "status": "CURRENT",
            "updated": "2012-08-01T00:00:00Z",
            "links": [{"href": format!("{base}/v1.0/"), "rel": "self"}],
        }]
    }))
}

/// `GET /openapi.json`.
pub async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], crate::OPENAPI)
}
