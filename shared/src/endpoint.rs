//! Endpoints: where events go, and which events they want.

pub use crate::endpoint_view::{EndpointView, HeaderValues};
use crate::ids::{EndpointId, TenantId};
pub use crate::matching::{EventTypeFilter, FilterError};
use crate::retry::{RetryDefaults, RetryPolicy};
use crate::signing::EndpointSecret;
use crate::timestamp::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;
use thiserror::Error;

pub const DEFAULT_TIMEOUT_SECONDS: u32 = 15;
pub const MAX_TIMEOUT_SECONDS: u32 = 30;
pub const DEFAULT_MAX_ATTEMPTS: u32 = 8;
pub const MAX_MAX_ATTEMPTS: u32 = 20;
pub const MAX_EVENT_TYPE_FILTERS: usize = 100;
pub const MAX_CUSTOM_HEADERS: usize = 20;
pub const MAX_RATE_LIMIT_PER_SECOND: u32 = 1000;

/// Headers Hookline sets on every delivery, which an endpoint's own headers may not override.
pub const RESERVED_HEADERS: &[&str] = &[
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "x-webhook-signature",
    "x-webhook-event",
    "x-webhook-delivery",
    "x-webhook-timestamp",
    "user-agent",
    "content-type",
    "content-length",
    "content-encoding",
    "transfer-encoding",
    "host",
    "connection",
];

/// Hop-by-hop headers (RFC 9110 §7.6.1, RFC 9113 §8.2.2): they speak of one connection
/// and are not passed on, so an endpoint cannot ask for them; `proxy-` names are a
/// proxy's.
pub const HOP_BY_HOP_HEADERS: &[&str] = &[
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
    "http2-settings",
];

/// What reads show for each of an endpoint's own header values: they often carry a
/// receiver's credentials, so only the answer that set them shows them.
pub const MASKED_HEADER_VALUE: &str = "********";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndpointStatus {
    Active,
    Disabled,
}

/// A registered endpoint. Its secret is kept apart from what the API shows.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub id: EndpointId,
    /// The tenant whose events it receives, and who may see and change it.
    pub tenant_id: TenantId,
    pub name: String,
    /// Passed the SSRF policy at registration; checked again at send time.
    pub url: String,
    pub event_types: Vec<EventTypeFilter>,
    pub headers: BTreeMap<String, String>,
    pub timeout_seconds: u32,
    pub max_attempts: u32,
    pub status: EndpointStatus,
    /// Why it was disabled, when it is.
    pub disabled_reason: Option<String>,
    /// Its own waits between attempts, overriding the service's schedule.
    pub retry_schedule: Option<Vec<Duration>>,
    /// Since when every attempt has failed; `None` after a success.
    pub failing_since: Option<Timestamp>,
    /// At most this many requests a second; what exceeds it waits its turn.
    pub rate_limit_per_second: Option<u32>,
    /// Since when it has been in the slow lane (`crate::lane`); `None` in the fast lane.
    pub slow_since: Option<Timestamp>,
    /// The largest body it takes whole; a larger event comes thin, with a `data_url`
    /// (`crate::claim_check`). `None`: the default.
    pub max_body_bytes: Option<u32>,
    /// Whether it gets each run's (or thread's) events one after another
    /// (`crate::ordering`).
    pub ordering: crate::ordering::OrderingMode,
    pub secret: EndpointSecret,
    /// Secrets replaced by a rotation, still signing beside the new one until then.
    pub previous_secrets: Vec<(EndpointSecret, Timestamp)>,
    /// Bumped by every change, so concurrent updates cannot overwrite each other.
    pub version: u64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Endpoint {
    /// A new active endpoint with a fresh id and secret and the service's defaults
    /// (15 s timeout, 8 attempts, no custom headers, no rate limit).
    pub fn new(name: String, url: String, event_types: Vec<EventTypeFilter>, now: Timestamp) -> Self {
        Self {
            id: EndpointId::generate(),
            tenant_id: TenantId::default(),
            name,
            url,
            event_types,
            headers: BTreeMap::new(),
            timeout_seconds: DEFAULT_TIMEOUT_SECONDS,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            status: EndpointStatus::Active,
            disabled_reason: None,
            retry_schedule: None,
            failing_since: None,
            rate_limit_per_second: None,
            slow_since: None,
            max_body_bytes: None,
            ordering: crate::ordering::OrderingMode::None,
            secret: EndpointSecret::generate(),
            previous_secrets: Vec::new(),
            version: 1,
            created_at: now,
            updated_at: now,
        }
    }

    /// The largest body it takes whole (`crate::claim_check`).
    pub fn body_limit(&self) -> u32 {
        self.max_body_bytes
            .unwrap_or(crate::claim_check::DEFAULT_ENDPOINT_BODY_BYTES)
    }

    /// Its own list of waits, or none (the service's schedule); sets the attempts to match.
    pub fn set_retry_schedule(&mut self, waits: Option<Vec<Duration>>) {
        if let Some(w) = &waits {
            self.max_attempts = u32::try_from(w.len() + 1).unwrap_or(MAX_MAX_ATTEMPTS);
        }
        self.retry_schedule = waits;
    }

    /// The secrets that sign at `now`: the current one first, then those in their
    /// grace period.
    pub fn signing_secrets(&self, now: Timestamp) -> Vec<&EndpointSecret> {
        std::iter::once(&self.secret)
            .chain(
                self.previous_secrets
                    .iter()
                    .filter(|(_, until)| *until > now)
                    .map(|(s, _)| s),
            )
            .collect()
    }

    /// Replaces the secret; the old one keeps signing for `grace`.
    pub fn rotate_secret(&mut self, new: EndpointSecret, grace: Duration, now: Timestamp) {
        let old = std::mem::replace(&mut self.secret, new);
        self.previous_secrets.retain(|(_, until)| *until > now);
        if !grace.is_zero() {
            self.previous_secrets.push((old, now.saturating_add(grace)));
        }
        self.updated_at = now;
    }

    pub fn retry_policy(&self, defaults: &RetryDefaults) -> RetryPolicy {
        RetryPolicy::for_endpoint(defaults, self.max_attempts, self.retry_schedule.as_deref())
    }

    /// Whether an event goes to it: it is active, of the event's tenant (never another's),
    /// and one of its filters matches the event's type.
    pub fn receives(&self, event: &crate::event::Event) -> bool {
        self.status == EndpointStatus::Active
            && self.tenant_id == event.tenant_id
            && self.event_types.iter().any(|f| f.matches(&event.event_type))
    }
}

/// The endpoint as it is now, if more attempts can be made to it; else why not: it was
/// deleted (`None`), or it is disabled.
pub fn usable<E: std::ops::Deref<Target = Endpoint>>(
    found: Option<E>,
    before_first_attempt: bool,
) -> Result<E, String> {
    match found {
        None if before_first_attempt => Err("the endpoint was deleted before its first attempt".into()),
        None => Err("the endpoint was deleted".into()),
        Some(ep) if ep.status == EndpointStatus::Disabled => Err(format!(
            "the endpoint is disabled: {}",
            ep.disabled_reason.as_deref().unwrap_or("by an operator")
        )),
        Some(ep) => Ok(ep),
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum HeaderError {
    #[error("at most {MAX_CUSTOM_HEADERS} headers are allowed")]
    TooMany,
    #[error("`{0}` is not a valid header name")]
    BadName(String),
    #[error("the value of `{0}` is not a valid header value")]
    BadValue(String),
    #[error("`{0}` is set by Hookline and cannot be overridden")]
    Reserved(String),
    #[error("`{0}` is a hop-by-hop header, which speaks of one connection and is not passed on")]
    HopByHop(String),
    #[error("`{0}` is given more than once (header names are case-insensitive)")]
    Duplicate(String),
    #[error(
        "the value of `{0}` is the mask that reads show; send the value itself, or leave `headers` out to keep them"
    )]
    Masked(String),
}

/// Checks an endpoint's own headers: valid names and values, none reserved.
/// Names are kept lowercase, as HTTP/2 sends them.
pub fn check_custom_headers(
    headers: BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, HeaderError> {
    if headers.len() > MAX_CUSTOM_HEADERS {
        return Err(HeaderError::TooMany);
    }
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    let mut out = BTreeMap::new();
    for (name, value) in headers {
        if name.is_empty() || name.len() > 256 || !name.bytes().all(token) {
            return Err(HeaderError::BadName(name));
        }
        let lower = name.to_ascii_lowercase();
        if RESERVED_HEADERS.contains(&lower.as_str()) || lower.starts_with("webhook-") {
            return Err(HeaderError::Reserved(name));
        }
        if HOP_BY_HOP_HEADERS.contains(&lower.as_str()) || lower.starts_with("proxy-") {
            return Err(HeaderError::HopByHop(name));
        }
        if value.len() > 4096 || value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Err(HeaderError::BadValue(name));
        }
        if value == MASKED_HEADER_VALUE {
            return Err(HeaderError::Masked(name));
        }
        if out.contains_key(&lower) {
            return Err(HeaderError::Duplicate(name));
        }
        out.insert(lower, value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deleted_or_disabled_endpoint_says_why_it_takes_no_more_attempts() {
        let mut ep = Endpoint::new(
            "crm".into(),
            "https://crm.example.com/".into(),
            vec![EventTypeFilter::All],
            Timestamp::from_unix_millis(0),
        );
        assert!(usable(Some(&ep), false).is_ok());
        assert_eq!(
            usable::<&Endpoint>(None, false).unwrap_err(),
            "the endpoint was deleted"
        );
        assert_eq!(
            usable::<&Endpoint>(None, true).unwrap_err(),
            "the endpoint was deleted before its first attempt"
        );
        ep.status = EndpointStatus::Disabled;
        assert_eq!(
            usable(Some(&ep), true).unwrap_err(),
            "the endpoint is disabled: by an operator"
        );
        ep.disabled_reason = Some("the endpoint answered 410 Gone".into());
        assert_eq!(
            usable(Some(&ep), false).unwrap_err(),
            "the endpoint is disabled: the endpoint answered 410 Gone"
        );
    }

    #[test]
    fn custom_headers_cannot_override_signing_headers() {
        let h = |k: &str, v: &str| BTreeMap::from([(k.to_owned(), v.to_owned())]);
        assert_eq!(
            check_custom_headers(h("Webhook-Signature", "x")),
            Err(HeaderError::Reserved("Webhook-Signature".into()))
        );
        assert_eq!(
            check_custom_headers(h("X-Webhook-Event", "x")),
            Err(HeaderError::Reserved("X-Webhook-Event".into()))
        );
        assert_eq!(
            check_custom_headers(h("bad name", "x")),
            Err(HeaderError::BadName("bad name".into()))
        );
        assert_eq!(
            check_custom_headers(h("X-A", "a\nb")),
            Err(HeaderError::BadValue("X-A".into()))
        );
        assert_eq!(
            check_custom_headers(h("X-Tenant", "acme")).unwrap(),
            h("x-tenant", "acme")
        );
    }

    #[test]
    fn hop_by_hop_headers_cannot_be_set() {
        let h = |k: &str| BTreeMap::from([(k.to_owned(), "x".to_owned())]);
        for name in [
            "TE",
            "Upgrade",
            "Expect",
            "Keep-Alive",
            "Proxy-Authorization",
            "proxy-x",
            "Connection",
            "Trailer",
        ] {
            let err = check_custom_headers(h(name)).unwrap_err();
            assert!(
                matches!(err, HeaderError::HopByHop(_) | HeaderError::Reserved(_)),
                "{name}: {err:?}"
            );
        }
    }

    #[test]
    fn header_names_that_differ_only_in_case_are_refused_not_merged() {
        let both = BTreeMap::from([
            ("X-Auth".to_owned(), "a".to_owned()),
            ("x-auth".to_owned(), "b".to_owned()),
        ]);
        assert!(matches!(
            check_custom_headers(both),
            Err(HeaderError::Duplicate(_))
        ));
    }

    #[test]
    fn header_values_are_masked_in_views_unless_shown_on_purpose() {
        let mut ep = Endpoint::new(
            "crm".into(),
            "https://crm.example.com/".into(),
            vec![EventTypeFilter::All],
            Timestamp::from_unix_millis(0),
        );
        ep.headers = BTreeMap::from([("authorization".to_owned(), "Bearer s3cr3t".to_owned())]);
        let masked = serde_json::to_string(&EndpointView::from(&ep)).unwrap();
        assert!(!masked.contains("s3cr3t"), "{masked}");
        assert!(masked.contains(r#""authorization":"********""#), "{masked}");
        let shown = serde_json::to_string(&EndpointView::from(&ep).showing_header_values()).unwrap();
        assert!(shown.contains("Bearer s3cr3t"), "{shown}");
        // The mask itself is never stored as a value: a read sent back is refused.
        let back = BTreeMap::from([("authorization".to_owned(), MASKED_HEADER_VALUE.to_owned())]);
        assert!(matches!(check_custom_headers(back), Err(HeaderError::Masked(_))));
    }
}
