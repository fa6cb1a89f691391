//! Large events: up to 5 MiB taken, their data checked in (`hookline::claim_check`) so
//! that they travel small.

use super::*;

/// The Platform's run webhook with this final state, posted; the run as sent.
async fn post_run(
    ingest: &Ingest<MemoryQueue, MemoryStore, ManualClock>,
    values: Value,
) -> (Value, Response<Body>) {
    let mut run: Value = serde_json::from_str(RUN_SUCCESS).unwrap();
    run["values"] = values;
    let res = ingest
        .handle(platform_post(
            &format!("/v1/langgraph/runs?token={INGEST}"),
            Some("application/json"),
            &run.to_string(),
        ))
        .await;
    (run, res)
}

#[tokio::test]
async fn a_langgraph_run_over_the_event_limit_is_reported_without_its_state() {
    let (ingest, data) = with_data();
    let (_, res) = post_run(
        &ingest,
        json!({"messages": ["m".repeat(MAX_EVENT_BYTES + 100_000)]}),
    )
    .await;
    assert_eq!(res.status(), 202, "{:?}", res.body());
    let sent = ingest.queue.sent();
    let QueueMessage::EventV1 { event } = &sent[0] else {
        panic!("an event message")
    };
    assert_eq!(event.data["values"]["omitted"], true);
    assert!(event.data["values"]["bytes"].as_u64().unwrap() > MAX_EVENT_BYTES as u64);
    assert!(data.objects.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_large_langgraph_run_is_kept_whole_by_checking_its_data_in() {
    // GIVEN a run whose state is 2 MiB
    let (ingest, data) = with_data();
    let (run, res) = post_run(&ingest, json!({"messages": ["m".repeat(2 << 20)]})).await;
    // THEN its data is stored, and the event travels small, pointing at it
    assert_eq!(res.status(), 202, "{:?}", res.body());
    let sent = ingest.queue.sent();
    let QueueMessage::EventV2 { event } = &sent[0] else {
        panic!("a checked-in event message: {:?}", sent[0])
    };
    assert_eq!(event.data, Value::Null);
    let r = event.data_ref.clone().expect("a data reference");
    let stored = data.objects.lock().unwrap()[&r.key].clone();
    let data: Value = serde_json::from_slice(&stored).unwrap();
    assert_eq!(data["values"], run["values"]);
    assert_eq!(r.size as usize, stored.len());
    assert!(sent[0].to_body().len() < 2048);
}

#[tokio::test]
async fn a_large_event_whose_data_cannot_be_stored_is_refused_for_now_and_not_queued() {
    let (ingest, data) = with_data();
    data.down.store(true, Ordering::SeqCst);
    let big = json!({"event_type": "a.b", "data": {"s": "x".repeat(100_000)}}).to_string();
    let res = ingest.handle(post("/v1/events", INGEST, &big)).await;
    assert_eq!(res.status(), 503, "{:?}", res.body());
    assert!(ingest.queue.sent().is_empty());

    // AND in a batch only that event fails, to be sent again; the others go
    let batch = json!({"events": [
        {"event_type": "a.b", "data": {"s": "x".repeat(100_000)}},
        {"event_type": "a.b", "data": {"small": true}},
    ]});
    let res = ingest
        .handle(post("/v1/events/batch", INGEST, &batch.to_string()))
        .await;
    assert_eq!(res.status(), 202, "{:?}", res.body());
    let body = json_of(&res);
    assert_eq!(body["results"][0]["status"], "failed");
    assert_eq!(body["results"][0]["retryable"], true);
    assert_eq!(body["results"][1]["status"], "accepted");
    assert_eq!(ingest.queue.sent().len(), 1);
}

#[tokio::test]
async fn a_large_event_sent_twice_under_its_id_is_one_event_and_changed_data_is_a_conflict() {
    use hookline::ports::EventStore;
    let ingest = subject();
    let body = |s: &str| {
        json!({"id": "evt_large", "event_type": "a.b", "data": {"s": s.repeat(100_000)}}).to_string()
    };
    let res = ingest.handle(post("/v1/events", INGEST, &body("x"))).await;
    assert_eq!(res.status(), 202, "{:?}", res.body());
    let QueueMessage::EventV2 { event } = ingest.queue.sent()[0].clone() else {
        panic!("checked in")
    };
    // WHEN delivery has stored it, and it is sent again, the same and then changed
    let ids = [hookline::DeliveryId::generate()];
    ingest
        .events
        .claim_fanout(
            &event,
            &event.envelope_json(),
            &ids,
            ingest.clock.now(),
            std::time::Duration::from_secs(30),
        )
        .await
        .unwrap();
    let again = ingest.handle(post("/v1/events", INGEST, &body("x"))).await;
    let changed = ingest.handle(post("/v1/events", INGEST, &body("y"))).await;
    // THEN the copy is taken and the changed one refused
    assert_eq!(again.status(), 202, "{:?}", again.body());
    assert_eq!(changed.status(), 409, "{:?}", changed.body());
    assert_eq!(json_of(&changed)["errors"][0]["pointer"], "/data");
}
