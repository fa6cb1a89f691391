//! Reading endpoints' create and patch bodies.

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
fn ordering_and_the_body_limit_are_read_and_checked() {
    let e = parse(
        json!({"name": "a", "url": "https://example.com", "ordering": "thread", "max_body_bytes": 1048576}),
    )
    .unwrap();
    assert_eq!(e.ordering, crate::ordering::OrderingMode::Thread);
    assert_eq!(e.body_limit(), 1_048_576);
    let plain = parse(json!({"name": "a", "url": "https://example.com"})).unwrap();
    assert_eq!(plain.ordering, crate::ordering::OrderingMode::None);
    assert_eq!(
        plain.body_limit(),
        crate::claim_check::DEFAULT_ENDPOINT_BODY_BYTES
    );
    let bad =
        parse(json!({"name": "a", "url": "https://example.com", "ordering": "fifo", "max_body_bytes": 1024}))
            .unwrap_err();
    let ptrs: Vec<_> = bad.iter().map(|e| e.pointer.as_str()).collect();
    assert_eq!(ptrs, ["/max_body_bytes", "/ordering"]);
}

#[test]
fn a_given_secret_is_kept() {
    let e = parse(json!({"name": "a", "url": "https://example.com", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}))
        .unwrap();
    assert_eq!(e.secret.expose(), "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
}

#[test]
fn an_own_retry_schedule_sets_the_attempts() {
    let e =
        parse(json!({"name": "a", "url": "https://example.com", "retry_schedule": [1, 60, 3600]})).unwrap();
    assert_eq!(e.max_attempts, 4);
    assert_eq!(e.retry_schedule.unwrap()[2], Duration::from_secs(3600));
    let both =
        parse(json!({"name": "a", "url": "https://example.com", "retry_schedule": [1], "max_attempts": 3}));
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
