//! Events that expire and collapse: a delivery ends `expired` or `superseded` instead
//! of an attempt the sender no longer wants.

use super::*;
use hookline::collapse::CollapseKey;
use hookline::ports::StatsStore;

/// The fixture's event under `id`, at `T0 + at_ms`, with an expiry and a collapse key.
fn event(id: &str, at_ms: i64, expires_in_ms: Option<i64>, key: Option<&str>) -> Event {
    let Some(Work::Event(mut e)) = parse(&fixture().records[0]).pop() else {
        panic!("an event")
    };
    e.id = EventId::parse(id).unwrap();
    e.timestamp = Timestamp::from_unix_millis(T0 + at_ms);
    e.expires_at = expires_in_ms.map(|ms| Timestamp::from_unix_millis(T0 + ms));
    e.collapse_key = key.map(|k| CollapseKey::parse(k).unwrap());
    e
}

/// A batch of these events, one record each.
fn batch(events: &[&Event]) -> SqsEvent {
    let mut b = fixture();
    let template = b.records.remove(0);
    for (i, e) in events.iter().enumerate() {
        let mut r = template.clone();
        r.body = Some(QueueMessage::EventV1 { event: (*e).clone() }.to_body());
        r.message_id = Some(format!("m-{}-{i}", e.id));
        b.records.push(r);
    }
    b
}

/// An attempt message for `event`'s delivery to `ep`, carrying its current wake token.
async fn wake(d: &Subject, event: &Event, ep: &Endpoint) -> SqsEvent {
    let seen = d
        .store
        .get_delivery(&event.key(), &ep.id)
        .await
        .unwrap()
        .expect("a delivery");
    let mut b = fixture();
    let m = QueueMessage::AttemptV1 {
        event: event.clone(),
        endpoint_id: ep.id.clone(),
        wake: seen.wake.expect("an open delivery"),
    };
    b.records[0].body = Some(m.to_body());
    b.records[0].message_id = Some(format!("attempt-{}", event.id));
    b
}

async fn delivery(d: &Subject, event: &Event, ep: &Endpoint) -> Delivery {
    d.store
        .get_delivery(&event.key(), &ep.id)
        .await
        .unwrap()
        .expect("a delivery")
}

async fn hour(d: &Subject, ep: &Endpoint) -> hookline::stats::HourStats {
    let mut sum = hookline::stats::HourStats::default();
    for (_, h) in d.store.read_stats(&ep.id, "0", "9").await.unwrap() {
        sum.merge(&h);
    }
    sum
}

#[tokio::test]
async fn an_event_already_expired_at_fan_out_is_not_sent_and_its_delivery_ends_expired() {
    let ep = endpoint("progress", &["*"]);
    let d = subject(&[&ep]).await;
    let stale = event("evt_stale", -60_000, Some(-1), None);

    assert!(d.handle(batch(&[&stale])).await.batch_item_failures.is_empty());

    assert!(d.sender.requests().is_empty(), "nothing sent");
    let got = delivery(&d, &stale, &ep).await;
    assert_eq!(
        (got.status, got.attempts, got.next_attempt_at),
        (DeliveryStatus::Expired, 0, None)
    );
    assert!(got.failure_reason.unwrap().contains("expired at"));
    assert_eq!(hour(&d, &ep).await.expired, 1);
    assert!(ops_types(&d).is_empty(), "an expiry is not an exhausted delivery");
}

#[tokio::test]
async fn a_retry_that_would_come_after_the_expiry_ends_the_delivery_at_its_failed_attempt() {
    // GIVEN an event that expires in 3 s, and a receiver that fails (next try in 5 s)
    let ep = endpoint("progress", &["*"]);
    let d = subject(&[&ep]).await;
    d.sender.answer(&ep.url, [response(500)]);
    let brief = event("evt_brief", 0, Some(3_000), None);
    d.handle(batch(&[&brief])).await;
    // THEN it ends expired with that attempt, and no next attempt is queued
    let got = delivery(&d, &brief, &ep).await;
    assert_eq!((got.status, got.attempts), (DeliveryStatus::Expired, 1));
    assert!(attempt_messages(&d).is_empty());
    let counted = hour(&d, &ep).await;
    assert_eq!((counted.attempts, counted.expired, counted.failed), (1, 1, 0));
}

#[tokio::test]
async fn an_attempt_woken_after_the_expiry_sends_nothing_and_ends_the_delivery() {
    let ep = endpoint("progress", &["*"]);
    let d = subject(&[&ep]).await;
    d.sender.answer(&ep.url, [response(500)]);
    let e = event("evt_later", 0, Some(60_000), None);
    d.handle(batch(&[&e])).await;
    assert_eq!(delivery(&d, &e, &ep).await.status, DeliveryStatus::Retrying);
    // WHEN its next attempt wakes only after the expiry (a long outage, a slow queue)
    let message = wake(&d, &e, &ep).await;
    d.clock.advance(Duration::from_secs(61));
    assert!(d.handle(message).await.batch_item_failures.is_empty());
    // THEN nothing more is sent, and it ended expired
    assert_eq!(d.sender.requests().len(), 1);
    assert_eq!(delivery(&d, &e, &ep).await.status, DeliveryStatus::Expired);
}

#[tokio::test]
async fn a_newer_event_under_the_collapse_key_supersedes_an_older_one_still_retrying() {
    // GIVEN progress 1 of a run failed and waits for its retry
    let ep = endpoint("progress", &["*"]);
    let d = subject(&[&ep]).await;
    d.sender.answer(&ep.url, [response(500)]);
    let first = event("evt_p1", 0, None, Some("run-1"));
    d.handle(batch(&[&first])).await;
    let retry = wake(&d, &first, &ep).await;
    // WHEN progress 2 comes and is delivered
    let second = event("evt_p2", 1_000, None, Some("run-1"));
    d.handle(batch(&[&second])).await;
    assert_eq!(delivery(&d, &second, &ep).await.status, DeliveryStatus::Delivered);
    // THEN progress 1's retry sends nothing: it is superseded, naming progress 2
    d.clock.advance(Duration::from_secs(6));
    assert!(d.handle(retry).await.batch_item_failures.is_empty());
    let old = delivery(&d, &first, &ep).await;
    assert_eq!(old.status, DeliveryStatus::Superseded);
    assert!(old.failure_reason.unwrap().contains("`evt_p2`"));
    assert_eq!(
        d.sender.requests().len(),
        2,
        "progress 1 once (failed), progress 2 once"
    );
    assert_eq!(hour(&d, &ep).await.superseded, 1);
}

#[tokio::test]
async fn an_older_event_that_the_queue_brings_after_a_newer_one_is_superseded_unsent() {
    let ep = endpoint("progress", &["*"]);
    let d = subject(&[&ep]).await;
    let older = event("evt_p1", 0, None, Some("run-1"));
    let newer = event("evt_p2", 1_000, None, Some("run-1"));
    d.handle(batch(&[&newer])).await;
    d.handle(batch(&[&older])).await;
    assert_eq!(delivery(&d, &older, &ep).await.status, DeliveryStatus::Superseded);
    assert_eq!(d.sender.requests().len(), 1);
    let sent: serde_json::Value = serde_json::from_slice(&d.sender.requests()[0].body).unwrap();
    assert_eq!(
        (sent["id"].as_str(), sent["collapse_key"].as_str()),
        (Some("evt_p2"), Some("run-1"))
    );
}

#[tokio::test]
async fn an_event_under_another_key_supersedes_nothing() {
    // GIVEN two runs' progress events, each failed once
    let all = endpoint("all", &["*"]);
    let d = subject(&[&all]).await;
    d.sender.answer(&all.url, [response(500), response(500)]);
    let run1 = event("evt_r1", 0, None, Some("run-1"));
    let run2 = event("evt_r2", 1_000, None, Some("run-2"));
    d.handle(batch(&[&run1, &run2])).await;
    let retries = [wake(&d, &run1, &all).await, wake(&d, &run2, &all).await];
    d.clock.advance(Duration::from_secs(6));
    for r in retries {
        d.handle(r).await;
    }
    // THEN each key's only event is delivered
    for e in [&run1, &run2] {
        assert_eq!(delivery(&d, e, &all).await.status, DeliveryStatus::Delivered);
    }
}
