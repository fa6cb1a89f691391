//! The webhook sender on reqwest: one client per warm container (its connection
//! pool reused across invocations), no redirects, and a DNS resolver that applies
//! the SSRF policy to every resolved address, so the connection goes only to an
//! address that was checked — no window for DNS rebinding between check and connect.

use super::tls::{TrustRootsError, trust_roots};
use crate::delivery::{AttemptOutcome, RESPONSE_BODY_LIMIT, TransportError, cut_body};
use crate::ports::{OutboundRequest, WebhookSender};
use crate::ssrf::{DestinationError, SsrfPolicy};
use async_trait::async_trait;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
enum ResolveError {
    #[error("{0}")]
    Blocked(DestinationError),
    #[error("DNS lookup of `{host}` failed: {reason}")]
    Lookup { host: String, reason: String },
}

struct SsrfResolver {
    policy: Arc<SsrfPolicy>,
}

impl Resolve for SsrfResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let lookup = tokio::time::timeout(
                crate::ssrf::DNS_TIMEOUT,
                tokio::net::lookup_host((host.as_str(), 0)),
            );
            let found: Vec<_> = lookup
                .await
                .map_err(|_| ResolveError::Lookup {
                    host: host.clone(),
                    reason: "no answer in time".into(),
                })?
                .map_err(|e| ResolveError::Lookup {
                    host: host.clone(),
                    reason: e.to_string(),
                })?
                .collect();
            let mut refusal = None;
            let allowed: Vec<_> = found
                .into_iter()
                .filter(|a| match policy.check_ip(a.ip()) {
                    Ok(()) => true,
                    Err(e) => {
                        refusal.get_or_insert(e);
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                return Err(Box::new(match refusal {
                    Some(e) => ResolveError::Blocked(e),
                    None => ResolveError::Lookup {
                        host,
                        reason: "no addresses".into(),
                    },
                }) as Box<dyn StdError + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// `Retry-After` as seconds from `now`: delta-seconds or an HTTP date.
fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<u64> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(secs);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).map_or(0, |d| d.as_secs()))
}

#[derive(Clone)]
pub struct HttpSender {
    client: reqwest::Client,
    policy: Arc<SsrfPolicy>,
    checked: Arc<CheckedUrls>,
}

/// URLs that passed the policy's form check, parsed. The same few endpoints' URLs come
/// with every request, and parsing one (IDNA, the IP forms) cost more than its HMAC.
/// The check depends only on the URL and the policy, which is fixed per sender; a
/// host name is still resolved and checked at every connect.
#[derive(Default)]
struct CheckedUrls(std::sync::Mutex<std::collections::HashMap<String, reqwest::Url>>);

/// Past this many URLs the cache starts again: bounded memory, whatever the endpoints.
const CHECKED_URLS_MAX: usize = 4096;

impl CheckedUrls {
    fn get_or_check(&self, policy: &SsrfPolicy, raw: &str) -> Result<reqwest::Url, DestinationError> {
        if let Some(url) = self.0.lock().ok().and_then(|m| m.get(raw).cloned()) {
            return Ok(url);
        }
        let url = policy.parse_destination(raw)?.into_url();
        if let Ok(mut m) = self.0.lock() {
            if m.len() >= CHECKED_URLS_MAX {
                m.clear();
            }
            m.insert(raw.to_owned(), url.clone());
        }
        Ok(url)
    }
}

/// Why the sender could not be built: the trusted roots, or reqwest's TLS setup.
#[derive(Debug, thiserror::Error)]
pub enum SenderError {
    #[error(transparent)]
    Roots(#[from] TrustRootsError),
    #[error("HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

impl HttpSender {
    pub fn new(policy: SsrfPolicy) -> Result<Self, SenderError> {
        Self::trusting(policy, trust_roots()?)
    }

    /// The sender with the given trusted roots (the tests' own CA).
    fn trusting(policy: SsrfPolicy, roots: &[reqwest::Certificate]) -> Result<Self, SenderError> {
        let policy = Arc::new(policy);
        let client = reqwest::Client::builder()
            .tls_certs_only(roots.iter().cloned())
            .redirect(reqwest::redirect::Policy::none())
            // Through a proxy the resolver would check the proxy's address, not the endpoint's.
            .no_proxy()
            .connect_timeout(CONNECT_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(60))
            .dns_resolver(Arc::new(SsrfResolver {
                policy: policy.clone(),
            }))
            .build()?;
        Ok(Self {
            client,
            policy,
            checked: Arc::default(),
        })
    }
}

/// Names the failure for the attempt log, without the URL (it may carry a token).
fn transport_error(e: &reqwest::Error, timeout: Duration) -> AttemptOutcome {
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<ResolveError>() {
            let error = match r {
                ResolveError::Blocked(_) => TransportError::Blocked,
                ResolveError::Lookup { .. } => TransportError::Dns,
            };
            return AttemptOutcome::Error {
                error,
                message: r.to_string(),
            };
        }
        source = s.source();
    }
    let (error, message) = if e.is_timeout() {
        (
            TransportError::Timeout,
            format!("no response within {} s", timeout.as_secs()),
        )
    } else if e.is_connect() {
        (
            TransportError::Connect,
            format!("could not connect: {}", root_cause(e)),
        )
    } else {
        (TransportError::Other, root_cause(e))
    };
    AttemptOutcome::Error { error, message }
}

fn root_cause(e: &(dyn StdError + 'static)) -> String {
    let mut last: &(dyn StdError + 'static) = e;
    while let Some(s) = last.source() {
        last = s;
    }
    last.to_string()
}

#[async_trait]
impl WebhookSender for HttpSender {
    async fn post(&self, request: OutboundRequest) -> AttemptOutcome {
        // IP-literal hosts never reach the resolver, so the URL is checked here too.
        let url = match self.checked.get_or_check(&self.policy, &request.url) {
            Ok(url) => url,
            Err(e) => {
                return AttemptOutcome::Error {
                    error: TransportError::Blocked,
                    message: format!("the URL {e}"),
                };
            }
        };
        let timeout = request.timeout;
        let mut post = reqwest::Request::new(reqwest::Method::POST, url);
        *post.headers_mut() = request.headers;
        *post.timeout_mut() = Some(timeout);
        *post.body_mut() = Some(request.body.into());
        let mut response = match self.client.execute(post).await {
            Ok(r) => r,
            Err(e) => return transport_error(&e.without_url(), timeout),
        };
        let status = response.status().as_u16();
        let retry_after_seconds = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, std::time::SystemTime::now()));
        // Keep only the first KiB; stop reading there rather than download the rest.
        let mut body = Vec::new();
        while let Ok(Some(chunk)) = response.chunk().await {
            body.extend_from_slice(&chunk);
            if body.len() >= RESPONSE_BODY_LIMIT {
                break;
            }
        }
        AttemptOutcome::Response {
            status,
            body: cut_body(&body),
            retry_after_seconds,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    /// A test CA and a certificate it issued for `localhost` (shared/tests/fixtures/tls).
    const TEST_CA: &str = include_str!("../../tests/fixtures/tls/ca.pem");
    const LOCALHOST_CERT: &str = include_str!("../../tests/fixtures/tls/localhost.pem");
    const LOCALHOST_KEY: &str = include_str!("../../tests/fixtures/tls/localhost.key");

    /// An HTTPS receiver on 127.0.0.1 that answers every request 200, with the localhost
    /// certificate; it stops when the test's runtime does.
    async fn https_receiver() -> u16 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        use tokio_rustls::rustls::pki_types::pem::PemObject;
        use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs = vec![CertificateDer::from_pem_slice(LOCALHOST_CERT.as_bytes()).unwrap()];
        let key = PrivateKeyDer::from_pem_slice(LOCALHOST_KEY.as_bytes()).unwrap();
        let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
        let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // A client that refuses the certificate ends the handshake: nothing to serve.
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut buf = vec![0u8; 8192];
                    let mut seen = Vec::new();
                    while !String::from_utf8_lossy(&seen).contains("\r\n\r\n") {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => seen.extend_from_slice(&buf[..n]),
                        }
                    }
                    let _ = tls
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                        .await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        port
    }

    fn post_to(url: String) -> OutboundRequest {
        OutboundRequest {
            url,
            headers: http::HeaderMap::from_iter([(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            )]),
            body: "{}".into(),
            timeout: Duration::from_secs(5),
        }
    }

    fn loopback() -> SsrfPolicy {
        SsrfPolicy::parse_allowed("127.0.0.0/8").unwrap()
    }

    fn with_test_ca() -> Vec<reqwest::Certificate> {
        let mut roots = trust_roots().unwrap().to_vec();
        roots.push(reqwest::Certificate::from_pem(TEST_CA.as_bytes()).unwrap());
        roots
    }

    /// What the sender says when its POST to `host` on the HTTPS receiver fails.
    async fn refusal(sender: &HttpSender, host: &str) -> String {
        let port = https_receiver().await;
        let outcome = sender.post(post_to(format!("https://{host}:{port}/hook"))).await;
        match outcome {
            AttemptOutcome::Error { message, .. } => message,
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_certificate_from_a_trusted_authority_is_accepted() {
        let port = https_receiver().await;
        let sender = HttpSender::trusting(loopback(), &with_test_ca()).unwrap();

        let outcome = sender
            .post(post_to(format!("https://localhost:{port}/hook")))
            .await;

        assert!(
            matches!(outcome, AttemptOutcome::Response { status: 200, .. }),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn a_certificate_from_an_authority_not_trusted_is_refused() {
        // Mozilla's roots only, as deployed.
        let sender = HttpSender::new(loopback()).unwrap();

        let message = refusal(&sender, "localhost").await;

        assert!(
            message.contains("invalid peer certificate: UnknownIssuer"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn a_certificate_for_another_name_is_refused() {
        let sender = HttpSender::trusting(loopback(), &with_test_ca()).unwrap();

        // The certificate names `localhost`, not 127.0.0.1.
        let message = refusal(&sender, "127.0.0.1").await;

        assert!(message.contains("certificate not valid for name"), "{message}");
    }

    #[test]
    fn a_url_that_passed_is_kept_parsed_and_a_refused_one_is_checked_every_time() {
        let policy = SsrfPolicy::parse_allowed("127.0.0.0/8").unwrap();
        let checked = CheckedUrls::default();
        let url = checked
            .get_or_check(&policy, "http://127.0.0.1:9/hook?x=1")
            .unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:9/hook?x=1");
        assert_eq!(
            checked
                .get_or_check(&policy, "http://127.0.0.1:9/hook?x=1")
                .unwrap(),
            url
        );
        for _ in 0..2 {
            assert!(matches!(
                checked.get_or_check(&policy, "http://169.254.169.254/latest"),
                Err(DestinationError::Metadata { .. })
            ));
        }
        assert_eq!(
            checked.0.lock().unwrap().len(),
            1,
            "only the URL that passed is kept"
        );
    }

    #[test]
    fn the_checked_urls_stay_bounded() {
        let policy = SsrfPolicy::parse_allowed("127.0.0.0/8").unwrap();
        let checked = CheckedUrls::default();
        for i in 0..=CHECKED_URLS_MAX {
            checked
                .get_or_check(&policy, &format!("http://127.0.0.1/{i}"))
                .unwrap();
        }
        assert!(checked.0.lock().unwrap().len() <= CHECKED_URLS_MAX);
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_as_an_http_date() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(parse_retry_after("120", now), Some(120));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:50:37 GMT", now), Some(60));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:40:00 GMT", now), Some(0));
        assert_eq!(parse_retry_after("soon", SystemTime::now()), None);
    }
}
