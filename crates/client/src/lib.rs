#![forbid(unsafe_code)]
//! A small HTTP client for Coffer's API, used by the CLI and the tests.
//! Responses are returned as JSON values in Trove's wire shapes; errors
//! carry the server's status and message.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ClientError {
    /// The server answered with an error body.
    #[error("{message} (HTTP {status})")]
    Api {
        status: u16,
        kind: String,
        message: String,
    },
    #[error("cannot reach Coffer at {endpoint}: {source}")]
    Connect {
        endpoint: String,
        source: reqwest::Error,
    },
    #[error("unexpected answer from Coffer: {0}")]
    Protocol(String),
    #[error("no instance named or with id {0:?}")]
    NoSuchInstance(String),
    #[error("no backup named or with id {0:?}")]
    NoSuchBackup(String),
    #[error("no configuration group named or with id {0:?}")]
    NoSuchConfiguration(String),
    #[error("more than one resource is named {0:?}; use its id")]
    Ambiguous(String),
}

impl ClientError {
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// One API endpoint and project.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    endpoint: String,
    project: String,
    token: String,
}

impl Client {
    /// `endpoint` like `http://127.0.0.1:8779`.
    pub fn new(endpoint: &str, project: &str, token: &str) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("a plain HTTP client always builds");
        Self {
            http,
            endpoint: endpoint.trim_end_matches('/').to_string(),
            project: project.to_string(),
            token: token.to_string(),
        }
    }

    /// Send a request to `path` under `/v1.0/{project}` (or the root if
    /// `path` starts with `//`) and decode the JSON answer (`null` for an
    /// empty body).
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        let url = match path.strip_prefix("//") {
            Some(root) => format!("{}/{root}", self.endpoint),
            None => format!("{}/v1.0/{}{path}", self.endpoint, self.project),
        };
        let mut req = self
            .http
            .request(method, &url)
            .header("X-Auth-Token", &self.token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|source| ClientError::Connect {
            endpoint: self.endpoint.clone(),
            source,
        })?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let value: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .map_err(|e| ClientError::Protocol(format!("{e}: {text}")))?
        };
        if status.is_success() {
            return Ok(value);
        }
        Err(api_error(status, &value))
    }

    pub async fn get(&self, path: &str) -> Result<Value, ClientError> {
        self.request(Method::GET, path, None).await
    }

    pub async fn list_flavors(&self) -> Result<Vec<Value>, ClientError> {
        items(self.get("/flavors").await?, "flavors")
    }

    pub async fn list_datastores(&self) -> Result<Vec<Value>, ClientError> {
        items(self.get("/datastores").await?, "datastores")
    }

    /// Every instance, following `next` links.
    pub async fn list_instances(&self) -> Result<Vec<Value>, ClientError> {
        self.list_all("/instances", "?limit=1000", "instances")
            .await
    }

    /// Every item of the list at `path` (answered under `key`), starting
    /// with `query` and following `next` links.
    async fn list_all(
        &self,
        path: &str,
        query: &str,
        key: &str,
    ) -> Result<Vec<Value>, ClientError> {
        let mut all = Vec::new();
        let mut next = Some(format!("{path}{query}"));
        while let Some(url) = next {
            let page = self.get(&url).await?;
            next = page["links"]
                .as_array()
                .and_then(|l| l.iter().find(|x| x["rel"] == "next"))
                .and_then(|l| l["href"].as_str())
                .and_then(|h| h.split_once(path).map(|(_, q)| format!("{path}{q}")));
            all.extend(items(page, key)?);
        }
        Ok(all)
    }

    pub async fn show_instance(&self, id: &str) -> Result<Value, ClientError> {
        Ok(self.get(&format!("/instances/{id}")).await?["instance"].clone())
    }

    /// Resolve a name or id to an instance id, as troveclient does: try it
    /// as an id, and on a 404 look it up by name.
    pub async fn resolve_instance(&self, name_or_id: &str) -> Result<String, ClientError> {
        match self.show_instance(name_or_id).await {
            Ok(i) => return Ok(i["id"].as_str().unwrap_or(name_or_id).to_string()),
            Err(e) if e.status() == Some(404) => {}
            Err(e) => return Err(e),
        }
        let matches: Vec<String> = self
            .list_instances()
            .await?
            .into_iter()
            .filter(|i| i["name"] == name_or_id)
            .filter_map(|i| i["id"].as_str().map(String::from))
            .collect();
        match matches.len() {
            0 => Err(ClientError::NoSuchInstance(name_or_id.to_string())),
            1 => Ok(matches[0].clone()),
            _ => Err(ClientError::Ambiguous(name_or_id.to_string())),
        }
    }

    pub async fn create_instance(&self, body: &Value) -> Result<Value, ClientError> {
        Ok(self.request(Method::POST, "/instances", Some(body)).await?["instance"].clone())
    }

    pub async fn delete_instance(&self, id: &str) -> Result<(), ClientError> {
        self.request(Method::DELETE, &format!("/instances/{id}"), None)
            .await
            .map(drop)
    }

    pub async fn create_backup(&self, body: &Value) -> Result<Value, ClientError> {
        Ok(self.request(Method::POST, "/backups", Some(body)).await?["backup"].clone())
    }

    /// Backups of the project (of one instance if given), following `next` links.
    pub async fn list_backups(&self, instance: Option<&str>) -> Result<Vec<Value>, ClientError> {
        let query = match instance {
            Some(i) => format!("?limit=1000&instance_id={i}"),
            None => "?limit=1000".to_string(),
        };
        self.list_all("/backups", &query, "backups").await
    }

    pub async fn show_backup(&self, id: &str) -> Result<Value, ClientError> {
        Ok(self.get(&format!("/backups/{id}")).await?["backup"].clone())
    }

    pub async fn delete_backup(&self, id: &str) -> Result<(), ClientError> {
        self.request(Method::DELETE, &format!("/backups/{id}"), None)
            .await
            .map(drop)
    }

    /// A backup id from a name or an id (a name must be unique).
    pub async fn resolve_backup(&self, name_or_id: &str) -> Result<String, ClientError> {
        match self.show_backup(name_or_id).await {
            Ok(b) => return Ok(b["id"].as_str().unwrap_or(name_or_id).to_string()),
            Err(e) if e.status() == Some(404) => {}
            Err(e) => return Err(e),
        }
        let matches: Vec<String> = self
            .list_backups(None)
            .await?
            .into_iter()
            .filter(|b| b["name"] == name_or_id)
            .filter_map(|b| b["id"].as_str().map(String::from))
            .collect();
        match matches.len() {
            0 => Err(ClientError::NoSuchBackup(name_or_id.to_string())),
            1 => Ok(matches[0].clone()),
            _ => Err(ClientError::Ambiguous(name_or_id.to_string())),
        }
    }

    pub async fn create_configuration(&self, body: &Value) -> Result<Value, ClientError> {
        let created = self
            .request(Method::POST, "/configurations", Some(body))
            .await?;
        Ok(created["configuration"].clone())
    }

    /// Configuration groups of the project, following `next` links.
    pub async fn list_configurations(&self) -> Result<Vec<Value>, ClientError> {
        self.list_all("/configurations", "?limit=1000", "configurations")
            .await
    }

    pub async fn show_configuration(&self, id: &str) -> Result<Value, ClientError> {
        Ok(self.get(&format!("/configurations/{id}")).await?["configuration"].clone())
    }

    /// A configuration group id from a name or an id (a name must be unique).
    pub async fn resolve_configuration(&self, name_or_id: &str) -> Result<String, ClientError> {
        match self.show_configuration(name_or_id).await {
            Ok(g) => return Ok(g["id"].as_str().unwrap_or(name_or_id).to_string()),
            Err(e) if e.status() == Some(404) => {}
            Err(e) => return Err(e),
        }
        let matches: Vec<String> = self
            .list_configurations()
            .await?
            .into_iter()
            .filter(|g| g["name"] == name_or_id)
            .filter_map(|g| g["id"].as_str().map(String::from))
            .collect();
        match matches.len() {
            0 => Err(ClientError::NoSuchConfiguration(name_or_id.to_string())),
            1 => Ok(matches[0].clone()),
            _ => Err(ClientError::Ambiguous(name_or_id.to_string())),
        }
    }

    /// Attach configuration group `configuration` to instance `id`, or
    /// detach its group (`None`).
    pub async fn set_instance_configuration(
        &self,
        id: &str,
        configuration: Option<&str>,
    ) -> Result<(), ClientError> {
        let body = json!({"instance": {"configuration": configuration}});
        self.request(Method::PATCH, &format!("/instances/{id}"), Some(&body))
            .await
            .map(drop)
    }

    /// Post an action body such as `{"resize": {"flavorRef": "2"}}`.
    pub async fn instance_action_body(&self, id: &str, body: &Value) -> Result<(), ClientError> {
        self.request(Method::POST, &format!("/instances/{id}/action"), Some(body))
            .await
            .map(drop)
    }

    pub async fn instance_action(&self, id: &str, action: &str) -> Result<(), ClientError> {
        let body = json!({ action: {} });
        self.request(
            Method::POST,
            &format!("/instances/{id}/action"),
            Some(&body),
        )
        .await
        .map(drop)
    }
}

fn items(mut v: Value, key: &str) -> Result<Vec<Value>, ClientError> {
    match v.get_mut(key).map(Value::take) {
        Some(Value::Array(a)) => Ok(a),
        _ => Err(ClientError::Protocol(format!(
            "no {key:?} list in the answer"
        ))),
    }
}

/// Read Trove's error body: `{"<kind>": {"code": N, "message": "..."}}`.
fn api_error(status: StatusCode, body: &Value) -> ClientError {
    let (kind, message) = body
        .as_object()
        .and_then(|o| o.iter().next())
        .map(|(k, v)| (k.clone(), v["message"].as_str().unwrap_or("").to_string()))
        .unwrap_or_else(|| (String::new(), body.to_string()));
    ClientError::Api {
        status: status.as_u16(),
        kind,
        message,
    }
}
