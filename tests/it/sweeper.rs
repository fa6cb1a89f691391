//! The sweeper on the emulator: it re-drives what was lost, drains the DLQ into
//! failed deliveries, counts the backlog, and is safe when two sweeps overlap.

use crate::support::*;
use delivery_fn::Settings;
use hookline::EventId;
use hookline::delivery::DeliveryStatus;
use hookline::memory::ManualClock;
use hookline::message::QueueMessage;
use hookline::ports::DeliveryStore;
use serde_json::json;
use std::time::Duration;
use sweeper_fn::SweepSettings;

/// Retries after 1 s, and a sweeper that steps in after 1 s.
pub(crate) fn quick() -> Options {
    Options {
        settings: Settings {
            concurrency: 8,
            retry: hookline::retry::RetryDefaults {
                schedule: vec![Duration::ZERO, Duration::from_secs(1), Duration::from_secs(1)],
                ..Default::default()
            },
            ..Settings::default()
        },
        sweep: SweepSettings {
            grace: Duration::from_secs(1),
            ..SweepSettings::default()
        },
        ..Options::default()
    }
}

async fn send_event(h: &Harness) -> EventId {
    let body = json!({"event_type": "agent.run.failed", "data": {"run_id": "r-9"}}).to_string();
    let r = h
        .call_ingest("POST", "/v1/events", Some(INGEST_KEY), Some(&body))
        .await;
    assert_eq!(r.status, 202, "{}", r.json);
    EventId::parse(r.json["id"].as_str().unwrap()).unwrap()
}

/// An `agent.run.completed` event under this id, as ingest makes it.
fn agent_event(id: &str) -> hookline::event::Event {
    hookline::event_input::parse_event(
        &json!({"id": id, "event_type": "agent.run.completed", "data": {}}),
        "",
        hookline::Timestamp::now(),
        &mut Vec::new(),
    )
    .unwrap()
}

/// Puts the event's message straight in the DLQ, as if it had died there.
async fn dead_letter(h: &Harness, event: hookline::event::Event) {
    h.sqs
        .send_message()
        .queue_url(h.stack.queue_url("DeliveryDLQ"))
        .message_body(QueueMessage::EventV1 { event }.to_body())
        .send()
        .await
        .unwrap();
}

pub(crate) async fn purge(h: &Harness) {
    h.sqs
        .purge_queue()
        .queue_url(h.stack.queue_url("DeliveryQueue"))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_delivery_whose_attempt_message_was_lost_is_redriven_and_delivered() {
    // GIVEN a delivery waiting for its second attempt, whose message is deleted
    // behind Hookline's back
    let h = Harness::with(quick()).await;
    let rx = Receiver::start().await;
    rx.answer("/flaky", 500, "down");
    h.register("flaky", &rx.url("/flaky"), &["*"]).await;
    let id = send_event(&h).await;
    h.pump().await;
    purge(&h).await;
    rx.answer("/flaky", 200, "ok");

    // WHEN the sweeper runs once the attempt is overdue
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let report = h.sweeper().sweep().await.unwrap();
    h.pump().await;

    // THEN it was re-driven and delivered, with both attempts on record
    assert_eq!(report.redriven, 1, "{report:?}");
    let (d, attempts) = h.deliveries_of(&id).await.remove(0);
    assert_eq!(d.status, DeliveryStatus::Delivered);
    assert_eq!(attempts.len(), 2);
    let ids: Vec<String> = rx
        .received("/flaky")
        .iter()
        .map(|r| r.header("webhook-id"))
        .collect();
    assert_eq!(ids, vec![id.to_string(), id.to_string()]);
}

#[tokio::test]
async fn two_overlapping_sweeps_redrive_a_delivery_once() {
    let h = Harness::with(quick()).await;
    let rx = Receiver::start().await;
    rx.answer("/down", 503, "");
    h.register("down", &rx.url("/down"), &["*"]).await;
    send_event(&h).await;
    h.pump().await;
    purge(&h).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;

    let (a, b) = (h.sweeper(), h.sweeper());
    let (ra, rb) = tokio::join!(a.sweep(), b.sweep());
    assert_eq!(ra.unwrap().redriven + rb.unwrap().redriven, 1);
}

#[tokio::test]
async fn the_dlq_is_drained_into_failed_deliveries_and_reported() {
    // GIVEN an endpoint, an operator endpoint for Hookline's own events, and an event
    // message that died in the DLQ before anyone tried it
    let h = Harness::new().await;
    let rx = Receiver::start().await;
    h.register("crm", &rx.url("/crm"), &["agent.*"]).await;
    h.register("ops", &rx.url("/ops"), &["hookline.*"]).await;
    let event = agent_event("dead-1");
    dead_letter(&h, event).await;

    // WHEN the sweeper runs
    let report = h.sweeper().sweep().await.unwrap();

    // THEN the delivery is failed with the reason, the DLQ is empty, and the operator hears of it
    assert_eq!((report.dlq_drained, report.dlq_depth), (1, 0), "{report:?}");
    let (d, attempts) = h
        .deliveries_of(&EventId::parse("dead-1").unwrap())
        .await
        .remove(0);
    assert_eq!(d.status, DeliveryStatus::Failed);
    assert!(attempts.is_empty());
    assert!(
        d.failure_reason.as_deref().unwrap().contains("dead-lettered"),
        "{:?}",
        d.failure_reason
    );
    h.pump().await;
    assert!(rx.received("/crm").is_empty());
    let ops = rx.received("/ops");
    assert_eq!(ops.len(), 1);
    let body: serde_json::Value = serde_json::from_slice(&ops[0].body).unwrap();
    assert_eq!(body["event_type"], "hookline.delivery.exhausted");
    assert_eq!(body["data"]["event_id"], "dead-1");
}

#[tokio::test]
async fn a_dead_event_whose_fan_out_was_cut_short_fails_only_the_targets_left() {
    use hookline::delivery::Delivery;
    use hookline::ports::EventStore;
    // GIVEN an event claimed for two endpoints ten minutes ago by a worker that
    // delivered to the first and died; then its message died in the DLQ
    let h = Harness::new().await;
    let rx = Receiver::start().await;
    let (first, _) = h.register("first", &rx.url("/first"), &["agent.*"]).await;
    let (second, _) = h.register("second", &rx.url("/second"), &["agent.*"]).await;
    let (first, second) = (
        hookline::EndpointId::parse(&first).unwrap(),
        hookline::EndpointId::parse(&second).unwrap(),
    );
    let event = agent_event("dead-2");
    let then = hookline::Timestamp::now().minus(Duration::from_secs(600));
    let targets = [
        hookline::DeliveryId::generate_for(then, &first),
        hookline::DeliveryId::generate_for(then, &second),
    ];
    h.store()
        .claim_fanout(
            &event,
            &event.envelope_json(),
            &targets,
            then,
            Duration::from_secs(180),
        )
        .await
        .unwrap();
    let mut done = Delivery::under(targets[0].clone(), &event, first.clone(), 3, then);
    done.status = DeliveryStatus::Delivered;
    done.next_attempt_at = None;
    h.store().record_attempts(&[(&done, None)]).await.unwrap();
    dead_letter(&h, event).await;

    // WHEN the sweeper runs
    let report = h.sweeper().sweep().await.unwrap();

    // THEN the delivered one stays delivered, the other is failed under the id the
    // claim gave it, and the DLQ is empty
    assert_eq!((report.dlq_drained, report.dlq_depth), (1, 0), "{report:?}");
    let all = h.deliveries_of(&EventId::parse("dead-2").unwrap()).await;
    let got: Vec<_> = all.iter().map(|(d, _)| (d.id.clone(), d.status)).collect();
    assert_eq!(
        got,
        [
            (targets[0].clone(), DeliveryStatus::Delivered),
            (targets[1].clone(), DeliveryStatus::Failed)
        ]
    );
}

#[tokio::test]
async fn the_sweeper_counts_open_deliveries_and_queue_depths() {
    let h = Harness::new().await;
    let rx = Receiver::start().await;
    rx.answer("/down", 503, "");
    h.register("down", &rx.url("/down"), &["*"]).await;
    send_event(&h).await;
    h.pump().await;

    let clock = ManualClock::at(hookline::Timestamp::now());
    let sweeper = h.sweeper_with(clock);
    let report = sweeper.sweep().await.unwrap();
    assert_eq!(report.open_deliveries, 1);
    assert_eq!(
        report.queue_delayed, 1,
        "the next attempt waits in SQS: {report:?}"
    );
    assert_eq!(report.redriven, 0);

    sweeper.clock.advance(Duration::from_secs(65));
    let later = sweeper.sweep().await.unwrap();
    assert!((59..=61).contains(&later.oldest_open_age_seconds), "{later:?}");
}

#[tokio::test]
async fn messages_that_cannot_be_read_are_kept_where_the_operator_sees_them() {
    // GIVEN a message no version reads on the delivery queue, and another in the DLQ
    let h = Harness::new().await;
    for (queue, body) in [
        ("DeliveryQueue", "{\"type\":\"event.v1\",\"event\":"),
        ("DeliveryDLQ", "not json"),
    ] {
        h.sqs
            .send_message()
            .queue_url(h.stack.queue_url(queue))
            .message_body(body)
            .send()
            .await
            .unwrap();
    }

    // WHEN delivery and the sweeper meet them
    let stats = h.pump().await;
    let report = h.sweeper().sweep().await.unwrap();

    // THEN both left their queues and are listed, newest first, with their bodies
    assert_eq!((stats.received, stats.deleted), (1, 1), "{stats:?}");
    assert_eq!((report.dlq_drained, report.dead_letters), (1, 1), "{report:?}");
    let listed = h.read_all("/v1/dead-letters", 1, 5).await;
    let found: Vec<(&str, &str)> = listed
        .iter()
        .map(|d| (d["found_by"].as_str().unwrap(), d["body"].as_str().unwrap()))
        .collect();
    assert_eq!(
        found,
        [
            ("sweeper", "not json"),
            ("delivery", "{\"type\":\"event.v1\",\"event\":")
        ]
    );
    assert!(
        listed[1]["reason"]
            .as_str()
            .unwrap()
            .starts_with("unreadable: EOF"),
        "{}",
        listed[1]
    );
    assert!(listed[1]["message_id"].is_string());
    assert_eq!(listed[0]["body_bytes"], 8);
    let bad = h
        .call_admin("GET", "/v1/dead-letters?cursor=zzz", Some(ADMIN_KEY), None)
        .await;
    assert_eq!(bad.status, 422, "{}", bad.json);
}

#[tokio::test]
async fn the_sweeper_reads_due_deliveries_past_one_page_of_the_open_index() {
    use hookline::delivery::{Delivery, DeliveryStatus};
    use hookline::{EndpointId, Timestamp};
    // GIVEN 1,500 parked deliveries of about 1 KB each, all due: more than the 1 MB a
    // query's page holds
    let h = Harness::new().await;
    let store = h.store();
    let endpoint = EndpointId::generate();
    let event_type = hookline::event::EventType::parse("agent.run.failed").unwrap();
    let due = Timestamp::from_unix_millis(Timestamp::now().unix_millis() - 60_000);
    let deliveries: Vec<Delivery> = (0..1_500)
        .map(|i| {
            let mut d = Delivery::new(
                EventId::parse(&format!("evt_page_{i:04}")).unwrap(),
                endpoint.clone(),
                event_type.clone(),
                8,
                due,
            );
            d.status = DeliveryStatus::Retrying;
            d.attempts = 1;
            d.last_error = Some("x".repeat(900));
            d
        })
        .collect();
    let records: Vec<_> = deliveries.iter().map(|d| (d, None)).collect();
    store.record_attempts(&records).await.unwrap();

    // WHEN a sweep asks for up to 2,000 of them
    let found = store.due_deliveries(Timestamp::now(), 2_000).await.unwrap();

    // THEN it gets every one, most overdue first
    assert_eq!(found.len(), 1_500);
    assert!(found.iter().all(|d| d.delivery.is_parked()));
    assert!(found.windows(2).all(|w| w[0].due_at <= w[1].due_at));
}

#[tokio::test]
async fn deliveries_under_the_open_index_s_old_single_key_are_still_swept_and_counted() {
    use hookline::delivery::{Delivery, DeliveryStatus};
    use hookline::{EndpointId, Timestamp};
    // GIVEN two parked deliveries, one under its shard of the `open` index and one
    // moved back under the key every open delivery had before the index was sharded
    let h = Harness::new().await;
    let store = h.store();
    let endpoint = EndpointId::generate();
    let event_type = hookline::event::EventType::parse("agent.run.failed").unwrap();
    let now = Timestamp::now().unix_millis();
    let make = |i: i64| {
        let at = Timestamp::from_unix_millis(now - 60_000 + i * 1_000);
        let mut d = Delivery::new(
            EventId::parse(&format!("evt_old_key_{i}")).unwrap(),
            endpoint.clone(),
            event_type.clone(),
            8,
            at,
        );
        d.status = DeliveryStatus::Retrying;
        d.attempts = 1;
        d
    };
    let (older, newer) = (make(0), make(1));
    store
        .record_attempts(&[(&older, None), (&newer, None)])
        .await
        .unwrap();
    let key = |d: &Delivery| {
        let created = d.id.made_at_millis().unwrap();
        std::collections::HashMap::from([
            (
                "pk".to_owned(),
                aws_sdk_dynamodb::types::AttributeValue::S(format!("EP#{}", d.endpoint_id)),
            ),
            (
                "sk".to_owned(),
                aws_sdk_dynamodb::types::AttributeValue::S(format!("{created:016}#{}", d.id)),
            ),
        ])
    };
    h.dynamo
        .update_item()
        .table_name(h.stack.table("Table"))
        .set_key(Some(key(&older)))
        .update_expression("SET open_pk = :old")
        .condition_expression("attribute_exists(open_pk)")
        .expression_attribute_values(":old", aws_sdk_dynamodb::types::AttributeValue::S("OPEN".into()))
        .send()
        .await
        .unwrap();

    // WHEN the sweeper reads what is due, and counts what is open
    let due = store.due_deliveries(Timestamp::now(), 100).await.unwrap();
    let open = store.count_open(100).await.unwrap();

    // THEN both, most overdue first, whichever key holds them
    let ids: Vec<_> = due.iter().map(|d| d.delivery.id.clone()).collect();
    assert_eq!(ids, vec![older.id.clone(), newer.id.clone()]);
    assert_eq!(open.open, 2);
    assert_eq!(open.oldest_due_at, older.next_attempt_at);
}
