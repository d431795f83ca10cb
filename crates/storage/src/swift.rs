//! The OpenStack Swift backend. OpenDAL's Swift service takes a token and
//! a storage URL but does not log in, so this file does: tempauth v1
//! (`GET auth_url` with `X-Storage-User` / `X-Storage-Pass`), then the
//! container is created if missing. Tokens last a day by default; a
//! `Storage` is connected per operation.

use crate::StorageError;
use opendal::Operator;

pub(crate) async fn operator(
    auth_url: &str,
    user: &str,
    key: &str,
    container: &str,
    prefix: &str,
) -> Result<Operator, StorageError> {
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(StorageError::from_http)?;
    let resp = http
        .get(auth_url)
        .header("X-Storage-User", user)
        .header("X-Storage-Pass", key)
        .send()
        .await
        .map_err(StorageError::from_http)?;
    let status = resp.status();
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        return Err(StorageError::Denied(format!(
            "Swift refused the login of {user} ({status})"
        )));
    }
    if !status.is_success() {
        return Err(StorageError::Unavailable(format!(
            "Swift login answered {status}"
        )));
    }
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| StorageError::Unavailable(format!("Swift login gave no {name}")))
    };
    let token = header("X-Auth-Token")?;
    let storage_url = header("X-Storage-Url")?;
    let resp = http
        .put(format!("{}/{container}", storage_url.trim_end_matches('/')))
        .header("X-Auth-Token", &token)
        .send()
        .await
        .map_err(StorageError::from_http)?;
    if !resp.status().is_success() {
        let s = resp.status();
        return Err(match s.as_u16() {
            401 | 403 => StorageError::Denied(format!("creating container {container}: {s}")),
            500..=599 => StorageError::Unavailable(format!("creating container {container}: {s}")),
            _ => StorageError::Config(format!("creating container {container}: {s}")),
        });
    }
    let builder = opendal::services::Swift::default()
        .endpoint(&storage_url)
        .container(container)
        .root(&format!("/{}", prefix.trim_matches('/')))
        .token(&token);
    Ok(Operator::new(builder)
        .map_err(|e| StorageError::Config(e.to_string()))?
        .layer(opendal::layers::RetryLayer::new().with_max_times(3)))
}
