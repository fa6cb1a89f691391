//! What an operator may send to register an endpoint, and how it becomes an `Endpoint`.
//! Every problem is reported at once, each with its JSON pointer.

use crate::api::{object, opt_str, pointer, refuse_unknown_fields, req_str};
use crate::endpoint::*;
use crate::ids::EndpointId;
use crate::problem::FieldProblem;
use crate::signing::EndpointSecret;
use crate::ssrf::SsrfPolicy;
use crate::timestamp::Timestamp;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

pub const FIELDS: &[&str] = &[
    "name",
    "url",
    "event_types",
    "secret",
    "headers",
    "timeout_seconds",
    "max_attempts",
    "retry_schedule",
];
/// The longest wait an endpoint's own schedule may ask for between two attempts.
pub const MAX_SCHEDULED_WAIT_SECONDS: u64 = 24 * 3600;
const MAX_NAME_LEN: usize = 128;

fn int_in(
    obj: &serde_json::Map<String, Value>,
    key: &str,
    range: std::ops::RangeInclusive<u32>,
    default: u32,
    errors: &mut Vec<FieldProblem>,
) -> u32 {
    match obj.get(key) {
        None | Some(Value::Null) => default,
        Some(v) => match v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| range.contains(n))
        {
            Some(n) => n,
            None => {
                errors.push(FieldProblem::new(
                    pointer("", key),
                    format!("must be a whole number from {} to {}", range.start(), range.end()),
                ));
                default
            }
        },
    }
}

/// Parses a new endpoint. The URL's form and literal addresses are checked here; a
/// host name still has to be resolved and checked (`SsrfPolicy::resolve_destination`).
pub fn parse_new_endpoint(
    v: &Value,
    policy: &SsrfPolicy,
    now: Timestamp,
) -> Result<Endpoint, Vec<FieldProblem>> {
    let mut errors = Vec::new();
    let Some(obj) = object(v, "/", &mut errors) else {
        return Err(errors);
    };
    refuse_unknown_fields(obj, FIELDS, "", &mut errors);

    let name = req_str(obj, "name", "", &mut errors).unwrap_or_default();
    if obj.contains_key("name") && (name.trim().is_empty() || name.len() > MAX_NAME_LEN) {
        errors.push(FieldProblem::new(
            "/name",
            format!("must be 1 to {MAX_NAME_LEN} characters long"),
        ));
    }
    let url = req_str(obj, "url", "", &mut errors).unwrap_or_default();
    if let (false, Err(e)) = (url.is_empty(), policy.parse_destination(url)) {
        errors.push(FieldProblem::new("/url", format!("the URL {e}")));
    }
    let event_types = match obj.get("event_types") {
        None | Some(Value::Null) => vec![EventTypeFilter::All],
        Some(Value::Array(a)) if a.is_empty() || a.len() > MAX_EVENT_TYPE_FILTERS => {
            errors.push(FieldProblem::new(
                "/event_types",
                format!("must hold 1 to {MAX_EVENT_TYPE_FILTERS} entries"),
            ));
            Vec::new()
        }
        Some(Value::Array(a)) => {
            let mut out: Vec<EventTypeFilter> = Vec::new();
            for (i, v) in a.iter().enumerate() {
                match v.as_str().map(EventTypeFilter::parse) {
                    Some(Ok(f)) if !out.contains(&f) => out.push(f),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        errors.push(FieldProblem::new(format!("/event_types/{i}"), e.to_string()))
                    }
                    None => errors.push(FieldProblem::new(format!("/event_types/{i}"), "must be a string")),
                }
            }
            out
        }
        Some(_) => {
            errors.push(FieldProblem::new(
                "/event_types",
                "must be an array of event types",
            ));
            Vec::new()
        }
    };
    let secret = match opt_str(obj, "secret", "", &mut errors) {
        None => EndpointSecret::generate(),
        Some(s) => EndpointSecret::parse(s).unwrap_or_else(|e| {
            errors.push(FieldProblem::new("/secret", e.to_string()));
            EndpointSecret::generate()
        }),
    };
    let headers = match obj.get("headers") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(m)) => {
            let mut raw = BTreeMap::new();
            for (k, v) in m {
                match v.as_str() {
                    Some(s) => {
                        raw.insert(k.clone(), s.to_owned());
                    }
                    None => errors.push(FieldProblem::new(pointer("/headers", k), "must be a string")),
                }
            }
            check_custom_headers(raw).unwrap_or_else(|e| {
                errors.push(FieldProblem::new("/headers", e.to_string()));
                BTreeMap::new()
            })
        }
        Some(_) => {
            errors.push(FieldProblem::new(
                "/headers",
                "must be an object of header names to values",
            ));
            BTreeMap::new()
        }
    };
    let timeout_seconds = int_in(
        obj,
        "timeout_seconds",
        1..=MAX_TIMEOUT_SECONDS,
        DEFAULT_TIMEOUT_SECONDS,
        &mut errors,
    );
    let mut max_attempts = int_in(
        obj,
        "max_attempts",
        1..=MAX_MAX_ATTEMPTS,
        DEFAULT_MAX_ATTEMPTS,
        &mut errors,
    );
    let retry_schedule = match obj.get("retry_schedule") {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) if !a.is_empty() && a.len() < MAX_MAX_ATTEMPTS as usize => {
            if obj.get("max_attempts").is_some_and(|v| !v.is_null()) {
                errors.push(FieldProblem::new(
                    "/retry_schedule",
                    "give either max_attempts or retry_schedule: a schedule of n waits makes n + 1 attempts",
                ));
            }
            let mut waits = Vec::new();
            for (i, v) in a.iter().enumerate() {
                match v.as_u64().filter(|s| *s <= MAX_SCHEDULED_WAIT_SECONDS) {
                    Some(secs) => waits.push(Duration::from_secs(secs)),
                    None => errors.push(FieldProblem::new(
                        format!("/retry_schedule/{i}"),
                        format!("must be whole seconds from 0 to {MAX_SCHEDULED_WAIT_SECONDS}"),
                    )),
                }
            }
            max_attempts = u32::try_from(waits.len() + 1).unwrap_or(MAX_MAX_ATTEMPTS);
            Some(waits)
        }
        Some(_) => {
            errors.push(FieldProblem::new(
                "/retry_schedule",
                format!("must be a list of 1 to {} waits in seconds", MAX_MAX_ATTEMPTS - 1),
            ));
            None
        }
    };

    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Endpoint {
        id: EndpointId::generate(),
        name: name.trim().to_owned(),
        url: url.to_owned(),
        event_types,
        headers,
        timeout_seconds,
        max_attempts,
        status: EndpointStatus::Active,
        disabled_reason: None,
        retry_schedule,
        failing_since: None,
        secret,
        created_at: now,
        updated_at: now,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Endpoint, Vec<FieldProblem>> {
        parse_new_endpoint(&v, &SsrfPolicy::default(), Timestamp::from_unix_millis(0))
    }

    #[test]
    fn defaults_fill_what_is_left_out() {
        let e = parse(json!({"name": "crm", "url": "https://example.com/hook"})).unwrap();
        assert_eq!(e.event_types, vec![EventTypeFilter::All]);
        assert_eq!((e.timeout_seconds, e.max_attempts), (15, 8));
        assert!(e.secret.expose().starts_with("whsec_"));
        assert!(e.id.as_str().starts_with("ep_"));
    }

    #[test]
    fn a_given_secret_is_kept() {
        let e = parse(json!({"name": "a", "url": "https://example.com", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}))
            .unwrap();
        assert_eq!(e.secret.expose(), "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    }

    #[test]
    fn an_own_retry_schedule_sets_the_attempts() {
        let e = parse(json!({"name": "a", "url": "https://example.com", "retry_schedule": [1, 60, 3600]}))
            .unwrap();
        assert_eq!(e.max_attempts, 4);
        assert_eq!(e.retry_schedule.unwrap()[2], Duration::from_secs(3600));
        let both = parse(
            json!({"name": "a", "url": "https://example.com", "retry_schedule": [1], "max_attempts": 3}),
        );
        assert_eq!(both.unwrap_err()[0].pointer, "/retry_schedule");
    }

    #[test]
    fn every_bad_field_is_reported() {
        let errors = parse(json!({
            "name": "", "url": "http://10.0.0.1/", "event_types": ["ok", "bad*"],
            "secret": "nope", "headers": {"webhook-id": "x"}, "timeout_seconds": 0,
            "max_attempts": 99, "colour": "red"
        }))
        .unwrap_err();
        let ptrs: Vec<_> = errors.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(
            ptrs,
            [
                "/colour",
                "/name",
                "/url",
                "/event_types/1",
                "/secret",
                "/headers",
                "/timeout_seconds",
                "/max_attempts"
            ]
        );
        assert!(errors[2].detail.contains("private"), "{}", errors[2].detail);
    }
}
