//! The sweeper reads due deliveries from the `open` index and the queues' depths.

use crate::support::*;
use hookline::adapters::sqs::SqsQueue;
use hookline::memory::ManualClock;
use serde_json::json;
use std::time::Duration;
use sweeper_fn::Sweeper;

#[tokio::test]
async fn the_sweeper_counts_due_deliveries_and_queue_depths() {
    // GIVEN a delivery whose first attempt failed, and one message in the DLQ
    let h = Harness::new().await;
    let rx = Receiver::start().await;
    rx.answer("/down", 503, "");
    h.register("down", &rx.url("/down"), &["*"]).await;
    let body = json!({"event_type": "a", "data": 1}).to_string();
    h.call_ingest("POST", "/v1/events", Some(INGEST_KEY), Some(&body))
        .await;
    h.pump().await;
    h.sqs
        .send_message()
        .queue_url(h.stack.queue_url("DeliveryDLQ"))
        .message_body("{}")
        .send()
        .await
        .unwrap();

    let clock = ManualClock::at(hookline::Timestamp::now());
    let sweeper = Sweeper {
        store: h.store(),
        queue: SqsQueue::new(h.sqs.clone(), h.stack.queue_url("DeliveryQueue")),
        dlq: SqsQueue::new(h.sqs.clone(), h.stack.queue_url("DeliveryDLQ")),
        clock,
    };

    // WHEN it sweeps before the retry is due, THEN nothing is due yet
    let now = sweeper.sweep().await.unwrap();
    assert_eq!((now.due_deliveries, now.dlq_depth), (0, 1));

    // WHEN it sweeps after the retry fell due, THEN the delivery is counted with its age
    sweeper.clock.advance(Duration::from_secs(65));
    let later = sweeper.sweep().await.unwrap();
    assert_eq!(later.due_deliveries, 1);
    assert!(
        (59..=61).contains(&later.oldest_due_age_seconds),
        "{}",
        later.oldest_due_age_seconds
    );
}
