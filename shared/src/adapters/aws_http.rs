//! The AWS SDK's HTTP client, on reqwest: the same HTTP stack and the same trusted roots
//! ([`super::tls`]) as the webhook sender, built without reading the system certificate
//! store. (The SDK's default client loads and parses that store at client construction,
//! which was most of a cold start.) HTTP/1.1 only, as the SDK's own client speaks to AWS.
//!
//! Failures are classified as the SDK's hyper client classifies them, because its retry
//! policy reads the kind: a timeout is a timeout, a request the client could not build is
//! the caller's, and everything on the wire (connect, reset, a body cut short) is I/O,
//! which the SDK retries.

use super::tls::{TrustRootsError, trust_roots};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Idle connections to AWS are kept this long (the SDK's own client keeps them 90 s).
const POOL_IDLE: Duration = Duration::from_secs(90);

type Timeouts = (Option<Duration>, Option<Duration>);

/// One connector (one reqwest client, one pool) per distinct pair of timeouts the SDK
/// asks for; in practice one per process.
#[derive(Debug, Clone)]
pub struct AwsHttpClient {
    connectors: Arc<Mutex<HashMap<Timeouts, SharedHttpConnector>>>,
}

impl AwsHttpClient {
    /// Fails only when `SSL_CERT_FILE` names a file that holds no certificate.
    pub fn new() -> Result<Self, TrustRootsError> {
        trust_roots()?;
        Ok(Self {
            connectors: Arc::default(),
        })
    }

    fn connector(&self, timeouts: Timeouts) -> SharedHttpConnector {
        let mut connectors = self.connectors.lock().unwrap_or_else(PoisonError::into_inner);
        connectors
            .entry(timeouts)
            .or_insert_with(|| SharedHttpConnector::new(Connector::new(timeouts)))
            .clone()
    }
}

impl HttpClient for AwsHttpClient {
    fn http_connector(&self, settings: &HttpConnectorSettings, _: &RuntimeComponents) -> SharedHttpConnector {
        self.connector((settings.connect_timeout(), settings.read_timeout()))
    }
}

#[derive(Debug)]
struct Connector {
    /// A client that could not be built fails each request with the reason.
    client: Result<reqwest::Client, String>,
}

impl Connector {
    fn new((connect, read): Timeouts) -> Self {
        let build = || -> Result<reqwest::Client, String> {
            let roots = trust_roots().map_err(|e| e.to_string())?;
            let mut builder = reqwest::Client::builder()
                .tls_certs_only(roots.iter().cloned())
                .http1_only()
                .redirect(reqwest::redirect::Policy::none())
                // As the SDK's own client: no proxy from the environment unless configured.
                .no_proxy()
                .pool_idle_timeout(POOL_IDLE);
            if let Some(t) = connect {
                builder = builder.connect_timeout(t);
            }
            if let Some(t) = read {
                builder = builder.read_timeout(t);
            }
            builder.build().map_err(|e| e.to_string())
        };
        Self { client: build() }
    }
}

impl HttpConnector for Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let client = self.client.clone();
        HttpConnectorFuture::new(async move {
            let client = client.map_err(|e| ConnectorError::user(e.into()))?;
            let mut response = client.execute(to_reqwest(request)?).await.map_err(transport)?;
            let (status, version) = (response.status(), response.version());
            let headers = std::mem::take(response.headers_mut());
            let body = response.bytes().await.map_err(transport)?;
            let mut out = http::Response::new(SdkBody::from(body));
            *out.status_mut() = status;
            *out.version_mut() = version;
            *out.headers_mut() = headers;
            HttpResponse::try_from(out).map_err(|e| ConnectorError::other(e.into(), None))
        })
    }
}

fn to_reqwest(request: HttpRequest) -> Result<reqwest::Request, ConnectorError> {
    let (parts, body) = request
        .try_into_http1x()
        .map_err(|e| ConnectorError::user(e.into()))?
        .into_parts();
    // SQS, DynamoDB and Secrets Manager requests are always in memory, and so are
    // S3's as Hookline makes them (no trailing checksums: `s3::S3Data::client`).
    let bytes = body
        .bytes()
        .ok_or_else(|| ConnectorError::user("a streaming request body is not supported".into()))?
        .to_vec();
    reqwest::Request::try_from(http::Request::from_parts(parts, bytes))
        .map_err(|e| ConnectorError::user(e.into()))
}

fn transport(e: reqwest::Error) -> ConnectorError {
    if e.is_timeout() {
        ConnectorError::timeout(e.into())
    } else if e.is_builder() {
        ConnectorError::user(e.into())
    } else {
        ConnectorError::io(e.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn post(url: &str, body: &'static str) -> HttpRequest {
        let request = http::Request::builder()
            .method("POST")
            .uri(url)
            .header("x-amz-target", "DynamoDB_20120810.PutItem")
            .body(SdkBody::from(body))
            .unwrap();
        HttpRequest::try_from(request).unwrap()
    }

    /// Answers one request with `response` and hands back what it read.
    async fn one_shot(response: &'static str) -> (String, tokio::task::JoinHandle<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let served = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            // Read the head, then as many body bytes as its content-length says.
            let whole = |seen: &[u8]| {
                let text = String::from_utf8_lossy(seen).to_ascii_lowercase();
                let Some(head_end) = text.find("\r\n\r\n") else {
                    return false;
                };
                let length = text[..head_end]
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                seen.len() >= head_end + 4 + length
            };
            while !whole(&seen) {
                let n = stream.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                seen.extend_from_slice(&buf[..n]);
            }
            stream.write_all(response.as_bytes()).await.unwrap();
            String::from_utf8_lossy(&seen).into_owned()
        });
        (url, served)
    }

    #[tokio::test]
    async fn an_sdk_call_goes_out_signed_as_the_sdk_signed_it() {
        let (url, served) = one_shot(
            "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\n\
             content-length: 17\r\n\r\n{\"TableNames\":[]}",
        )
        .await;
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("eu-west-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "AKIDEXAMPLE",
                "secret",
                Some("session-token".into()),
                None,
                "test",
            ))
            .endpoint_url(url.trim_end_matches('/'))
            .http_client(AwsHttpClient::new().unwrap())
            .build();
        let client = aws_sdk_dynamodb::Client::from_conf(config);

        let tables = client.list_tables().send().await.unwrap();

        assert!(tables.table_names().is_empty());
        let seen = served.await.unwrap();
        let header = |name: &str| {
            seen.lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix(&format!("{name}: "))
                        .map(str::to_owned)
                })
                .unwrap_or_else(|| panic!("no {name} header in {seen}"))
        };
        let auth = header("authorization");
        assert!(
            auth.starts_with("aws4-hmac-sha256 credential=akidexample/"),
            "{auth}"
        );
        assert!(auth.contains("/eu-west-1/dynamodb/aws4_request"), "{auth}");
        for signed in ["host", "x-amz-date", "x-amz-security-token", "x-amz-target"] {
            assert!(auth.contains(signed), "{signed} is not signed: {auth}");
            header(signed);
        }
        assert_eq!(header("x-amz-target"), "dynamodb_20120810.listtables");
        assert_eq!(
            header("host"),
            url.trim_start_matches("http://").trim_end_matches('/')
        );
    }

    #[tokio::test]
    async fn a_request_goes_out_as_the_sdk_built_it_and_its_response_comes_back_whole() {
        let (url, served) = one_shot(
            "HTTP/1.1 400 Bad Request\r\ncontent-type: application/x-amz-json-1.0\r\n\
             x-amzn-requestid: r-1\r\ncontent-length: 9\r\n\r\n{\"e\":\"x\"}",
        )
        .await;
        let connector = Connector::new((Some(Duration::from_secs(2)), None));

        let response = connector.call(post(&url, "{\"k\":1}")).await.unwrap();

        assert_eq!(response.status().as_u16(), 400);
        assert_eq!(response.headers().get("x-amzn-requestid"), Some("r-1"));
        assert_eq!(response.body().bytes(), Some(&b"{\"e\":\"x\"}"[..]));
        let seen = served.await.unwrap().to_ascii_lowercase();
        assert!(seen.starts_with("post / http/1.1\r\n"), "{seen}");
        assert!(
            seen.contains("x-amz-target: dynamodb_20120810.putitem\r\n"),
            "{seen}"
        );
        assert!(seen.contains("content-length: 7\r\n"), "{seen}");
    }

    #[tokio::test]
    async fn a_refused_connection_is_io_which_the_sdk_retries() {
        // A port that was just free: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let connector = Connector::new((Some(Duration::from_secs(2)), None));

        let error = connector
            .call(post(&format!("http://127.0.0.1:{port}/"), "{}"))
            .await
            .unwrap_err();

        assert!(error.is_io(), "{error:?}");
    }

    #[tokio::test]
    async fn a_response_that_does_not_come_in_time_is_a_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        // Accepts and then says nothing, until the test ends.
        let silent = tokio::spawn(async move {
            let (_stream, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(10)).await;
        });
        let connector = Connector::new((Some(Duration::from_secs(2)), Some(Duration::from_millis(200))));

        let error = connector.call(post(&url, "{}")).await.unwrap_err();

        assert!(error.is_timeout(), "{error:?}");
        silent.abort();
    }

    #[test]
    fn one_connector_serves_every_request_with_the_same_timeouts() {
        let client = AwsHttpClient::new().unwrap();
        let three = Some(Duration::from_secs(3));
        let _a = client.connector((three, None));
        let _b = client.connector((three, None));
        let _c = client.connector((None, None));
        assert_eq!(client.connectors.lock().unwrap().len(), 2);
    }
}
