//! Checked-in event data (`crate::claim_check`) in an S3 bucket.

use super::classify;
use crate::ports::{DataStore, PortError, PortResult};
use async_trait::async_trait;
pub use aws_sdk_s3::Client;
use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct S3Data {
    client: Client,
    bucket: String,
}

impl S3Data {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }

    /// The client for `aws`: checksums only where S3 requires them (a PutObject with a
    /// trailing checksum streams its body, which our HTTP client does not send), and
    /// the bucket in the path when an endpoint URL is set (a local emulator has no
    /// per-bucket host names).
    pub fn client(aws: &aws_config::SdkConfig) -> Client {
        Client::from_conf(Self::config(aws).build())
    }

    /// The configuration [`S3Data::client`] is built from.
    pub fn config(aws: &aws_config::SdkConfig) -> aws_sdk_s3::config::Builder {
        let emulated = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|v| !v.is_empty()));
        aws_sdk_s3::config::Builder::from(aws)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .force_path_style(emulated)
    }
}

#[async_trait]
impl DataStore for S3Data {
    async fn put_data(&self, key: &str, data: Vec<u8>) -> PortResult<()> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/json")
            .body(ByteStream::from(data))
            .send()
            .await
            .map_err(|e| classify("PutObject", e))?;
        Ok(())
    }

    async fn get_data(&self, key: &str) -> PortResult<Option<Vec<u8>>> {
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(classify("GetObject", e)),
        };
        let body = out
            .body
            .collect()
            .await
            .map_err(|e| PortError::retryable("GetObject", "the body could not be read").caused_by(e))?;
        Ok(Some(body.to_vec()))
    }

    async fn data_url(&self, key: &str, lifetime: Duration) -> PortResult<String> {
        let config = PresigningConfig::expires_in(lifetime)
            .map_err(|e| PortError::permanent("presign GetObject", e.to_string()).caused_by(e))?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(|e| classify("presign GetObject", e))?;
        Ok(request.uri().to_owned())
    }
}
