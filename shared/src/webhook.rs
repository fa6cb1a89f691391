//! The request a receiver gets: body, signatures and headers, as DESIGN.md fixes them.

use crate::endpoint::Endpoint;
use crate::event::Event;
use crate::ids::DeliveryId;
use crate::ports::OutboundRequest;
use crate::signing::{seed_signature_header, standard_signature_header};
use bytes::Bytes;
use http::header::{self, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use std::time::Duration;

pub const USER_AGENT: &str = concat!("Hookline/", env!("CARGO_PKG_VERSION"));

/// Builds the signed POST of `event` (its envelope, `body`) to `endpoint`, stamped
/// `unix_seconds`.
/// The endpoint's own headers come first and cannot shadow ours (they were checked
/// against the reserved names at registration, and ours replace any that match).
pub fn signed_request(
    event: &Event,
    body: Bytes,
    endpoint: &Endpoint,
    delivery_id: &DeliveryId,
    unix_seconds: i64,
) -> OutboundRequest {
    let id = event.id.as_str();
    let ts = value(unix_seconds.to_string());
    let standard = standard_signature_header(
        &endpoint.signing_secrets(crate::Timestamp::from_unix_millis(unix_seconds * 1000)),
        id,
        unix_seconds,
        &body,
    );
    let ours = [
        (CONTENT_TYPE, HeaderValue::from_static("application/json")),
        (header::USER_AGENT, HeaderValue::from_static(USER_AGENT)),
        (WEBHOOK_ID, value(id.to_owned())),
        (WEBHOOK_TIMESTAMP, ts.clone()),
        (WEBHOOK_SIGNATURE, value(standard)),
        (
            X_WEBHOOK_SIGNATURE,
            value(seed_signature_header(&endpoint.secret, &body)),
        ),
        (X_WEBHOOK_EVENT, value(event.event_type.to_string())),
        (X_WEBHOOK_DELIVERY, value(delivery_id.to_string())),
        (X_WEBHOOK_TIMESTAMP, ts),
    ];
    let mut headers = HeaderMap::with_capacity(endpoint.headers.len() + ours.len());
    for (name, v) in &endpoint.headers {
        match (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(v)) {
            (Ok(name), Ok(v)) => {
                headers.append(name, v);
            }
            // Registration checks them; one that slipped past (written to the table
            // by hand) is left out, named but not shown, as it may hold a credential.
            _ => {
                tracing::warn!(endpoint_id = %endpoint.id, header = %name, "a custom header is not valid HTTP; it was not sent")
            }
        }
    }
    for (name, v) in ours {
        headers.insert(name, v);
    }
    OutboundRequest {
        url: endpoint.url.clone(),
        headers,
        body,
        timeout: Duration::from_secs(u64::from(endpoint.timeout_seconds)),
    }
}

const WEBHOOK_ID: HeaderName = HeaderName::from_static("webhook-id");
const WEBHOOK_TIMESTAMP: HeaderName = HeaderName::from_static("webhook-timestamp");
const WEBHOOK_SIGNATURE: HeaderName = HeaderName::from_static("webhook-signature");
const X_WEBHOOK_SIGNATURE: HeaderName = HeaderName::from_static("x-webhook-signature");
const X_WEBHOOK_EVENT: HeaderName = HeaderName::from_static("x-webhook-event");
const X_WEBHOOK_DELIVERY: HeaderName = HeaderName::from_static("x-webhook-delivery");
const X_WEBHOOK_TIMESTAMP: HeaderName = HeaderName::from_static("x-webhook-timestamp");

/// Our values are ids, digits, base64, hex and parsed event types: visible ASCII.
fn value(text: String) -> HeaderValue {
    HeaderValue::try_from(text).expect("ids, digits, base64, hex and event types are visible ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Timestamp;
    use crate::endpoint_input::parse_new_endpoint;
    use crate::event::{ENVELOPE_VERSION, EventType};
    use crate::ids::EventId;
    use crate::ssrf::SsrfPolicy;
    use crate::verify::verify_webhook;
    use serde_json::json;

    const NOW: i64 = 1_790_000_000;

    fn endpoint(headers: serde_json::Value) -> Endpoint {
        let policy = SsrfPolicy::parse_allowed("127.0.0.0/8").unwrap();
        let input = json!({"name": "crm", "url": "http://127.0.0.1:9/hooks", "headers": headers});
        parse_new_endpoint(&input, &policy, Timestamp::from_unix_millis(NOW * 1000)).unwrap()
    }

    fn event() -> Event {
        Event {
            id: EventId::generate(),
            tenant_id: Default::default(),
            event_type: EventType::parse("agent.run.completed").unwrap(),
            data: json!({"status": "success"}),
            timestamp: Timestamp::from_unix_millis(NOW * 1000),
            source: "test".into(),
            version: ENVELOPE_VERSION.into(),
            expires_at: None,
            collapse_key: None,
            data_ref: None,
            order: None,
        }
    }

    #[test]
    fn a_signed_request_verifies_and_carries_each_header_once() {
        let (ep, e) = (endpoint(json!({"X-Tenant": "acme"})), event());
        let body = Bytes::from(e.envelope_json());
        let req = signed_request(&e, body.clone(), &ep, &DeliveryId::generate(), NOW);
        verify_webhook(&ep.secret, &req.headers, &body, NOW, 300).expect("the signature verifies");
        assert_eq!(req.headers["x-tenant"], "acme");
        assert_eq!(req.headers["webhook-id"], e.id.as_str());
        assert_eq!(req.headers["x-webhook-timestamp"], NOW.to_string().as_str());
        assert_eq!(req.headers.len(), 9 + 1, "our nine and the endpoint's one");
        assert_eq!(
            req.headers.keys_len(),
            req.headers.len(),
            "no header appears twice"
        );
    }

    #[test]
    fn a_custom_header_that_slipped_past_registration_neither_shadows_ours_nor_breaks_the_request() {
        // GIVEN an endpoint whose stored headers were never checked (written by hand)
        let mut ep = endpoint(json!({}));
        ep.headers.insert("webhook-id".into(), "forged".into());
        ep.headers.insert("bad name".into(), "x".into());
        ep.headers.insert("x-bad-value".into(), "line\nbreak".into());
        let e = event();
        // WHEN its request is built
        let req = signed_request(
            &e,
            Bytes::from(e.envelope_json()),
            &ep,
            &DeliveryId::generate(),
            NOW,
        );
        // THEN ours wins, the invalid ones are left out, and the rest is intact
        assert_eq!(req.headers.get_all("webhook-id").iter().count(), 1);
        assert_eq!(req.headers["webhook-id"], e.id.as_str());
        assert!(req.headers.get("x-bad-value").is_none());
        assert_eq!(req.headers.len(), 9, "our nine");
    }
}
