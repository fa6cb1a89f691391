//! Large event data by claim-check: an event whose envelope is over
//! [`CHECK_IN_BYTES`] leaves its `data` in the data store (S3) at ingest, and travels
//! (on the queue, in the event's table item) with a [`DataRef`] in its place. Each
//! endpoint takes bodies up to its `max_body_bytes`: below it the event is sent whole,
//! its data fetched back; above it a thin event is sent, whose `data` is replaced by
//! `data_url` (a short-lived presigned GET, made for each attempt), `data_size` and
//! `data_sha256`. Both are signed as any body is.
//!
//! Why 64 KiB: it is the least an endpoint may take, so that an event not checked in
//! fits every endpoint whole; and above it, DynamoDB's write units (one per KB, twice
//! over for the event item and the claim) cost more than one S3 PUT.

use crate::event::Event;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// An envelope larger than this has its data checked in.
pub const CHECK_IN_BYTES: usize = 64 * 1024;
/// The largest body Hookline takes for one event (`POST /v1/events`, each event of a
/// batch, a LangGraph run's webhook).
pub const MAX_EVENT_BYTES: usize = 5 * 1024 * 1024;
/// The least, default and most an endpoint may set as its `max_body_bytes`.
pub const MIN_ENDPOINT_BODY_BYTES: u32 = CHECK_IN_BYTES as u32;
pub const DEFAULT_ENDPOINT_BODY_BYTES: u32 = 256 * 1024;
/// A little over the largest event, so that any accepted event can be sent whole.
pub const MAX_ENDPOINT_BODY_BYTES: u32 = (MAX_EVENT_BYTES + 64 * 1024) as u32;
/// How long a `data_url` can be fetched: made afresh for every attempt, so a receiver
/// that could not fetch it answers non-2xx and the retry brings a new one. Short,
/// because it is signed with the function's temporary credentials.
pub const DATA_URL_LIFETIME: Duration = Duration::from_secs(3600);

/// How long a data URL made at `now` lasts: [`DATA_URL_LIFETIME`], or less when the
/// event expires sooner (never less than a second).
pub fn url_lifetime(event: &Event, now: crate::timestamp::Timestamp) -> Duration {
    let left = event.expires_at.map_or(DATA_URL_LIFETIME, |at| at.since(now));
    left.clamp(Duration::from_secs(1), DATA_URL_LIFETIME)
}

/// Where an event's data is, and what it is: `size` bytes of JSON whose SHA-256 is
/// `sha256` (lowercase hex), at `key` in the data store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataRef {
    pub key: String,
    pub size: u64,
    pub sha256: String,
}

/// The data to store for an event whose envelope is too large to travel whole: its
/// `data` is taken out (left `null`) and the event names where it will be. `None`, and
/// the event unchanged, when it is small enough or checked in already.
pub fn check_in(event: &mut Event) -> Option<Vec<u8>> {
    if event.data_ref.is_some() || event.envelope_json().len() <= CHECK_IN_BYTES {
        return None;
    }
    // Serialising a `Value` cannot fail.
    let bytes = serde_json::to_vec(&event.data).unwrap_or_default();
    let sha256 = hex::encode(Sha256::digest(&bytes));
    // Named by its digest, under its tenant: tenant ids are `[A-Za-z0-9_-]` (an event
    // id may be `..`, which a URL path would not keep), and a different body sent under
    // a taken id never overwrites the first one's data.
    let key = format!("events/{}/{sha256}.json", event.tenant_id);
    event.data = serde_json::Value::Null;
    event.data_ref = Some(DataRef {
        key,
        size: bytes.len() as u64,
        sha256,
    });
    Some(bytes)
}

/// How an endpoint gets an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// As it travels: its data inline.
    Inline,
    /// Checked in, and fetched back to be sent whole.
    Whole,
    /// Checked in, and sent with `data_url` in place of `data`.
    Thin,
}

/// The form an endpoint taking bodies up to `max_body_bytes` gets `event` in.
pub fn form_for(event: &Event, max_body_bytes: u32) -> Form {
    match &event.data_ref {
        None => Form::Inline,
        Some(r) if whole_len(event, r) <= max_body_bytes as usize => Form::Whole,
        Some(_) => Form::Thin,
    }
}

/// The length of the whole envelope: the travelling one with `data` (`null`) in
/// place of the data, less the reference.
fn whole_len(event: &Event, r: &DataRef) -> usize {
    let mut bare = event.clone();
    bare.data_ref = None;
    (bare.envelope_json().len() - "null".len()).saturating_add(r.size as usize)
}

/// Why fetched data cannot be sent as the event's.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("the stored data's digest is not the event's")]
    Digest,
    #[error("the stored data is not JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// A body as sent: the event's fields in the envelope's order, with its data inline
/// (as the stored bytes, never parsed: a 5 MiB state is not rebuilt as a tree) or in
/// its place where to fetch it.
#[derive(Serialize)]
struct Sent<'a> {
    id: &'a crate::ids::EventId,
    #[serde(skip_serializing_if = "crate::ids::TenantId::is_default")]
    tenant_id: &'a crate::ids::TenantId,
    event_type: &'a crate::event::EventType,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a serde_json::value::RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data_size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data_sha256: Option<&'a str>,
    timestamp: crate::timestamp::Timestamp,
    source: &'a str,
    version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<crate::timestamp::Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    collapse_key: Option<&'a crate::collapse::CollapseKey>,
    #[serde(skip_serializing_if = "Option::is_none")]
    order: Option<&'a crate::ordering::Order>,
}

impl<'a> Sent<'a> {
    fn of(event: &'a Event) -> Self {
        Self {
            id: &event.id,
            tenant_id: &event.tenant_id,
            event_type: &event.event_type,
            data: None,
            data_url: None,
            data_size: None,
            data_sha256: None,
            timestamp: event.timestamp,
            source: &event.source,
            version: &event.version,
            expires_at: event.expires_at,
            collapse_key: event.collapse_key.as_ref(),
            order: event.order.as_ref(),
        }
    }

    fn json(&self) -> String {
        // Serialising ids, strings and checked JSON cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The whole envelope of a checked-in event, from its fetched data: byte for byte the
/// envelope it had before it was checked in.
pub fn whole(event: &Event, fetched: &[u8]) -> Result<String, DataError> {
    if event
        .data_ref
        .as_ref()
        .is_some_and(|r| hex::encode(Sha256::digest(fetched)) != r.sha256)
    {
        return Err(DataError::Digest);
    }
    let data: &serde_json::value::RawValue = serde_json::from_slice(fetched)?;
    Ok(Sent {
        data: Some(data),
        ..Sent::of(event)
    }
    .json())
}

/// The thin envelope of a checked-in event: every field as in the whole one, `data`
/// replaced by where to fetch it (`url`), its size and its SHA-256.
pub fn thin(event: &Event, url: &str) -> String {
    let Some(r) = &event.data_ref else {
        return event.envelope_json();
    };
    Sent {
        data_url: Some(url),
        data_size: Some(r.size),
        data_sha256: Some(&r.sha256),
        ..Sent::of(event)
    }
    .json()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EventId, EventType, Timestamp};
    use serde_json::{Value, json};

    fn event(data: Value) -> Event {
        Event {
            id: EventId::parse("evt_big").unwrap(),
            tenant_id: crate::TenantId::parse("acme").unwrap(),
            event_type: EventType::parse("run.completed").unwrap(),
            data,
            timestamp: Timestamp::from_unix_millis(1_700_000_000_000),
            source: "langgraph".into(),
            version: "1".into(),
            expires_at: None,
            collapse_key: None,
            data_ref: None,
            order: None,
        }
    }

    fn large() -> Value {
        json!({"values": {"messages": ["é \"quoted\" ".repeat(8_000)]}, "n": 1.5})
    }

    #[test]
    fn a_small_event_travels_whole_and_every_endpoint_gets_it_inline() {
        let mut e = event(json!({"ok": true}));
        assert_eq!(check_in(&mut e), None);
        assert_eq!(e.data, json!({"ok": true}));
        assert_eq!(form_for(&e, MIN_ENDPOINT_BODY_BYTES), Form::Inline);
    }

    #[test]
    fn a_large_events_data_is_checked_in_and_named_by_its_digest() {
        let mut e = event(large());
        let before = e.envelope_json();
        let bytes = check_in(&mut e).expect("checked in");
        assert_eq!(e.data, Value::Null);
        let r = e.data_ref.clone().unwrap();
        assert_eq!(r.size as usize, bytes.len());
        assert_eq!(r.sha256, hex::encode(Sha256::digest(&bytes)));
        assert_eq!(r.key, format!("events/acme/{}.json", r.sha256));
        assert!(e.envelope_json().len() < 1024, "it travels small");
        assert_eq!(check_in(&mut e), None, "once");
        // THEN the whole envelope made from the fetched data is the one it had
        assert_eq!(whole(&e, &bytes).unwrap(), before);
        assert_eq!(whole_len(&e, &r), before.len());
    }

    #[test]
    fn an_endpoint_gets_the_whole_event_up_to_its_limit_and_a_thin_one_above_it() {
        let mut e = event(large());
        let len = e.envelope_json().len() as u32;
        check_in(&mut e).unwrap();
        assert_eq!(form_for(&e, len), Form::Whole);
        assert_eq!(form_for(&e, len - 1), Form::Thin);
    }

    #[test]
    fn the_thin_event_replaces_data_with_its_url_size_and_digest() {
        let mut e = event(large());
        e.collapse_key = Some(crate::collapse::CollapseKey::parse("run:1").unwrap());
        check_in(&mut e).unwrap();
        let r = e.data_ref.clone().unwrap();
        let body = thin(&e, "https://bucket.example/k?sig=1");
        assert!(
            body.starts_with(r#"{"id":"evt_big","tenant_id":"acme","event_type":"run.completed","data_url":"https://bucket.example/k?sig=1","data_size":"#),
            "{body}"
        );
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["data_size"], json!(r.size));
        assert_eq!(v["data_sha256"], json!(r.sha256));
        assert_eq!(v["collapse_key"], "run:1");
        assert!(v.get("data").is_none() && v.get("data_ref").is_none());
    }

    #[test]
    fn a_data_url_lasts_an_hour_or_until_the_event_expires() {
        let now = Timestamp::from_unix_millis(1_700_000_000_000);
        let mut e = event(json!(1));
        assert_eq!(url_lifetime(&e, now), DATA_URL_LIFETIME);
        e.expires_at = Some(now.saturating_add(Duration::from_secs(90)));
        assert_eq!(url_lifetime(&e, now), Duration::from_secs(90));
        e.expires_at = Some(now);
        assert_eq!(url_lifetime(&e, now), Duration::from_secs(1));
    }

    #[test]
    fn fetched_data_that_is_not_the_events_is_refused() {
        let mut e = event(large());
        check_in(&mut e).unwrap();
        assert!(matches!(whole(&e, b"{\"other\":1}"), Err(DataError::Digest)));
    }
}
