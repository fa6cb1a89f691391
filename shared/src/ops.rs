//! Hookline's own operational events, sent through the same pipeline as any event so
//! an operator can subscribe an endpoint to them (`hookline.*`).
//!
//! They cannot be forged: what travels on the queue is a *report* (`report.v1`), which
//! names a fact by its ids only, and the delivery function makes the event from what the
//! store holds, only when the store says so (the delivery failed, the endpoint is
//! disabled). An event message with a reserved type is not Hookline's, whoever put it on
//! the queue, and is kept as a dead letter instead of delivered. Event ids derive from
//! what they report, so reporting the same thing twice is delivered once.

use crate::delivery::{Delivery, DeliveryStatus};
use crate::endpoint::{Endpoint, EndpointStatus};
use crate::event::{ENVELOPE_VERSION, Event, EventType};
use crate::ids::{DeliveryId, EndpointId, EventId, TenantId};
use crate::ports::{DeliveryStore, EndpointStore, PortResult};
use crate::timestamp::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::json;

pub const DELIVERY_EXHAUSTED: &str = "hookline.delivery.exhausted";
pub const ENDPOINT_DISABLED: &str = "hookline.endpoint.disabled";
const SOURCE: &str = "hookline";

/// A fact worth an operational event, named by its ids.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Report {
    DeliveryExhausted { delivery_id: DeliveryId },
    EndpointDisabled { endpoint_id: EndpointId },
}

impl Report {
    /// The type of the event it becomes.
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::DeliveryExhausted { .. } => DELIVERY_EXHAUSTED,
            Self::EndpointDisabled { .. } => ENDPOINT_DISABLED,
        }
    }
}

/// A delivery gave up. Not reported for deliveries of Hookline's own events, so a
/// failing operator endpoint cannot feed itself.
pub fn delivery_exhausted(d: &Delivery) -> Option<Report> {
    (!d.event_type.is_reserved()).then(|| Report::DeliveryExhausted {
        delivery_id: d.id.clone(),
    })
}

/// An endpoint was disabled.
pub fn endpoint_disabled(e: &Endpoint) -> Report {
    Report::EndpointDisabled {
        endpoint_id: e.id.clone(),
    }
}

/// An event of the tenant whose delivery or endpoint it reports: it goes to that
/// tenant's endpoints only.
fn event(
    tenant_id: &TenantId,
    id: String,
    event_type: &str,
    data: serde_json::Value,
    at: Timestamp,
) -> Option<Event> {
    Some(Event {
        id: EventId::parse(&id).ok()?,
        tenant_id: tenant_id.clone(),
        event_type: EventType::parse(event_type).ok()?,
        data,
        timestamp: at,
        source: SOURCE.into(),
        version: ENVELOPE_VERSION.into(),
        expires_at: None,
        collapse_key: None,
        data_ref: None,
        order: None,
    })
}

/// The event of a delivery that the store holds as failed; `None` when it does not
/// (it never failed, was retried since, or is itself one of Hookline's).
pub fn exhausted_event(d: &Delivery) -> Option<Event> {
    if d.status != DeliveryStatus::Failed || d.event_type.is_reserved() {
        return None;
    }
    event(
        &d.tenant_id,
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
        d.updated_at,
    )
}

/// The event of an endpoint that the store holds as disabled; `None` when it is not
/// (enabled again since). Its id names the version that was disabled.
pub fn disabled_event(e: &Endpoint) -> Option<Event> {
    if e.status != EndpointStatus::Disabled {
        return None;
    }
    event(
        &e.tenant_id,
        format!("{ENDPOINT_DISABLED}:{}:v{}", e.id, e.version),
        ENDPOINT_DISABLED,
        json!({
            "endpoint_id": e.id,
            "name": e.name,
            "url": e.url,
            "reason": e.disabled_reason,
            "failing_since": e.failing_since,
        }),
        e.updated_at,
    )
}

/// An event message of Hookline's own type as the version before reports queued it
/// (`hookline.delivery.exhausted:<delivery id>`, `hookline.endpoint.disabled:<endpoint
/// id>:<ms>`): the report it stands for, so that a rollout loses none of them. Like any
/// report it becomes an event only when the store says so. `None` for anything else.
pub fn legacy_report(event: &Event) -> Option<Report> {
    let id = event.id.as_str();
    match event.event_type.as_str() {
        DELIVERY_EXHAUSTED => {
            let delivery = id.strip_prefix(DELIVERY_EXHAUSTED)?.strip_prefix(':')?;
            Some(Report::DeliveryExhausted {
                delivery_id: DeliveryId::parse(delivery).ok()?,
            })
        }
        ENDPOINT_DISABLED => {
            let rest = id.strip_prefix(ENDPOINT_DISABLED)?.strip_prefix(':')?;
            let (endpoint, _ms) = rest.rsplit_once(':')?;
            Some(Report::EndpointDisabled {
                endpoint_id: EndpointId::parse(endpoint).ok()?,
            })
        }
        _ => None,
    }
}

/// What an event message's event is, to the functions that read the queue.
#[derive(Debug, PartialEq)]
pub enum EventMessage {
    /// A client's event: fan it out.
    Client,
    /// One of Hookline's own, queued as an event by the version before reports.
    Report(Report),
    /// A reserved type that Hookline did not queue: kept as a dead letter with this
    /// reason, never delivered.
    Forged(String),
}

/// Sorts an event that arrived in an event message (`event.v1`, `events.v1`).
pub fn event_message(event: &Event) -> EventMessage {
    if !event.event_type.is_reserved_in_any_case() {
        return EventMessage::Client;
    }
    match legacy_report(event) {
        Some(report) => EventMessage::Report(report),
        None => EventMessage::Forged(format!(
            "forged: an event message with Hookline's reserved type `{}`; Hookline's own events travel as reports",
            event.event_type
        )),
    }
}

/// The event a report stands for, made from the store; `None` when the store does not
/// say it is so.
pub async fn resolve(
    store: &(impl DeliveryStore + EndpointStore),
    report: &Report,
) -> PortResult<Option<Event>> {
    let event = match report {
        Report::DeliveryExhausted { delivery_id } => store
            .find_delivery(delivery_id)
            .await?
            .and_then(|(d, _)| exhausted_event(&d)),
        Report::EndpointDisabled { endpoint_id } => store
            .get_endpoint(endpoint_id)
            .await?
            .and_then(|e| disabled_event(&e)),
    };
    if event.is_none() {
        tracing::info!(
            ?report,
            "a report of what the store does not hold; nothing to send"
        );
    }
    Ok(event)
}

/// Queues reports, one batch for all; a failure is logged, not raised, since the work
/// that raised them is done and must not be undone for a report.
pub async fn send(queue: &impl crate::ports::Queue, reports: Vec<Report>) {
    if reports.is_empty() {
        return;
    }
    let messages: Vec<crate::message::QueueMessage> = reports
        .into_iter()
        .map(|report| crate::message::QueueMessage::ReportV1 { report })
        .collect();
    for r in queue.send_batch(&messages).await {
        if let Err(e) = r {
            tracing::error!(error = %e, "an operational report could not be queued");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::EventTypeFilter;

    fn endpoint() -> Endpoint {
        Endpoint::new(
            "crm".into(),
            "https://crm.example.com/".into(),
            vec![EventTypeFilter::All],
            Timestamp::from_unix_millis(0),
        )
    }

    #[test]
    fn a_report_becomes_an_event_only_when_the_store_says_it_is_so() {
        let mut e = endpoint();
        assert!(
            disabled_event(&e).is_none(),
            "an active endpoint is reported disabled by no one"
        );
        e.status = EndpointStatus::Disabled;
        e.disabled_reason = Some("the endpoint answered 410 Gone".into());
        e.version = 4;
        let event = disabled_event(&e).unwrap();
        assert_eq!(event.event_type.as_str(), ENDPOINT_DISABLED);
        assert_eq!(event.id.as_str(), format!("{ENDPOINT_DISABLED}:{}:v4", e.id));
        assert_eq!(event.data["reason"], "the endpoint answered 410 Gone");
        assert_eq!(
            disabled_event(&e).unwrap(),
            event,
            "the same fact is the same event"
        );
    }

    #[test]
    fn an_event_message_queued_by_the_version_before_reports_is_read_as_its_report() {
        let mut e = endpoint();
        e.status = EndpointStatus::Disabled;
        let old = event(
            &TenantId::default(),
            format!("{ENDPOINT_DISABLED}:{}:1795935600000", e.id),
            ENDPOINT_DISABLED,
            json!({}),
            Timestamp::from_unix_millis(0),
        )
        .unwrap();
        assert_eq!(legacy_report(&old), Some(endpoint_disabled(&e)));
        let d = DeliveryId::generate_for(Timestamp::from_unix_millis(0), &e.id);
        let old = event(
            &TenantId::default(),
            format!("{DELIVERY_EXHAUSTED}:{d}"),
            DELIVERY_EXHAUSTED,
            json!({}),
            Timestamp::from_unix_millis(0),
        )
        .unwrap();
        assert_eq!(
            legacy_report(&old),
            Some(Report::DeliveryExhausted { delivery_id: d })
        );
        // Another id under a reserved type is no report.
        let forged = event(
            &TenantId::default(),
            "made-up".into(),
            ENDPOINT_DISABLED,
            json!({}),
            Timestamp::from_unix_millis(0),
        )
        .unwrap();
        assert_eq!(legacy_report(&forged), None);
    }

    #[test]
    fn reports_travel_as_ids_only() {
        let r = endpoint_disabled(&endpoint());
        let body = serde_json::to_string(&r).unwrap();
        assert!(
            body.starts_with(r#"{"kind":"endpoint_disabled","endpoint_id":"ep_"#),
            "{body}"
        );
        assert_eq!(serde_json::from_str::<Report>(&body).unwrap(), r);
        assert!(
            serde_json::from_str::<Report>(
                r#"{"kind":"endpoint_disabled","endpoint_id":"ep_1","reason":"x"}"#
            )
            .is_err()
        );
    }
}
