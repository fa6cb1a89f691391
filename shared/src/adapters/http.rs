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
        let policy = Arc::new(policy);
        let client = reqwest::Client::builder()
            .tls_certs_only(trust_roots()?.iter().cloned())
            .redirect(reqwest::redirect::Policy::none())
            // Through a proxy the resolver would check the proxy's address, not the endpoint's.
            .no_proxy()
            .connect_timeout(CONNECT_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(60))
            .dns_resolver(Arc::new(SsrfResolver {
                policy: policy.clone(),
            }))
            .build()?;
        Ok(Self { client, policy })
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
        if let Err(e) = self.policy.parse_destination(&request.url) {
            return AttemptOutcome::Error {
                error: TransportError::Blocked,
                message: format!("the URL {e}"),
            };
        }
        let mut builder = self.client.post(&request.url).timeout(request.timeout);
        for (k, v) in &request.headers {
            builder = builder.header(k, v);
        }
        let timeout = request.timeout;
        let mut response = match builder.body(request.body).send().await {
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

    #[test]
    fn retry_after_is_read_as_seconds_or_as_an_http_date() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(parse_retry_after("120", now), Some(120));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:50:37 GMT", now), Some(60));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:40:00 GMT", now), Some(0));
        assert_eq!(parse_retry_after("soon", SystemTime::now()), None);
    }
}
