//! Adapters: the ports implemented with DynamoDB, SQS and reqwest.

pub mod aws_http;
pub mod dynamo;
pub mod http;
pub mod probe;
pub mod s3;
pub mod secrets;
pub mod sqs;
pub mod tls;

use crate::ports::PortError;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

/// Loads the AWS config once per cold start, with our HTTP client ([`aws_http`]).
/// `AWS_ENDPOINT_URL` (or the per-service `AWS_ENDPOINT_URL_SQS` / `_DYNAMODB`) points it
/// at the local emulator.
///
/// On Lambda the credentials and the region are in the environment: naming their
/// providers skips building the default chains, which construct an STS client (for web
/// identity) and an IMDS client at init that Lambda never uses. Elsewhere (a profile,
/// SSO) the default chains apply.
pub async fn aws_config() -> Result<aws_config::SdkConfig, tls::TrustRootsError> {
    use aws_config::environment::{
        EnvironmentVariableCredentialsProvider, EnvironmentVariableRegionProvider,
    };
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(aws_http::AwsHttpClient::new()?);
    if set("AWS_ACCESS_KEY_ID") && set("AWS_SECRET_ACCESS_KEY") {
        loader = loader.credentials_provider(EnvironmentVariableCredentialsProvider::new());
    }
    if set("AWS_REGION") || set("AWS_DEFAULT_REGION") {
        loader = loader.region(EnvironmentVariableRegionProvider::new());
    }
    Ok(loader.load().await)
}

const RETRYABLE_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "InternalServerError",
    "InternalFailure",
    "ServiceUnavailable",
    "TransactionConflictException",
    "RequestThrottled",
    "KMSThrottlingException",
];

/// Sorts an SDK failure into retryable (network, throttling, 5xx) or permanent, naming
/// the operation and keeping the SDK's error as the source.
pub(crate) fn classify<E>(op: &'static str, e: SdkError<E>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let err = match &e {
        SdkError::ServiceError(ctx) => {
            let code = ctx.err().code().unwrap_or("Unknown");
            let status = ctx.raw().status().as_u16();
            let detail = format!("{code} ({status}): {}", ctx.err().message().unwrap_or(""));
            if status >= 500 || RETRYABLE_CODES.contains(&code) {
                PortError::retryable(op, detail)
            } else {
                PortError::permanent(op, detail)
            }
        }
        SdkError::ConstructionFailure(_) => PortError::permanent(op, e.to_string()),
        _ => PortError::retryable(op, aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string()),
    };
    err.caused_by(e)
}
