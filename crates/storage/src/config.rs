//! Where backups are stored, as configured.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;

/// One of the supported backends. `Debug` never shows a key or secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum StorageConfig {
    /// A directory on this machine.
    Fs { root: PathBuf },
    /// OpenStack Swift, logging in with tempauth (v1) credentials.
    Swift {
        auth_url: String,
        user: String,
        key: String,
        container: String,
        #[serde(default)]
        prefix: String,
    },
    /// S3 or an S3-compatible service (path style, SigV4). The bucket must exist.
    S3 {
        endpoint: String,
        bucket: String,
        region: String,
        access_key_id: String,
        secret_access_key: String,
        #[serde(default)]
        prefix: String,
    },
}

impl StorageConfig {
    /// Where objects go, without credentials: `fs:///dir`,
    /// `swift://container/prefix`, `s3://bucket/prefix`.
    pub fn describe(&self) -> String {
        let join = |scheme: &str, place: &str, prefix: &str| {
            let prefix = prefix.trim_matches('/');
            if prefix.is_empty() {
                format!("{scheme}://{place}")
            } else {
                format!("{scheme}://{place}/{prefix}")
            }
        };
        match self {
            StorageConfig::Fs { root } => format!("fs://{}", root.display()),
            StorageConfig::Swift {
                container, prefix, ..
            } => join("swift", container, prefix),
            StorageConfig::S3 { bucket, prefix, .. } => join("s3", bucket, prefix),
        }
    }
}

impl fmt::Debug for StorageConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageConfig::Fs { root } => f.debug_struct("Fs").field("root", root).finish(),
            StorageConfig::Swift {
                auth_url,
                user,
                container,
                prefix,
                ..
            } => f
                .debug_struct("Swift")
                .field("auth_url", auth_url)
                .field("user", user)
                .field("key", &"<redacted>")
                .field("container", container)
                .field("prefix", prefix)
                .finish(),
            StorageConfig::S3 {
                endpoint,
                bucket,
                region,
                access_key_id,
                prefix,
                ..
            } => f
                .debug_struct("S3")
                .field("endpoint", endpoint)
                .field("bucket", bucket)
                .field("region", region)
                .field("access_key_id", access_key_id)
                .field("secret_access_key", &"<redacted>")
                .field("prefix", prefix)
                .finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_secrets_and_describe_names_the_place() {
        let s: StorageConfig = serde_json::from_value(serde_json::json!({
            "kind": "swift", "auth_url": "http://h/auth/v1.0", "user": "u", "key": "swordfish",
            "container": "c", "prefix": "p/"
        }))
        .unwrap();
        assert!(!format!("{s:?}").contains("swordfish"));
        assert_eq!(s.describe(), "swift://c/p");
        let s3 = StorageConfig::S3 {
            endpoint: "http://h".into(),
            bucket: "b".into(),
            region: "r".into(),
            access_key_id: "a".into(),
            secret_access_key: "hunter2".into(),
            prefix: String::new(),
        };
        assert!(!format!("{s3:?}").contains("hunter2"));
        assert_eq!(s3.describe(), "s3://b");
        assert!(
            serde_json::from_value::<StorageConfig>(serde_json::json!({"kind": "tape"})).is_err()
        );
    }
}
