//! Collapsing: events that share a `collapse_key` are versions of one thing (a run's
//! progress, say), and an endpoint wants the newest, not every one. A newer event with
//! the key supersedes an older one not yet delivered to the same endpoint: the older
//! delivery ends `superseded` instead of its next attempt, and only the newest is sent.
//!
//! "Newer" is by the event's `timestamp` (Hookline's time of receipt unless the sender
//! gave one), then by id, so that every worker ranks two events the same way whatever
//! order the queue brings them in. The store keeps each (endpoint, key)'s newest rank,
//! raised by each fan-out and never lowered.

use crate::event::Event;
use crate::names::{NameError, check_name};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A collapse key as sent: 1 to 256 characters, no control characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CollapseKey(String);

impl CollapseKey {
    pub const MAX_LEN: usize = 256;

    pub fn parse(s: &str) -> Result<Self, NameError> {
        check_name(s, Self::MAX_LEN)?;
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CollapseKey {
    type Error = NameError;
    fn try_from(s: String) -> Result<Self, NameError> {
        check_name(&s, Self::MAX_LEN)?;
        Ok(Self(s))
    }
}

impl From<CollapseKey> for String {
    fn from(k: CollapseKey) -> String {
        k.0
    }
}

impl fmt::Display for CollapseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An event's place among the events of its key: `<timestamp ms, 16 digits>#<id>`,
/// which sorts as strings in the order it ranks.
pub fn rank(event: &Event) -> String {
    format!("{:016}#{}", event.timestamp.unix_millis().max(0), event.id)
}

/// Whether the event ranked `own` is superseded, the newest of its key being `newest`.
pub fn is_superseded(own: &str, newest: Option<&str>) -> bool {
    newest.is_some_and(|n| n > own)
}

/// Why a delivery ended `superseded`, naming the event that did it.
pub fn reason(key: &CollapseKey, newest: &str) -> String {
    let by = newest.split_once('#').map_or(newest, |(_, id)| id);
    format!("superseded by event `{by}`, newer under collapse key `{key}`")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventType;
    use crate::ids::EventId;
    use crate::timestamp::Timestamp;

    fn event(id: &str, at: i64) -> Event {
        Event {
            id: EventId::parse(id).unwrap(),
            tenant_id: Default::default(),
            event_type: EventType::parse("agent_processing").unwrap(),
            data: serde_json::json!({}),
            timestamp: Timestamp::from_unix_millis(at),
            source: "api".into(),
            version: "1".into(),
            expires_at: None,
            collapse_key: Some(CollapseKey::parse("run-1").unwrap()),
            data_ref: None,
            order: None,
        }
    }

    #[test]
    fn a_later_timestamp_ranks_newer_whatever_the_ids() {
        let (older, newer) = (rank(&event("zzz", 1_000)), rank(&event("aaa", 9_000)));
        assert!(is_superseded(&older, Some(&newer)));
        assert!(!is_superseded(&newer, Some(&older)));
        // 9 s and 10 s: the digits are padded, so the strings sort as the times do.
        assert!(rank(&event("a", 9_000)) < rank(&event("a", 10_000)));
    }

    #[test]
    fn the_same_time_ranks_by_id_and_an_event_never_supersedes_itself() {
        let (a, b) = (rank(&event("evt_1", 5)), rank(&event("evt_2", 5)));
        assert!(is_superseded(&a, Some(&b)));
        assert!(!is_superseded(&a, Some(&a)));
        assert!(!is_superseded(&a, None));
    }

    #[test]
    fn the_reason_names_the_newer_event() {
        let key = CollapseKey::parse("run-1").unwrap();
        assert_eq!(
            reason(&key, &rank(&event("evt_9", 5))),
            "superseded by event `evt_9`, newer under collapse key `run-1`"
        );
    }

    #[test]
    fn keys_are_short_printable_text() {
        assert!(CollapseKey::parse("run-1:progress").is_ok());
        assert!(CollapseKey::parse("").is_err());
        assert!(CollapseKey::parse("a\nb").is_err());
        assert!(CollapseKey::parse(&"k".repeat(257)).is_err());
    }
}
