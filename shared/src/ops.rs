//! Hookline's own operational events, sent through the same pipeline as any event so
//! an operator can subscribe an endpoint to them (`hookline.*`). Their ids derive
//! from what they report, so reporting the same thing twice is delivered once.

use crate::delivery::Delivery;
use crate::endpoint::Endpoint;
use crate::event::{ENVELOPE_VERSION, Event, EventType};
use crate::ids::EventId;
use crate::timestamp::Timestamp;
use serde_json::json;

pub const DELIVERY_EXHAUSTED: &str = "hookline.delivery.exhausted";
pub const ENDPOINT_DISABLED: &str = "hookline.endpoint.disabled";
const SOURCE: &str = "hookline";

fn event(id: String, event_type: &str, data: serde_json::Value, now: Timestamp) -> Option<Event> {
    Some(Event {
        id: EventId::parse(&id).ok()?,
        event_type: EventType::parse(event_type).ok()?,
        data,
        timestamp: now,
        source: SOURCE.into(),
        version: ENVELOPE_VERSION.into(),
    })
}

/// A delivery gave up. Not reported for deliveries of Hookline's own events, so a
/// failing operator endpoint cannot feed itself.
pub fn delivery_exhausted(d: &Delivery, now: Timestamp) -> Option<Event> {
    if d.event_type.is_reserved() {
        return None;
    }
    event(
        format!("{DELIVERY_EXHAUSTED}:{}", d.id),
        DELIVERY_EXHAUSTED,
        json!({
            "delivery_id": d.id,
            "event_id": d.event_id,
            "endpoint_id": d.endpoint_id,
            "event_type": d.event_type,
            "attempts": d.attempts,
            "last_status_code": d.last_status_code,
            "last_error": d.last_error,
            "reason": d.failure_reason,
        }),
        now,
    )
}

/// An endpoint was disabled.
pub fn endpoint_disabled(e: &Endpoint, reason: &str, now: Timestamp) -> Option<Event> {
    event(
        format!("{ENDPOINT_DISABLED}:{}:{}", e.id, now.unix_millis()),
        ENDPOINT_DISABLED,
        json!({
            "endpoint_id": e.id,
            "name": e.name,
            "url": e.url,
            "reason": reason,
            "failing_since": e.failing_since,
        }),
        now,
    )
}

/// Queues operational events, one batch for all; a failure is logged, not raised,
/// since the work that raised them is done and must not be undone for a report.
pub async fn send(queue: &impl crate::ports::Queue, events: Vec<Event>) {
    if events.is_empty() {
        return;
    }
    let messages: Vec<crate::message::QueueMessage> = events
        .into_iter()
        .map(|event| crate::message::QueueMessage::EventV1 { event })
        .collect();
    for r in queue.send_batch(&messages).await {
        if let Err(e) = r {
            tracing::error!(error = %e, "an operational event could not be queued");
        }
    }
}
