//! Who is asking: every request under `/v1.0/{project_id}` carries an
//! `X-Auth-Token`, checked by the configured mode — `noauth` (development
//! only: everyone is an admin of every project), built-in `tokens` (hashed
//! in the metadata store, made by `coffer token create`) or `keystone`
//! (validated against Keystone v3, cached). A token acts in its own
//! project only (403 for another project's URL) unless it is an admin's;
//! `/mgmt/` routes are for admins only.

mod keystone;

pub use keystone::{Keystone, KeystoneConfig};

use crate::{ApiError, ApiState};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};

/// How requests are authenticated.
pub enum Auth {
    NoAuth,
    Tokens,
    Keystone(Box<Keystone>),
}

/// What a valid token says about its bearer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The project the token is scoped to (`None`: a cloud-admin token).
    pub project: Option<String>,
    pub is_admin: bool,
}

/// Lower-case hex SHA-256 of a token: what the store and caches keep.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Auth {
    pub fn name(&self) -> &'static str {
        match self {
            Auth::NoAuth => "noauth",
            Auth::Tokens => "tokens",
            Auth::Keystone(_) => "keystone",
        }
    }

    async fn identify(
        &self,
        s: &ApiState,
        token: Option<&str>,
        url_project: &str,
    ) -> Result<Identity, ApiError> {
        if let Auth::NoAuth = self {
            return Ok(Identity {
                project: Some(url_project.to_string()),
                is_admin: true,
            });
        }
        let token = token
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| ApiError::Unauthorized("this request needs an X-Auth-Token".into()))?;
        match self {
            Auth::NoAuth => unreachable!("handled above"),
            Auth::Tokens => match s.store.find_token(&token_hash(token)).await? {
                Some(t) => Ok(Identity {
                    project: t.project_id.map(|p| p.0),
                    is_admin: t.is_admin,
                }),
                None => Err(ApiError::Unauthorized(
                    "the X-Auth-Token is not valid".into(),
                )),
            },
            Auth::Keystone(k) => k.validate(token).await,
        }
    }
}

/// `/v1.0/{project}/rest` → `(project, rest)`.
fn split_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/v1.0/")?;
    Some(match rest.split_once('/') {
        Some((project, rest)) => (project, rest),
        None => (rest, ""),
    })
}

/// The middleware: authenticate, then check the project and admin rules.
pub async fn require(
    State(s): State<ApiState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let Some((project, rest)) = split_path(req.uri().path()) else {
        // The version document and the OpenAPI file are public.
        return Ok(next.run(req).await);
    };
    let token = req
        .headers()
        .get("x-auth-token")
        .and_then(|v| v.to_str().ok());
    let who = s.auth.identify(&s, token, project).await?;
    if !who.is_admin && who.project.as_deref() != Some(project) {
        return Err(ApiError::Forbidden(format!(
            "this token is for project {}, not {project}",
            who.project.as_deref().unwrap_or("(none)")
        )));
    }
    if (rest == "mgmt" || rest.starts_with("mgmt/")) && !who.is_admin {
        return Err(ApiError::Forbidden("this is an admin-only resource".into()));
    }
    Ok(next.run(req).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_project_and_rest() {
        assert_eq!(
            split_path("/v1.0/p1/instances/x"),
            Some(("p1", "instances/x"))
        );
        assert_eq!(split_path("/v1.0/p1"), Some(("p1", "")));
        assert_eq!(
            split_path("/v1.0/p1/mgmt/flavors"),
            Some(("p1", "mgmt/flavors"))
        );
        assert_eq!(split_path("/"), None);
        assert_eq!(split_path("/openapi.json"), None);
    }

    #[test]
    fn hashes_are_hex_sha256() {
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
