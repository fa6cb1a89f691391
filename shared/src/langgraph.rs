//! LangGraph Platform run webhooks: what `langgraph dev` or LangGraph Platform POSTs
//! when a run started with `webhook=` ends, turned into one `agent_invocation_*` event.
//!
//! The body is the whole run object (`run_id`, `thread_id`, `assistant_id`, `status`,
//! `metadata`, `kwargs`, `values`, `error`, `run_started_at`, `run_ended_at`, …). The
//! event id comes from the run id and its status, so the Platform's own retries (it
//! re-sends a byte-identical body after a 5xx or 429) are delivered once. Secrets the
//! run carries are removed before the event fans out, anywhere in the run, by the rule
//! in `redaction/`; the event's `redacted` lists where.

use crate::api::{object, pointer};
use crate::event::{ENVELOPE_VERSION, Event, EventType};
use crate::event_limits::{MAX_DATA_DEPTH, depth, too_deep};
use crate::ids::EventId;
use crate::problem::FieldProblem;
use crate::redaction;
use crate::timestamp::Timestamp;
use serde_json::{Map, Value, json};

pub const SOURCE: &str = "langgraph-platform";

/// The run statuses that end a run, and the event each becomes.
pub const STATUSES: &[(&str, &str)] = &[
    ("success", "agent_invocation_success"),
    ("error", "agent_invocation_error"),
    ("timeout", "agent_invocation_timeout"),
    ("interrupted", "agent_invocation_interrupted"),
    ("rollback", "agent_invocation_rollback"),
];

/// The event for one run webhook, or the problems with the body.
pub fn run_event(body: &Value, now: Timestamp, own_keys: &[&str]) -> Result<Event, Vec<FieldProblem>> {
    let mut errors = Vec::new();
    if object(body, "/", &mut errors).is_none() {
        return Err(errors);
    }
    // Everything below reads the run as redacted, the event's id included: what must
    // not leave cannot leave through it either.
    let mut redacted = body.clone();
    let removed = redaction::redact(&mut redacted, own_keys);
    let Value::Object(mut data) = redacted else {
        return Err(errors);
    };
    let run = &data;
    let text = |key: &str, errors: &mut Vec<FieldProblem>| match run.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::String(_)) | None | Some(Value::Null) => {
            errors.push(FieldProblem::new(pointer("", key), "is required"));
            None
        }
        Some(_) => {
            errors.push(FieldProblem::new(pointer("", key), "must be a string"));
            None
        }
    };
    let run_id = text("run_id", &mut errors);
    let status = text("status", &mut errors);
    let event_type = status.as_deref().and_then(|s| {
        let found = STATUSES.iter().find(|(st, _)| *st == s).map(|(_, t)| *t);
        if found.is_none() {
            let known: Vec<&str> = STATUSES.iter().map(|(s, _)| *s).collect();
            errors.push(FieldProblem::new(
                "/status",
                format!(
                    "`{s}` is not a status that ends a run; expected one of {}",
                    known.join(", ")
                ),
            ));
        }
        found
    });
    let id = match (&run_id, &status) {
        (Some(run), Some(status)) => match EventId::parse(&format!("lg:{run}:{status}")) {
            Ok(id) => Some(id),
            Err(e) => {
                errors.push(FieldProblem::new("/run_id", format!("cannot name an event: {e}")));
                None
            }
        },
        _ => None,
    };
    let started = time_field(run, "run_started_at", &mut errors);
    let ended = time_field(run, "run_ended_at", &mut errors);
    let (Some(id), Some(event_type)) = (id, event_type) else {
        return Err(errors);
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    let graph = run
        .get("metadata")
        .and_then(|m| m.get("graph_id"))
        .filter(|g| g.is_string())
        .cloned();

    if let Some(e) = data.get("error").filter(|e| !e.is_null()) {
        let normalised = normalise_error(e);
        data.insert("error".into(), normalised);
    }
    if !removed.is_empty() {
        // Where something was removed, so that a receiver can tell; never what.
        data.insert("redacted".into(), json!(removed));
    }
    if let Some(graph) = graph {
        data.entry("graph_id").or_insert(graph);
    }
    if let (Some(s), Some(e)) = (started, ended) {
        let ms = e.unix_millis().saturating_sub(s.unix_millis()).max(0);
        data.insert("duration_ms".into(), json!(ms));
    }
    Ok(Event {
        id,
        // The caller's key or query names the tenant.
        tenant_id: Default::default(),
        event_type: EventType::parse(event_type)
            .map_err(|e| vec![FieldProblem::new("/status", e.to_string())])?,
        data: Value::Object(data),
        timestamp: ended.unwrap_or(now),
        source: SOURCE.into(),
        version: ENVELOPE_VERSION.into(),
        expires_at: None,
        collapse_key: None,
        data_ref: None,
        order: None,
    })
}

/// Makes a run's event nest no deeper than the limit at the door
/// (`event_limits::MAX_DATA_DEPTH`): a state (`values`) too deep is reported without it,
/// as a state too large is; the problem, naming the member, when something else is.
pub fn fit_depth(event: &mut Event) -> Result<(), FieldProblem> {
    if too_deep(&event.data, "/").is_none() {
        return Ok(());
    }
    drop_values(event);
    let Value::Object(run) = &event.data else {
        return too_deep(&event.data, "/").map_or(Ok(()), Err);
    };
    // The run object is one level; its members may nest one level less.
    for (key, member) in run {
        if depth(member) >= MAX_DATA_DEPTH {
            let d = depth(member) + 1;
            return Err(FieldProblem::new(
                pointer("", key),
                format!("nests {d} levels deep; a run may nest at most {MAX_DATA_DEPTH}"),
            ));
        }
    }
    Ok(())
}

/// Replaces the run's final state (`values`) with its size, for a run too large to
/// deliver whole: its end is still reported.
pub fn drop_values(event: &mut Event) {
    if let Value::Object(data) = &mut event.data {
        let size = data.get("values").map_or(0, |v| v.to_string().len());
        data.insert("values".into(), json!({"omitted": true, "bytes": size}));
    }
}

fn time_field(run: &Map<String, Value>, key: &str, errors: &mut Vec<FieldProblem>) -> Option<Timestamp> {
    match run.get(key) {
        Some(Value::String(s)) => match Timestamp::parse_rfc3339(s) {
            Ok(t) => Some(t),
            Err(_) => {
                errors.push(FieldProblem::new(pointer("", key), "must be an RFC 3339 time"));
                None
            }
        },
        _ => None,
    }
}

/// `{"error": "ValueError", "message": "…"}` (langgraph-api today) or a plain string
/// (older releases, the JS server) → `{"type", "message"}`.
fn normalise_error(e: &Value) -> Value {
    match e {
        Value::String(s) => json!({"type": null, "message": s}),
        Value::Object(o) => json!({
            "type": o.get("error").or_else(|| o.get("type")).cloned().unwrap_or(Value::Null),
            "message": o.get("message").cloned().unwrap_or(Value::Null),
        }),
        other => json!({"type": null, "message": other.to_string()}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/../functions/ingest/fixtures/langgraph/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    fn nested(levels: usize) -> Value {
        (0..levels).fold(json!(1), |v, _| json!([v]))
    }

    #[test]
    fn a_state_too_deep_is_reported_without_it_and_anything_else_too_deep_is_refused() {
        let mut run = fixture("run-webhook-success.json");
        run["values"] = nested(124);
        let mut e = run_event(&run, Timestamp::from_unix_millis(0), &[]).unwrap();
        fit_depth(&mut e).expect("the state is dropped, the run's end still reported");
        assert_eq!(e.data["values"]["omitted"], true);
        assert!(too_deep(&e.data, "/").is_none());

        let mut run = fixture("run-webhook-success.json");
        run["kwargs"] = json!({ "input": nested(MAX_DATA_DEPTH) });
        let mut e = run_event(&run, Timestamp::from_unix_millis(0), &[]).unwrap();
        let p = fit_depth(&mut e).unwrap_err();
        assert_eq!(p.pointer, "/kwargs");
        assert_eq!(p.detail, "nests 66 levels deep; a run may nest at most 64");

        // At the limit exactly, nothing is dropped.
        let mut run = fixture("run-webhook-success.json");
        run["values"] = nested(MAX_DATA_DEPTH - 1);
        let mut e = run_event(&run, Timestamp::from_unix_millis(0), &[]).unwrap();
        fit_depth(&mut e).unwrap();
        assert_eq!(e.data["values"], nested(MAX_DATA_DEPTH - 1));
    }

    #[test]
    fn a_successful_run_becomes_agent_invocation_success_with_its_duration() {
        let run = fixture("run-webhook-success.json");
        let e = run_event(&run, Timestamp::from_unix_millis(0), &[]).unwrap();
        assert_eq!(e.event_type.as_str(), "agent_invocation_success");
        assert_eq!(
            e.id.as_str(),
            format!("lg:{}:success", run["run_id"].as_str().unwrap())
        );
        assert_eq!(e.source, SOURCE);
        assert_eq!(e.data["run_id"], run["run_id"]);
        assert_eq!(e.data["thread_id"], run["thread_id"]);
        assert_eq!(e.data["graph_id"], run["metadata"]["graph_id"]);
        assert_eq!(e.data["values"], run["values"]);
        assert!(e.data["duration_ms"].as_i64().unwrap() >= 0);
        assert_eq!(
            e.timestamp,
            Timestamp::parse_rfc3339(run["run_ended_at"].as_str().unwrap()).unwrap()
        );
    }

    #[test]
    fn an_error_run_carries_its_error_as_type_and_message_from_either_shape() {
        let run = fixture("run-webhook-error.json");
        let e = run_event(&run, Timestamp::now(), &[]).unwrap();
        assert_eq!(e.event_type.as_str(), "agent_invocation_error");
        assert_eq!(e.data["error"]["type"], "ValueError");
        assert!(e.data["error"]["message"].as_str().unwrap().contains("boom"));

        let mut old = run.clone();
        old["error"] = json!("TimeoutError: took too long");
        let e = run_event(&old, Timestamp::now(), &[]).unwrap();
        assert_eq!(
            e.data["error"],
            json!({"type": null, "message": "TimeoutError: took too long"})
        );
    }

    #[test]
    fn the_same_run_and_status_always_name_the_same_event() {
        let run = fixture("run-webhook-success.json");
        let a = run_event(&run, Timestamp::from_unix_millis(1), &[]).unwrap();
        let b = run_event(&run, Timestamp::from_unix_millis(2), &[]).unwrap();
        assert_eq!(a.id, b.id);
        assert_eq!(a.envelope_json(), b.envelope_json(), "a retry is byte-identical");
        let mut timed_out = run.clone();
        timed_out["status"] = json!("timeout");
        let c = run_event(&timed_out, Timestamp::now(), &[]).unwrap();
        assert_ne!(a.id, c.id);
        assert_eq!(c.event_type.as_str(), "agent_invocation_timeout");
    }

    #[test]
    fn the_token_and_secret_looking_configurable_values_never_reach_endpoints() {
        let mut run = fixture("run-webhook-success.json");
        run["kwargs"]["webhook"] = json!("https://hooks.example.com/v1/langgraph/runs?token=sk-live-123");
        run["kwargs"]["config"]["configurable"]["openai_api_key"] = json!("sk-abc");
        run["kwargs"]["config"]["configurable"]["nested"] = json!({"db_password": "hunter2", "region": "eu"});
        run["kwargs"]["config"]["configurable"]["accessToken"] = json!("t");
        run["kwargs"]["context"] = json!({"user": "u-1", "github_token": "ghp_ctx"});
        run["kwargs"]["config"]["metadata"]["session_cookie"] = json!("c00kie");
        run["metadata"]["Authorization"] = json!("Bearer meta");
        let e = run_event(&run, Timestamp::now(), &[]).unwrap();
        let text = e.envelope_json();
        for secret in [
            "sk-live-123",
            "sk-abc",
            "hunter2",
            "\"t\"",
            "ghp_ctx",
            "c00kie",
            "Bearer meta",
        ] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        assert_eq!(
            e.data["kwargs"]["webhook"],
            "https://hooks.example.com/v1/langgraph/runs?token=REDACTED"
        );
        let configurable = &e.data["kwargs"]["config"]["configurable"];
        assert_eq!(configurable["openai_api_key"], redaction::REDACTED);
        assert_eq!(configurable["nested"]["region"], "eu");
        assert_eq!(configurable["thread_id"], run["thread_id"], "ids are not secrets");
        assert_eq!(e.data["kwargs"]["context"]["user"], "u-1");
        assert_eq!(e.data["metadata"]["graph_id"], run["metadata"]["graph_id"]);
    }

    #[test]
    fn credentials_anywhere_in_a_run_are_removed_and_the_event_says_where() {
        let mut run = fixture("run-webhook-success.json");
        run["metadata"]["webhook"] =
            json!("https://h.example.com/v1/langgraph/runs?token=live-ingest-key-0001");
        run["metadata"]["jwt"] = json!("eyJhbGciOi.x.y");
        run["metadata"]["pwd"] = json!("pw-1");
        run["metadata"]["database_url"] = json!("postgres://app:db-pass-2@db:5432/app");
        run["metadata"]["dsn"] = json!("https://sentrykey3@o1.ingest.sentry.io/7");
        run["metadata"]["private"] = json!("priv-4");
        run["metadata"]["signature"] = json!("sig-5");
        run["metadata"]["passphrase"] = json!("phrase-6");
        run["kwargs"]["context"] = json!({"webhook_url": "https://x.example.com/hook?token=ctx-7"});
        run["kwargs"]["input"] = json!({"api_key": "input-8", "question": "weather?"});
        let e = run_event(&run, Timestamp::now(), &["live-ingest-key-0001"]).unwrap();
        let text = e.envelope_json();
        for secret in [
            "live-ingest-key-0001",
            "eyJhbGciOi",
            "pw-1",
            "db-pass-2",
            "sentrykey3",
            "priv-4",
            "sig-5",
            "phrase-6",
            "ctx-7",
            "input-8",
        ] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        assert_eq!(e.data["kwargs"]["input"]["question"], "weather?");
        assert_eq!(e.data["metadata"]["database_url"], "postgres://db:5432/app");
        let removed: Vec<&str> = e.data["redacted"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for at in [
            "/metadata/webhook",
            "/metadata/dsn",
            "/kwargs/context/webhook_url",
            "/kwargs/input/api_key",
        ] {
            assert!(removed.contains(&at), "{at} not in {removed:?}");
        }
    }

    #[test]
    fn a_body_that_is_not_an_ended_run_is_refused_field_by_field() {
        let errs = run_event(
            &json!({"status": "running", "run_ended_at": "later"}),
            Timestamp::now(),
            &[],
        )
        .unwrap_err();
        let pointers: Vec<&str> = errs.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(pointers, ["/run_id", "/status", "/run_ended_at"]);
        assert!(
            errs[1]
                .detail
                .contains("success, error, timeout, interrupted, rollback")
        );
        let errs = run_event(
            &json!({"run_id": "a b", "status": "success"}),
            Timestamp::now(),
            &[],
        )
        .unwrap_err();
        assert_eq!(errs[0].pointer, "/run_id");
        assert!(run_event(&json!([1]), Timestamp::now(), &[]).is_err());
    }
}
