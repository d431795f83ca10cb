//! Keystone v3 token validation: `GET /v3/auth/tokens` with Coffer's own
//! service token in `X-Auth-Token` and the user's in `X-Subject-Token`.
//! Answers are cached (by the token's hash, never the token) for a TTL or
//! until the token expires, whichever is first, since Keystone validates
//! only tens of tokens a second.

use super::{token_hash, Identity};
use crate::ApiError;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Where Keystone is and how Coffer logs in to it.
#[derive(Clone)]
pub struct KeystoneConfig {
    /// e.g. `http://127.0.0.1:5000/v3`.
    pub url: String,
    pub service_user: String,
    pub service_password: String,
    pub service_project: String,
    /// Domain of the service user and project.
    pub domain: String,
    pub cache_ttl: Duration,
    /// Roles that make a user an admin of Coffer.
    pub admin_roles: Vec<String>,
}

impl std::fmt::Debug for KeystoneConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeystoneConfig")
            .field("url", &self.url)
            .field("service_user", &self.service_user)
            .field("service_password", &"<redacted>")
            .finish_non_exhaustive()
    }
}

const MAX_CACHED: usize = 10_000;

pub struct Keystone {
    config: KeystoneConfig,
    http: reqwest::Client,
    /// Coffer's own token and when to stop using it.
    service: Mutex<Option<(String, Instant)>>,
    cache: Mutex<HashMap<String, (Identity, Instant)>>,
}

/// What Keystone said about a token.
enum Verdict {
    Valid(Identity, Instant),
    Invalid,
    /// Our service token was refused: log in again.
    ServiceRefused,
}

impl Keystone {
    pub fn new(config: KeystoneConfig) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(Self {
            config,
            http,
            service: Mutex::new(None),
            cache: Mutex::new(HashMap::new()),
        })
    }

    pub async fn validate(&self, token: &str) -> Result<Identity, ApiError> {
        let key = token_hash(token);
        if let Some((who, until)) = self.cache.lock().await.get(&key) {
            if Instant::now() < *until {
                return Ok(who.clone());
            }
        }
        let mut verdict = self.ask(token, false).await?;
        if let Verdict::ServiceRefused = verdict {
            verdict = self.ask(token, true).await?;
        }
        match verdict {
            Verdict::Valid(who, until) => {
                let mut cache = self.cache.lock().await;
                if cache.len() >= MAX_CACHED {
                    let now = Instant::now();
                    cache.retain(|_, (_, t)| *t > now);
                    if cache.len() >= MAX_CACHED {
                        cache.clear();
                    }
                }
                cache.insert(key, (who.clone(), until));
                Ok(who)
            }
            Verdict::Invalid | Verdict::ServiceRefused => Err(ApiError::Unauthorized(
                "the X-Auth-Token is not valid (Keystone does not know it or it expired)".into(),
            )),
        }
    }

    async fn ask(&self, token: &str, fresh_service_token: bool) -> Result<Verdict, ApiError> {
        let service = self.service_token(fresh_service_token).await?;
        let response = self
            .http
            .get(format!("{}/auth/tokens", self.config.url))
            .header("X-Auth-Token", service)
            .header("X-Subject-Token", token)
            .send()
            .await
            .map_err(unreachable_keystone)?;
        match response.status().as_u16() {
            200 => {
                let body: Value = response.json().await.map_err(unreachable_keystone)?;
                Ok(self.identity(&body["token"]))
            }
            401 | 403 if !fresh_service_token => Ok(Verdict::ServiceRefused),
            404 | 401 | 403 => Ok(Verdict::Invalid),
            other => Err(ApiError::Unavailable(format!(
                "the identity service answered {other} to a token validation"
            ))),
        }
    }

    fn identity(&self, token: &Value) -> Verdict {
        let Some(project) = token["project"]["id"].as_str() else {
            // An unscoped or domain-scoped token acts in no project.
            return Verdict::Invalid;
        };
        let roles: Vec<&str> = token["roles"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["name"].as_str())
            .collect();
        let is_admin = roles
            .iter()
            .any(|r| self.config.admin_roles.iter().any(|a| a == r));
        let until = Instant::now() + self.config.cache_ttl.min(time_left(token));
        let who = Identity {
            project: Some(project.to_string()),
            is_admin,
        };
        Verdict::Valid(who, until)
    }

    /// Coffer's own token, logging in when there is none (or `fresh`).
    async fn service_token(&self, fresh: bool) -> Result<String, ApiError> {
        let mut held = self.service.lock().await;
        if let (false, Some((token, until))) = (fresh, held.as_ref()) {
            if Instant::now() < *until {
                return Ok(token.clone());
            }
        }
        let c = &self.config;
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": c.service_user, "domain": {"name": c.domain}, "password": c.service_password}}},
            "scope": {"project": {"name": c.service_project, "domain": {"name": c.domain}}}}});
        let response = self
            .http
            .post(format!("{}/auth/tokens", c.url))
            .json(&body)
            .send()
            .await
            .map_err(unreachable_keystone)?;
        if response.status().as_u16() != 201 {
            tracing::error!(status = %response.status(), user = %c.service_user, "Keystone refused Coffer's service login");
            return Err(ApiError::Unavailable(
                "the identity service refused Coffer's own login; see the API log".into(),
            ));
        }
        let token = response
            .headers()
            .get("X-Subject-Token")
            .and_then(|v| v.to_str().ok())
            .map(String::from)
            .ok_or_else(|| ApiError::Unavailable("Keystone sent no token".into()))?;
        let body: Value = response.json().await.map_err(unreachable_keystone)?;
        // Renew a minute early.
        let left = time_left(&body["token"]).saturating_sub(Duration::from_secs(60));
        *held = Some((token.clone(), Instant::now() + left));
        Ok(token)
    }
}

/// How long until `expires_at` of a token body (zero when unknown or past).
fn time_left(token: &Value) -> Duration {
    token["expires_at"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .and_then(|t| {
            (t.with_timezone(&chrono::Utc) - chrono::Utc::now())
                .to_std()
                .ok()
        })
        .unwrap_or_default()
}

fn unreachable_keystone(e: reqwest::Error) -> ApiError {
    tracing::warn!("identity service: {e}");
    ApiError::Unavailable("the identity service (Keystone) cannot be reached; try again".into())
}
