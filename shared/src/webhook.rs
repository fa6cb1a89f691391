//! The request a receiver gets: body, signatures and headers, as DESIGN.md fixes them.

use crate::endpoint::Endpoint;
use crate::event::Event;
use crate::ids::DeliveryId;
use crate::ports::OutboundRequest;
use crate::signing::{seed_signature_header, standard_signature_header};
use bytes::Bytes;
use std::time::Duration;

pub const USER_AGENT: &str = concat!("Hookline/", env!("CARGO_PKG_VERSION"));

/// Builds the signed POST of `event` (its envelope, `body`) to `endpoint`, stamped
/// `unix_seconds`.
/// The endpoint's own headers come first and cannot shadow ours (they were checked
/// against the reserved names at registration).
pub fn signed_request(
    event: &Event,
    body: Bytes,
    endpoint: &Endpoint,
    delivery_id: &DeliveryId,
    unix_seconds: i64,
) -> OutboundRequest {
    let id = event.id.as_str();
    let ts = unix_seconds.to_string();
    let mut headers: Vec<(String, String)> = endpoint
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    headers.extend([
        ("content-type".into(), "application/json".into()),
        ("user-agent".into(), USER_AGENT.into()),
        ("webhook-id".into(), id.to_owned()),
        ("webhook-timestamp".into(), ts.clone()),
        (
            "webhook-signature".into(),
            standard_signature_header(
                &endpoint.signing_secrets(crate::Timestamp::from_unix_millis(unix_seconds * 1000)),
                id,
                unix_seconds,
                &body,
            ),
        ),
        (
            "x-webhook-signature".into(),
            seed_signature_header(&endpoint.secret, &body),
        ),
        ("x-webhook-event".into(), event.event_type.to_string()),
        ("x-webhook-delivery".into(), delivery_id.to_string()),
        ("x-webhook-timestamp".into(), ts),
    ]);
    OutboundRequest {
        url: endpoint.url.clone(),
        headers,
        body,
        timeout: Duration::from_secs(u64::from(endpoint.timeout_seconds)),
    }
}
