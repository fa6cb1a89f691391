//! Events: what an agent sends, and the envelope every endpoint receives.

use crate::ids::{EventId, TenantId};
use crate::timestamp::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;
use thiserror::Error;

/// The envelope's schema version, sent as `version` in every delivered body.
pub const ENVELOPE_VERSION: &str = "1";

/// The largest envelope stored in one DynamoDB item (at most 400 KB) beside its
/// fan-out bookkeeping; larger events travel and are stored checked in
/// (`crate::claim_check`), far below it.
pub const MAX_STORED_BYTES: usize = 350 * 1024;

/// DynamoDB's item size limit, which the in-memory store enforces too.
pub const STORE_ITEM_LIMIT: usize = 400 * 1024;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum EventTypeError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {max} characters long")]
    TooLong { max: usize },
    #[error(
        "must be dot-separated names of letters, digits, `_` or `-` (like `agent.run.completed` or `node_started`); `{0}` is not"
    )]
    Malformed(String),
}

/// A well-formed event type: dot-separated segments of `[A-Za-z0-9_-]`,
/// e.g. `agent.run.completed` or `agent_invocation_started`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EventType(String);

impl EventType {
    pub const MAX_LEN: usize = 128;

    pub fn parse(s: &str) -> Result<Self, EventTypeError> {
        if s.is_empty() {
            return Err(EventTypeError::Empty);
        }
        if s.len() > Self::MAX_LEN {
            return Err(EventTypeError::TooLong { max: Self::MAX_LEN });
        }
        let segment_ok = |seg: &str| {
            !seg.is_empty()
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        };
        if !s.split('.').all(segment_ok) {
            return Err(EventTypeError::Malformed(s.to_owned()));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Hookline's own operational events (`hookline.…`): never sent by clients, and
    /// matched only by filters that name them.
    pub fn is_reserved(&self) -> bool {
        self.0.starts_with(RESERVED_PREFIX)
    }

    /// `Hookline.x` and `HOOKLINE.x` too: types match by case, but a receiver that
    /// reads them without it must not be able to take a client's event for Hookline's.
    pub fn is_reserved_in_any_case(&self) -> bool {
        self.0
            .get(..RESERVED_PREFIX.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(RESERVED_PREFIX))
    }
}

/// The prefix of Hookline's own event types.
pub const RESERVED_PREFIX: &str = "hookline.";

impl TryFrom<String> for EventType {
    type Error = EventTypeError;
    fn try_from(s: String) -> Result<Self, EventTypeError> {
        Self::parse(&s)
    }
}

impl From<EventType> for String {
    fn from(t: EventType) -> String {
        t.0
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An accepted event, as queued, stored and delivered. Serialises to exactly the
/// delivered body: `{"id","event_type","data","timestamp","source","version"}`,
/// `tenant_id` after `id` when its tenant is not `default` (so that the default
/// tenant's bodies, messages and stored items are byte for byte what they were before
/// tenants, and those read back from before are the default tenant's), and
/// `expires_at` and `collapse_key` at the end when the sender gave them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: EventId,
    #[serde(default, skip_serializing_if = "TenantId::is_default")]
    pub tenant_id: TenantId,
    pub event_type: EventType,
    pub data: serde_json::Value,
    pub timestamp: Timestamp,
    pub source: String,
    pub version: String,
    /// When it stops being worth sending (`crate::expiry`); sent to receivers too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    /// Events under one key are versions of one thing: a newer one supersedes an older
    /// one not yet delivered (`crate::collapse`); sent to receivers too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collapse_key: Option<crate::collapse::CollapseKey>,
    /// Where `data` is when it was too large to travel (`crate::claim_check`): `data`
    /// is then `null`. Never part of a body sent: an endpoint gets the data whole or a
    /// `data_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_ref: Option<crate::claim_check::DataRef>,
    /// Its places in ordered lanes (`crate::ordering`), given at ingest; sent to
    /// receivers too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<crate::ordering::Order>,
}

/// Where an event is found: event ids are unique within their tenant, so the same id
/// sent for two tenants is two events.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventKey {
    pub tenant_id: TenantId,
    pub id: EventId,
}

impl EventKey {
    pub fn new(tenant_id: TenantId, id: EventId) -> Self {
        Self { tenant_id, id }
    }

    /// The key of an event of the built-in `default` tenant.
    pub fn of_default(id: &EventId) -> Self {
        Self::new(TenantId::default(), id.clone())
    }
}

impl Event {
    pub fn key(&self) -> EventKey {
        EventKey::new(self.tenant_id.clone(), self.id.clone())
    }

    /// The event as it travels and is stored; for an event not checked in
    /// (`data_ref` is `None`), the exact bytes POSTed to endpoints (and signed).
    pub fn envelope_json(&self) -> String {
        // Serialising plain data with string keys cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_are_dot_separated_safe_names() {
        for ok in [
            "agent.run.completed",
            "node_started",
            "tool-failed",
            "a",
            "A.b_1.c-2",
        ] {
            assert!(EventType::parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(EventType::parse(""), Err(EventTypeError::Empty));
        for bad in [".a", "a.", "a..b", "a b", "agent.*", "a/b", "é"] {
            assert!(
                matches!(EventType::parse(bad), Err(EventTypeError::Malformed(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            EventType::parse(&"a".repeat(129)),
            Err(EventTypeError::TooLong { .. })
        ));
    }

    #[test]
    fn the_envelope_has_exactly_the_contract_fields() {
        let mut e = Event {
            id: EventId::parse("evt_1").unwrap(),
            tenant_id: TenantId::default(),
            event_type: EventType::parse("agent.run.completed").unwrap(),
            data: serde_json::json!({"ok": true}),
            timestamp: Timestamp::from_unix_millis(1_700_000_000_000),
            source: "api".into(),
            version: ENVELOPE_VERSION.into(),
            expires_at: None,
            collapse_key: None,
            data_ref: None,
            order: None,
        };
        let v: serde_json::Value = serde_json::from_str(&e.envelope_json()).unwrap();
        let mut keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            ["data", "event_type", "id", "source", "timestamp", "version"]
        );
        assert_eq!(v["timestamp"], "2023-11-14T22:13:20Z");
        e.tenant_id = TenantId::parse("cus_42").unwrap();
        let body = e.envelope_json();
        assert!(
            body.starts_with(r#"{"id":"evt_1","tenant_id":"cus_42","event_type""#),
            "{body}"
        );
        assert_eq!(serde_json::from_str::<Event>(&body).unwrap(), e);
    }
}
