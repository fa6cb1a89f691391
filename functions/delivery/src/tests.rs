//! The delivery handler with in-memory ports and fixture SQS events.

use super::*;
use crate::batch::parse;
use aws_lambda_events::event::sqs::SqsEvent;
use hookline::delivery::{Attempt, AttemptOutcome, Delivery, DeliveryStatus, TransportError};
use hookline::endpoint::{Endpoint, EndpointStatus, EventTypeFilter};
use hookline::event::Event;
use hookline::ids::{DeliveryId, EndpointId};
use hookline::memory::{ManualClock, MemoryQueue, MemoryStore, ScriptedSender};
use hookline::message::QueueMessage;
use hookline::retry::Verdict;
use hookline::signing::{verify_seed, verify_standard};
use hookline::{EventId, Timestamp};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

mod claim_check;
mod lanes;
mod ordering;
mod reports;
mod unsent;

const FIXTURE: &str = include_str!("../fixtures/sqs-event.json");
const FIXTURE_EVENT_ID: &str = "evt_0192f1c2a3b47c8d9e0f1a2b3c4d5e6f";
const T0: i64 = 1_795_935_600_000;

fn fixture() -> SqsEvent {
    serde_json::from_str(FIXTURE).expect("fixture parses")
}

fn endpoint(name: &str, filters: &[&str]) -> Endpoint {
    let mut ep = Endpoint::new(
        name.into(),
        format!("https://{name}.example.com/hook"),
        filters
            .iter()
            .map(|f| EventTypeFilter::parse(f).unwrap())
            .collect(),
        Timestamp::from_unix_millis(T0),
    );
    ep.headers = BTreeMap::from([("x-tenant".to_owned(), "acme".to_owned())]);
    ep.timeout_seconds = 5;
    ep.max_attempts = 3;
    ep
}

type Subject = Deliverer<MemoryStore, ScriptedSender, MemoryQueue, ManualClock>;

async fn subject(endpoints: &[&Endpoint]) -> Subject {
    let store = MemoryStore::default();
    for e in endpoints {
        store.create_endpoint(e).await.unwrap();
    }
    Deliverer {
        store,
        sender: ScriptedSender::default(),
        queue: MemoryQueue::default(),
        clock: ManualClock::at(Timestamp::from_unix_millis(T0)),
        data: std::sync::Arc::new(hookline::memory::MemoryData::default()),
        endpoints: EndpointCache::new(Duration::ZERO),
        settings: Settings {
            concurrency: 8,
            ..Settings::default()
        },
        slow_lane: None,
    }
}

/// The fixture's event, claimed by a worker (that then died) for these endpoints.
async fn claimed(d: &Subject, endpoints: &[&Endpoint]) -> (Event, Vec<DeliveryId>) {
    let Some(Work::Event(event)) = parse(&fixture().records[0]).pop() else {
        panic!("an event")
    };
    let targets = DeliveryId::for_targets(d.clock.now(), endpoints.iter().map(|ep| &ep.id));
    d.store
        .claim_fanout(
            &event,
            &event.envelope_json(),
            &targets,
            d.clock.now(),
            Duration::from_secs(120),
        )
        .await
        .unwrap();
    (event, targets)
}

/// A batch of `n` records, each the fixture's event under the id `<prefix>_<i>`.
fn events_batch(prefix: &str, n: usize) -> SqsEvent {
    let mut batch = fixture();
    let template = batch.records.remove(0);
    for i in 0..n {
        let Some(Work::Event(mut e)) = parse(&template).pop() else {
            panic!("an event")
        };
        e.id = EventId::parse(&format!("{prefix}_{i}")).unwrap();
        let mut r = template.clone();
        r.body = Some(QueueMessage::EventV1 { event: e }.to_body());
        r.message_id = Some(format!("m{i}"));
        batch.records.push(r);
    }
    batch
}

fn event_id() -> EventId {
    EventId::parse(FIXTURE_EVENT_ID).unwrap()
}

#[tokio::test]
async fn an_event_is_posted_to_every_matching_endpoint_and_no_other() {
    // GIVEN an exact, a prefix and a non-matching subscription
    let exact = endpoint("exact", &["agent.run.completed"]);
    let prefix = endpoint("prefix", &["agent.*"]);
    let other = endpoint("other", &["tool.*"]);
    let d = subject(&[&exact, &prefix, &other]).await;

    // WHEN the fixture batch arrives
    let response = d.handle(fixture()).await;

    // THEN both matching endpoints got one request each, and nothing is left for SQS
    assert!(response.batch_item_failures.is_empty());
    let mut urls: Vec<String> = d.sender.requests().into_iter().map(|r| r.url).collect();
    urls.sort();
    let mut expected = vec![exact.url.clone(), prefix.url.clone()];
    expected.sort();
    assert_eq!(urls, expected);
    let recorded = d
        .store
        .deliveries_for_event(&hookline::event::EventKey::of_default(&event_id()))
        .await
        .unwrap();
    assert_eq!(recorded.len(), 2);
    for (delivery, attempts) in &recorded {
        assert_eq!(delivery.status, DeliveryStatus::Delivered);
        assert_eq!(attempts.len(), 1);
        assert_eq!(attempts[0].number, 1);
    }
    assert!(d.store.event_is_done(&event_id()));
}

#[tokio::test]
async fn requests_carry_verifiable_signatures_and_the_contract_headers() {
    let ep = endpoint("crm", &["*"]);
    let d = subject(&[&ep]).await;
    d.handle(fixture()).await;

    let req = d.sender.requests().pop().expect("one request");
    let header = |name: &str| {
        req.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(header("webhook-id"), FIXTURE_EVENT_ID);
    assert_eq!(header("webhook-timestamp"), (T0 / 1000).to_string());
    assert_eq!(header("x-webhook-timestamp"), (T0 / 1000).to_string());
    assert_eq!(header("x-webhook-event"), "agent.run.completed");
    assert!(header("x-webhook-delivery").starts_with("dlv_"));
    assert!(header("user-agent").starts_with("Hookline/"));
    assert_eq!(header("x-tenant"), "acme");
    verify_standard(
        &ep.secret,
        FIXTURE_EVENT_ID,
        &header("webhook-timestamp"),
        &header("webhook-signature"),
        &req.body,
        T0 / 1000,
        300,
    )
    .expect("standard signature verifies");
    verify_seed(&ep.secret, &header("x-webhook-signature"), &req.body).expect("seed signature verifies");
    let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(body["id"], FIXTURE_EVENT_ID);
    assert_eq!(body["data"]["status"], "success");
    assert_eq!(req.timeout, Duration::from_secs(5));
}

#[tokio::test]
async fn a_redelivered_event_is_not_sent_again() {
    let ep = endpoint("crm", &["*"]);
    let d = subject(&[&ep]).await;
    d.handle(fixture()).await;
    let again = d.handle(fixture()).await;
    assert!(again.batch_item_failures.is_empty());
    assert_eq!(d.sender.requests().len(), 1);
}

#[tokio::test]
async fn two_copies_of_an_event_in_one_batch_are_sent_once_and_both_acknowledged() {
    let ep = endpoint("crm", &["*"]);
    let d = subject(&[&ep]).await;
    let mut batch = fixture();
    let mut copy = batch.records[0].clone();
    copy.message_id = Some("second-copy".into());
    batch.records.push(copy);
    let response = d.handle(batch).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(d.sender.requests().len(), 1);
}

#[tokio::test]
async fn a_copy_under_an_id_another_event_holds_is_kept_as_a_dead_letter_not_sent() {
    // GIVEN the fixture's event delivered
    let ep = endpoint("crm", &["*"]);
    let d = subject(&[&ep]).await;
    d.handle(fixture()).await;

    // WHEN a message brings other data under its id (sent before the first was stored,
    // so ingest could not refuse it)
    let mut batch = fixture();
    let Some(Work::Event(mut other)) = parse(&batch.records[0]).pop() else {
        panic!("an event")
    };
    other.data = serde_json::json!({"changed": true});
    batch.records[0].body = Some(QueueMessage::EventV1 { event: other.clone() }.to_body());
    let response = d.handle(batch).await;

    // THEN it is acknowledged, sent to no one, and kept with the reason and its event
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(d.sender.requests().len(), 1);
    let kept = d.store.dead_letters.lock().unwrap().clone();
    assert_eq!(kept.len(), 1);
    assert!(
        kept[0].reason.starts_with("conflict: event id `"),
        "{}",
        kept[0].reason
    );
    assert!(
        kept[0].reason.contains("its `data` differs"),
        "{}",
        kept[0].reason
    );
    assert_eq!(kept[0].body, other.envelope_json());
    assert_eq!(
        d.store
            .deliveries_for_event(&hookline::event::EventKey::of_default(&event_id()))
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn two_events_under_one_id_in_one_batch_are_not_taken_for_copies() {
    let ep = endpoint("crm", &["*"]);
    let d = subject(&[&ep]).await;
    let mut batch = fixture();
    let Some(Work::Event(mut other)) = parse(&batch.records[0]).pop() else {
        panic!("an event")
    };
    other.event_type = hookline::EventType::parse("agent.run.failed").unwrap();
    let mut second = batch.records[0].clone();
    second.message_id = Some("other-event".into());
    second.body = Some(QueueMessage::EventV1 { event: other }.to_body());
    batch.records.push(second);

    let response = d.handle(batch).await;

    assert!(response.batch_item_failures.is_empty());
    assert_eq!(d.sender.requests().len(), 1);
    let kept = d.store.dead_letters.lock().unwrap().clone();
    assert_eq!(kept.len(), 1);
    assert!(
        kept[0].reason.contains("its `event_type` differs"),
        "{}",
        kept[0].reason
    );
}

#[tokio::test]
async fn a_failed_attempt_is_recorded_and_the_delivery_left_retrying() {
    let ep = endpoint("down", &["*"]);
    let d = subject(&[&ep]).await;
    d.sender.answer(
        &ep.url,
        [AttemptOutcome::Response {
            status: 503,
            body: "maintenance".into(),
            retry_after_seconds: None,
        }],
    );

    let response = d.handle(fixture()).await;

    // The attempt failed, but the record is handled: retries are the delivery's business now.
    assert!(response.batch_item_failures.is_empty());
    let (delivery, attempts) = d
        .store
        .deliveries_for_event(&hookline::event::EventKey::of_default(&event_id()))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(delivery.status, DeliveryStatus::Retrying);
    assert_eq!(delivery.attempts, 1);
    assert_eq!(delivery.last_status_code, Some(503));
    let next = delivery.next_attempt_at.expect("a next attempt time");
    let wait = next.since(Timestamp::from_unix_millis(T0));
    assert!(
        wait >= Duration::from_millis(4500) && wait <= Duration::from_millis(5500),
        "{wait:?}"
    );
    assert_eq!(
        attempts[0].outcome,
        AttemptOutcome::Response {
            status: 503,
            body: "maintenance".into(),
            retry_after_seconds: None
        }
    );
}

#[tokio::test]
async fn a_transport_error_on_the_last_allowed_attempt_fails_the_delivery() {
    let mut ep = endpoint("gone", &["*"]);
    ep.max_attempts = 1;
    let d = subject(&[&ep]).await;
    d.sender.answer(
        &ep.url,
        [AttemptOutcome::Error {
            error: TransportError::Timeout,
            message: "no response within 5 s".into(),
        }],
    );
    d.handle(fixture()).await;
    let (delivery, _) = d
        .store
        .deliveries_for_event(&hookline::event::EventKey::of_default(&event_id()))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(delivery.status, DeliveryStatus::Failed);
    assert_eq!(delivery.last_error.as_deref(), Some("no response within 5 s"));
}

#[tokio::test]
async fn a_store_outage_leaves_the_record_for_sqs_to_bring_back() {
    let ep = endpoint("crm", &["*"]);
    let d = subject(&[&ep]).await;
    d.store.unavailable.store(true, Ordering::SeqCst);
    let response = d.handle(fixture()).await;
    assert_eq!(response.batch_item_failures.len(), 1);
    assert_eq!(
        response.batch_item_failures[0].item_identifier,
        "059f36b4-87a3-44ab-83d2-661975830a7d"
    );
    assert!(d.sender.requests().is_empty());

    // WHEN SQS brings it back and the store is up again THEN it is delivered once.
    d.store.unavailable.store(false, Ordering::SeqCst);
    assert!(d.handle(fixture()).await.batch_item_failures.is_empty());
    assert_eq!(d.sender.requests().len(), 1);
}

#[tokio::test]
async fn an_event_another_worker_is_fanning_out_comes_back_later() {
    let ep = endpoint("crm", &["*"]);
    let d = subject(&[&ep]).await;
    let Some(Work::Event(event)) = parse(&fixture().records[0]).pop() else {
        panic!("an event")
    };
    d.store
        .claim_fanout(
            &event,
            &event.envelope_json(),
            &[DeliveryId::generate_for(d.clock.now(), &ep.id)],
            d.clock.now(),
            Duration::from_secs(120),
        )
        .await
        .unwrap();
    let response = d.handle(fixture()).await;
    assert_eq!(response.batch_item_failures.len(), 1);
    assert!(d.sender.requests().is_empty());
}

#[tokio::test]
async fn a_fan_out_cut_short_resumes_with_only_the_endpoints_not_yet_recorded() {
    // GIVEN a worker that recorded one of two deliveries and then died
    let first = endpoint("first", &["*"]);
    let second = endpoint("second", &["*"]);
    let d = subject(&[&first, &second]).await;
    let (event, targets) = claimed(&d, &[&first, &second]).await;
    let mut done = Delivery::under(targets[0].clone(), &event, first.id.clone(), 3, d.clock.now());
    let ok = AttemptOutcome::Response {
        status: 200,
        body: String::new(),
        retry_after_seconds: None,
    };
    done.apply(&ok, &Verdict::Delivered, d.clock.now());
    let attempt = Attempt {
        number: 1,
        started_at: d.clock.now(),
        duration_ms: 3,
        outcome: ok,
    };
    d.store.record_attempts(&[(&done, Some(&attempt))]).await.unwrap();

    // WHEN its lease has lapsed and SQS brings the message back
    d.clock.advance(Duration::from_secs(121));
    let response = d.handle(fixture()).await;

    // THEN only the second endpoint is sent to
    assert!(response.batch_item_failures.is_empty());
    let urls: Vec<String> = d.sender.requests().into_iter().map(|r| r.url).collect();
    assert_eq!(urls, vec![second.url.clone()]);
    assert_eq!(
        d.store
            .deliveries_for_event(&hookline::event::EventKey::of_default(&event.id))
            .await
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn a_resumed_fan_out_keeps_to_its_claimed_targets_and_fails_one_deleted_since() {
    // GIVEN a worker that claimed an event for two endpoints, recorded neither and died;
    // then the second endpoint was deleted and a third registered
    let first = endpoint("first", &["*"]);
    let second = endpoint("second", &["*"]);
    let d = subject(&[&first, &second]).await;
    let (event, _) = claimed(&d, &[&first, &second]).await;
    d.store.delete_endpoint(&second).await.unwrap();
    let third = endpoint("third", &["*"]);
    d.store.create_endpoint(&third).await.unwrap();

    // WHEN its lease has lapsed and SQS brings the message back
    d.clock.advance(Duration::from_secs(121));
    let response = d.handle(fixture()).await;

    // THEN the first is sent to, the deleted one gets a failed delivery with the reason,
    // the newcomer nothing, and the fan-out is done
    assert!(response.batch_item_failures.is_empty());
    let urls: Vec<String> = d.sender.requests().into_iter().map(|r| r.url).collect();
    assert_eq!(urls, vec![first.url.clone()]);
    let gone = d
        .store
        .get_delivery(&hookline::event::EventKey::of_default(&event.id), &second.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(gone.status, DeliveryStatus::Failed);
    assert_eq!(
        gone.failure_reason.as_deref(),
        Some("the endpoint was deleted before its first attempt")
    );
    assert!(
        d.store
            .get_delivery(&hookline::event::EventKey::of_default(&event.id), &third.id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(d.store.event_is_done(&event.id));
}

#[tokio::test]
async fn a_failed_write_keeps_only_the_messages_of_the_fan_outs_it_carried() {
    // GIVEN ten events for five endpoints (fifty deliveries, two writes of twenty-five),
    // and a store whose first write fails
    let eps: Vec<Endpoint> = (0..5).map(|i| endpoint(&format!("ep{i}"), &["*"])).collect();
    let d = subject(&eps.iter().collect::<Vec<_>>()).await;
    let batch = events_batch("evt_write", 10);
    d.store.failing_writes.store(1, Ordering::SeqCst);

    // WHEN the batch is handled
    let response = d.handle(batch).await;

    // THEN the five events of the failed write stay for SQS; the other five are written
    // and acknowledged
    assert_eq!(
        response.batch_item_failures.len(),
        5,
        "{:?}",
        response.batch_item_failures
    );
    let mut written = 0;
    for i in 0..10 {
        let id = EventId::parse(&format!("evt_write_{i}")).unwrap();
        let n = d
            .store
            .deliveries_for_event(&hookline::event::EventKey::of_default(&id))
            .await
            .unwrap()
            .len();
        assert!(n == 0 || n == 5, "{id}: {n}");
        written += usize::from(n == 5);
    }
    assert_eq!(written, 5);
}

#[tokio::test]
async fn a_fan_out_still_sending_is_answered_while_a_write_is_out() {
    // GIVEN twenty-five events for one endpoint (a BatchWriteItem's worth) and one for
    // another, whose answer comes only once the first write has started; that write
    // finishes only once that answer has been read
    let runs = endpoint("runs", &["agent.run.completed"]);
    let tools = endpoint("tools", &["tool.*"]);
    let d = subject(&[&runs, &tools]).await;
    let mut batch = events_batch("evt_beside", 26);
    let Some(Work::Event(mut last)) = parse(&batch.records[25]).pop() else {
        panic!("an event")
    };
    last.event_type = hookline::EventType::parse("tool.failed").unwrap();
    batch.records[25].body = Some(QueueMessage::EventV1 { event: last }.to_body());
    let held = d.sender.hold(&tools.url);
    let (release, answered) = (held.release.clone(), held.answered.clone());
    *d.store.before_next_write.lock().unwrap() = Some(Box::pin(async move {
        release.notify_one();
        answered.notified().await;
    }));

    // WHEN the batch is handled
    let response = tokio::time::timeout(Duration::from_secs(10), d.handle(batch))
        .await
        .expect("the held fan-out was polled while the write was out");

    // THEN every event was delivered and written
    assert!(
        response.batch_item_failures.is_empty(),
        "{:?}",
        response.batch_item_failures
    );
    assert_eq!(d.sender.requests().len(), 26);
    for i in 0..26 {
        let id = EventId::parse(&format!("evt_beside_{i}")).unwrap();
        assert_eq!(
            d.store
                .deliveries_for_event(&hookline::event::EventKey::of_default(&id))
                .await
                .unwrap()
                .len(),
            1,
            "{id}"
        );
    }
}

#[tokio::test]
async fn an_unreadable_message_is_kept_as_a_dead_letter_and_acknowledged() {
    let d = subject(&[]).await;
    let mut batch = fixture();
    batch.records[0].body = Some("{\"type\":\"mystery\"}".into());
    assert!(d.handle(batch).await.batch_item_failures.is_empty());
    let kept = d.store.dead_letters.lock().unwrap().clone();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].body, "{\"type\":\"mystery\"}");
    assert_eq!(
        kept[0].message_id.as_deref(),
        Some("059f36b4-87a3-44ab-83d2-661975830a7d")
    );
    assert!(kept[0].reason.starts_with("unreadable: "), "{}", kept[0].reason);
}

#[tokio::test]
async fn an_unreadable_message_stays_while_its_dead_letter_cannot_be_written() {
    let d = subject(&[]).await;
    d.store.unavailable.store(true, Ordering::SeqCst);
    let mut batch = fixture();
    batch.records[0].body = Some("not json".into());
    assert_eq!(d.handle(batch).await.batch_item_failures.len(), 1);
}

#[tokio::test]
async fn disabled_endpoints_receive_nothing() {
    let mut ep = endpoint("off", &["*"]);
    ep.status = EndpointStatus::Disabled;
    let d = subject(&[&ep]).await;
    d.handle(fixture()).await;
    assert!(d.sender.requests().is_empty());
    assert!(d.store.event_is_done(&event_id()));
}

// ---- retries: attempt messages, sleeping, keeping, stale copies, auto-disable ----

fn response(status: u16) -> AttemptOutcome {
    AttemptOutcome::Response {
        status,
        body: String::new(),
        retry_after_seconds: None,
    }
}

/// The attempt messages queued so far, with their delays.
fn attempt_messages(d: &Subject) -> Vec<(EndpointId, String, Duration)> {
    let delays = d.queue.delays.lock().unwrap().clone();
    d.queue
        .sent()
        .into_iter()
        .zip(delays)
        .filter_map(|(m, delay)| match m {
            QueueMessage::AttemptV1 {
                endpoint_id, wake, ..
            }
            | QueueMessage::AttemptV2 {
                endpoint_id, wake, ..
            } => Some((endpoint_id, wake, delay)),
            QueueMessage::EventV1 { .. }
            | QueueMessage::EventV2 { .. }
            | QueueMessage::EventsV1 { .. }
            | QueueMessage::ReportV1 { .. } => None,
        })
        .collect()
}

/// The types of the operational events reported so far.
fn ops_types(d: &Subject) -> Vec<String> {
    d.queue
        .sent()
        .into_iter()
        .filter_map(|m| match m {
            QueueMessage::ReportV1 { report } => Some(report.event_type().to_owned()),
            QueueMessage::AttemptV1 { .. }
            | QueueMessage::AttemptV2 { .. }
            | QueueMessage::EventV1 { .. }
            | QueueMessage::EventV2 { .. }
            | QueueMessage::EventsV1 { .. } => None,
        })
        .collect()
}

/// An SQS batch holding one attempt message for the fixture's event.
fn attempt_batch(endpoint: &EndpointId, wake: &str, receives: u32) -> SqsEvent {
    let Some(Work::Event(event)) = parse(&fixture().records[0]).pop() else {
        panic!("an event")
    };
    let mut batch = fixture();
    let m = QueueMessage::AttemptV1 {
        event,
        endpoint_id: endpoint.clone(),
        wake: wake.to_owned(),
    };
    batch.records[0].body = Some(m.to_body());
    batch.records[0].message_id = Some(format!("attempt-{wake}"));
    batch.records[0].receipt_handle = Some(format!("receipt-{wake}"));
    batch.records[0]
        .attributes
        .insert("ApproximateReceiveCount".into(), receives.to_string());
    batch
}

/// The fixture's event failed its first attempt to `ep` with a 500: the wake token of
/// the message that carries its next.
async fn failed_once(d: &Subject, ep: &Endpoint) -> String {
    d.sender.answer(&ep.url, [response(500)]);
    d.handle(fixture()).await;
    attempt_messages(d).remove(0).1
}

async fn delivery_of(d: &Subject, ep: &Endpoint) -> Delivery {
    d.store
        .get_delivery(&hookline::event::EventKey::of_default(&event_id()), &ep.id)
        .await
        .unwrap()
        .expect("a delivery")
}

#[tokio::test]
async fn a_failed_first_attempt_queues_its_next_attempt_delayed_by_the_schedule() {
    let ep = endpoint("down", &["*"]);
    let d = subject(&[&ep]).await;
    d.sender.answer(&ep.url, [response(500)]);
    d.handle(fixture()).await;

    let sent = attempt_messages(&d);
    assert_eq!(sent.len(), 1);
    let (endpoint_id, wake, delay) = &sent[0];
    assert_eq!(endpoint_id, &ep.id);
    assert_eq!(Some(wake.clone()), delivery_of(&d, &ep).await.wake);
    assert!(
        *delay >= Duration::from_millis(4500) && *delay <= Duration::from_millis(5500),
        "{delay:?}"
    );
}

#[tokio::test]
async fn an_attempt_message_makes_the_next_attempt_when_due() {
    let ep = endpoint("flaky", &["*"]);
    let d = subject(&[&ep]).await;
    d.sender.answer(&ep.url, [response(500)]);
    d.handle(fixture()).await;
    let (_, wake, _) = attempt_messages(&d).remove(0);

    d.clock.advance(Duration::from_secs(6));
    let response = d.handle(attempt_batch(&ep.id, &wake, 1)).await;

    assert!(response.batch_item_failures.is_empty());
    let delivery = delivery_of(&d, &ep).await;
    assert_eq!(
        (delivery.status, delivery.attempts),
        (DeliveryStatus::Delivered, 2)
    );
    let (_, attempts) = d
        .store
        .deliveries_for_event(&hookline::event::EventKey::of_default(&event_id()))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(attempts.iter().map(|a| a.number).collect::<Vec<_>>(), [1, 2]);
    // Both requests carry the same webhook-id.
    let ids: Vec<String> = d
        .sender
        .requests()
        .iter()
        .map(|r| r.headers["webhook-id"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, [FIXTURE_EVENT_ID, FIXTURE_EVENT_ID]);
}

#[tokio::test]
async fn an_early_attempt_message_goes_back_to_sleep_without_a_call() {
    let ep = endpoint("down", &["*"]);
    let d = subject(&[&ep]).await;
    d.sender.answer(&ep.url, [response(500)]);
    d.handle(fixture()).await;
    let (_, wake, _) = attempt_messages(&d).remove(0);

    let response = d.handle(attempt_batch(&ep.id, &wake, 1)).await;

    assert_eq!(response.batch_item_failures.len(), 1);
    assert_eq!(d.sender.requests().len(), 1, "no HTTP call before its time");
    let hidden = d.queue.hidden.lock().unwrap().clone();
    assert_eq!(hidden.len(), 1);
    assert_eq!(hidden[0].0, format!("receipt-{wake}"));
    assert!(
        hidden[0].1 >= Duration::from_secs(4) && hidden[0].1 <= Duration::from_secs(6),
        "{hidden:?}"
    );
}

#[tokio::test]
async fn a_stale_or_duplicated_attempt_message_sends_nothing() {
    let ep = endpoint("flaky", &["*"]);
    let d = subject(&[&ep]).await;
    d.sender.answer(&ep.url, [response(500), response(500)]);
    d.handle(fixture()).await;
    let (_, wake, _) = attempt_messages(&d).remove(0);
    d.clock.advance(Duration::from_secs(6));
    d.handle(attempt_batch(&ep.id, &wake, 1)).await;
    assert_eq!(d.sender.requests().len(), 2);

    // The same message again (SQS delivers at least once), and one with a wrong token.
    for w in [wake.as_str(), "not-the-token"] {
        let response = d.handle(attempt_batch(&ep.id, w, 1)).await;
        assert!(response.batch_item_failures.is_empty());
    }
    assert_eq!(d.sender.requests().len(), 2);
    assert_eq!(
        delivery_of(&d, &ep).await.attempts,
        2,
        "the delivery never regresses"
    );
}

#[tokio::test]
async fn a_wait_longer_than_sqs_can_delay_is_parked_in_the_table_and_its_message_let_go() {
    // GIVEN a queue whose messages may be delayed 10 s at most
    let mut ep = endpoint("slow-to-recover", &["*"]);
    ep.max_attempts = 8;
    let mut d = subject(&[&ep]).await;
    d.settings.max_delay = Duration::from_secs(10);
    d.sender.answer(&ep.url, [response(500), response(500)]);
    d.handle(fixture()).await;
    // The first retry's 5 s wait travels as a delayed message.
    let (_, wake, delay) = attempt_messages(&d).remove(0);
    assert!(delay <= Duration::from_secs(10), "{delay:?}");

    // WHEN attempt 2 fails and its 5 min wait is longer than any message's delay
    d.clock.advance(Duration::from_secs(6));
    let response = d.handle(attempt_batch(&ep.id, &wake, 1)).await;

    // THEN no message waits (none hidden, none sent): the delivery is parked in the
    // table, due in about 5 min, with no token a message could carry
    assert!(response.batch_item_failures.is_empty(), "the message is let go");
    assert!(d.queue.hidden.lock().unwrap().is_empty());
    assert_eq!(attempt_messages(&d).len(), 1, "no new message");
    let delivery = delivery_of(&d, &ep).await;
    assert_eq!(
        (delivery.attempts, delivery.status),
        (2, DeliveryStatus::Retrying)
    );
    assert!(delivery.is_parked());
    let wait = delivery.next_attempt_at.expect("due").since(d.clock.now());
    assert!(
        wait >= Duration::from_secs(270) && wait <= Duration::from_secs(330),
        "{wait:?}"
    );
    // The message that woke it is stale now, should SQS bring it back.
    d.handle(attempt_batch(&ep.id, &wake, 2)).await;
    assert_eq!(d.sender.requests().len(), 2);
}

#[tokio::test]
async fn a_first_attempt_told_to_come_back_in_hours_is_parked_without_a_message() {
    let ep = endpoint("busy", &["*"]);
    let d = subject(&[&ep]).await;
    d.sender.answer(
        &ep.url,
        [AttemptOutcome::Response {
            status: 503,
            body: String::new(),
            retry_after_seconds: Some(7200),
        }],
    );

    let response = d.handle(fixture()).await;

    assert!(response.batch_item_failures.is_empty());
    assert!(attempt_messages(&d).is_empty(), "nothing waits on the queue");
    let delivery = delivery_of(&d, &ep).await;
    assert!(delivery.is_parked(), "{delivery:?}");
}

#[tokio::test]
async fn gone_fails_the_delivery_disables_the_endpoint_and_tells_the_operator() {
    let ep = endpoint("gone", &["agent.*"]);
    let ops_ep = endpoint("ops", &["hookline.*"]);
    let d = subject(&[&ep, &ops_ep]).await;
    d.sender.answer(&ep.url, [response(410)]);

    d.handle(fixture()).await;

    let delivery = delivery_of(&d, &ep).await;
    assert_eq!(delivery.status, DeliveryStatus::Failed);
    assert_eq!(
        delivery.failure_reason.as_deref(),
        Some("the endpoint answered 410 Gone")
    );
    let stored = d.store.get_endpoint(&ep.id).await.unwrap().unwrap();
    assert_eq!(stored.status, EndpointStatus::Disabled);
    assert_eq!(
        stored.disabled_reason.as_deref(),
        Some("the endpoint answered 410 Gone")
    );
    let mut types = ops_types(&d);
    types.sort();
    assert_eq!(
        types,
        ["hookline.delivery.exhausted", "hookline.endpoint.disabled"]
    );
    assert!(attempt_messages(&d).is_empty());
}

#[tokio::test]
async fn an_endpoint_failing_for_the_whole_window_is_disabled() {
    let mut ep = endpoint("dead", &["*"]);
    ep.failing_since = Some(Timestamp::from_unix_millis(T0 - 6 * 86_400_000));
    let d = subject(&[&ep]).await;
    d.store
        .note_failure(&ep.id, Timestamp::from_unix_millis(T0 - 6 * 86_400_000))
        .await
        .unwrap();
    d.sender.answer(&ep.url, [response(500)]);

    d.handle(fixture()).await;

    let stored = d.store.get_endpoint(&ep.id).await.unwrap().unwrap();
    assert_eq!(stored.status, EndpointStatus::Disabled);
    assert!(
        stored
            .disabled_reason
            .unwrap()
            .contains("every attempt has failed since")
    );
    assert!(ops_types(&d).contains(&"hookline.endpoint.disabled".to_owned()));
}

#[tokio::test]
async fn a_success_ends_the_failing_streak() {
    let ep = endpoint("flaky", &["*"]);
    let d = subject(&[&ep]).await;
    d.sender.answer(&ep.url, [response(500)]);
    d.handle(fixture()).await;
    assert!(
        d.store
            .get_endpoint(&ep.id)
            .await
            .unwrap()
            .unwrap()
            .failing_since
            .is_some()
    );
    let (_, wake, _) = attempt_messages(&d).remove(0);
    d.clock.advance(Duration::from_secs(6));
    d.handle(attempt_batch(&ep.id, &wake, 1)).await;
    assert_eq!(
        d.store.get_endpoint(&ep.id).await.unwrap().unwrap().failing_since,
        None
    );
}

#[tokio::test]
async fn a_retry_that_succeeds_ends_the_streak_even_where_the_cached_endpoint_shows_none() {
    // GIVEN endpoints cached for an hour, read before the endpoint's first failure
    let ep = endpoint("flaky", &["*"]);
    let mut d = subject(&[&ep]).await;
    d.endpoints = EndpointCache::new(Duration::from_secs(3600));
    d.sender.answer(&ep.url, [response(500)]);
    d.handle(fixture()).await;
    let streak = async |d: &Subject| d.store.get_endpoint(&ep.id).await.unwrap().unwrap().failing_since;
    assert!(streak(&d).await.is_some());
    // WHEN its retry succeeds while the cache still shows no streak
    let (_, wake, _) = attempt_messages(&d).remove(0);
    d.clock.advance(Duration::from_secs(6));
    d.handle(attempt_batch(&ep.id, &wake, 1)).await;
    // THEN the streak is over: one left standing would disable the endpoint at its next
    // failure once the window had passed, though it had recovered
    assert_eq!(streak(&d).await, None);
}

#[tokio::test]
async fn a_pending_retry_to_a_deleted_endpoint_fails_with_the_reason() {
    let ep = endpoint("short-lived", &["*"]);
    let d = subject(&[&ep]).await;
    let wake = failed_once(&d, &ep).await;
    d.store.delete_endpoint(&ep).await.unwrap();
    d.clock.advance(Duration::from_secs(6));

    d.handle(attempt_batch(&ep.id, &wake, 1)).await;

    let delivery = delivery_of(&d, &ep).await;
    assert_eq!(delivery.status, DeliveryStatus::Failed);
    assert_eq!(
        delivery.failure_reason.as_deref(),
        Some("the endpoint was deleted")
    );
    assert_eq!(d.sender.requests().len(), 1);
}

#[tokio::test]
async fn over_its_rate_limit_an_endpoint_waits_its_turn_and_loses_nothing() {
    // GIVEN an endpoint limited to 1 request a second and three events at once
    let mut ep = endpoint("limited", &["*"]);
    ep.rate_limit_per_second = Some(1);
    let d = subject(&[&ep]).await;
    let batch = events_batch("evt_rate", 3);
    let template = batch.records[0].clone();

    // WHEN they arrive
    let response = d.handle(batch).await;

    // THEN one goes now; the other two are pending, each with a delayed attempt message
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(d.sender.requests().len(), 1);
    let waiting = attempt_messages(&d);
    assert_eq!(waiting.len(), 2);
    for (_, _, delay) in &waiting {
        assert!(
            *delay > Duration::ZERO && *delay <= Duration::from_secs(1),
            "{delay:?}"
        );
    }

    // AND a second later one more goes; the last sleeps until its turn
    d.clock.advance(Duration::from_secs(1));
    let mut slept = 0;
    for (i, (endpoint_id, wake, _)) in waiting.iter().enumerate() {
        let Some(Work::Event(mut e)) = parse(&template).pop() else {
            panic!("an event")
        };
        let ids: Vec<String> = d
            .queue
            .sent()
            .iter()
            .filter_map(|m| match m {
                QueueMessage::AttemptV1 { event, wake: w, .. } if w == wake => Some(event.id.to_string()),
                _ => None,
            })
            .collect();
        e.id = EventId::parse(&ids[0]).unwrap();
        let mut b = fixture();
        b.records[0].body = Some(
            QueueMessage::AttemptV1 {
                event: e,
                endpoint_id: endpoint_id.clone(),
                wake: wake.clone(),
            }
            .to_body(),
        );
        b.records[0].message_id = Some(format!("a{i}"));
        slept += d.handle(b).await.batch_item_failures.len();
    }
    assert_eq!(d.sender.requests().len(), 2);
    assert_eq!(slept, 1);
}

#[tokio::test]
async fn a_packed_message_fans_out_each_event_and_a_copy_read_again_sends_nothing_more() {
    // GIVEN one record carrying three events, as batch ingest packs them
    let ep = endpoint("crm", &["*"]);
    let d = subject(&[&ep]).await;
    let mut batch = fixture();
    let Some(Work::Event(template)) = parse(&batch.records[0]).pop() else {
        panic!("an event")
    };
    let events: Vec<Event> = (0..3)
        .map(|i| {
            let mut e = template.clone();
            e.id = EventId::parse(&format!("evt_packed_{i}")).unwrap();
            e
        })
        .collect();
    batch.records.truncate(1);
    batch.records[0].body = Some(QueueMessage::EventsV1 { events }.to_body());

    // WHEN it is handled, and then SQS brings the same message back
    let first = d.handle(batch.clone()).await;
    let again = d.handle(batch).await;

    // THEN each event went once, and the copy sent nothing
    assert!(first.batch_item_failures.is_empty());
    assert!(again.batch_item_failures.is_empty());
    let mut ids: Vec<String> = d
        .sender
        .requests()
        .iter()
        .filter_map(|r| {
            r.headers
                .get("webhook-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
        .collect();
    ids.sort();
    assert_eq!(ids, vec!["evt_packed_0", "evt_packed_1", "evt_packed_2"]);
}

#[tokio::test]
async fn a_message_of_a_newer_type_is_left_on_the_queue_not_dropped() {
    // GIVEN a record a newer version wrote (during a rollout, or after a rollback)
    let ep = endpoint("crm", &["*"]);
    let d = subject(&[&ep]).await;
    let mut batch = fixture();
    batch.records.truncate(1);
    batch.records[0].body = Some(r#"{"type":"event.v9","event":{"id":"evt_new"}}"#.into());
    // WHEN it arrives THEN it stays for a version that knows it, and nothing is sent
    let response = d.handle(batch).await;
    assert_eq!(response.batch_item_failures.len(), 1);
    assert!(d.sender.requests().is_empty());
}

#[tokio::test]
async fn an_event_the_store_refuses_fails_its_deliveries_at_once_and_is_acknowledged() {
    // GIVEN two endpoints, and a store that refuses the event for good (too large, say)
    let (a, b) = (endpoint("a", &["*"]), endpoint("b", &["*"]));
    let d = subject(&[&a, &b]).await;
    d.store.refusing.lock().unwrap().push("claim_fanout");

    // WHEN it arrives
    let response = d.handle(fixture()).await;

    // THEN nothing is sent, the message is acknowledged rather than left to wait out its
    // receives, and each delivery it was to make is on record as failed, with a reason
    // that names the step and not the store's words
    assert!(response.batch_item_failures.is_empty());
    assert!(d.sender.requests().is_empty());
    for ep in [&a, &b] {
        let failed = delivery_of(&d, ep).await;
        assert_eq!(failed.status, DeliveryStatus::Failed);
        assert_eq!(
            failed.failure_reason.as_deref(),
            Some("the event could not be stored (a permanent store error)")
        );
    }
    assert_eq!(
        ops_types(&d),
        vec!["hookline.delivery.exhausted", "hookline.delivery.exhausted"]
    );
}

#[tokio::test]
async fn a_refused_rate_limit_fails_only_its_own_delivery() {
    let mut limited = endpoint("limited", &["*"]);
    limited.rate_limit_per_second = Some(5);
    let free = endpoint("free", &["*"]);
    let d = subject(&[&limited, &free]).await;
    d.store.refusing.lock().unwrap().push("take");

    let response = d.handle(fixture()).await;

    assert!(response.batch_item_failures.is_empty());
    assert_eq!(delivery_of(&d, &free).await.status, DeliveryStatus::Delivered);
    let failed = delivery_of(&d, &limited).await;
    assert_eq!(failed.status, DeliveryStatus::Failed);
    assert_eq!(
        failed.failure_reason.as_deref(),
        Some("the endpoint's rate limit could not be read (a permanent store error)")
    );
    assert!(d.store.event_is_done(&event_id()), "the fan-out is finished");
}

#[tokio::test]
async fn a_permanent_store_error_on_a_next_attempt_fails_the_delivery_at_once() {
    // GIVEN a delivery waiting for its second attempt, and a store that now refuses
    // its attempt's lease for good
    let ep = endpoint("flaky", &["*"]);
    let d = subject(&[&ep]).await;
    let wake = failed_once(&d, &ep).await;
    d.clock.advance(Duration::from_secs(6));
    d.store.refusing.lock().unwrap().push("claim_attempt");

    // WHEN its attempt message arrives
    let response = d.handle(attempt_batch(&ep.id, &wake, 1)).await;

    // THEN it is failed with the step's reason and acknowledged, not retried
    assert!(response.batch_item_failures.is_empty());
    let failed = delivery_of(&d, &ep).await;
    assert_eq!(failed.status, DeliveryStatus::Failed);
    assert_eq!(
        failed.failure_reason.as_deref(),
        Some("the next attempt could not be claimed (a permanent store error)")
    );
    assert_eq!(d.sender.requests().len(), 1, "no second POST");
    assert_eq!(ops_types(&d), vec!["hookline.delivery.exhausted"]);
}

#[tokio::test]
async fn a_permanent_error_that_cannot_be_recorded_leaves_the_message() {
    // GIVEN a store that refuses both the attempt's lease and the failure's record
    let ep = endpoint("flaky", &["*"]);
    let d = subject(&[&ep]).await;
    let wake = failed_once(&d, &ep).await;
    d.clock.advance(Duration::from_secs(6));
    d.store
        .refusing
        .lock()
        .unwrap()
        .extend(["claim_attempt", "fail_delivery"]);

    // WHEN its attempt message arrives THEN it stays for SQS (and, in the end, the DLQ)
    let response = d.handle(attempt_batch(&ep.id, &wake, 1)).await;
    assert_eq!(response.batch_item_failures.len(), 1);
    assert_eq!(delivery_of(&d, &ep).await.status, DeliveryStatus::Retrying);
}

#[tokio::test]
async fn a_permanent_error_reading_the_endpoints_names_no_delivery_and_leaves_the_message() {
    let ep = endpoint("crm", &["*"]);
    let d = subject(&[&ep]).await;
    d.store.refusing.lock().unwrap().push("all_endpoints");
    let response = d.handle(fixture()).await;
    assert_eq!(response.batch_item_failures.len(), 1);
    assert!(
        d.store
            .deliveries_for_event(&hookline::event::EventKey::of_default(&event_id()))
            .await
            .unwrap()
            .is_empty()
    );
}
