//! Places in ordered lanes, given at ingest only where the tenant has an endpoint
//! ordered that way.

use super::*;
use hookline::endpoint::Endpoint;
use hookline::ordering::OrderingMode;
use hookline::ports::EndpointStore;

fn queued_orders(ingest: &Ingest<MemoryQueue, MemoryStore, ManualClock>) -> Vec<Value> {
    ingest
        .queue
        .sent()
        .iter()
        .flat_map(|m| match m {
            QueueMessage::EventsV1 { events } => events.clone(),
            QueueMessage::EventV1 { event } => vec![event.clone()],
            other => panic!("not an event message: {other:?}"),
        })
        .map(|e| serde_json::to_value(&e.order).unwrap())
        .collect()
}

/// An endpoint ordered by `mode` that takes the event type `a` only.
async fn ordered_by(ingest: &Ingest<MemoryQueue, MemoryStore, ManualClock>, mode: OrderingMode) {
    let takes = vec![hookline::endpoint::EventTypeFilter::parse("a").unwrap()];
    let mut ep = Endpoint::new(
        "timeline".into(),
        "https://t.example/".into(),
        takes,
        ingest.clock.now(),
    );
    ep.ordering = mode;
    ingest.events.create_endpoint(&ep).await.unwrap();
}

fn batch_of(events: Vec<Value>) -> String {
    json!({ "events": events }).to_string()
}

#[tokio::test]
async fn without_an_ordered_endpoint_events_carry_no_places_and_cost_no_write() {
    let ingest = subject();
    let body = batch_of(vec![
        json!({"event_type": "a", "data": {"run_id": "r", "thread_id": "t", "seq": 1}}),
    ]);
    let res = ingest.handle(post("/v1/events/batch", INGEST, &body)).await;
    assert_eq!(res.status(), 202, "{:?}", res.body());
    assert_eq!(queued_orders(&ingest), [Value::Null]);
}

#[tokio::test]
async fn a_threads_events_are_numbered_in_request_order_across_requests() {
    // GIVEN an endpoint ordered by thread
    let ingest = subject();
    ordered_by(&ingest, OrderingMode::Thread).await;
    // WHEN two requests carry a thread's events (and one names its key itself)
    let first = batch_of(vec![
        json!({"event_type": "a", "data": {"thread_id": "t-1"}}),
        json!({"event_type": "a", "data": {"thread_id": "t-2", "seq": 9}}),
        json!({"event_type": "a", "data": {}, "ordering_key": "t-1"}),
    ]);
    assert_eq!(
        ingest
            .handle(post("/v1/events/batch", INGEST, &first))
            .await
            .status(),
        202
    );
    let second =
        json!({"event_type": "a", "data": {"thread_id": "t-1", "run_id": "r-1", "seq": 1}}).to_string();
    assert_eq!(
        ingest.handle(post("/v1/events", INGEST, &second)).await.status(),
        202
    );
    // THEN each thread counts from 1, in that order; runs take no place (none is ordered by run)
    let thread = |k: &str, p: u64| json!({"thread": {"key": k, "position": p}});
    assert_eq!(
        queued_orders(&ingest),
        [
            thread("t-1", 1),
            thread("t-2", 1),
            thread("t-1", 2),
            thread("t-1", 3)
        ]
    );
}

#[tokio::test]
async fn a_runs_seq_is_its_position_and_an_event_no_ordered_endpoint_takes_has_none() {
    let ingest = subject();
    ordered_by(&ingest, OrderingMode::Run).await;
    let body = batch_of(vec![
        json!({"event_type": "a", "data": {"run_id": "r-1", "seq": 2}}),
        json!({"event_type": "a", "data": {"run_id": "r-1", "seq": 1}}),
        json!({"event_type": "b", "data": {"run_id": "r-1"}}),
    ]);
    assert_eq!(
        ingest
            .handle(post("/v1/events/batch", INGEST, &body))
            .await
            .status(),
        202
    );
    let run = |p: u64| json!({"run": {"key": "r-1", "position": p}});
    assert_eq!(queued_orders(&ingest), [run(2), run(1), Value::Null]);

    let long = json!({"event_type": "a", "data": {}, "ordering_key": "k".repeat(257)}).to_string();
    let res = ingest.handle(post("/v1/events", INGEST, &long)).await;
    assert_eq!(res.status(), 422);
    assert_eq!(json_of(&res)["errors"][0]["pointer"], "/ordering_key");
}

#[tokio::test]
async fn an_endpoint_made_ordered_is_seen_once_the_registry_moves() {
    let ingest = subject();
    let one = json!({"event_type": "a", "data": {"run_id": "r-1", "seq": 1}}).to_string();
    assert_eq!(
        ingest.handle(post("/v1/events", INGEST, &one)).await.status(),
        202
    );
    ordered_by(&ingest, OrderingMode::Run).await;
    let two = json!({"event_type": "a", "data": {"run_id": "r-1", "seq": 2}}).to_string();
    assert_eq!(
        ingest.handle(post("/v1/events", INGEST, &two)).await.status(),
        202
    );
    assert_eq!(
        queued_orders(&ingest),
        [Value::Null, json!({"run": {"key": "r-1", "position": 2}})]
    );
}
