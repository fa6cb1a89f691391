//! The ingest handler with an in-memory queue, fed API Gateway fixture requests.

use super::*;
use hookline::memory::{ManualClock, MemoryData, MemoryQueue, MemoryStore};
use hookline::{EventId, Timestamp};
use lambda_http::Body;
use std::sync::atomic::Ordering;

mod large;
mod positions;

const FIXTURE: &str = include_str!("../fixtures/apigw-post-event.json");
const INGEST: &str = "fixture-ingest-key";
const ADMIN: &str = "fixture-admin-key";

fn subject() -> Ingest<MemoryQueue, MemoryStore, ManualClock> {
    with_data().0
}

/// A subject, and the store its large events' data goes to.
fn with_data() -> (Ingest<MemoryQueue, MemoryStore, ManualClock>, Arc<MemoryData>) {
    let data = Arc::new(MemoryData::default());
    let ingest = Ingest {
        keys: ApiKeys::new(INGEST, ADMIN),
        queue: MemoryQueue::default(),
        events: MemoryStore::default(),
        data: data.clone(),
        clock: ManualClock::at(Timestamp::from_unix_millis(1_795_935_600_000)),
        max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        limits: Default::default(),
        ordered: OrderedEndpointCache::new(std::time::Duration::ZERO),
    };
    (ingest, data)
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
async fn a_batch_queues_its_valid_events_packed_ten_to_a_message_and_reports_each() {
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
    // GIVEN 12 small events THEN two messages: ten events, then two, in order.
    let sent = ingest.queue.sent();
    let ids: Vec<Vec<String>> = sent
        .iter()
        .map(|m| match m {
            QueueMessage::EventsV1 { events } => events.iter().map(|e| e.id.to_string()).collect(),
            other => panic!("not packed: {other:?}"),
        })
        .collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0].len(), 10);
    assert_eq!(ids[1], vec!["e10".to_owned(), "e11".to_owned()]);
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

const RUN_SUCCESS: &str = include_str!("../fixtures/langgraph/run-webhook-success.json");
const RUN_ERROR: &str = include_str!("../fixtures/langgraph/run-webhook-error.json");

fn platform_post(uri: &str, content_type: Option<&str>, body: &str) -> Request {
    let mut b = http::Request::builder().method("POST").uri(uri);
    if let Some(ct) = content_type {
        b = b.header("content-type", ct);
    }
    b.body(Body::from(body.to_owned())).unwrap()
}

#[tokio::test]
async fn a_langgraph_run_webhook_with_a_token_becomes_one_agent_invocation_event() {
    // GIVEN the body `langgraph dev` posted for a successful run, to a webhook URL
    // carrying the ingest key as `token`
    let ingest = subject();
    let run: Value = serde_json::from_str(RUN_SUCCESS).unwrap();
    let uri = format!("/v1/langgraph/runs?token={INGEST}");

    // WHEN it arrives, and arrives again (the Platform retries a 5xx byte for byte)
    let first = ingest
        .handle(platform_post(&uri, Some("application/json"), RUN_SUCCESS))
        .await;
    let again = ingest
        .handle(platform_post(&uri, Some("application/json"), RUN_SUCCESS))
        .await;

    // THEN both name the same event, so it is delivered once
    assert_eq!(first.status(), 202, "{:?}", first.body());
    let id = format!("lg:{}:success", run["run_id"].as_str().unwrap());
    assert_eq!(
        json_of(&first),
        json!({"id": id, "event_type": "agent_invocation_success"})
    );
    assert_eq!(json_of(&again), json_of(&first));
    let sent = ingest.queue.sent();
    let QueueMessage::EventV1 { event } = &sent[0] else {
        panic!("an event message")
    };
    assert_eq!(event.source, "langgraph-platform");
    assert_eq!(event.data["thread_id"], run["thread_id"]);
    assert!(
        !event.envelope_json().contains(INGEST),
        "the token is not in the event"
    );
}

#[tokio::test]
async fn a_langgraph_run_webhook_may_come_as_text_plain_with_a_bearer_header() {
    let ingest = subject();
    let mut req = platform_post("/v1/langgraph/runs", Some("text/plain;charset=UTF-8"), RUN_ERROR);
    req.headers_mut()
        .insert("authorization", format!("Bearer {INGEST}").parse().unwrap());
    let res = ingest.handle(req).await;
    assert_eq!(res.status(), 202, "{:?}", res.body());
    assert_eq!(json_of(&res)["event_type"], "agent_invocation_error");
    let no_type = ingest
        .handle(platform_post(
            &format!("/v1/langgraph/runs?token={ADMIN}"),
            None,
            RUN_ERROR,
        ))
        .await;
    assert_eq!(
        no_type.status(),
        202,
        "no Content-Type, as the JS server sends it"
    );
}

#[tokio::test]
async fn a_langgraph_run_webhook_without_a_good_token_or_an_ended_run_is_refused() {
    let ingest = subject();
    let res = ingest
        .handle(platform_post(
            "/v1/langgraph/runs?token=wrong",
            Some("application/json"),
            RUN_SUCCESS,
        ))
        .await;
    assert_eq!(res.status(), 401);
    let res = ingest
        .handle(platform_post(
            "/v1/langgraph/runs",
            Some("application/json"),
            RUN_SUCCESS,
        ))
        .await;
    assert_eq!(res.status(), 401);
    let running = RUN_SUCCESS.replace("\"status\": \"success\"", "\"status\": \"running\"");
    assert_ne!(running, RUN_SUCCESS);
    let res = ingest
        .handle(platform_post(
            &format!("/v1/langgraph/runs?token={INGEST}"),
            Some("application/json"),
            &running,
        ))
        .await;
    assert_eq!(res.status(), 422);
    assert_eq!(json_of(&res)["errors"][0]["pointer"], "/status");
    assert!(ingest.queue.sent().is_empty());
}

/// Stores `event` as delivery's claim would.
async fn stored(ingest: &Ingest<MemoryQueue, MemoryStore, ManualClock>, body: Value) {
    use hookline::ports::EventStore;
    let mut errors = Vec::new();
    let event = parse_event(&body, "", ingest.clock.now(), &mut errors).expect("a valid event");
    ingest
        .events
        .claim_fanout(
            &event,
            &event.envelope_json(),
            &[],
            ingest.clock.now(),
            std::time::Duration::from_secs(30),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn an_id_taken_by_another_event_is_a_409_that_names_what_differs_and_queues_nothing() {
    // GIVEN an event stored under `run-7:tool-1`
    let ingest = subject();
    stored(
        &ingest,
        json!({"id": "run-7:tool-1", "event_type": "tool.failed", "data": {"tool": "search"}}),
    )
    .await;

    // WHEN another event is sent under its id
    let other = json!({"id": "run-7:tool-1", "event_type": "tool.failed", "data": {"tool": "fetch"}});
    let res = ingest
        .handle(post("/v1/events", INGEST, &other.to_string()))
        .await;

    // THEN it is a 409 that names the field, and nothing is queued
    assert_eq!(res.status(), 409);
    let p = json_of(&res);
    assert_eq!(p["type"], "urn:hookline:problem:conflict");
    assert!(p["detail"].as_str().unwrap().contains("`run-7:tool-1`"), "{p}");
    assert_eq!(
        p["errors"],
        json!([{"pointer": "/data", "detail": "differs from the event already sent under this id"}])
    );
    assert!(ingest.queue.sent().is_empty());

    // … and the same event again (another timestamp is no conflict) is taken
    let again = json!({"id": "run-7:tool-1", "event_type": "tool.failed", "data": {"tool": "search"}, "timestamp": "2027-01-01T00:00:00Z"});
    let res = ingest
        .handle(post("/v1/events", INGEST, &again.to_string()))
        .await;
    assert_eq!(res.status(), 202);
    assert_eq!(ingest.queue.sent().len(), 1);
}

#[tokio::test]
async fn a_batch_refuses_only_the_events_under_ids_other_events_hold() {
    let ingest = subject();
    stored(&ingest, json!({"id": "e-1", "event_type": "a.b", "data": 1})).await;
    let batch = json!({"events": [
        {"id": "e-1", "event_type": "a.c", "data": 1},
        {"id": "e-2", "event_type": "a.b", "data": 2},
        {"id": "e-2", "event_type": "a.b", "data": 3},
        {"id": "e-2", "event_type": "a.b", "data": 2},
        {"id": "e-1", "event_type": "a.b", "data": 1},
    ]});
    let res = ingest
        .handle(post("/v1/events/batch", INGEST, &batch.to_string()))
        .await;
    assert_eq!(res.status(), 202);
    let body = json_of(&res);
    let statuses: Vec<&str> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["rejected", "accepted", "rejected", "accepted", "accepted"]
    );
    assert_eq!(body["results"][0]["errors"][0]["pointer"], "/events/0/event_type");
    assert_eq!(body["results"][2]["errors"][0]["pointer"], "/events/2/data");
    assert_eq!(
        (body["accepted"].as_u64(), body["rejected"].as_u64()),
        (Some(3), Some(2))
    );

    // A batch of conflicts alone is a 409.
    let res = ingest
        .handle(post(
            "/v1/events/batch",
            INGEST,
            &json!({"events": [{"id": "e-1", "event_type": "a.b", "data": 9}]}).to_string(),
        ))
        .await;
    assert_eq!(res.status(), 409);
    assert_eq!(json_of(&res)["errors"][0]["pointer"], "/events/0/data");
}

#[tokio::test]
async fn an_event_is_still_taken_when_its_id_cannot_be_looked_up() {
    // The claim finds a conflict later; a look-up outage must not refuse events.
    let ingest = subject();
    ingest.events.unavailable.store(true, Ordering::SeqCst);
    let res = ingest
        .handle(post(
            "/v1/events",
            INGEST,
            &json!({"id": "e-1", "event_type": "a.b", "data": 1}).to_string(),
        ))
        .await;
    assert_eq!(res.status(), 202);
    assert_eq!(ingest.queue.sent().len(), 1);
}
