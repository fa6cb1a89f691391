//! The sweeper with in-memory ports and a clock the tests move.

use super::*;
use hookline::delivery::{Attempt, AttemptOutcome, DeliveryStatus};
use hookline::endpoint::{Endpoint, EventTypeFilter};
use hookline::event::{Event, EventType};
use hookline::ids::EventId;
use hookline::memory::{ManualClock, MemoryQueue, MemoryStore};
use hookline::message::QueueMessage;
use std::time::Duration;

const T0: i64 = 1_795_935_600_000;

fn event() -> Event {
    Event {
        id: EventId::parse("evt_sweep").unwrap(),
        tenant_id: Default::default(),
        event_type: EventType::parse("agent.run.completed").unwrap(),
        data: serde_json::json!({}),
        timestamp: Timestamp::from_unix_millis(T0),
        source: "api".into(),
        version: "1".into(),
        expires_at: None,
        collapse_key: None,
        data_ref: None,
        order: None,
    }
}

fn endpoint() -> Endpoint {
    let mut ep = Endpoint::new(
        "crm".into(),
        "https://crm.example.com/hook".into(),
        vec![EventTypeFilter::All],
        Timestamp::from_unix_millis(T0),
    );
    ep.timeout_seconds = 5;
    ep.max_attempts = 3;
    ep
}

type Subject = Sweeper<MemoryStore, MemoryQueue, MemoryQueue, ManualClock>;

/// A message SQS moved to the DLQ after its tenth receive.
fn dead_lettered(s: &Subject, body: String) {
    s.dlq.dead.lock().unwrap().push_back(hookline::ports::Received {
        body,
        receipt_handle: "r".into(),
        receive_count: 10,
    });
}

/// `e` claimed now for these deliveries, under a lease this long, by a worker that
/// then died.
async fn claimed(s: &Subject, e: &Event, targets: &[hookline::DeliveryId], lease: Duration) {
    s.store
        .claim_fanout(e, &e.envelope_json(), targets, s.clock.now(), lease)
        .await
        .unwrap();
}

fn subject() -> Subject {
    Sweeper {
        store: MemoryStore::default(),
        queue: MemoryQueue::default(),
        dlq: MemoryQueue::default(),
        clock: ManualClock::at(Timestamp::from_unix_millis(T0)),
        settings: SweepSettings {
            grace: Duration::from_secs(60),
            ..SweepSettings::default()
        },
    }
}

/// A stored event with one delivery that failed `attempts` times and is due at T0 + 5 s.
async fn retrying(s: &Subject, ep: &Endpoint, attempts: u32) -> Delivery {
    let e = event();
    let mut d = Delivery::new(
        e.id.clone(),
        ep.id.clone(),
        e.event_type.clone(),
        3,
        s.clock.now(),
    );
    claimed(s, &e, &[d.id.clone()], Duration::from_secs(1)).await;
    let fail = AttemptOutcome::Response {
        status: 500,
        body: String::new(),
        retry_after_seconds: None,
    };
    for _ in 0..attempts {
        d.apply(
            &fail,
            &hookline::retry::Verdict::RetryIn(Duration::from_secs(5)),
            s.clock.now(),
        );
    }
    let a = Attempt {
        number: attempts,
        started_at: s.clock.now(),
        duration_ms: 1,
        outcome: fail,
    };
    s.store.record_attempts(&[(&d, Some(&a))]).await.unwrap();
    d
}

fn sent_attempts(q: &MemoryQueue) -> Vec<String> {
    q.sent()
        .into_iter()
        .filter_map(|m| match m {
            QueueMessage::AttemptV1 { wake, .. } | QueueMessage::AttemptV2 { wake, .. } => Some(wake),
            QueueMessage::EventV1 { .. }
            | QueueMessage::EventV2 { .. }
            | QueueMessage::EventsV1 { .. }
            | QueueMessage::ReportV1 { .. } => None,
        })
        .collect()
}

fn sent_event_types(q: &MemoryQueue) -> Vec<String> {
    q.sent()
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

#[tokio::test]
async fn an_overdue_delivery_is_redriven_under_a_new_wake_token_once() {
    let s = subject();
    let ep = endpoint();
    s.store.create_endpoint(&ep).await.unwrap();
    let before = retrying(&s, &ep, 1).await;

    // Not yet overdue by the grace period: left alone.
    s.clock.advance(Duration::from_secs(30));
    assert_eq!(s.sweep().await.unwrap().redriven, 0);

    s.clock.advance(Duration::from_secs(60));
    let report = s.sweep().await.unwrap();
    assert_eq!(report.redriven, 1);
    let wakes = sent_attempts(&s.queue);
    assert_eq!(wakes.len(), 1);
    assert_ne!(
        Some(wakes[0].clone()),
        before.wake,
        "the lost message's token is retired"
    );
    let now = s
        .store
        .get_delivery(&hookline::event::EventKey::of_default(&before.event_id), &ep.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(now.wake.as_deref(), Some(wakes[0].as_str()));

    // The next sweep, right after, does not re-drive it again.
    assert_eq!(s.sweep().await.unwrap().redriven, 0);
}

#[tokio::test]
async fn a_parked_delivery_is_queued_when_due_without_waiting_out_the_grace() {
    // GIVEN a retry parked in the table (its wait was too long for a delayed message),
    // due at T0 + 5 s
    let s = subject();
    let ep = endpoint();
    s.store.create_endpoint(&ep).await.unwrap();
    let mut parked = retrying(&s, &ep, 1).await;
    let seen = parked.clone();
    parked.park();
    assert!(s.store.replace_delivery(&seen, &parked).await.unwrap());

    // WHEN the sweeps come: before it is due, nothing; once due, its attempt is queued
    assert_eq!(s.sweep().await.unwrap().woken, 0);
    s.clock.advance(Duration::from_secs(6));
    let report = s.sweep().await.unwrap();

    // THEN at once, not a grace period late, and counted apart from lost work
    assert_eq!((report.woken, report.redriven), (1, 0));
    let wakes = sent_attempts(&s.queue);
    assert_eq!(wakes.len(), 1);
    let now = s
        .store
        .get_delivery(&hookline::event::EventKey::of_default(&parked.event_id), &ep.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(now.wake.as_deref(), Some(wakes[0].as_str()));
    assert!(!now.is_parked());
    // Its message is on its way: the next sweep leaves it alone.
    let again = s.sweep().await.unwrap();
    assert_eq!((again.woken, again.redriven), (0, 0));
}

#[tokio::test]
async fn a_delivery_being_attempted_is_left_alone() {
    let s = subject();
    let ep = endpoint();
    s.store.create_endpoint(&ep).await.unwrap();
    let d = retrying(&s, &ep, 1).await;
    s.clock.advance(Duration::from_secs(120));
    assert!(
        s.store
            .claim_attempt(&d, s.clock.now(), Duration::from_secs(180))
            .await
            .unwrap()
    );
    let report = s.sweep().await.unwrap();
    assert_eq!((report.redriven, report.in_flight_overdue), (0, 1));
}

#[tokio::test]
async fn a_delivery_whose_attempts_are_spent_is_failed_and_reported() {
    let s = subject();
    let ep = endpoint();
    s.store.create_endpoint(&ep).await.unwrap();
    let d = retrying(&s, &ep, 3).await;
    s.clock.advance(Duration::from_secs(120));
    let report = s.sweep().await.unwrap();
    assert_eq!(report.exhausted, 1);
    let now = s
        .store
        .get_delivery(&hookline::event::EventKey::of_default(&d.event_id), &ep.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(now.status, DeliveryStatus::Failed);
    assert_eq!(sent_event_types(&s.queue), ["hookline.delivery.exhausted"]);
}

#[tokio::test]
async fn a_dead_event_fails_the_targets_its_claim_named_that_have_no_delivery() {
    // GIVEN an event claimed for one endpoint, whose worker died and whose message was
    // then dead-lettered; a second endpoint was registered afterwards
    let s = subject();
    let ep = endpoint();
    s.store.create_endpoint(&ep).await.unwrap();
    let e = event();
    claimed(
        &s,
        &e,
        &[hookline::DeliveryId::generate_for(s.clock.now(), &ep.id)],
        Duration::from_secs(180),
    )
    .await;
    let mut later = endpoint();
    later.id = hookline::EndpointId::parse("ep_later").unwrap();
    s.store.create_endpoint(&later).await.unwrap();
    s.clock.advance(Duration::from_secs(200));
    dead_lettered(&s, QueueMessage::EventV1 { event: e.clone() }.to_body());
    // WHEN the sweeper drains the DLQ
    let report = s.sweep().await.unwrap();
    // THEN the claimed endpoint has a failed delivery, the later one none, and the
    // fan-out is done: a copy of the message arriving now would send nothing
    assert_eq!(report.dlq_drained, 1);
    let d = s
        .store
        .get_delivery(&hookline::event::EventKey::of_default(&e.id), &ep.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.status, DeliveryStatus::Failed);
    assert!(
        s.store
            .get_delivery(&hookline::event::EventKey::of_default(&e.id), &later.id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(s.store.event_is_done(&e.id));
    assert_eq!(sent_event_types(&s.queue), ["hookline.delivery.exhausted"]);
}

#[tokio::test]
async fn a_dead_event_under_an_id_another_event_holds_is_kept_as_a_dead_letter() {
    // GIVEN an event stored, and another event under its id dead-lettered
    let s = subject();
    let ep = endpoint();
    s.store.create_endpoint(&ep).await.unwrap();
    let e = event();
    claimed(&s, &e, &[], Duration::from_secs(180)).await;
    let mut other = e.clone();
    other.data = serde_json::json!({"another": "event"});
    dead_lettered(&s, QueueMessage::EventV1 { event: other.clone() }.to_body());
    // WHEN the sweeper drains the DLQ
    let report = s.sweep().await.unwrap();
    // THEN it leaves the DLQ as a dead letter that names the conflict, and fails no one
    assert_eq!((report.dlq_drained, report.dead_letters), (1, 1));
    let kept = s.store.dead_letters.lock().unwrap().clone();
    assert!(kept[0].reason.starts_with("conflict: "), "{}", kept[0].reason);
    assert_eq!(kept[0].body, other.envelope_json());
    assert!(
        s.store
            .get_delivery(&hookline::event::EventKey::of_default(&e.id), &ep.id)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn dead_letters_become_failed_deliveries_and_leave_the_dlq() {
    let s = subject();
    let ep = endpoint();
    s.store.create_endpoint(&ep).await.unwrap();
    let d = retrying(&s, &ep, 1).await;
    let dead_attempt = QueueMessage::AttemptV1 {
        event: event(),
        endpoint_id: ep.id.clone(),
        wake: d.wake.clone().unwrap(),
    };
    for body in [dead_attempt.to_body(), "not json".to_owned()] {
        dead_lettered(&s, body);
    }
    let report = s.sweep().await.unwrap();
    assert_eq!(report.dlq_drained, 2);
    let now = s
        .store
        .get_delivery(&hookline::event::EventKey::of_default(&d.event_id), &ep.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(now.status, DeliveryStatus::Failed);
    assert_eq!(
        now.failure_reason.as_deref(),
        Some("its attempt message was dead-lettered after 10 receives")
    );
}

#[tokio::test]
async fn a_dead_packed_message_settles_each_of_its_events() {
    // GIVEN a message of two events that died before either was fanned out
    let s = subject();
    let ep = endpoint();
    s.store.create_endpoint(&ep).await.unwrap();
    let (mut a, mut b) = (event(), event());
    a.id = EventId::parse("evt_packed_a").unwrap();
    b.id = EventId::parse("evt_packed_b").unwrap();
    dead_lettered(
        &s,
        QueueMessage::EventsV1 {
            events: vec![a.clone(), b.clone()],
        }
        .to_body(),
    );
    // WHEN the sweeper drains the DLQ
    let report = s.sweep().await.unwrap();
    // THEN each event has its failed delivery, and the message is gone
    assert_eq!(report.dlq_drained, 1);
    for e in [&a, &b] {
        let d = s
            .store
            .get_delivery(&hookline::event::EventKey::of_default(&e.id), &ep.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(d.status, DeliveryStatus::Failed, "{}", e.id);
    }
}

#[tokio::test]
async fn a_dead_letter_of_a_newer_type_stays_in_the_dlq() {
    let s = subject();
    dead_lettered(&s, r#"{"type":"event.v9","event":{}}"#.into());
    // The in-memory DLQ forgets what it handed out; what counts is that it was not
    // removed (drained) nor dropped.
    let report = s.sweep().await.unwrap();
    assert_eq!((report.dlq_drained, report.dlq_dropped), (0, 0));
}

#[tokio::test]
async fn a_dead_letter_the_store_can_never_take_is_kept_for_the_operator_and_removed_without_stopping_the_drain()
 {
    // GIVEN a dead-lettered event too large for the store, and a readable one behind it
    let s = subject();
    let mut huge = event();
    huge.id = hookline::EventId::parse("too-big").unwrap();
    huge.data = serde_json::json!({"blob": "x".repeat(hookline::event::STORE_ITEM_LIMIT)});
    for body in [
        QueueMessage::EventV1 { event: huge }.to_body(),
        "not json".to_owned(),
    ] {
        dead_lettered(&s, body);
    }

    // WHEN the sweeper drains the DLQ
    let report = s.sweep().await.unwrap();

    // THEN both left it, the one that could not be recorded counted apart, and each is
    // kept as a dead letter the operator can read
    assert_eq!(
        (report.dlq_drained, report.dlq_dropped, report.dead_letters),
        (2, 1, 2)
    );
    assert!(s.dlq.dead.lock().unwrap().is_empty());
    let kept = s.store.dead_letters.lock().unwrap().clone();
    assert_eq!(
        kept[0].reason,
        "its deliveries could not be recorded: PutItem event"
    );
    assert!(kept[0].body_truncated && kept[0].body_bytes > hookline::event::STORE_ITEM_LIMIT);
    assert_eq!(kept[1].body, "not json");
    assert!(kept[1].reason.starts_with("unreadable: "));
    assert_eq!(kept[1].receives, 10);
}

#[tokio::test]
async fn a_dead_letter_the_store_refuses_even_to_keep_is_dropped_naming_it_in_the_log() {
    let s = subject();
    let unreadable = || hookline::ports::Received {
        body: "not json".into(),
        receipt_handle: "r".into(),
        receive_count: 10,
    };
    s.dlq.dead.lock().unwrap().push_back(unreadable());
    s.store.refusing.lock().unwrap().push("record_dead_letter");
    // Refused for good: named in the log (never by its body), dropped, counted.
    let report = s.sweep().await.unwrap();
    assert_eq!(
        (report.dlq_drained, report.dlq_dropped, report.dead_letters),
        (1, 1, 0)
    );
}

#[tokio::test]
async fn a_dead_event_message_with_a_reserved_type_is_kept_as_forged_and_never_settled() {
    // GIVEN an endpoint subscribed to Hookline's own events, and an event message in the
    // DLQ that claims to be one (nobody but a forger queues those: they travel as reports)
    let s = subject();
    let mut ops_ep = endpoint();
    ops_ep.event_types = vec![EventTypeFilter::parse("hookline.*").unwrap()];
    s.store.create_endpoint(&ops_ep).await.unwrap();
    let mut forged = event();
    forged.id = EventId::parse("forged-1").unwrap();
    forged.event_type = EventType::parse("hookline.endpoint.disabled").unwrap();
    dead_lettered(
        &s,
        QueueMessage::EventV1 {
            event: forged.clone(),
        }
        .to_body(),
    );
    // WHEN the sweeper drains the DLQ
    let report = s.sweep().await.unwrap();
    // THEN it is kept for the operator, and no delivery exists that a retry could send
    assert_eq!((report.dlq_drained, report.dead_letters), (1, 1));
    let kept = s.store.dead_letters.lock().unwrap().clone();
    assert!(kept[0].reason.starts_with("forged: "), "{}", kept[0].reason);
    assert!(
        s.store
            .get_delivery(&hookline::event::EventKey::of_default(&forged.id), &ops_ep.id)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_dead_report_is_settled_as_the_event_the_store_makes_of_it() {
    // GIVEN a delivery that failed, an operator's endpoint, and the report of the failure
    // dead-lettered before its event reached anyone
    let s = subject();
    let ep = endpoint();
    let mut ops_ep = endpoint();
    ops_ep.id = hookline::EndpointId::parse("ep_ops").unwrap();
    ops_ep.event_types = vec![EventTypeFilter::parse("hookline.*").unwrap()];
    s.store.create_endpoint(&ep).await.unwrap();
    s.store.create_endpoint(&ops_ep).await.unwrap();
    let d = retrying(&s, &ep, 3).await;
    s.clock.advance(Duration::from_secs(120));
    s.sweep().await.unwrap();
    let failed = s
        .store
        .get_delivery(&hookline::event::EventKey::of_default(&d.event_id), &ep.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(failed.status, DeliveryStatus::Failed);
    let report = hookline::ops::delivery_exhausted(&failed).unwrap();
    dead_lettered(&s, QueueMessage::ReportV1 { report }.to_body());
    // WHEN the sweeper drains the DLQ
    s.sweep().await.unwrap();
    // THEN the operator's endpoint has a failed delivery of that event, on record
    let event_id = EventId::parse(&format!("hookline.delivery.exhausted:{}", failed.id)).unwrap();
    let ops_delivery = s
        .store
        .get_delivery(&hookline::event::EventKey::of_default(&event_id), &ops_ep.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ops_delivery.status, DeliveryStatus::Failed);
}
