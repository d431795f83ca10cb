//! The S3 backend (path style, SigV4, no credentials from the environment
//! or instance metadata: only what is configured).
//!
//! OpenDAL creates no buckets, and neither does Coffer: on real S3 a bucket
//! carries policy (region, ownership, encryption, lifecycle) that belongs
//! to whoever operates it. `connect` checks that the bucket exists and says
//! so clearly if not. (On Swift's S3 API a bucket is a container, which the
//! Swift backend creates.)

use crate::http::{client, transport, with_transport};
use crate::StorageError;
use opendal::Operator;

pub(crate) async fn connect(
    endpoint: &str,
    bucket: &str,
    region: &str,
    access_key_id: &str,
    secret_access_key: &str,
    prefix: &str,
) -> Result<Operator, StorageError> {
    let builder = opendal::services::S3::default()
        .endpoint(endpoint)
        .bucket(bucket)
        .region(region)
        .access_key_id(access_key_id)
        .secret_access_key(secret_access_key)
        .root(&format!("/{}", prefix.trim_matches('/')))
        .disable_config_load()
        .disable_ec2_metadata();
    let op = Operator::new(builder)
        .map_err(|e| StorageError::Config(e.to_string()))?
        .layer(crate::http::retry());
    let op = with_transport(&op, transport(client()?));
    // One cheap request proves the endpoint, the credentials and the bucket.
    if let Err(e) = op.list_with("").limit(1).await {
        let missing =
            e.kind() == opendal::ErrorKind::NotFound || format!("{e:#}").contains("NoSuchBucket");
        if missing {
            return Err(StorageError::Config(format!(
                "bucket {bucket} does not exist at {endpoint}; create it first"
            )));
        }
        return Err(StorageError::from_dal(&e, bucket));
    }
    Ok(op)
}
