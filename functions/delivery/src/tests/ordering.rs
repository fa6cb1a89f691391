//! Ordered lanes (`hookline::ordering`): an endpoint with `ordering: run` gets each
//! run's events one after another, whatever order they arrive in.

use super::*;
use hookline::ordering::{Order, OrderingMode, Place};
use serde_json::Value;

/// The fixture's event `id`, at position `position` of run `run`.
fn event(id: &str, run: &str, position: u64) -> Event {
    let Some(Work::Event(mut e)) = parse(&fixture().records[0]).pop() else {
        panic!("an event")
    };
    e.id = EventId::parse(id).unwrap();
    e.order = Some(Order {
        run: Some(Place {
            key: run.into(),
            position,
        }),
        thread: None,
    });
    e
}

fn batch(messages: Vec<QueueMessage>) -> SqsEvent {
    let mut b = fixture();
    let template = b.records.remove(0);
    for (i, m) in messages.into_iter().enumerate() {
        let mut r = template.clone();
        r.body = Some(m.to_body());
        r.message_id = Some(format!("m-{i}"));
        b.records.push(r);
    }
    b
}

async fn ordered() -> (Subject, Endpoint) {
    ordered_with(|_| {}).await
}

async fn ordered_with(f: impl FnOnce(&mut Endpoint)) -> (Subject, Endpoint) {
    let mut ep = endpoint("timeline", &["*"]);
    ep.ordering = OrderingMode::Run;
    f(&mut ep);
    let d = subject(&[&ep]).await;
    (d, ep)
}

/// The ids of the events sent to `ep`, in the order they were sent.
fn sent_ids(d: &Subject, ep: &Endpoint) -> Vec<String> {
    d.sender
        .requests()
        .into_iter()
        .filter(|r| r.url == ep.url)
        .map(|r| {
            serde_json::from_slice::<Value>(&r.body).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// Handles the attempt messages queued since `from` (the wakes and retries), after
/// the clock moves `by`; where the queue stands then.
async fn run_queued(d: &Subject, from: usize, by: Duration) -> usize {
    d.clock.advance(by);
    let sent = d.queue.sent();
    let attempts: Vec<QueueMessage> = sent[from..]
        .iter()
        .filter(|m| matches!(m, QueueMessage::AttemptV1 { .. }))
        .cloned()
        .collect();
    if !attempts.is_empty() {
        assert!(d.handle(batch(attempts)).await.batch_item_failures.is_empty());
    }
    sent.len()
}

async fn status(d: &Subject, e: &Event, ep: &Endpoint) -> Delivery {
    d.store
        .get_delivery(&e.key(), &ep.id)
        .await
        .unwrap()
        .expect("a delivery")
}

#[tokio::test]
async fn an_event_that_arrives_before_its_predecessor_waits_for_it_then_goes() {
    // GIVEN a run's second event arrives first
    let (d, ep) = ordered().await;
    let (first, second) = (event("evt_r1", "run-1", 1), event("evt_r2", "run-1", 2));
    d.handle(batch(vec![QueueMessage::event(second.clone())])).await;

    // THEN it is not sent: it waits, pending, with no message of its own
    assert!(sent_ids(&d, &ep).is_empty());
    let parked = status(&d, &second, &ep).await;
    assert_eq!((parked.status, parked.attempts), (DeliveryStatus::Pending, 0));
    assert!(attempt_messages(&d).is_empty());

    // WHEN the first arrives, it goes, and its end wakes the second
    d.handle(batch(vec![QueueMessage::event(first.clone())])).await;
    run_queued(&d, 0, Duration::ZERO).await;

    // THEN the receiver saw them in order, each once
    assert_eq!(sent_ids(&d, &ep), ["evt_r1", "evt_r2"]);
    assert_eq!(status(&d, &second, &ep).await.status, DeliveryStatus::Delivered);
}

#[tokio::test]
async fn a_retrying_head_holds_its_run_but_not_another_run_nor_an_unordered_endpoint() {
    // GIVEN the receiver fails the first event of run 1 once
    let (d, ep) = ordered().await;
    let plain = endpoint("plain", &["*"]);
    d.store.create_endpoint(&plain).await.unwrap();
    d.sender.answer(&ep.url, [response(500)]);
    let events = [
        event("evt_a1", "run-a", 1),
        event("evt_a2", "run-a", 2),
        event("evt_b1", "run-b", 1),
    ];
    for e in &events {
        d.handle(batch(vec![QueueMessage::event(e.clone())])).await;
    }
    // THEN run b and the unordered endpoint go on; run a's second waits for its first
    assert_eq!(sent_ids(&d, &ep), ["evt_a1", "evt_b1"]);
    assert_eq!(sent_ids(&d, &plain).len(), 3);
    // WHEN the first's retry succeeds, the second follows it
    let at = run_queued(&d, 0, Duration::from_secs(3600)).await;
    run_queued(&d, at, Duration::ZERO).await;
    assert_eq!(sent_ids(&d, &ep), ["evt_a1", "evt_b1", "evt_a1", "evt_a2"]);
}

#[tokio::test]
async fn after_a_head_fails_for_good_the_lane_moves_on_and_says_so() {
    let (d, ep) = ordered_with(|ep| ep.max_attempts = 1).await;
    d.sender.answer(&ep.url, [response(500)]);
    let (first, second) = (event("evt_f1", "run-f", 1), event("evt_f2", "run-f", 2));
    d.handle(batch(vec![QueueMessage::event(second.clone())])).await;
    d.handle(batch(vec![QueueMessage::event(first.clone())])).await;
    run_queued(&d, 0, Duration::ZERO).await;

    assert_eq!(status(&d, &first, &ep).await.status, DeliveryStatus::Failed);
    let bodies: Vec<Value> = d
        .sender
        .requests()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(bodies.len(), 2);
    assert!(bodies[0].get("previous_failed").is_none());
    assert_eq!(bodies[1]["id"], "evt_f2");
    assert_eq!(bodies[1]["previous_failed"], true, "the receiver can tell");
}

#[tokio::test]
async fn a_position_that_never_comes_is_skipped_after_the_gap() {
    // GIVEN only a run's second event ever arrives
    let (d, ep) = ordered().await;
    let second = event("evt_g2", "run-g", 2);
    d.handle(batch(vec![QueueMessage::event(second.clone())])).await;
    assert!(sent_ids(&d, &ep).is_empty());

    // WHEN the sweeper brings the parked delivery back after the gap
    d.clock.advance(hookline::ordering::GAP + Duration::from_secs(1));
    let parked = status(&d, &second, &ep).await;
    let m = QueueMessage::next_attempt(second.clone(), &parked).unwrap();
    assert!(d.handle(batch(vec![m])).await.batch_item_failures.is_empty());

    // THEN it goes, marked: what came before it was not delivered
    assert_eq!(sent_ids(&d, &ep), ["evt_g2"]);
    let body: Value = serde_json::from_slice(&d.sender.requests()[0].body).unwrap();
    assert_eq!(body["previous_failed"], true);
}

#[tokio::test]
async fn brought_back_before_the_gap_a_parked_delivery_parks_again() {
    let (d, ep) = ordered().await;
    let second = event("evt_p2", "run-p", 2);
    d.handle(batch(vec![QueueMessage::event(second.clone())])).await;
    d.clock.advance(Duration::from_secs(60));
    let parked = status(&d, &second, &ep).await;
    let m = QueueMessage::next_attempt(second.clone(), &parked).unwrap();
    assert!(d.handle(batch(vec![m])).await.batch_item_failures.is_empty());
    assert!(sent_ids(&d, &ep).is_empty());
    let again = status(&d, &second, &ep).await;
    assert_eq!(again.status, DeliveryStatus::Pending);
    assert!(again.next_attempt_at > parked.next_attempt_at, "{again:?}");
}

#[tokio::test]
async fn a_head_that_ended_without_moving_its_lane_is_noticed_by_the_next_after_the_gap() {
    // GIVEN the first event is delivered but its lane could not be moved on
    let (d, ep) = ordered().await;
    d.store.refusing.lock().unwrap().push("end_turn");
    let (first, second) = (event("evt_h1", "run-h", 1), event("evt_h2", "run-h", 2));
    d.handle(batch(vec![QueueMessage::event(first.clone())])).await;
    d.store.refusing.lock().unwrap().clear();
    d.handle(batch(vec![QueueMessage::event(second.clone())])).await;
    assert_eq!(sent_ids(&d, &ep), ["evt_h1"], "the second waits behind the head");

    // WHEN the sweeper brings the second back after the gap
    d.clock.advance(hookline::ordering::GAP + Duration::from_secs(1));
    let parked = status(&d, &second, &ep).await;
    let m = QueueMessage::next_attempt(second.clone(), &parked).unwrap();
    assert!(d.handle(batch(vec![m])).await.batch_item_failures.is_empty());

    // THEN it sees the head delivered, moves the lane on and goes, unmarked
    assert_eq!(sent_ids(&d, &ep), ["evt_h1", "evt_h2"]);
    let body: Value = serde_json::from_slice(&d.sender.requests()[1].body).unwrap();
    assert!(body.get("previous_failed").is_none(), "{body}");
    assert_eq!(status(&d, &second, &ep).await.status, DeliveryStatus::Delivered);
}
