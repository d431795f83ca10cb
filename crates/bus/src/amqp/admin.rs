//! The broker's user and permission management, over RabbitMQ's HTTP
//! management API (a few milliseconds a request; `rabbitmqctl` takes
//! seconds a call). The control plane makes one broker user per agent when
//! the instance is created and deletes it with the instance; deleting a
//! user closes its open connections.

use super::names::{agent_user, Peer};
use crate::BusError;
use coffer_model::InstanceId;
use serde_json::json;

/// Where the management API is and who may use it (an `administrator`).
#[derive(Clone)]
pub struct BrokerAdmin {
    base: String,
    user: String,
    password: String,
    vhost: String,
    http: reqwest::Client,
}

impl std::fmt::Debug for BrokerAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerAdmin")
            .field("base", &self.base)
            .field("user", &self.user)
            .field("vhost", &self.vhost)
            .finish_non_exhaustive()
    }
}

/// Percent-encodes one URL component (a vhost is often `/`; a password may
/// hold anything).
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl BrokerAdmin {
    /// `base` e.g. `http://127.0.0.1:15672`.
    pub fn new(base: &str, user: &str, password: &str, vhost: &str) -> Result<Self, BusError> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| BusError::Io(std::io::Error::other(e)))?;
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            user: user.to_string(),
            password: password.to_string(),
            vhost: vhost.to_string(),
            http,
        })
    }

    pub fn vhost(&self) -> &str {
        &self.vhost
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<reqwest::Response, BusError> {
        let url = format!("{}/api/{path}", self.base);
        let mut req = self
            .http
            .request(method.clone(), &url)
            .basic_auth(&self.user, Some(&self.password));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.map_err(|e| {
            BusError::Io(std::io::Error::other(format!(
                "broker management API {method} {path}: {e}"
            )))
        })?;
        let status = resp.status();
        if status.is_success() || (method == reqwest::Method::DELETE && status.as_u16() == 404) {
            return Ok(resp);
        }
        let text = resp.text().await.unwrap_or_default();
        let msg = format!("broker management API {method} {path}: {status} {text}");
        Err(if status.as_u16() == 401 || status.as_u16() == 403 {
            BusError::Refused(msg)
        } else {
            BusError::Io(std::io::Error::other(msg))
        })
    }

    async fn put(&self, path: &str, body: serde_json::Value) -> Result<(), BusError> {
        self.send(reqwest::Method::PUT, path, Some(body)).await?;
        Ok(())
    }

    async fn delete(&self, path: &str) -> Result<(), BusError> {
        self.send(reqwest::Method::DELETE, path, None).await?;
        Ok(())
    }

    /// Create the vhost (no-op when it exists).
    pub async fn ensure_vhost(&self) -> Result<(), BusError> {
        self.put(&format!("vhosts/{}", encode(&self.vhost)), json!({}))
            .await
    }

    /// Remove the vhost and everything in it.
    pub async fn delete_vhost(&self) -> Result<(), BusError> {
        self.delete(&format!("vhosts/{}", encode(&self.vhost)))
            .await
    }

    /// Create (or re-key) a user with full rights on the vhost: the
    /// control plane's own user.
    pub async fn ensure_control_user(&self, user: &str, password: &str) -> Result<(), BusError> {
        self.put(
            &format!("users/{}", encode(user)),
            json!({"password": password, "tags": ""}),
        )
        .await?;
        self.put(
            &format!("permissions/{}/{}", encode(&self.vhost), encode(user)),
            json!({"configure": ".*", "write": ".*", "read": ".*"}),
        )
        .await
    }

    /// Create the broker user of instance `id`'s agent with `password`,
    /// confined to its own queue and routing keys.
    pub async fn create_agent_user(&self, id: InstanceId, password: &str) -> Result<(), BusError> {
        self.create_peer_user(&Peer::Agent(id), password).await
    }

    /// Create (or re-key) the broker user of a confined peer with
    /// `password`: it may read only its own queue and publish only to the
    /// conductor exchange, with routing keys of its own prefix.
    pub async fn create_peer_user(&self, peer: &Peer, password: &str) -> Result<(), BusError> {
        let user = peer.user();
        let p = peer.permissions();
        self.put(
            &format!("users/{}", encode(&user)),
            json!({"password": password, "tags": ""}),
        )
        .await?;
        let vhost = encode(&self.vhost);
        self.put(
            &format!("permissions/{vhost}/{}", encode(&user)),
            json!({"configure": p.configure, "write": p.write, "read": p.read}),
        )
        .await?;
        self.put(
            &format!("topic-permissions/{vhost}/{}", encode(&user)),
            json!({"exchange": p.topic_exchange, "write": p.topic_write, "read": p.topic_read}),
        )
        .await
    }

    /// Delete the agent's user (its open connections are closed by the
    /// broker). Deleting a user that is gone is fine.
    pub async fn delete_agent_user(&self, id: InstanceId) -> Result<(), BusError> {
        self.delete_peer_user(&Peer::Agent(id)).await
    }

    /// Delete a confined peer's user; gone already is fine.
    pub async fn delete_peer_user(&self, peer: &Peer) -> Result<(), BusError> {
        self.delete(&format!("users/{}", encode(&peer.user())))
            .await
    }

    /// Whether the agent's user exists.
    pub async fn agent_user_exists(&self, id: InstanceId) -> Result<bool, BusError> {
        let url = format!("{}/api/users/{}", self.base, encode(&agent_user(id)));
        let resp = self
            .http
            .get(&url)
            .basic_auth(&self.user, Some(&self.password))
            .send()
            .await
            .map_err(|e| BusError::Io(std::io::Error::other(e)))?;
        Ok(resp.status().is_success())
    }

    /// Close every connection of the vhost whose user is `user` (for
    /// tests of reconnection, and to cut off a user at once).
    pub async fn close_connections_of(&self, user: &str) -> Result<usize, BusError> {
        let list: Vec<serde_json::Value> = self
            .send(
                reqwest::Method::GET,
                &format!("vhosts/{}/connections", encode(&self.vhost)),
                None,
            )
            .await?
            .json()
            .await
            .map_err(|e| BusError::Codec(e.to_string()))?;
        let mut closed = 0;
        for c in list.iter().filter(|c| c["user"] == user) {
            if let Some(name) = c["name"].as_str() {
                self.delete(&format!("connections/{}", encode(name)))
                    .await?;
                closed += 1;
            }
        }
        Ok(closed)
    }
}
