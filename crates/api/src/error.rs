//! The one place where errors become HTTP statuses and Trove's error bodies:
//! `{"itemNotFound": {"code": 404, "message": "..."}}` and its siblings.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use coffer_meta::MetaError;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// A quota would be exceeded (Trove's 413 `overLimit`).
    #[error("{0}")]
    OverLimit(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    NotImplemented(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    fn status_and_key(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "badRequest"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "itemNotFound"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::Unprocessable(_) => (StatusCode::UNPROCESSABLE_ENTITY, "unprocessableEntity"),
            ApiError::PayloadTooLarge(_) | ApiError::OverLimit(_) => {
                (StatusCode::PAYLOAD_TOO_LARGE, "overLimit")
            }
            ApiError::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, "badMethod"),
            ApiError::NotImplemented(_) => (StatusCode::NOT_IMPLEMENTED, "notImplemented"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "serviceUnavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "instanceFault"),
        }
    }
}

impl From<MetaError> for ApiError {
    fn from(e: MetaError) -> Self {
        match e {
            MetaError::NotFound { .. } => ApiError::NotFound(e.to_string()),
            MetaError::Conflict(m) => ApiError::Conflict(m),
            MetaError::QuotaExceeded(resources) => {
                let names: Vec<String> = resources.iter().map(|r| format!("'{r}'")).collect();
                ApiError::OverLimit(format!(
                    "Quota exceeded for resources: [{}].",
                    names.join(", ")
                ))
            }
            other => {
                tracing::error!("metadata store: {other:#}");
                ApiError::Internal("the metadata store failed; try again".into())
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, key) = self.status_and_key();
        let body = json!({ key: { "code": status.as_u16(), "message": self.to_string() } });
        (status, Json(body)).into_response()
    }
}
