//! The delivery handler with in-memory ports and fixture SQS events.

use super::*;
use aws_lambda_events::event::sqs::SqsEvent;
use hookline::delivery::{AttemptOutcome, DeliveryStatus, TransportError};
use hookline::endpoint::{EndpointStatus, EventTypeFilter};
use hookline::memory::{ManualClock, MemoryStore, ScriptedSender};
use hookline::signing::{EndpointSecret, verify_seed, verify_standard};
use hookline::{EventId, Timestamp};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

const FIXTURE: &str = include_str!("../fixtures/sqs-event.json");
const FIXTURE_EVENT_ID: &str = "evt_0192f1c2a3b47c8d9e0f1a2b3c4d5e6f";
const T0: i64 = 1_795_935_600_000;

fn fixture() -> SqsEvent {
    serde_json::from_str(FIXTURE).expect("fixture parses")
}

fn endpoint(name: &str, filters: &[&str]) -> Endpoint {
    Endpoint {
        id: EndpointId::generate(),
        name: name.into(),
        url: format!("https://{name}.example.com/hook"),
        event_types: filters
            .iter()
            .map(|f| EventTypeFilter::parse(f).unwrap())
            .collect(),
        headers: BTreeMap::from([("x-tenant".to_owned(), "acme".to_owned())]),
        timeout_seconds: 5,
        max_attempts: 3,
        status: EndpointStatus::Active,
        secret: EndpointSecret::generate(),
        created_at: Timestamp::from_unix_millis(T0),
        updated_at: Timestamp::from_unix_millis(T0),
    }
}

type Subject = Deliverer<MemoryStore, ScriptedSender, ManualClock>;

async fn subject(endpoints: &[&Endpoint]) -> Subject {
    let store = MemoryStore::default();
    for e in endpoints {
        store.create_endpoint(e).await.unwrap();
    }
    Deliverer {
        store,
        sender: ScriptedSender::default(),
        clock: ManualClock::at(Timestamp::from_unix_millis(T0)),
        endpoints: EndpointCache::new(Duration::ZERO),
        fanout_lease: Duration::from_secs(120),
        concurrency: 8,
    }
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
    let recorded = d.store.deliveries_for_event(&event_id()).await.unwrap();
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
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
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
        req.body.as_bytes(),
        T0 / 1000,
        300,
    )
    .expect("standard signature verifies");
    verify_seed(&ep.secret, &header("x-webhook-signature"), req.body.as_bytes())
        .expect("seed signature verifies");
    let body: serde_json::Value = serde_json::from_str(&req.body).unwrap();
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
async fn a_failed_attempt_is_recorded_and_the_delivery_left_retrying() {
    let ep = endpoint("down", &["*"]);
    let d = subject(&[&ep]).await;
    d.sender.answer(
        &ep.url,
        [AttemptOutcome::Response {
            status: 503,
            body: "maintenance".into(),
        }],
    );

    let response = d.handle(fixture()).await;

    // The attempt failed, but the record is handled: retries are the delivery's business now.
    assert!(response.batch_item_failures.is_empty());
    let (delivery, attempts) = d.store.deliveries_for_event(&event_id()).await.unwrap().remove(0);
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
            body: "maintenance".into()
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
    let (delivery, _) = d.store.deliveries_for_event(&event_id()).await.unwrap().remove(0);
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
    let event = parse(&fixture().records[0]).unwrap();
    d.store
        .claim_fanout(&event, d.clock.now(), Duration::from_secs(120))
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
    let event = parse(&fixture().records[0]).unwrap();
    d.store
        .claim_fanout(&event, d.clock.now(), Duration::from_secs(120))
        .await
        .unwrap();
    let mut done = Delivery::new(
        event.id.clone(),
        first.id.clone(),
        event.event_type.clone(),
        3,
        d.clock.now(),
    );
    let ok = AttemptOutcome::Response {
        status: 200,
        body: String::new(),
    };
    done.record(&ok, &RetryPolicy::default(), d.clock.now(), 0.5);
    let attempt = Attempt {
        number: 1,
        started_at: d.clock.now(),
        duration_ms: 3,
        outcome: ok,
    };
    d.store.record_attempts(&[(done, attempt)]).await.unwrap();

    // WHEN its lease has lapsed and SQS brings the message back
    d.clock.advance(Duration::from_secs(121));
    let response = d.handle(fixture()).await;

    // THEN only the second endpoint is sent to
    assert!(response.batch_item_failures.is_empty());
    let urls: Vec<String> = d.sender.requests().into_iter().map(|r| r.url).collect();
    assert_eq!(urls, vec![second.url.clone()]);
    assert_eq!(d.store.deliveries_for_event(&event.id).await.unwrap().len(), 2);
}

#[tokio::test]
async fn an_unreadable_message_is_acknowledged_not_retried_for_ever() {
    let d = subject(&[]).await;
    let mut batch = fixture();
    batch.records[0].body = Some("{\"type\":\"mystery\"}".into());
    assert!(d.handle(batch).await.batch_item_failures.is_empty());
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
