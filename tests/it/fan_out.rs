//! An event's whole path: ingest → SQS → delivery → signed POSTs → recorded attempts.

use crate::support::*;
use hookline::EventId;
use hookline::delivery::{AttemptOutcome, DeliveryStatus, TransportError};
use hookline::signing::{EndpointSecret, verify_seed, verify_standard};
use serde_json::{Value, json};

fn now_unix() -> i64 {
    hookline::Timestamp::now().unix_seconds()
}

#[tokio::test]
async fn an_event_reaches_both_matching_endpoints_signed_and_not_the_other() {
    // GIVEN two endpoints that want agent events and one that wants tool events
    let h = Harness::new().await;
    let rx = Receiver::start().await;
    let (_, secret_a) = h.register("a", &rx.url("/a"), &["agent.run.completed"]).await;
    let (_, secret_b) = h.register("b", &rx.url("/b"), &["agent.*"]).await;
    h.register("c", &rx.url("/c"), &["tool.*"]).await;

    // WHEN an agent sends an event and the queue is drained
    let body = json!({"event_type": "agent.run.completed", "data": {"run_id": "r-1"}}).to_string();
    let r = h
        .call_ingest("POST", "/v1/events", Some(INGEST_KEY), Some(&body))
        .await;
    assert_eq!(r.status, 202, "{}", r.json);
    let id = r.json["id"].as_str().unwrap().to_owned();
    let stats = h.pump().await;

    // THEN a and b got it once, signed with their own secrets, and c got nothing
    assert_eq!((stats.received, stats.deleted), (1, 1));
    for (path, secret) in [("/a", &secret_a), ("/b", &secret_b)] {
        let got = rx.received(path);
        assert_eq!(got.len(), 1, "{path}");
        let req = &got[0];
        let secret = EndpointSecret::parse(secret).unwrap();
        assert_eq!(req.header("webhook-id"), id);
        verify_standard(
            &secret,
            &id,
            &req.header("webhook-timestamp"),
            &req.header("webhook-signature"),
            &req.body,
            now_unix(),
            300,
        )
        .expect("the Standard Webhooks signature verifies");
        verify_seed(&secret, &req.header("x-webhook-signature"), &req.body)
            .expect("the seed signature verifies");
        // AND the receiver-side verifier accepts it as it came off the wire
        hookline::verify::verify_webhook(&secret, &req.headers, &req.body, now_unix(), 300)
            .expect("verify_webhook accepts a real delivery");
        assert_eq!(req.header("x-webhook-event"), "agent.run.completed");
        assert_eq!(req.header("content-type"), "application/json");
        let envelope: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(envelope["data"]["run_id"], "r-1");
        assert_eq!(envelope["version"], "1");
    }
    assert!(rx.received("/c").is_empty());

    // AND both deliveries are recorded as delivered, each with its attempt
    let recorded = h.deliveries_of(&EventId::parse(&id).unwrap()).await;
    assert_eq!(recorded.len(), 2);
    for (d, attempts) in recorded {
        assert_eq!(d.status, DeliveryStatus::Delivered);
        assert_eq!(attempts.len(), 1);
        assert_eq!(
            attempts[0].outcome,
            AttemptOutcome::Response {
                status: 200,
                body: "ok".into(),
                retry_after_seconds: None
            }
        );
    }
}

#[tokio::test]
async fn a_duplicate_event_id_is_delivered_once() {
    let h = Harness::new().await;
    let rx = Receiver::start().await;
    h.register("a", &rx.url("/a"), &["*"]).await;
    let body = json!({"id": "order-42", "event_type": "agent.run.started", "data": {}}).to_string();

    // WHEN the same event is sent twice, and once more after the first is delivered
    for _ in 0..2 {
        let r = h
            .call_ingest("POST", "/v1/events", Some(ADMIN_KEY), Some(&body))
            .await;
        assert_eq!((r.status, r.json["id"].as_str()), (202, Some("order-42")));
    }
    h.pump().await;
    let r = h
        .call_ingest("POST", "/v1/events", Some(INGEST_KEY), Some(&body))
        .await;
    assert_eq!(r.status, 202);
    h.pump().await;

    // THEN it arrived once, and no message is left behind
    assert_eq!(rx.received("/a").len(), 1);
    assert!(h.queue_is_empty().await);
}

#[tokio::test]
async fn another_event_under_a_taken_id_is_a_409_and_the_first_stays_the_one_delivered() {
    let h = Harness::new().await;
    let rx = Receiver::start().await;
    h.register("a", &rx.url("/a"), &["*"]).await;
    let first = json!({"id": "run-9:end", "event_type": "agent.run.completed", "data": {"ok": true}});
    h.send_event(&first).await;
    h.pump().await;

    // WHEN other data, then another type, then the same event come under its id, one by
    // one and in a batch beside a new event
    let other = json!({"id": "run-9:end", "event_type": "agent.run.completed", "data": {"ok": false}});
    let r = h
        .call_ingest("POST", "/v1/events", Some(INGEST_KEY), Some(&other.to_string()))
        .await;
    assert_eq!(r.status, 409, "{}", r.json);
    assert_eq!(r.json["errors"][0]["pointer"], "/data");
    let batch = json!({"events": [
        {"id": "run-9:end", "event_type": "agent.run.failed", "data": {"ok": true}},
        {"id": "run-10:end", "event_type": "agent.run.completed", "data": {}},
        first,
    ]});
    let r = h
        .call_ingest(
            "POST",
            "/v1/events/batch",
            Some(INGEST_KEY),
            Some(&batch.to_string()),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.json);
    let statuses: Vec<&str> = r.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["rejected", "accepted", "accepted"]);
    assert_eq!(
        r.json["results"][0]["errors"][0]["pointer"],
        "/events/0/event_type"
    );
    h.pump().await;

    // THEN the receiver got the first event once and the new one, and nothing else
    let got: Vec<Value> = rx.received("/a").iter().map(|x| x.json()).collect();
    let ids: Vec<&str> = got.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(ids.contains(&"run-9:end") && ids.contains(&"run-10:end"));
    let end = got.iter().find(|e| e["id"] == "run-9:end").unwrap();
    assert_eq!(end["data"], json!({"ok": true}));
    assert!(h.queue_is_empty().await);
}

#[tokio::test]
async fn a_conflicting_copy_sent_before_the_first_was_stored_is_kept_as_a_dead_letter() {
    let h = Harness::new().await;
    let rx = Receiver::start().await;
    h.register("a", &rx.url("/a"), &["*"]).await;

    // GIVEN two events under one id, both sent before either was stored (both 202)
    for ok in [true, false] {
        let e = json!({"id": "run-11:end", "event_type": "agent.run.completed", "data": {"ok": ok}});
        let r = h
            .call_ingest("POST", "/v1/events", Some(INGEST_KEY), Some(&e.to_string()))
            .await;
        assert_eq!(r.status, 202);
    }

    // WHEN delivery takes them
    h.pump().await;

    // THEN one arrived, the other is a dead letter that names the conflict, and no
    // message is left
    let got = rx.received("/a");
    assert_eq!(got.len(), 1);
    let kept = h.read_all("/v1/dead-letters", 10, 2).await;
    assert_eq!(kept.len(), 1, "{kept:?}");
    let reason = kept[0]["reason"].as_str().unwrap();
    assert!(reason.starts_with("conflict: event id `run-11:end`"), "{reason}");
    let lost: Value = serde_json::from_str(kept[0]["body"].as_str().unwrap()).unwrap();
    assert_ne!(lost["data"], got[0].json()["data"]);
    assert!(h.queue_is_empty().await);
}

#[tokio::test]
async fn a_failing_receiver_produces_a_recorded_failed_attempt() {
    let h = Harness::new().await;
    let rx = Receiver::start().await;
    rx.answer("/down", 500, "boom");
    h.register("down", &rx.url("/down"), &["*"]).await;

    let id = h
        .send_event(&json!({"event_type": "tool.failed", "data": {"tool": "search"}}))
        .await;
    let stats = h.pump().await;

    // The message is done with (the retry machinery owns the delivery now) …
    assert_eq!(stats.deleted, 1);
    // … and the delivery waits for its next attempt with the failure on record.
    let (d, attempts) = h.deliveries_of(&id).await.remove(0);
    assert_eq!(d.status, DeliveryStatus::Retrying);
    assert_eq!(d.last_status_code, Some(500));
    assert!(d.next_attempt_at.is_some());
    assert_eq!(attempts.len(), 1);
    assert_eq!(
        attempts[0].outcome,
        AttemptOutcome::Response {
            status: 500,
            body: "boom".into(),
            retry_after_seconds: None
        }
    );
}

#[tokio::test]
async fn a_receiver_that_is_not_listening_is_a_recorded_connect_error() {
    let h = Harness::new().await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    h.register("gone", &format!("http://{closed}/hook"), &["*"]).await;
    let id = h.send_event(&json!({"event_type": "a", "data": 1})).await;
    h.pump().await;
    let (d, attempts) = h.deliveries_of(&id).await.remove(0);
    assert_eq!(d.status, DeliveryStatus::Retrying);
    assert!(matches!(
        attempts[0].outcome,
        AttemptOutcome::Error {
            error: TransportError::Connect,
            ..
        }
    ));
}

#[tokio::test]
async fn the_ssrf_policy_is_applied_again_at_send_time() {
    // GIVEN an endpoint registered while loopback was allowed, and a delivery side
    // whose policy no longer allows it
    let h = Harness::with_send_policy(hookline::ssrf::SsrfPolicy::default()).await;
    let rx = Receiver::start().await;
    h.register("local", &rx.url("/a").replace("127.0.0.1", "localhost"), &["*"])
        .await;
    h.register("literal", &rx.url("/b"), &["*"]).await;

    let id = h.send_event(&json!({"event_type": "a", "data": 1})).await;
    h.pump().await;

    // THEN nothing was sent, and both attempts are recorded as blocked
    assert!(rx.received("/a").is_empty() && rx.received("/b").is_empty());
    let recorded = h.deliveries_of(&id).await;
    assert_eq!(recorded.len(), 2);
    for (_, attempts) in recorded {
        assert!(
            matches!(
                attempts[0].outcome,
                AttemptOutcome::Error {
                    error: TransportError::Blocked,
                    ..
                }
            ),
            "{:?}",
            attempts[0].outcome
        );
    }
}

#[tokio::test]
async fn a_batch_reports_per_event_and_queues_only_the_valid_ones() {
    let h = Harness::new().await;
    let rx = Receiver::start().await;
    h.register("a", &rx.url("/a"), &["*"]).await;
    let body = json!({"events": [
        {"event_type": "node_started", "data": {"node": "plan"}},
        {"event_type": "bad type", "data": {}},
        {"id": "tool-1", "event_type": "tool_completed", "data": {}}
    ]})
    .to_string();

    let r = h
        .call_ingest("POST", "/v1/events/batch", Some(INGEST_KEY), Some(&body))
        .await;

    assert_eq!(r.status, 202, "{}", r.json);
    assert_eq!(
        (r.json["accepted"].as_u64(), r.json["rejected"].as_u64()),
        (Some(2), Some(1))
    );
    let results = r.json["results"].as_array().unwrap();
    assert_eq!(results[0]["status"], "accepted");
    assert_eq!(results[1]["status"], "rejected");
    assert_eq!(results[1]["errors"][0]["pointer"], "/events/1/event_type");
    assert_eq!(results[2]["id"], "tool-1");
    h.pump().await;
    assert_eq!(rx.received("/a").len(), 2);
}

#[tokio::test]
async fn redirects_are_not_followed_and_long_answers_are_cut_to_1_kib() {
    let h = Harness::new().await;
    let rx = Receiver::start().await;
    rx.answer("/moved", 302, "");
    rx.answer("/chatty", 200, &"x".repeat(5000));
    h.register("moved", &rx.url("/moved"), &["*"]).await;
    h.register("chatty", &rx.url("/chatty"), &["*"]).await;

    let id = h.send_event(&json!({"event_type": "a", "data": 1})).await;
    h.pump().await;

    let recorded = h.deliveries_of(&id).await;
    let by_status: Vec<(DeliveryStatus, Option<u16>, usize)> = recorded
        .iter()
        .map(|(d, a)| {
            let len = match &a[0].outcome {
                AttemptOutcome::Response { body, .. } => body.len(),
                AttemptOutcome::Error { .. } => 0,
            };
            (d.status, d.last_status_code, len)
        })
        .collect();
    assert!(
        by_status.contains(&(DeliveryStatus::Retrying, Some(302), 0)),
        "{by_status:?}"
    );
    assert!(
        by_status.contains(&(DeliveryStatus::Delivered, Some(200), 1024)),
        "{by_status:?}"
    );
}

#[tokio::test]
async fn a_wait_longer_than_sqs_can_delay_is_parked_in_the_table_with_nothing_on_the_queue() {
    // GIVEN an endpoint that asks for an hour (503, Retry-After: 3600), and a stack
    // whose longest message delay is 1 s, so the hour must be waited another way
    let (h, rx) = stack_with_an_hour_long_wait().await;
    h.register("busy", &rx.url("/busy"), &["*"]).await;
    let body = json!({"event_type": "agent.run.completed", "data": {}}).to_string();
    let r = h
        .call_ingest("POST", "/v1/events", Some(INGEST_KEY), Some(&body))
        .await;
    let id = r.json["id"].as_str().unwrap().to_owned();

    // WHEN the first attempt fails
    let stats = h.pump().await;

    // THEN the event's message is done and no message waits out the hour, hidden or
    // delayed (a hidden one would count against the queue's in-flight quota): the
    // delivery is parked in the table, due in an hour, for the sweeper to queue then
    assert_eq!(
        (stats.received, stats.deleted, stats.kept),
        (1, 1, 0),
        "{stats:?}"
    );
    assert_eq!(rx.received("/busy").len(), 1);
    assert_eq!(not_visible(&h, "DeliveryQueue").await.as_deref(), Some("0"));
    assert!(h.queue_is_empty().await);
    let (d, _) = h.deliveries_of(&EventId::parse(&id).unwrap()).await.remove(0);
    assert_eq!(d.status, DeliveryStatus::Retrying);
    assert!(d.is_parked(), "{d:?}");
    let wait = d.next_attempt_at.unwrap().unix_seconds() - now_unix();
    assert!((3000..=4000).contains(&wait), "next attempt in {wait} s");
}

/// How many of `queue`'s messages are in flight (hidden).
async fn not_visible(h: &Harness, queue: &str) -> Option<String> {
    let attrs = h
        .sqs
        .get_queue_attributes()
        .queue_url(h.stack.queue_url(queue))
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap();
    attrs
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible))
        .cloned()
}

#[tokio::test]
async fn a_large_event_claimed_for_thousands_of_endpoints_keeps_its_body_in_an_item_of_its_own() {
    use hookline::ports::{EventLookup, EventStore, FanoutClaim};
    use hookline::{DeliveryId, EndpointId, Timestamp};
    // GIVEN an event of 300 KB that does not pack and 6,000 targets: together more than
    // one DynamoDB item holds
    let h = Harness::new().await;
    let blob: String = (0..7000)
        .map(|_| EndpointSecret::generate().expose()[6..].to_owned())
        .collect();
    let event = hookline::event_input::parse_event(
        &json!({"id": "big-1", "event_type": "agent.run.completed", "data": {"blob": blob}}),
        "",
        Timestamp::now(),
        &mut Vec::new(),
    )
    .unwrap();
    let endpoints: Vec<EndpointId> = (0..6000).map(|_| EndpointId::generate()).collect();
    let now = Timestamp::now();
    let targets = DeliveryId::for_targets(now, &endpoints);
    let lease = std::time::Duration::from_secs(180);

    // WHEN it is claimed, read back, and claimed again by a copy
    let first = h
        .store()
        .claim_fanout(&event, &event.envelope_json(), &targets, now, lease)
        .await
        .unwrap();
    let stored = h
        .store()
        .get_event(&hookline::event::EventKey::of_default(&event.id))
        .await
        .unwrap()
        .unwrap();
    let again = h
        .store()
        .claim_fanout(&event, &event.envelope_json(), &targets, now, lease)
        .await
        .unwrap();

    // THEN nothing is refused: the body and the targets read back whole, and the copy
    // waits for the lease
    assert_eq!(first, FanoutClaim::Fresh);
    assert_eq!(stored.event, event);
    assert_eq!(stored.targets, targets);
    assert!(matches!(again, FanoutClaim::Busy { .. }), "{again:?}");
    let item = h
        .dynamo
        .get_item()
        .table_name(h.stack.table("Table"))
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("EVT#big-1".into()),
        )
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("EVENT".into()))
        .send()
        .await
        .unwrap();
    let item = item.item().unwrap();
    assert!(
        item.contains_key("body_at") && !item.contains_key("body_z"),
        "the body is apart"
    );

    // … ingest's look-up reads it back whole too, and another event under its id is a
    // conflict, not a copy
    let looked = h
        .store()
        .stored_events(&[
            event.key(),
            hookline::event::EventKey::of_default(&EventId::parse("not-stored").unwrap()),
            event.key(),
        ])
        .await
        .unwrap();
    assert_eq!(looked, vec![event.clone()]);
    let mut other = event.clone();
    other.data = json!({"blob": "small"});
    let claim = h
        .store()
        .claim_fanout(&other, &other.envelope_json(), &targets, now, lease)
        .await
        .unwrap();
    assert!(
        matches!(claim, FanoutClaim::Conflict(c) if c.fields() == ["data"]),
        "{claim:?}"
    );
}

#[tokio::test]
async fn an_endpoint_created_changed_or_disabled_just_before_an_event_is_honoured_despite_the_cache() {
    // GIVEN a delivery function that caches endpoints for an hour, its cache warm
    let h = Harness::with(Options {
        endpoint_cache: std::time::Duration::from_secs(3600),
        ..Options::default()
    })
    .await;
    let rx = Receiver::start().await;
    let (a, _) = h.register("a", &rx.url("/a"), &["*"]).await;
    h.send_event(&json!({"id": "warm", "event_type": "agent.x", "data": 1}))
        .await;
    h.pump().await;
    assert_eq!(rx.received("/a").len(), 1);
    let ids =
        |path: &str| -> Vec<String> { rx.received(path).iter().map(|r| r.header("webhook-id")).collect() };

    // WHEN an endpoint is created, and an event sent at once
    let (b, _) = h.register("b", &rx.url("/b"), &["agent.*"]).await;
    h.send_event(&json!({"id": "after-create", "event_type": "agent.x", "data": 1}))
        .await;
    h.pump().await;
    // THEN it goes to the new endpoint too
    assert_eq!(ids("/b"), ["after-create"]);

    // WHEN its filter changes, and an event it no longer wants is sent at once
    let patch = json!({"version": 1, "event_types": ["tool.*"]}).to_string();
    let r = h
        .call_admin(
            "PATCH",
            &format!("/v1/endpoints/{b}"),
            Some(ADMIN_KEY),
            Some(&patch),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    h.send_event(&json!({"id": "after-patch", "event_type": "agent.x", "data": 1}))
        .await;
    h.pump().await;
    // THEN it does not get it
    assert_eq!(ids("/b"), ["after-create"]);

    // WHEN the first endpoint is disabled, and an event sent at once
    let patch = json!({"version": 1, "status": "disabled"}).to_string();
    let r = h
        .call_admin(
            "PATCH",
            &format!("/v1/endpoints/{a}"),
            Some(ADMIN_KEY),
            Some(&patch),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    h.send_event(&json!({"id": "after-disable", "event_type": "agent.x", "data": 1}))
        .await;
    h.pump().await;
    // THEN it receives nothing more
    assert_eq!(ids("/a"), ["warm", "after-create", "after-patch"]);
}

#[tokio::test]
async fn a_hanging_endpoint_does_not_hold_the_fast_lane_and_gets_its_webhooks_in_the_slow_one() {
    // GIVEN a fast receiver and one that takes 4 s (within its 6 s timeout), and a fast
    // lane that waits 500 ms for an answer
    let h = Harness::with(Options {
        settings: delivery_fn::Settings {
            concurrency: 8,
            inline_deadline: std::time::Duration::from_millis(500),
            ..delivery_fn::Settings::default()
        },
        ..Options::default()
    })
    .await;
    let rx = Receiver::start().await;
    rx.behave("/slow", |_| Answer::Respond {
        status: 200,
        body: String::new(),
        retry_after: None,
        delay: std::time::Duration::from_secs(4),
    });
    h.register("fast", &rx.url("/fast"), &["*"]).await;
    let body = json!({"name": "slow", "url": rx.url("/slow"), "event_types": ["*"], "timeout_seconds": 6})
        .to_string();
    let r = h
        .call_admin("POST", "/v1/endpoints", Some(ADMIN_KEY), Some(&body))
        .await;
    assert_eq!(r.status, 201, "{}", r.json);
    let slow = r.json["id"].as_str().unwrap().to_owned();

    // WHEN ten events arrive and the fast lane takes them
    let ids: Vec<EventId> = futures_ids(&h, 10).await;
    let started = std::time::Instant::now();
    h.pump_fast_lane().await;

    // THEN it was never held for the slow receiver, the fast one has every event, and the
    // slow endpoint is in the slow lane
    assert!(
        started.elapsed() < std::time::Duration::from_millis(3500),
        "{:?}",
        started.elapsed()
    );
    let fast_ids: std::collections::HashSet<String> = rx
        .received("/fast")
        .iter()
        .map(|r| r.header("webhook-id"))
        .collect();
    assert_eq!(fast_ids.len(), 10);
    let got = h
        .call_admin("GET", &format!("/v1/endpoints/{slow}"), Some(ADMIN_KEY), None)
        .await;
    assert_eq!(got.json["lane"], "slow", "{}", got.json);

    // AND the slow lane delivers every one of them to the slow receiver
    h.pump().await;
    for id in &ids {
        let deliveries = h.deliveries_of(id).await;
        assert_eq!(deliveries.len(), 2);
        assert!(
            deliveries
                .iter()
                .all(|(d, _)| d.status == DeliveryStatus::Delivered),
            "{deliveries:?}"
        );
    }
}

/// Sends `n` events at once; their ids.
async fn futures_ids(h: &Harness, n: usize) -> Vec<EventId> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(
            h.send_event(&json!({"id": format!("lane-{i}"), "event_type": "agent.x", "data": i}))
                .await,
        );
    }
    ids
}

#[tokio::test]
async fn a_slow_endpoints_long_wait_is_parked_and_leaves_neither_lane_a_message() {
    use hookline::ports::EndpointStore;
    // GIVEN an endpoint in the slow lane that asks for an hour (503, Retry-After: 3600),
    // and a stack whose longest message delay is 1 s
    let (h, rx) = stack_with_an_hour_long_wait().await;
    let (id, _) = h.register("busy", &rx.url("/busy"), &["*"]).await;
    let id = hookline::EndpointId::parse(&id).unwrap();
    assert!(
        h.store()
            .set_lane(&id, Some(hookline::Timestamp::now()))
            .await
            .unwrap()
    );

    // WHEN an event arrives
    h.send_event(&json!({"event_type": "agent.run.completed", "data": {}}))
        .await;
    let stats = h.pump().await;

    // THEN its attempt is made in the slow lane, and its hour is waited in the table:
    // the event's message and the slow lane's attempt message are both done
    assert_eq!(rx.received("/busy").len(), 1);
    assert_eq!(
        (stats.received, stats.deleted, stats.kept),
        (2, 2, 0),
        "{stats:?}"
    );
    assert_eq!(not_visible(&h, "SlowQueue").await.as_deref(), Some("0"));
    assert_eq!(not_visible(&h, "DeliveryQueue").await.as_deref(), Some("0"));
}

#[tokio::test]
async fn the_slow_lanes_attempt_messages_are_grouped_by_endpoint_for_fair_queueing() {
    use hookline::ports::Queue;
    let h = Harness::new().await;
    let queue = hookline::adapters::sqs::SqsQueue::new(h.sqs.clone(), h.stack.queue_url("SlowQueue"))
        .grouped_by_endpoint();
    let event: hookline::event::Event = serde_json::from_value(json!({
        "id": "evt_1", "event_type": "a.b", "data": {}, "timestamp": "2026-12-03T00:00:00Z",
        "source": "api", "version": "1"
    }))
    .unwrap();
    let endpoint_id = hookline::EndpointId::generate();
    let message = hookline::message::QueueMessage::AttemptV1 {
        event,
        endpoint_id: endpoint_id.clone(),
        wake: "w".into(),
    };
    queue
        .send_after(&message, std::time::Duration::ZERO)
        .await
        .unwrap();
    let got = h
        .sqs
        .receive_message()
        .queue_url(h.stack.queue_url("SlowQueue"))
        .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
        .send()
        .await
        .unwrap();
    let group = got.messages()[0]
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::MessageGroupId))
        .cloned();
    assert_eq!(group.as_deref(), Some(endpoint_id.as_str()));
}

/// A stack whose longest message delay is 1 s, and a receiver whose `/busy` asks for an
/// hour (503, Retry-After: 3600): an hour no message can be delayed for.
async fn stack_with_an_hour_long_wait() -> (Harness, Receiver) {
    let h = Harness::with(Options {
        settings: delivery_fn::Settings {
            concurrency: 8,
            max_delay: std::time::Duration::from_secs(1),
            ..delivery_fn::Settings::default()
        },
        ..Options::default()
    })
    .await;
    let rx = Receiver::start().await;
    rx.behave("/busy", |_| Answer::Respond {
        status: 503,
        body: String::new(),
        retry_after: Some(3600),
        delay: std::time::Duration::ZERO,
    });
    (h, rx)
}

#[tokio::test]
async fn an_attempt_message_that_comes_early_sleeps_hidden_until_its_delivery_is_due() {
    use hookline::ports::{EventStore, Queue};
    // GIVEN a delivery whose first attempt failed and whose next is due in 5 min (its
    // message delayed so), and copies of that message on the lanes' queues now
    let h = Harness::with(Options {
        settings: delivery_fn::Settings {
            concurrency: 8,
            retry: hookline::retry::RetryDefaults {
                schedule: vec![std::time::Duration::ZERO, std::time::Duration::from_secs(300)],
                ..Default::default()
            },
            ..delivery_fn::Settings::default()
        },
        ..Options::default()
    })
    .await;
    let rx = Receiver::start().await;
    rx.behave("/down", |_| Answer::Respond {
        status: 500,
        body: String::new(),
        retry_after: None,
        delay: std::time::Duration::ZERO,
    });
    h.register("down", &rx.url("/down"), &["*"]).await;
    let id = h
        .send_event(&json!({"event_type": "agent.run.completed", "data": {}}))
        .await;
    h.pump().await;
    let (d, _) = h.deliveries_of(&id).await.remove(0);
    assert!(!d.is_parked(), "5 min goes in a delayed message");
    let event = h.store().get_event(&d.event_key()).await.unwrap().unwrap().event;
    let early = hookline::message::QueueMessage::next_attempt(event, &d).unwrap();
    // On either lane's queue: both sleep the same way.
    for lane in ["DeliveryQueue", "SlowQueue"] {
        hookline::adapters::sqs::SqsQueue::new(h.sqs.clone(), h.stack.queue_url(lane))
            .send(&early)
            .await
            .unwrap();
    }

    // WHEN they are received
    let stats = h.pump().await;

    // THEN no request is made; each is kept, hidden until the delivery is due
    assert_eq!((stats.received, stats.kept), (2, 2), "{stats:?}");
    assert_eq!(rx.received("/down").len(), 1);
    for lane in ["DeliveryQueue", "SlowQueue"] {
        assert_eq!(not_visible(&h, lane).await.as_deref(), Some("1"), "{lane}");
    }
}
