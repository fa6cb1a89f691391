//! The ingest handler with an in-memory queue, fed API Gateway fixture requests.

use super::*;
use hookline::memory::{ManualClock, MemoryQueue};
use hookline::{EventId, Timestamp};
use lambda_http::Body;
use std::sync::atomic::Ordering;

const FIXTURE: &str = include_str!("../fixtures/apigw-post-event.json");
const INGEST: &str = "fixture-ingest-key";
const ADMIN: &str = "fixture-admin-key";

fn subject() -> Ingest<MemoryQueue, ManualClock> {
    Ingest {
        keys: ApiKeys::new(INGEST, ADMIN),
        queue: MemoryQueue::default(),
        clock: ManualClock::at(Timestamp::from_unix_millis(1_795_935_600_000)),
        max_body_bytes: DEFAULT_MAX_BODY_BYTES,
    }
}

fn fixture() -> Request {
    lambda_http::request::from_str(FIXTURE).expect("the API Gateway fixture parses")
}

fn post(path: &str, key: &str, body: &str) -> Request {
    http::Request::builder()
        .method("POST")
        .uri(path)
        .header("x-api-key", key)
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

fn json_of(res: &Response<Body>) -> Value {
    serde_json::from_slice(res.body().as_ref()).expect("a JSON body")
}

#[tokio::test]
async fn an_api_gateway_request_is_queued_with_the_client_id() {
    let ingest = subject();
    let res = ingest.handle(fixture()).await;
    assert_eq!(res.status(), 202);
    assert_eq!(json_of(&res), json!({"id": "run-1:completed"}));
    let sent = ingest.queue.sent();
    assert_eq!(sent.len(), 1);
    let QueueMessage::EventV1 { event } = &sent[0] else {
        panic!("an event message")
    };
    assert_eq!(event.id, EventId::parse("run-1:completed").unwrap());
    assert_eq!(event.event_type.as_str(), "agent.run.completed");
    assert_eq!(event.timestamp, Timestamp::from_unix_millis(1_795_935_600_000));
    assert_eq!(event.data, json!({"run_id": "r-1"}));
}

#[tokio::test]
async fn a_queue_outage_is_a_503_that_names_the_request_and_hides_the_cause() {
    let ingest = subject();
    ingest.queue.unavailable.store(true, Ordering::SeqCst);
    let res = ingest
        .handle(post("/v1/events", INGEST, r#"{"event_type":"a","data":1}"#))
        .await;
    assert_eq!(res.status(), 503);
    let body = json_of(&res);
    assert_eq!(body["type"], "urn:hookline:problem:unavailable");
    assert!(
        !body.to_string().contains("test"),
        "the cause stays in the log: {body}"
    );
}

#[tokio::test]
async fn a_batch_queues_every_valid_event_in_one_call_and_reports_each() {
    let ingest = subject();
    let events: Vec<Value> = (0..12)
        .map(|i| json!({"id": format!("e{i}"), "event_type": "node_completed", "data": i}))
        .collect();
    let res = ingest
        .handle(post(
            "/v1/events/batch",
            INGEST,
            &json!({"events": events}).to_string(),
        ))
        .await;
    assert_eq!(res.status(), 202);
    let body = json_of(&res);
    assert_eq!(body["accepted"], 12);
    assert_eq!(
        body["results"][11],
        json!({"index": 11, "id": "e11", "status": "accepted"})
    );
    assert_eq!(ingest.queue.sent().len(), 12);
}

#[tokio::test]
async fn a_batch_whose_queueing_failed_says_so_per_event() {
    let ingest = subject();
    ingest.queue.unavailable.store(true, Ordering::SeqCst);
    let body = json!({"events": [{"event_type": "a", "data": 1}]}).to_string();
    let res = ingest.handle(post("/v1/events/batch", INGEST, &body)).await;
    assert_eq!(res.status(), 503);
}

#[tokio::test]
async fn an_admin_key_may_send_events_too() {
    let ingest = subject();
    let res = ingest
        .handle(post("/v1/events", ADMIN, r#"{"event_type":"a","data":{}}"#))
        .await;
    assert_eq!(res.status(), 202);
}

#[test]
fn config_reports_every_problem_at_once() {
    let env = Env::from_map(
        [
            ("HOOKLINE_STAGE", "prod"),
            ("HOOKLINE_INGEST_KEY", "short"),
            ("HOOKLINE_MAX_BODY_BYTES", "huge"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect(),
    );
    let err = Config::from_env(env).unwrap_err().to_string();
    for needle in [
        "HOOKLINE_INGEST_KEY must be at least 16",
        "HOOKLINE_ADMIN_KEY is not set",
        "HOOKLINE_QUEUE_URL is not set",
        "HOOKLINE_MAX_BODY_BYTES=`huge` is invalid",
    ] {
        assert!(err.contains(needle), "{needle} missing from: {err}");
    }
    assert!(!err.contains("short"), "a key must never be printed: {err}");
}
