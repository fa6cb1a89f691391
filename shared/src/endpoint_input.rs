//! What an operator may send to register or change an endpoint, and how it becomes
//! an `Endpoint`. Creation and `PATCH` read fields the same way; every problem is
//! reported at once, each with its JSON pointer.

use crate::api::{object, pointer, refuse_unknown_fields};
use crate::claim_check::{MAX_ENDPOINT_BODY_BYTES, MIN_ENDPOINT_BODY_BYTES};
use crate::endpoint::*;
use crate::names::check_name;
use crate::ordering::OrderingMode;
use crate::problem::FieldProblem;
use crate::signing::EndpointSecret;
use crate::ssrf::SsrfPolicy;
use crate::timestamp::Timestamp;
use serde_json::{Map, Value};
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
    "rate_limit_per_second",
    "max_body_bytes",
    "ordering",
];
/// What `PATCH` may change: the fields above but the secret (rotate it instead),
/// plus the status, a reason to go with `disabled`, and the version it was read at.
pub const PATCH_FIELDS: &[&str] = &[
    "name",
    "url",
    "event_types",
    "headers",
    "timeout_seconds",
    "max_attempts",
    "retry_schedule",
    "rate_limit_per_second",
    "max_body_bytes",
    "ordering",
    "status",
    "disabled_reason",
    "version",
];
/// The longest wait an endpoint's own schedule may ask for between two attempts.
pub const MAX_SCHEDULED_WAIT_SECONDS: u64 = 24 * 3600;
const MAX_NAME_LEN: usize = 128;
const MAX_REASON_LEN: usize = 512;

/// The fields a body gave, each read and checked; `None` where it gave none.
#[derive(Default)]
struct Fields {
    name: Option<String>,
    url: Option<String>,
    event_types: Option<Vec<EventTypeFilter>>,
    secret: Option<EndpointSecret>,
    headers: Option<BTreeMap<String, String>>,
    timeout_seconds: Option<u32>,
    max_attempts: Option<u32>,
    /// `Some(None)`: cleared, back to the service's schedule.
    retry_schedule: Option<Option<Vec<Duration>>>,
    /// `Some(None)`: cleared, no limit.
    rate_limit: Option<Option<u32>>,
    /// `Some(None)`: cleared, back to the default.
    max_body: Option<Option<u32>>,
    ordering: Option<OrderingMode>,
}

fn present<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

fn string(obj: &Map<String, Value>, key: &str, errors: &mut Vec<FieldProblem>) -> Option<String> {
    match present(obj, key)? {
        Value::String(s) => Some(s.clone()),
        _ => {
            errors.push(FieldProblem::new(pointer("", key), "must be a string"));
            None
        }
    }
}

fn int_in(
    obj: &Map<String, Value>,
    key: &str,
    range: std::ops::RangeInclusive<u32>,
    errors: &mut Vec<FieldProblem>,
) -> Option<u32> {
    let v = present(obj, key)?;
    let n = v
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| range.contains(n));
    if n.is_none() {
        errors.push(FieldProblem::new(
            pointer("", key),
            format!("must be a whole number from {} to {}", range.start(), range.end()),
        ));
    }
    n
}

fn read_fields(
    obj: &Map<String, Value>,
    policy: &SsrfPolicy,
    with_secret: bool,
    errors: &mut Vec<FieldProblem>,
) -> Fields {
    let mut f = Fields {
        name: string(obj, "name", errors),
        ..Fields::default()
    };
    if let Some(Err(e)) = f.name.as_deref().map(|n| check_name(n, MAX_NAME_LEN)) {
        errors.push(FieldProblem::new("/name", e.to_string()));
    }
    f.url = string(obj, "url", errors);
    if let Some(Err(e)) = f.url.as_deref().map(|u| policy.parse_new_destination(u)) {
        errors.push(FieldProblem::new("/url", format!("the URL {e}")));
    }
    f.event_types = match present(obj, "event_types") {
        None => None,
        Some(Value::Array(a)) if a.is_empty() || a.len() > MAX_EVENT_TYPE_FILTERS => {
            errors.push(FieldProblem::new(
                "/event_types",
                format!("must hold 1 to {MAX_EVENT_TYPE_FILTERS} entries"),
            ));
            None
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
            Some(out)
        }
        Some(_) => {
            errors.push(FieldProblem::new(
                "/event_types",
                "must be an array of event types",
            ));
            None
        }
    };
    f.secret = string(obj, "secret", errors)
        .filter(|_| with_secret)
        .and_then(|s| {
            EndpointSecret::parse(&s)
                .map_err(|e| errors.push(FieldProblem::new("/secret", e.to_string())))
                .ok()
        });
    f.headers = match present(obj, "headers") {
        None => None,
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
            check_custom_headers(raw)
                .map_err(|e| errors.push(FieldProblem::new("/headers", e.to_string())))
                .ok()
        }
        Some(_) => {
            errors.push(FieldProblem::new(
                "/headers",
                "must be an object of header names to values",
            ));
            None
        }
    };
    f.timeout_seconds = int_in(obj, "timeout_seconds", 1..=MAX_TIMEOUT_SECONDS, errors);
    f.max_attempts = int_in(obj, "max_attempts", 1..=MAX_MAX_ATTEMPTS, errors);
    f.rate_limit = match obj.get("rate_limit_per_second") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(_) => int_in(
            obj,
            "rate_limit_per_second",
            1..=MAX_RATE_LIMIT_PER_SECOND,
            errors,
        )
        .map(Some),
    };
    f.max_body = match obj.get("max_body_bytes") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(_) => int_in(
            obj,
            "max_body_bytes",
            MIN_ENDPOINT_BODY_BYTES..=MAX_ENDPOINT_BODY_BYTES,
            errors,
        )
        .map(Some),
    };
    f.ordering = match present(obj, "ordering") {
        None => None,
        Some(v) => {
            let mode = v.as_str().and_then(OrderingMode::parse);
            if mode.is_none() {
                errors.push(FieldProblem::new(
                    "/ordering",
                    "must be `none`, `run` or `thread`",
                ));
            }
            mode
        }
    };
    f.retry_schedule = match obj.get("retry_schedule") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::Array(a)) if !a.is_empty() && a.len() < MAX_MAX_ATTEMPTS as usize => {
            if f.max_attempts.is_some() {
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
            Some(Some(waits))
        }
        Some(_) => {
            errors.push(FieldProblem::new(
                "/retry_schedule",
                format!(
                    "must be a list of 1 to {} waits in seconds, or null",
                    MAX_MAX_ATTEMPTS - 1
                ),
            ));
            None
        }
    };
    f
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
    for required in ["name", "url"] {
        if present(obj, required).is_none() {
            errors.push(FieldProblem::new(pointer("", required), "is required"));
        }
    }
    let f = read_fields(obj, policy, true, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut e = Endpoint::new(
        f.name.unwrap_or_default().trim().to_owned(),
        f.url.unwrap_or_default(),
        f.event_types.unwrap_or_else(|| vec![EventTypeFilter::All]),
        now,
    );
    e.headers = f.headers.unwrap_or_default();
    e.timeout_seconds = f.timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECONDS);
    e.max_attempts = f.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS);
    e.rate_limit_per_second = f.rate_limit.flatten();
    e.max_body_bytes = f.max_body.flatten();
    e.ordering = f.ordering.unwrap_or_default();
    if let Some(secret) = f.secret {
        e.secret = secret;
    }
    e.set_retry_schedule(f.retry_schedule.flatten());
    Ok(e)
}

/// Applies a `PATCH` body to an endpoint: only the fields it gives change. Setting
/// `status` to `active` clears the reason and the failing streak.
pub fn apply_patch(
    e: &mut Endpoint,
    v: &Value,
    policy: &SsrfPolicy,
    now: Timestamp,
) -> Result<(), Vec<FieldProblem>> {
    let mut errors = Vec::new();
    let Some(obj) = object(v, "/", &mut errors) else {
        return Err(errors);
    };
    refuse_unknown_fields(obj, PATCH_FIELDS, "", &mut errors);
    for required in ["name", "url"] {
        if obj.get(required).is_some_and(Value::is_null) {
            errors.push(FieldProblem::new(pointer("", required), "cannot be removed"));
        }
    }
    let f = read_fields(obj, policy, false, &mut errors);
    let status = match string(obj, "status", &mut errors).as_deref() {
        None => None,
        Some("active") => Some(EndpointStatus::Active),
        Some("disabled") => Some(EndpointStatus::Disabled),
        Some(_) => {
            errors.push(FieldProblem::new("/status", "must be `active` or `disabled`"));
            None
        }
    };
    // The endpoint's own headers often carry the receiver's credentials, and reads mask
    // them: they go to the URL they were set for, and a new URL needs them sent again.
    if f.url.as_ref().is_some_and(|u| *u != e.url) && !e.headers.is_empty() && f.headers.is_none() {
        errors.push(FieldProblem::new(
            "/headers",
            "the endpoint's headers were set for its current URL: send them again with the new one, or `{}` to drop them",
        ));
    }
    let reason = string(obj, "disabled_reason", &mut errors);
    if let Some(Err(e)) = reason.as_deref().map(|r| check_name(r, MAX_REASON_LEN)) {
        errors.push(FieldProblem::new("/disabled_reason", e.to_string()));
    }
    if reason.is_some() && status != Some(EndpointStatus::Disabled) {
        errors.push(FieldProblem::new(
            "/disabled_reason",
            "goes with `status: disabled`",
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    if let Some(n) = f.name {
        e.name = n.trim().to_owned();
    }
    if let Some(u) = f.url {
        // Another receiver: its speed is not known yet, so it starts in the fast lane.
        if u != e.url {
            e.slow_since = None;
        }
        e.url = u;
    }
    if let Some(t) = f.event_types {
        e.event_types = t;
    }
    if let Some(h) = f.headers {
        e.headers = h;
    }
    if let Some(t) = f.timeout_seconds {
        e.timeout_seconds = t;
    }
    if let Some(m) = f.max_attempts {
        e.max_attempts = m;
        e.retry_schedule = None;
    }
    if let Some(s) = f.retry_schedule {
        e.set_retry_schedule(s);
    }
    if let Some(r) = f.rate_limit {
        e.rate_limit_per_second = r;
    }
    if let Some(b) = f.max_body {
        e.max_body_bytes = b;
    }
    if let Some(o) = f.ordering {
        e.ordering = o;
    }
    match status {
        Some(EndpointStatus::Disabled) => {
            e.status = EndpointStatus::Disabled;
            e.disabled_reason = Some(reason.unwrap_or_else(|| "disabled by an operator".into()));
        }
        Some(EndpointStatus::Active) => {
            e.status = EndpointStatus::Active;
            e.disabled_reason = None;
            e.failing_since = None;
        }
        None => {}
    }
    e.updated_at = now;
    Ok(())
}

#[cfg(test)]
mod tests;
