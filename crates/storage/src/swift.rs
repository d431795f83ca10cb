//! The OpenStack Swift backend.
//!
//! OpenDAL's Swift service takes a token and a storage URL but does not log
//! in, and it neither notices nor renews an expired token (it reports
//! PermissionDenied). So this file logs in (tempauth v1: `GET auth_url`
//! with `X-Storage-User` / `X-Storage-Pass`), and OpenDAL's requests go
//! through [`SwiftTransport`], which puts the current token on each one and,
//! on a 401, logs in again and resends the request once. (It does not
//! renew ahead of `X-Auth-Token-Expires`: tempauth hands out the same token
//! until it has expired, so there is nothing to renew before.) Renewing inside
//! the transport rather than by rebuilding the operator after a failed
//! call is what lets an upload that outlives its token finish: its parts
//! are sent from OpenDAL's own tasks, where no caller could retry them.
//!
//! OpenDAL stores a large object as a static large object (SLO): segments
//! under `.segments/` in the same container, then a manifest under the key.
//! Deleting the manifest alone would leave the segments, so [`Swift::delete`]
//! asks Swift to delete both (`?multipart-manifest=delete`).

use crate::http::{transport, with_transport};
use crate::StorageError;
use opendal::raw::percent_encode_path;
use opendal::{Buffer, HttpBody, HttpTransport, HttpTransporter, Operator};
use std::sync::{Arc, RwLock};

/// Where OpenDAL keeps the segments of large objects, at the container root.
pub(crate) const SEGMENTS: &str = ".segments/";

/// A login to Swift that can be renewed; shared by every clone of a Storage.
pub(crate) struct Session {
    http: crate::http::Client,
    auth_url: String,
    user: String,
    key: String,
    current: RwLock<Login>,
    /// One login at a time: concurrent 401s renew the token once.
    renewing: tokio::sync::Mutex<()>,
}

#[derive(Clone)]
struct Login {
    token: String,
    storage_url: String,
}

impl Session {
    /// Log in once; fails as `Denied` for refused credentials and as
    /// `Unavailable` when the auth service is down.
    pub(crate) async fn open(
        http: crate::http::Client,
        auth_url: &str,
        user: &str,
        key: &str,
    ) -> Result<Arc<Session>, StorageError> {
        let login = login(&http, auth_url, user, key).await?;
        Ok(Arc::new(Session {
            http,
            auth_url: auth_url.to_string(),
            user: user.to_string(),
            key: key.to_string(),
            current: RwLock::new(login),
            renewing: tokio::sync::Mutex::new(()),
        }))
    }

    fn current(&self) -> Login {
        // A poisoned lock only means a panic elsewhere while swapping two
        // strings: the value is whole either way.
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn storage_url(&self) -> String {
        self.current().storage_url
    }

    /// Log in again unless another request already replaced `stale`.
    async fn renew(&self, stale: &str) -> Result<String, StorageError> {
        let _one = self.renewing.lock().await;
        let now = self.current();
        if now.token != stale {
            return Ok(now.token);
        }
        tracing::info!(user = %self.user, "Swift token refused or expiring: logging in again");
        let fresh = login(&self.http, &self.auth_url, &self.user, &self.key).await?;
        let token = fresh.token.clone();
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(token)
    }
}

async fn login(
    http: &crate::http::Client,
    auth_url: &str,
    user: &str,
    key: &str,
) -> Result<Login, StorageError> {
    let resp = http
        .get(auth_url)
        .header("X-Storage-User", user)
        .header("X-Storage-Pass", key)
        .send()
        .await
        .map_err(|e| match crate::http::error(e) {
            StorageError::Unavailable(m) => {
                StorageError::Unavailable(format!("Swift login at {auth_url}: {m}"))
            }
            other => other,
        })?;
    let status = resp.status();
    if status == http::StatusCode::UNAUTHORIZED || status == http::StatusCode::FORBIDDEN {
        return Err(StorageError::Denied(format!(
            "Swift refused the login of {user} at {auth_url} ({status})"
        )));
    }
    if status.is_server_error() {
        return Err(StorageError::Unavailable(format!(
            "Swift login at {auth_url} answered {status}"
        )));
    }
    if !status.is_success() {
        return Err(StorageError::Config(format!(
            "Swift login at {auth_url} answered {status}: is it a tempauth (v1) URL?"
        )));
    }
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let missing = |name: &str| StorageError::Config(format!("Swift login gave no {name}"));
    let token = header("X-Auth-Token").ok_or_else(|| missing("X-Auth-Token"))?;
    let storage_url = header("X-Storage-Url").ok_or_else(|| missing("X-Storage-Url"))?;
    Ok(Login {
        token,
        storage_url: storage_url.trim_end_matches('/').to_string(),
    })
}

/// Puts the session's current token on each request; renews it and resends
/// once when Swift answers 401.
pub(crate) struct SwiftTransport {
    session: Arc<Session>,
    inner: HttpTransporter,
}

impl SwiftTransport {
    fn request(
        parts: &http::request::Parts,
        body: &Buffer,
        token: &str,
    ) -> opendal::Result<http::Request<Buffer>> {
        let mut value = http::HeaderValue::from_str(token).map_err(|e| {
            opendal::Error::new(
                opendal::ErrorKind::Unexpected,
                "Swift token is not a header",
            )
            .set_source(e)
        })?;
        value.set_sensitive(true);
        let mut parts = parts.clone();
        parts.headers.insert("x-auth-token", value);
        Ok(http::Request::from_parts(parts, body.clone()))
    }
}

impl HttpTransport for SwiftTransport {
    async fn fetch(&self, req: http::Request<Buffer>) -> opendal::Result<http::Response<HttpBody>> {
        let (parts, body) = req.into_parts();
        let token = self.session.current().token;
        let resp = self
            .inner
            .fetch(Self::request(&parts, &body, &token)?)
            .await?;
        if resp.status() != http::StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        drop(resp);
        let token = self
            .session
            .renew(&token)
            .await
            .map_err(StorageError::into_dal)?;
        self.inner
            .fetch(Self::request(&parts, &body, &token)?)
            .await
    }
}

/// The Swift side of a connected Storage.
pub(crate) struct Swift {
    session: Arc<Session>,
    /// Authenticated requests of our own (container, large-object delete).
    transport: HttpTransporter,
    container: String,
    /// The configured prefix, without slashes at either end.
    prefix: String,
}

/// Log in, create the container if it is missing, and build the operator.
pub(crate) async fn connect(
    auth_url: &str,
    user: &str,
    key: &str,
    container: &str,
    prefix: &str,
) -> Result<(Operator, Swift), StorageError> {
    if container.is_empty() || container.contains('/') {
        return Err(StorageError::Config(format!(
            "Swift container {container:?} must be a non-empty name without '/'"
        )));
    }
    let http = crate::http::client()?;
    let session = Session::open(http.clone(), auth_url, user, key).await?;
    let transport = HttpTransporter::new(SwiftTransport {
        session: session.clone(),
        inner: transport(http),
    });
    let swift = Swift {
        session: session.clone(),
        transport: transport.clone(),
        container: container.to_string(),
        prefix: prefix.trim_matches('/').to_string(),
    };
    swift.create_container().await?;
    let builder = opendal::services::Swift::default()
        .endpoint(&session.storage_url())
        .container(container)
        .root(&format!("/{}", swift.prefix))
        .token(&session.current().token);
    let op = Operator::new(builder)
        .map_err(|e| StorageError::Config(e.to_string()))?
        .layer(crate::http::retry());
    Ok((with_transport(&op, transport), swift))
}

impl Swift {
    fn url(&self, key: Option<&str>) -> String {
        let base = format!("{}/{}", self.session.storage_url(), self.container);
        match key {
            None => base,
            Some(key) => {
                let path = if self.prefix.is_empty() {
                    key.to_string()
                } else {
                    format!("{}/{key}", self.prefix)
                };
                format!("{base}/{}", percent_encode_path(&path))
            }
        }
    }

    async fn send(
        &self,
        method: http::Method,
        url: &str,
        accept_json: bool,
    ) -> Result<http::Response<Buffer>, StorageError> {
        let mut req = http::Request::builder()
            .method(method)
            .uri(url)
            // Replaced by the current token in SwiftTransport.
            .header("x-auth-token", "")
            .header("content-length", "0");
        if accept_json {
            req = req.header("accept", "application/json");
        }
        let req = req
            .body(Buffer::new())
            .map_err(|e| StorageError::Config(format!("{url}: {e}")))?;
        self.transport
            .send(req)
            .await
            .map_err(|e| StorageError::from_dal(&e, url))
    }

    /// PUT the container: 201 if created, 202 if it was there.
    async fn create_container(&self) -> Result<(), StorageError> {
        let url = self.url(None);
        let resp = self.send(http::Method::PUT, &url, false).await?;
        let s = resp.status();
        if s.is_success() {
            return Ok(());
        }
        let what = format!("creating container {}: {s}", self.container);
        Err(match s.as_u16() {
            401 | 403 => StorageError::Denied(what),
            413 | 507 => StorageError::Full(what),
            500..=599 => StorageError::Unavailable(what),
            _ => StorageError::Config(what),
        })
    }

    /// Delete `key` and, if it is a large object, its segments. Absent is fine.
    pub(crate) async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let url = self.url(Some(key));
        let head = self.send(http::Method::HEAD, &url, false).await?;
        let large = match head.status().as_u16() {
            404 => return Ok(()),
            200..=299 => head
                .headers()
                .get("x-static-large-object")
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true")),
            _ => return Err(status_error(head.status(), key)),
        };
        if !large {
            let resp = self.send(http::Method::DELETE, &url, false).await?;
            return match resp.status().as_u16() {
                200..=299 | 404 => Ok(()),
                _ => Err(status_error(resp.status(), key)),
            };
        }
        let resp = self
            .send(
                http::Method::DELETE,
                &format!("{url}?multipart-manifest=delete"),
                true,
            )
            .await?;
        if !resp.status().is_success() {
            return Err(status_error(resp.status(), key));
        }
        // The bulk-delete summary: 200 overall, with its own status inside.
        let summary: serde_json::Value =
            serde_json::from_slice(&resp.into_body().to_bytes()).unwrap_or_default();
        let inner = summary["Response Status"].as_str().unwrap_or("200 OK");
        let errors = summary["Errors"].as_array().map_or(0, Vec::len);
        if (inner.starts_with("200") || inner.starts_with("404")) && errors == 0 {
            Ok(())
        } else {
            let text = format!("deleting large object {key}: {inner}, {summary}");
            Err(if inner.starts_with('5') {
                StorageError::Unavailable(text)
            } else {
                StorageError::Other(text)
            })
        }
    }
}

fn status_error(status: http::StatusCode, key: &str) -> StorageError {
    let text = format!("{key}: Swift answered {status}");
    match status.as_u16() {
        401 | 403 => StorageError::Denied(text),
        404 => StorageError::NotFound(key.to_string()),
        413 | 507 => StorageError::Full(text),
        500..=599 => StorageError::Unavailable(text),
        _ => StorageError::Other(text),
    }
}
