//! The lanes: an endpoint too slow to wait for is handed to the slow lane, where it
//! spends that lane's capacity only, and comes back when it answers in time again.

use super::*;

const SLOW_ARN: &str = "arn:aws:sqs:us-east-1:123456789012:hookline-slow";

/// A subject with a slow lane, whose fast lane waits 100 ms for an answer.
async fn with_lanes(endpoints: &[&Endpoint]) -> Subject {
    let mut d = subject(endpoints).await;
    d.settings.inline_deadline = Duration::from_millis(100);
    d.slow_lane = Some(SlowLane {
        queue: MemoryQueue::default(),
        arn: SLOW_ARN.into(),
    });
    d
}

fn slow_queue(d: &Subject) -> &MemoryQueue {
    &d.slow_lane.as_ref().expect("a slow lane").queue
}

/// The attempt messages on the slow lane's queue: (endpoint, wake token).
fn slow_messages(d: &Subject) -> Vec<(EndpointId, String)> {
    slow_queue(d)
        .sent()
        .into_iter()
        .filter_map(|m| match m {
            QueueMessage::AttemptV1 {
                endpoint_id, wake, ..
            } => Some((endpoint_id, wake)),
            _ => None,
        })
        .collect()
}

async fn lane_of(d: &Subject, ep: &Endpoint) -> hookline::lane::Lane {
    hookline::lane::Lane::of(&d.store.get_endpoint(&ep.id).await.unwrap().unwrap())
}

#[tokio::test]
async fn an_endpoint_that_does_not_answer_by_the_deadline_is_handed_to_the_slow_lane() {
    // GIVEN a fast endpoint and one whose receiver never answers
    let (fast, hung) = (endpoint("fast", &["*"]), endpoint("hung", &["*"]));
    let d = with_lanes(&[&fast, &hung]).await;
    let _held = d.sender.hold(&hung.url);

    // WHEN an event fans out
    let started = std::time::Instant::now();
    let response = d.handle(fixture()).await;

    // THEN the batch is not held past the deadline: the fast endpoint has its webhook,
    // the hung one's delivery is pending, with its attempt on the slow lane, and the
    // endpoint is in the slow lane from now on
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(delivery_of(&d, &fast).await.status, DeliveryStatus::Delivered);
    let handed = delivery_of(&d, &hung).await;
    assert_eq!((handed.status, handed.attempts), (DeliveryStatus::Pending, 0));
    assert_eq!(
        slow_messages(&d),
        vec![(hung.id.clone(), handed.wake.clone().unwrap())]
    );
    assert!(attempt_messages(&d).is_empty(), "nothing for the fast lane");
    assert_eq!(lane_of(&d, &hung).await, hookline::lane::Lane::Slow);
    assert_eq!(lane_of(&d, &fast).await, hookline::lane::Lane::Fast);
}

#[tokio::test]
async fn an_endpoint_in_the_slow_lane_is_not_waited_for_at_all() {
    let fast = endpoint("fast", &["*"]);
    let mut slow = endpoint("slow", &["*"]);
    slow.slow_since = Some(Timestamp::from_unix_millis(T0));
    let d = with_lanes(&[&fast, &slow]).await;

    d.handle(fixture()).await;

    let urls: Vec<String> = d.sender.requests().into_iter().map(|r| r.url).collect();
    assert_eq!(
        urls,
        vec![fast.url.clone()],
        "no inline attempt to the slow endpoint"
    );
    let pending = delivery_of(&d, &slow).await;
    assert_eq!(pending.status, DeliveryStatus::Pending);
    assert_eq!(slow_messages(&d), vec![(slow.id.clone(), pending.wake.unwrap())]);
}

#[tokio::test]
async fn a_fast_answer_in_the_slow_lane_brings_the_endpoint_back() {
    // GIVEN a delivery handed to the slow lane
    let mut ep = endpoint("recovered", &["*"]);
    ep.slow_since = Some(Timestamp::from_unix_millis(T0));
    let d = with_lanes(&[&ep]).await;
    d.handle(fixture()).await;
    let (_, wake) = slow_messages(&d).remove(0);

    // WHEN the slow lane makes the attempt, and the receiver answers at once
    let mut batch = attempt_batch(&ep.id, &wake, 1);
    batch.records[0].event_source_arn = Some(SLOW_ARN.into());
    let response = d.handle(batch).await;

    // THEN it is delivered and the endpoint is in the fast lane again
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(delivery_of(&d, &ep).await.status, DeliveryStatus::Delivered);
    assert_eq!(lane_of(&d, &ep).await, hookline::lane::Lane::Fast);
}

#[tokio::test]
async fn a_fast_lane_attempt_message_for_a_slow_endpoint_moves_to_the_slow_lane() {
    // GIVEN a retry waiting on the fast lane, for an endpoint since moved to the slow one
    let ep = endpoint("flaky", &["*"]);
    let d = with_lanes(&[&ep]).await;
    let wake = failed_once(&d, &ep).await;
    d.store
        .set_lane(&ep.id, Some(Timestamp::from_unix_millis(T0)))
        .await
        .unwrap();
    d.clock.advance(Duration::from_secs(6));

    // WHEN its message comes back on the fast lane
    let response = d.handle(attempt_batch(&ep.id, &wake, 1)).await;

    // THEN no attempt is made there: the message moves, same token
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(d.sender.requests().len(), 1, "only the first attempt");
    assert_eq!(slow_messages(&d), vec![(ep.id.clone(), wake)]);
}

#[tokio::test]
async fn a_retry_not_answered_by_the_deadline_is_handed_over_with_its_lease_released() {
    // GIVEN a retry due on the fast lane, to a receiver that now never answers
    let ep = endpoint("hangs-now", &["*"]);
    let d = with_lanes(&[&ep]).await;
    let wake = failed_once(&d, &ep).await;
    d.clock.advance(Duration::from_secs(6));
    let _held = d.sender.hold(&ep.url);

    // WHEN it is attempted
    let response = d.handle(attempt_batch(&ep.id, &wake, 1)).await;

    // THEN the attempt is given up at the deadline and handed over, token and all, and
    // the slow lane can take it at once: nobody holds it
    assert!(response.batch_item_failures.is_empty());
    let seen = delivery_of(&d, &ep).await;
    assert_eq!((seen.status, seen.attempts), (DeliveryStatus::Retrying, 1));
    assert_eq!(slow_messages(&d), vec![(ep.id.clone(), wake)]);
    assert!(
        d.store
            .claim_attempt(&seen, d.clock.now(), Duration::from_secs(60))
            .await
            .unwrap()
    );
    assert_eq!(lane_of(&d, &ep).await, hookline::lane::Lane::Slow);
}

#[tokio::test]
async fn waiting_for_a_post_slot_does_not_count_against_the_inline_deadline() {
    // GIVEN one POST at a time, a 1 s inline deadline, and two events in one batch: the
    // first to a receiver that never answers, the second to one that answers in 0.5 s
    let (hung, fast) = (
        endpoint("hung", &["agent.hung"]),
        endpoint("fast", &["agent.fast"]),
    );
    let mut d = with_lanes(&[&hung, &fast]).await;
    d.settings.concurrency = 1;
    d.settings.inline_deadline = Duration::from_secs(1);
    let _held = d.sender.hold(&hung.url);
    // The fast receiver's POST can only start once the hung one is given up, at 1 s.
    let answer = d.sender.hold(&fast.url).release;
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        answer.notify_one();
    });
    let mut batch = fixture();
    let template = batch.records.remove(0);
    for (i, event_type) in ["agent.hung", "agent.fast"].into_iter().enumerate() {
        let Some(Work::Event(mut e)) = parse(&template).pop() else {
            panic!("an event")
        };
        e.id = EventId::parse(&format!("evt_slot_{i}")).unwrap();
        e.event_type = hookline::event::EventType::parse(event_type).unwrap();
        let mut r = template.clone();
        r.body = Some(QueueMessage::EventV1 { event: e }.to_body());
        r.message_id = Some(format!("m{i}"));
        batch.records.push(r);
    }

    // WHEN the batch is handled
    d.handle(batch).await;

    // THEN the fast receiver, which waited 1 s for the only slot and then answered in
    // 0.5 s, was waited for, is delivered inline and stays in the fast lane; only the
    // hung one moves
    let key = hookline::event::EventKey::of_default(&EventId::parse("evt_slot_1").unwrap());
    let fast_delivery = d
        .store
        .get_delivery(&key, &fast.id)
        .await
        .unwrap()
        .expect("a delivery");
    assert_eq!(fast_delivery.status, DeliveryStatus::Delivered);
    assert_eq!(lane_of(&d, &fast).await, hookline::lane::Lane::Fast);
    assert_eq!(lane_of(&d, &hung).await, hookline::lane::Lane::Slow);
}
