//! The local stack's SQS event-source mapping behaves as Lambda's does.

use crate::support::*;
use async_trait::async_trait;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use devstack::esm::{EsmError, SqsHandler};
use std::sync::Mutex;

/// Fails the records whose body is "fail", and remembers what it saw.
#[derive(Default)]
struct Picky {
    seen: Mutex<Vec<SqsEvent>>,
}

#[async_trait]
impl SqsHandler for Picky {
    async fn invoke(&self, event: SqsEvent) -> Result<SqsBatchResponse, EsmError> {
        let mut res = SqsBatchResponse::default();
        for r in &event.records {
            if r.body.as_deref() == Some("fail") {
                res.add_failure(r.message_id.clone().unwrap_or_default());
            }
        }
        self.seen.lock().unwrap().push(event);
        Ok(res)
    }
}

struct Crashing;

#[async_trait]
impl SqsHandler for Crashing {
    async fn invoke(&self, _: SqsEvent) -> Result<SqsBatchResponse, EsmError> {
        Err(EsmError::Invoke("the function panicked".into()))
    }
}

async fn send(h: &Harness, body: &str) {
    h.sqs
        .send_message()
        .queue_url(h.stack.queue_url("DeliveryQueue"))
        .message_body(body)
        .send()
        .await
        .unwrap();
}

async fn in_flight(h: &Harness) -> (u64, u64) {
    let out = h
        .sqs
        .get_queue_attributes()
        .queue_url(h.stack.queue_url("DeliveryQueue"))
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .unwrap();
    let attrs = out.attributes().unwrap();
    let get = |n: aws_sdk_sqs::types::QueueAttributeName| attrs.get(&n).unwrap().parse::<u64>().unwrap();
    (
        get(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages),
        get(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
    )
}

#[tokio::test]
async fn only_the_messages_the_batch_response_lists_stay_on_the_queue() {
    let h = Harness::new().await;
    for body in ["ok-1", "fail", "ok-2"] {
        send(&h, body).await;
    }
    let picky = Picky::default();
    let stats = h.esm.poll_once(&picky).await.unwrap();
    assert_eq!((stats.received, stats.deleted, stats.kept), (3, 2, 1));
    // The failed one is hidden until its visibility timeout, not deleted.
    assert_eq!(in_flight(&h).await, (0, 1));

    let seen = picky.seen.lock().unwrap();
    let record = &seen[0].records[0];
    assert_eq!(record.event_source.as_deref(), Some("aws:sqs"));
    assert_eq!(
        record.event_source_arn.as_deref(),
        Some(h.stack.queue_arn("DeliveryQueue"))
    );
    assert!(record.attributes.contains_key("ApproximateReceiveCount"));
    assert!(record.receipt_handle.is_some());
}

#[tokio::test]
async fn a_failed_invocation_deletes_nothing() {
    let h = Harness::new().await;
    send(&h, "x").await;
    assert!(h.esm.poll_once(&Crashing).await.is_err());
    assert_eq!(in_flight(&h).await, (0, 1));
}
