//! Trove-style `links` (self and bookmark) built from the request's Host.

use axum::http::HeaderMap;
use serde::Serialize;
use serde_json::{json, Value};

/// The base URL clients reached us at, e.g. `http://127.0.0.1:8779`.
pub fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("http");
    format!("{proto}://{host}")
}

/// One `links` entry.
#[derive(Serialize)]
pub struct Link {
    pub href: String,
    pub rel: &'static str,
}

/// `self` (versioned, with project) and `bookmark` (unversioned) links to
/// `path` (e.g. `instances/ID`).
pub fn link_pair(base: &str, project: &str, path: &str) -> [Link; 2] {
    [
        Link {
            href: format!("{base}/v1.0/{project}/{path}"),
            rel: "self",
        },
        Link {
            href: format!("{base}/{path}"),
            rel: "bookmark",
        },
    ]
}

/// [`link_pair`] as a JSON value, for the views built as values.
pub fn links(base: &str, project: &str, path: &str) -> Value {
    json!(link_pair(base, project, path))
}
