//! An endpoint as the API shows it: everything but its secret, its own headers masked.

use crate::endpoint::{Endpoint, EndpointStatus, EventTypeFilter, MASKED_HEADER_VALUE};
use crate::ids::{EndpointId, TenantId};
use crate::timestamp::Timestamp;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// The endpoint as the API shows it: everything but the secret.
#[derive(Clone, Debug, Serialize)]
pub struct EndpointView<'a> {
    pub id: &'a EndpointId,
    pub tenant_id: &'a TenantId,
    pub name: &'a str,
    pub url: &'a str,
    pub event_types: &'a [EventTypeFilter],
    pub headers: HeaderValues<'a>,
    pub timeout_seconds: u32,
    pub max_attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_schedule: Option<Vec<u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_second: Option<u32>,
    pub max_body_bytes: u32,
    pub ordering: crate::ordering::OrderingMode,
    pub status: EndpointStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<Timestamp>,
    /// `fast`, or `slow` when it answers too slowly to be waited for with the others.
    pub lane: crate::lane::Lane,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slow_since: Option<Timestamp>,
    /// When the secrets replaced by rotations stop signing.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub previous_secrets_expire_at: Vec<Timestamp>,
    pub version: u64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl<'a> From<&'a Endpoint> for EndpointView<'a> {
    fn from(e: &'a Endpoint) -> Self {
        Self {
            id: &e.id,
            tenant_id: &e.tenant_id,
            name: &e.name,
            url: &e.url,
            event_types: &e.event_types,
            headers: HeaderValues {
                values: &e.headers,
                shown: false,
            },
            timeout_seconds: e.timeout_seconds,
            max_attempts: e.max_attempts,
            retry_schedule: e
                .retry_schedule
                .as_ref()
                .map(|s| s.iter().map(Duration::as_secs).collect()),
            rate_limit_per_second: e.rate_limit_per_second,
            max_body_bytes: e.body_limit(),
            ordering: e.ordering,
            status: e.status,
            disabled_reason: e.disabled_reason.as_deref(),
            failing_since: e.failing_since,
            lane: crate::lane::Lane::of(e),
            slow_since: e.slow_since,
            previous_secrets_expire_at: e.previous_secrets.iter().map(|(_, t)| *t).collect(),
            version: e.version,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

impl EndpointView<'_> {
    /// The view with the header values themselves: for the answer that set them.
    pub fn showing_header_values(mut self) -> Self {
        self.headers.shown = true;
        self
    }
}

/// An endpoint's own headers as the API shows them: masked, unless shown on purpose.
#[derive(Clone, Debug)]
pub struct HeaderValues<'a> {
    values: &'a BTreeMap<String, String>,
    shown: bool,
}

impl Serialize for HeaderValues<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.values.len()))?;
        for (k, v) in self.values {
            map.serialize_entry(
                k,
                if self.shown {
                    v.as_str()
                } else {
                    MASKED_HEADER_VALUE
                },
            )?;
        }
        map.end()
    }
}
