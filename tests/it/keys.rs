//! API keys from Secrets Manager, as the cloud stack keeps them.

use crate::calls;
use hookline::adapters::secrets;
use hookline::auth::Scope;
use hookline::config::{Env, KeySource, key_source};

async fn secret(client: &aws_sdk_secretsmanager::Client, logical_id: &str, value: &str) -> String {
    let name = format!("it-{}-{logical_id}", uuid::Uuid::now_v7().simple());
    client
        .create_secret()
        .name(&name)
        .secret_string(value)
        .send()
        .await
        .expect("secret created");
    name
}

#[tokio::test]
async fn keys_are_read_from_two_secrets_once_configured() {
    let cfg = hookline::adapters::aws_config().await.expect("trusted roots");
    let client = aws_sdk_secretsmanager::Client::new(&cfg);
    let ingest = secret(&client, "IngestKeySecret", "ingest-key-0123456789abcdef").await;
    let admin = secret(&client, "AdminKeySecret", "admin-key-0123456789abcdef").await;

    let mut env = Env::from_map(
        [
            ("HOOKLINE_INGEST_KEY_SECRET", ingest.as_str()),
            ("HOOKLINE_ADMIN_KEY_SECRET", admin.as_str()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect(),
    );
    let source = key_source(&mut env);
    assert!(matches!(source, KeySource::SecretsManager { .. }));
    // Both HTTP functions read the keys at their cold start, with their own roles.
    for function in ["ingest", "admin"] {
        let keys = secrets::resolve(source.clone(), || calls::secrets_for(&cfg, function))
            .await
            .expect("keys read");
        assert_eq!(keys.scope_of("ingest-key-0123456789abcdef"), Some(Scope::Ingest));
        assert_eq!(keys.scope_of("admin-key-0123456789abcdef"), Some(Scope::Admin));
    }

    let short = secret(&client, "ShortKeySecret", "short").await;
    let err = secrets::api_keys(&client, &short, &admin).await.unwrap_err();
    assert!(err.to_string().contains("at least 16"), "{err}");
}

#[test]
fn one_secret_without_the_other_is_a_configuration_error() {
    let mut env = Env::from_map([("HOOKLINE_INGEST_KEY_SECRET".to_owned(), "x".to_owned())].into());
    let _ = key_source(&mut env);
    assert!(env.finish().unwrap_err().to_string().contains("go together"));
}
