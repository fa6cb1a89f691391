//! What goes on the delivery queue: a versioned, tagged enum. A new shape gets a new
//! tag; old tags stay readable while messages carrying them may still be queued.

use crate::delivery::Delivery;
use crate::event::Event;
use crate::ids::EndpointId;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum QueueMessage {
    /// A new event to fan out to every matching endpoint.
    #[serde(rename = "event.v1")]
    EventV1 { event: Event },
    /// Several new events, each fanned out on its own: events sent in one batch
    /// travel packed, so that SQS's requests (and Lambda's invocations) are shared
    /// by up to `PACK_EVENTS` of them. A copy read again fans out only what did not.
    #[serde(rename = "events.v1")]
    EventsV1 { events: Vec<Event> },
    /// Wakes the delivery of `event` to `endpoint_id` for its next attempt. Only the
    /// message whose `wake` matches the delivery's may act; others are stale.
    #[serde(rename = "attempt.v1")]
    AttemptV1 {
        event: Event,
        endpoint_id: EndpointId,
        wake: String,
    },
    /// `event.v1` for an event whose data is checked in (`crate::claim_check`): a
    /// version that cannot fetch it leaves the message for one that can.
    #[serde(rename = "event.v2")]
    EventV2 { event: Event },
    /// `attempt.v1` for an event whose data is checked in.
    #[serde(rename = "attempt.v2")]
    AttemptV2 {
        event: Event,
        endpoint_id: EndpointId,
        wake: String,
    },
    /// A fact for one of Hookline's own events, by its ids: the delivery function makes
    /// the event from the store (`ops`), so a message cannot forge one.
    #[serde(rename = "report.v1")]
    ReportV1 { report: crate::ops::Report },
}

impl QueueMessage {
    /// The tenant whose message it is (a packed message's events share one); `None`
    /// for a report, which names its facts by id only.
    pub fn tenant(&self) -> Option<&crate::ids::TenantId> {
        match self {
            Self::EventV1 { event }
            | Self::EventV2 { event }
            | Self::AttemptV1 { event, .. }
            | Self::AttemptV2 { event, .. } => Some(&event.tenant_id),
            Self::EventsV1 { events } => events.first().map(|e| &e.tenant_id),
            Self::ReportV1 { .. } => None,
        }
    }
}

/// At most this many events share a message.
pub const PACK_EVENTS: usize = 10;
/// And their bodies at most this many bytes, so that ten packed messages still fit in
/// one SendMessageBatch (256 KiB).
pub const PACK_BYTES: usize = 24 * 1024;

/// Packs events, in order, into as few messages as the limits allow, each of one
/// tenant's events only; each message with the positions of its events. A lone event
/// goes as `event.v1`, one checked in as `event.v2`, always alone.
pub fn pack(events: Vec<(usize, Event)>) -> Vec<(Vec<usize>, QueueMessage)> {
    let mut out: Vec<(Vec<usize>, Vec<Event>)> = Vec::new();
    let mut bytes = 0;
    for (i, event) in events {
        let size = serde_json::to_string(&event).map_or(usize::MAX, |b| b.len());
        let fits = out.last().is_some_and(|(_, evs)| {
            event.data_ref.is_none()
                && evs.iter().all(|e| e.data_ref.is_none())
                && evs.len() < PACK_EVENTS
                && bytes + size <= PACK_BYTES
                && evs.first().is_some_and(|e| e.tenant_id == event.tenant_id)
        });
        if !fits {
            out.push((Vec::new(), Vec::new()));
            bytes = 0;
        }
        bytes += size;
        if let Some((at, evs)) = out.last_mut() {
            at.push(i);
            evs.push(event);
        }
    }
    out.into_iter()
        .map(|(at, mut events)| {
            let message = if events.len() == 1 {
                QueueMessage::event(events.remove(0))
            } else {
                QueueMessage::EventsV1 { events }
            };
            (at, message)
        })
        .collect()
}

/// The message types this version reads.
const KNOWN_TYPES: [&str; 6] = [
    "event.v1",
    "events.v1",
    "attempt.v1",
    "report.v1",
    "event.v2",
    "attempt.v2",
];

/// Whether a body that does not parse names a type this version does not know, as a
/// newer version's message would (during a rollout or after a rollback): such a message
/// is left on its queue for a version that knows it, never dropped as corrupt.
pub fn is_unknown_type(body: &str) -> bool {
    // Ours are `<name>.v<N>`; a type of another shape is not a version of ours.
    let versioned = |t: &str| {
        t.rsplit_once(".v").is_some_and(|(name, n)| {
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_' || b == b'.')
                && !n.is_empty()
                && n.bytes().all(|b| b.is_ascii_digit())
        })
    };
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("type")?
                .as_str()
                .map(|t| versioned(t) && !KNOWN_TYPES.contains(&t))
        })
        .unwrap_or(false)
}

impl QueueMessage {
    /// The message that makes a delivery's next attempt: it carries the delivery's wake
    /// token, so it is the one message that may act. `None` for a delivery with no
    /// attempt to come.
    pub fn next_attempt(event: Event, delivery: &Delivery) -> Option<Self> {
        Some(Self::attempt(
            event,
            delivery.endpoint_id.clone(),
            delivery.wake.clone()?,
        ))
    }

    /// The message that fans `event` out: `event.v2` when its data is checked in.
    pub fn event(event: Event) -> Self {
        if event.data_ref.is_some() {
            Self::EventV2 { event }
        } else {
            Self::EventV1 { event }
        }
    }

    /// The message that wakes a delivery of `event`: `attempt.v2` when its data is
    /// checked in.
    pub fn attempt(event: Event, endpoint_id: EndpointId, wake: String) -> Self {
        if event.data_ref.is_some() {
            Self::AttemptV2 {
                event,
                endpoint_id,
                wake,
            }
        } else {
            Self::AttemptV1 {
                event,
                endpoint_id,
                wake,
            }
        }
    }

    pub fn to_body(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_body(body: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EventId, EventType, Timestamp};

    #[test]
    fn event_messages_round_trip_with_their_version_tag() {
        let m = QueueMessage::EventV1 {
            event: Event {
                id: EventId::parse("evt_1").unwrap(),
                tenant_id: Default::default(),
                event_type: EventType::parse("a.b").unwrap(),
                data: serde_json::json!([1, 2]),
                timestamp: Timestamp::from_unix_millis(0),
                source: "api".into(),
                version: "1".into(),
                expires_at: None,
                collapse_key: None,
                data_ref: None,
                order: None,
            },
        };
        let body = m.to_body();
        assert!(body.starts_with(r#"{"type":"event.v1","#), "{body}");
        assert_eq!(QueueMessage::from_body(&body).unwrap(), m);
        assert!(QueueMessage::from_body(r#"{"type":"event.v9","event":{}}"#).is_err());
    }

    #[test]
    fn an_event_checked_in_travels_alone_under_the_v2_tags() {
        let mut big = event(1, 100_000);
        crate::claim_check::check_in(&mut big).expect("checked in");
        let packed = pack(vec![(0, event(0, 10)), (1, big.clone()), (2, event(2, 10))]);
        let sizes: Vec<usize> = packed.iter().map(|(at, _)| at.len()).collect();
        assert_eq!(sizes, vec![1, 1, 1]);
        let body = packed[1].1.to_body();
        assert!(body.starts_with(r#"{"type":"event.v2","#), "{body}");
        assert_eq!(QueueMessage::from_body(&body).unwrap(), packed[1].1);
        let wake = QueueMessage::attempt(big, EndpointId::generate(), "w".into()).to_body();
        assert!(wake.starts_with(r#"{"type":"attempt.v2","#), "{wake}");
        assert!(!is_unknown_type(&wake));
    }

    #[test]
    fn a_newer_versions_message_is_told_from_a_corrupt_one() {
        assert!(is_unknown_type(r#"{"type":"event.v3","event":{}}"#));
        assert!(
            !is_unknown_type(r#"{"type":"event.v1","event":{}}"#),
            "known, only broken"
        );
        assert!(!is_unknown_type("not json"));
        assert!(!is_unknown_type(r#"{"no":"type"}"#));
        assert!(!is_unknown_type(r#"{"type":"mystery"}"#), "not a version of ours");
    }

    fn event(i: usize, data_bytes: usize) -> Event {
        Event {
            id: EventId::parse(&format!("evt_{i}")).unwrap(),
            tenant_id: Default::default(),
            event_type: EventType::parse("a.b").unwrap(),
            data: serde_json::json!("x".repeat(data_bytes)),
            timestamp: Timestamp::from_unix_millis(0),
            source: "api".into(),
            version: "1".into(),
            expires_at: None,
            collapse_key: None,
            data_ref: None,
            order: None,
        }
    }

    #[test]
    fn small_events_travel_ten_to_a_message_in_order() {
        let packed = pack((0..23).map(|i| (i, event(i, 900))).collect());
        let sizes: Vec<usize> = packed.iter().map(|(at, _)| at.len()).collect();
        assert_eq!(sizes, vec![10, 10, 3]);
        assert_eq!(packed[1].0, (10..20).collect::<Vec<_>>());
        let QueueMessage::EventsV1 { events } = &packed[2].1 else {
            panic!("not packed: {:?}", packed[2].1)
        };
        assert_eq!(events[0].id.as_str(), "evt_20");
        let body = packed[0].1.to_body();
        assert!(body.starts_with(r#"{"type":"events.v1","#), "{body}");
        assert!(body.len() <= PACK_BYTES + 100);
        assert_eq!(QueueMessage::from_body(&body).unwrap(), packed[0].1);
    }

    #[test]
    fn large_events_travel_alone_as_event_v1() {
        let packed = pack(vec![
            (0, event(0, 20_000)),
            (1, event(1, 20_000)),
            (2, event(2, 100)),
        ]);
        let sizes: Vec<usize> = packed.iter().map(|(at, _)| at.len()).collect();
        assert_eq!(sizes, vec![1, 2]);
        assert!(matches!(packed[0].1, QueueMessage::EventV1 { .. }));
        assert!(matches!(packed[1].1, QueueMessage::EventsV1 { .. }));
    }

    #[test]
    fn a_packed_message_holds_one_tenants_events_and_names_that_tenant() {
        let acme = crate::ids::TenantId::parse("acme").unwrap();
        let mut events: Vec<(usize, Event)> = (0..5).map(|i| (i, event(i, 10))).collect();
        for (_, e) in &mut events[2..4] {
            e.tenant_id = acme.clone();
        }
        let packed = pack(events);
        let groups: Vec<(Vec<usize>, Option<&str>)> = packed
            .iter()
            .map(|(at, m)| (at.clone(), m.tenant().map(|t| t.as_str())))
            .collect();
        assert_eq!(
            groups,
            vec![
                (vec![0, 1], Some("default")),
                (vec![2, 3], Some("acme")),
                (vec![4], Some("default")),
            ]
        );
    }
}
