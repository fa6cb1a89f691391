//! API keys from AWS Secrets Manager, read once per cold start.

use super::classify;
use crate::auth::ApiKeys;
use crate::ports::{PortError, PortResult};
pub use aws_sdk_secretsmanager::Client;

async fn read(client: &Client, id: &str) -> PortResult<String> {
    let out = client
        .get_secret_value()
        .secret_id(id)
        .send()
        .await
        .map_err(|e| classify("GetSecretValue", e))?;
    let key = out.secret_string().unwrap_or_default().trim().to_owned();
    if key.len() < 16 {
        return Err(PortError::permanent(
            "GetSecretValue",
            format!("the secret {id} must hold a key of at least 16 characters"),
        ));
    }
    Ok(key)
}

/// The ingest and admin keys from their two secrets.
pub async fn api_keys(client: &Client, ingest_secret: &str, admin_secret: &str) -> PortResult<ApiKeys> {
    let (ingest, admin) = tokio::try_join!(read(client, ingest_secret), read(client, admin_secret))?;
    if ingest == admin {
        return Err(PortError::permanent(
            "GetSecretValue",
            "the ingest and admin keys must differ",
        ));
    }
    Ok(ApiKeys::new(ingest, admin))
}

/// The keys, wherever the configuration says they are (the client is made only when
/// they are in Secrets Manager).
pub async fn resolve(
    source: crate::config::KeySource,
    client: impl FnOnce() -> Client,
) -> PortResult<ApiKeys> {
    match source {
        crate::config::KeySource::Env(keys) => Ok(keys),
        crate::config::KeySource::SecretsManager { ingest, admin } => {
            api_keys(&client(), &ingest, &admin).await
        }
    }
}
