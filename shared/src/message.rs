//! What goes on the delivery queue: a versioned, tagged enum. A new shape gets a new
//! tag; old tags stay readable while messages carrying them may still be queued.

use crate::event::Event;
use crate::ids::EndpointId;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum QueueMessage {
    /// A new event to fan out to every matching endpoint.
    #[serde(rename = "event.v1")]
    EventV1 { event: Event },
    /// Wakes the delivery of `event` to `endpoint_id` for its next attempt. Only the
    /// message whose `wake` matches the delivery's may act; others are stale.
    #[serde(rename = "attempt.v1")]
    AttemptV1 {
        event: Event,
        endpoint_id: EndpointId,
        wake: String,
    },
}

impl QueueMessage {
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
                event_type: EventType::parse("a.b").unwrap(),
                data: serde_json::json!([1, 2]),
                timestamp: Timestamp::from_unix_millis(0),
                source: "api".into(),
                version: "1".into(),
            },
        };
        let body = m.to_body();
        assert!(body.starts_with(r#"{"type":"event.v1","#), "{body}");
        assert_eq!(QueueMessage::from_body(&body).unwrap(), m);
        assert!(QueueMessage::from_body(r#"{"type":"event.v9","event":{}}"#).is_err());
    }
}
