//! What a client may send as an event, `{id?, tenant_id?, event_type, data, source?,
//! timestamp?, expires_at? | ttl_seconds?, collapse_key?, ordering_key?}`, and how it becomes an
//! `Event` (whether the key sent may act for the tenant it names is the caller's to ask). Every problem is reported, each with its JSON pointer.

use crate::api::{object, opt_str, pointer, refuse_unknown_fields, req_str};
use crate::collapse::CollapseKey;
use crate::event::{ENVELOPE_VERSION, Event, EventType, RESERVED_PREFIX};
use crate::event_limits::too_deep;
use crate::expiry::MAX_TTL;
use crate::ids::EventId;
use crate::names::check_name;
use crate::problem::FieldProblem;
use crate::timestamp::Timestamp;
use serde_json::{Map, Value};

pub const FIELDS: &[&str] = &[
    "id",
    "tenant_id",
    "event_type",
    "data",
    "source",
    "timestamp",
    "expires_at",
    "ttl_seconds",
    "collapse_key",
    "ordering_key",
];
/// The most events one `POST /v1/events/batch` takes.
pub const MAX_BATCH_EVENTS: usize = 100;
pub const DEFAULT_SOURCE: &str = "api";
const MAX_SOURCE_LEN: usize = 256;

/// Parses one event at JSON pointer `at`. `None` when anything was wrong; the
/// problems are in `errors`.
pub fn parse_event(v: &Value, at: &str, now: Timestamp, errors: &mut Vec<FieldProblem>) -> Option<Event> {
    let before = errors.len();
    let obj = object(v, if at.is_empty() { "/" } else { at }, errors)?;
    refuse_unknown_fields(obj, FIELDS, at, errors);

    let id = match opt_str(obj, "id", at, errors) {
        None => Some(EventId::generate()),
        Some(raw) => EventId::parse(raw)
            .map_err(|e| errors.push(FieldProblem::new(pointer(at, "id"), e.to_string())))
            .ok(),
    };
    let tenant_id = crate::tenant::tenant_field(obj, "tenant_id", at, errors).unwrap_or_default();
    let event_type = req_str(obj, "event_type", at, errors).and_then(|raw| match EventType::parse(raw) {
        Ok(t) if t.is_reserved_in_any_case() => {
            errors.push(FieldProblem::new(
                pointer(at, "event_type"),
                format!("the `{RESERVED_PREFIX}` prefix is reserved for Hookline's own events"),
            ));
            None
        }
        Ok(t) => Some(t),
        Err(e) => {
            errors.push(FieldProblem::new(pointer(at, "event_type"), e.to_string()));
            None
        }
    });
    let data = obj.get("data").cloned();
    match &data {
        None => errors.push(FieldProblem::new(
            pointer(at, "data"),
            "is required (any JSON value)",
        )),
        Some(d) => errors.extend(too_deep(d, &pointer(at, "data"))),
    }
    let source = match opt_str(obj, "source", at, errors) {
        None => DEFAULT_SOURCE.to_owned(),
        Some(s) => match check_name(s, MAX_SOURCE_LEN) {
            Ok(()) => s.to_owned(),
            Err(e) => {
                errors.push(FieldProblem::new(pointer(at, "source"), e.to_string()));
                String::new()
            }
        },
    };
    let timestamp = match opt_str(obj, "timestamp", at, errors) {
        None => now,
        Some(raw) => Timestamp::parse_rfc3339(raw).unwrap_or_else(|_| {
            errors.push(FieldProblem::new(
                pointer(at, "timestamp"),
                format!("`{raw}` is not an RFC 3339 date-time such as 2026-01-31T12:00:00Z"),
            ));
            now
        }),
    };
    let expires_at = expiry(obj, at, now, errors);
    let collapse_key = opt_str(obj, "collapse_key", at, errors).and_then(|raw| {
        CollapseKey::parse(raw)
            .map_err(|e| errors.push(FieldProblem::new(pointer(at, "collapse_key"), e.to_string())))
            .ok()
    });
    let ordering_key = opt_str(obj, "ordering_key", at, errors).and_then(|raw| {
        crate::ordering::check_key(raw)
            .map(|()| raw)
            .map_err(|e| errors.push(FieldProblem::new(pointer(at, "ordering_key"), e)))
            .ok()
    });
    if errors.len() > before {
        return None;
    }
    let order = data
        .as_ref()
        .and_then(|d| crate::ordering::asked(crate::ordering::keys_of(d, ordering_key)));
    Some(Event {
        id: id?,
        tenant_id,
        event_type: event_type?,
        data: data?,
        timestamp,
        source,
        version: ENVELOPE_VERSION.to_owned(),
        expires_at,
        collapse_key,
        data_ref: None,
        order,
    })
}

/// When the event expires: `expires_at` (RFC 3339, after now), or `ttl_seconds` from
/// now; one of them, each within `MAX_TTL`.
fn expiry(
    obj: &Map<String, Value>,
    at: &str,
    now: Timestamp,
    errors: &mut Vec<FieldProblem>,
) -> Option<Timestamp> {
    let latest = now.saturating_add(MAX_TTL);
    let max = MAX_TTL.as_secs();
    let ttl = match obj.get("ttl_seconds") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64().filter(|s| (1..=max).contains(s)) {
            Some(s) => Some(now.saturating_add(std::time::Duration::from_secs(s))),
            None => {
                errors.push(FieldProblem::new(
                    pointer(at, "ttl_seconds"),
                    format!("must be a whole number of seconds from 1 to {max}"),
                ));
                None
            }
        },
    };
    let until = opt_str(obj, "expires_at", at, errors).and_then(|raw| {
        let problem = match Timestamp::parse_rfc3339(raw) {
            Err(_) => format!("`{raw}` is not an RFC 3339 date-time such as 2026-01-31T12:00:00Z"),
            // Sent already expired, it could never be delivered: more likely a clock or
            // unit mistake than an intent, so it is said rather than dropped quietly.
            Ok(t) if t <= now => format!("is not in the future (now is {now})"),
            Ok(t) if t > latest => format!("is more than {max} seconds from now"),
            Ok(t) => return Some(t),
        };
        errors.push(FieldProblem::new(pointer(at, "expires_at"), problem));
        None
    });
    if obj.get("ttl_seconds").is_some_and(|v| !v.is_null())
        && obj.get("expires_at").is_some_and(|v| !v.is_null())
    {
        errors.push(FieldProblem::new(
            pointer(at, "ttl_seconds"),
            "give `expires_at` or `ttl_seconds`, not both",
        ));
        return None;
    }
    ttl.or(until)
}

/// A batch body, `{"events": [...]}`: its events, each still to be parsed on its own
/// (`parse_event`), or the problems with the batch as a whole.
pub fn batch_events(v: &Value) -> Result<&[Value], Vec<FieldProblem>> {
    let mut errors = Vec::new();
    let Some(obj) = object(v, "/", &mut errors) else {
        return Err(errors);
    };
    refuse_unknown_fields(obj, &["events"], "", &mut errors);
    let problem = match obj.get("events") {
        Some(Value::Array(a)) if a.is_empty() => "must hold at least one event".to_owned(),
        Some(Value::Array(a)) if a.len() > MAX_BATCH_EVENTS => {
            format!("holds {} events; at most {MAX_BATCH_EVENTS} are allowed", a.len())
        }
        Some(Value::Array(a)) if errors.is_empty() => return Ok(a),
        Some(Value::Array(_)) => return Err(errors),
        Some(_) => "must be an array of events".to_owned(),
        None => "is required".to_owned(),
    };
    errors.push(FieldProblem::new("/events", problem));
    Err(errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Event, Vec<FieldProblem>> {
        let mut errors = Vec::new();
        parse_event(&v, "", Timestamp::from_unix_millis(1_000), &mut errors).ok_or(errors)
    }

    #[test]
    fn a_minimal_event_gets_an_id_a_timestamp_and_the_default_source() {
        let e = parse(json!({"event_type": "agent.run.started", "data": {"run_id": "r1"}})).unwrap();
        assert!(e.id.as_str().starts_with("evt_"));
        assert_eq!(e.timestamp, Timestamp::from_unix_millis(1_000));
        assert_eq!(e.source, "api");
        assert_eq!(e.version, "1");
    }

    #[test]
    fn client_ids_sources_and_timestamps_are_kept() {
        let e = parse(json!({
            "id": "run-1:started", "event_type": "a", "data": null,
            "source": "agent-7", "timestamp": "2026-01-31T12:00:00Z"
        }))
        .unwrap();
        assert_eq!(e.id.as_str(), "run-1:started");
        assert_eq!(e.source, "agent-7");
        assert_eq!(e.timestamp.to_rfc3339(), "2026-01-31T12:00:00Z");
        assert_eq!(e.data, Value::Null);
    }

    #[test]
    fn every_problem_is_reported_with_its_pointer() {
        let errors =
            parse(json!({"id": "a b", "event_type": "bad type", "extra": 1, "timestamp": "yesterday"}))
                .unwrap_err();
        let ptrs: Vec<_> = errors.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(ptrs, ["/extra", "/id", "/event_type", "/data", "/timestamp"]);
        let reserved = parse(json!({"event_type": "hookline.endpoint.disabled", "data": 1})).unwrap_err();
        assert!(reserved[0].detail.contains("reserved"), "{}", reserved[0].detail);
        let missing = parse(json!({"data": 1})).unwrap_err();
        assert_eq!(missing[0].pointer, "/event_type");
        assert_eq!(missing[0].detail, "is required");
        assert_eq!(parse(json!([1])).unwrap_err()[0].pointer, "/");
        assert_eq!(
            parse(json!({"event_type": 5, "data": 1})).unwrap_err()[0].detail,
            "must be a string"
        );
    }

    #[test]
    fn the_reserved_prefix_is_refused_in_any_case() {
        for t in [
            "hookline.endpoint.disabled",
            "Hookline.endpoint.disabled",
            "HOOKLINE.delivery.exhausted",
        ] {
            let errors = parse(json!({"event_type": t, "data": 1})).unwrap_err();
            assert_eq!(errors[0].pointer, "/event_type", "{t}");
            assert!(errors[0].detail.contains("reserved"), "{t}");
        }
        assert!(parse(json!({"event_type": "hooklinex.a", "data": 1})).is_ok());
    }

    #[test]
    fn an_event_may_expire_at_a_time_or_after_a_ttl_and_collapse_under_a_key() {
        let now = Timestamp::from_unix_millis(1_000);
        let e = parse(
            json!({"event_type": "agent_processing", "data": 1, "ttl_seconds": 60, "collapse_key": "run-1"}),
        )
        .unwrap();
        assert_eq!(e.expires_at, Some(Timestamp::from_unix_millis(61_000)));
        assert_eq!(e.collapse_key.as_ref().map(CollapseKey::as_str), Some("run-1"));
        let at = parse(json!({"event_type": "a", "data": 1, "expires_at": "1970-01-02T00:00:00Z"})).unwrap();
        assert_eq!(
            at.expires_at.map(|t| t.to_rfc3339()).as_deref(),
            Some("1970-01-02T00:00:00Z")
        );
        let plain = parse(json!({"event_type": "a", "data": 1})).unwrap();
        assert_eq!((plain.expires_at, plain.collapse_key.as_ref()), (None, None));
        assert!(
            !plain.envelope_json().contains("expires_at"),
            "absent from the body when not given"
        );
        assert!(now < at.expires_at.unwrap());
    }

    #[test]
    fn an_expiry_in_the_past_too_far_ahead_or_given_twice_is_refused() {
        let problems = |v: Value| {
            parse(v)
                .unwrap_err()
                .into_iter()
                .map(|p| (p.pointer, p.detail))
                .collect::<Vec<_>>()
        };
        let past = problems(json!({"event_type": "a", "data": 1, "expires_at": "1970-01-01T00:00:00Z"}));
        assert_eq!(past[0].0, "/expires_at");
        assert!(past[0].1.contains("not in the future"), "{}", past[0].1);
        for ttl in [
            json!(0),
            json!(-1),
            json!(1.5),
            json!("60"),
            json!(MAX_TTL.as_secs() + 1),
        ] {
            let p = problems(json!({"event_type": "a", "data": 1, "ttl_seconds": ttl}));
            assert_eq!(p[0].0, "/ttl_seconds", "{ttl}");
        }
        let both = problems(
            json!({"event_type": "a", "data": 1, "ttl_seconds": 5, "expires_at": "2026-01-31T12:00:00Z"}),
        );
        assert!(both.iter().any(|(_, d)| d.contains("not both")), "{both:?}");
        let key = problems(json!({"event_type": "a", "data": 1, "collapse_key": "a\u{0}b"}));
        assert_eq!(key[0].0, "/collapse_key");
        assert_eq!(
            problems(json!({"event_type": "a", "data": 1, "collapse_key": 7}))[0].1,
            "must be a string"
        );
    }

    #[test]
    fn a_source_with_control_characters_or_too_many_characters_is_refused() {
        let nul = parse(json!({"event_type": "a", "data": 1, "source": "agent\u{0}"})).unwrap_err();
        assert_eq!(nul[0].pointer, "/source");
        assert!(nul[0].detail.contains("control characters"));
        let wide = "é".repeat(MAX_SOURCE_LEN);
        assert_eq!(
            parse(json!({"event_type": "a", "data": 1, "source": wide}))
                .unwrap()
                .source
                .chars()
                .count(),
            MAX_SOURCE_LEN
        );
        assert!(
            parse(json!({"event_type": "a", "data": 1, "source": "é".repeat(MAX_SOURCE_LEN + 1)})).is_err()
        );
    }
}
