//! The queue ports on SQS.

use super::classify;
use crate::message::QueueMessage;
use crate::ports::{
    DeadLetters, MAX_QUEUE_DELAY, MAX_VISIBILITY, PortError, PortResult, Queue, QueueDepth, QueueGauge,
    Received,
};
use async_trait::async_trait;
pub use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName, SendMessageBatchRequestEntry};
use std::time::Duration;

/// SQS takes at most 10 entries in one SendMessageBatch.
const BATCH_ENTRIES: usize = 10;
/// And at most this many bytes of bodies in one batch.
const BATCH_BYTES: usize = 1024 * 1024;

#[derive(Clone, Debug)]
pub struct SqsQueue {
    client: Client,
    url: String,
    /// Whether attempt messages carry their endpoint as `MessageGroupId`: on a standard
    /// queue, SQS's fair queues then keep one endpoint's backlog from delaying the
    /// others'.
    group_by_endpoint: bool,
}

impl SqsQueue {
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        Self {
            client,
            url: url.into(),
            group_by_endpoint: false,
        }
    }

    /// The same queue, its attempt messages grouped by endpoint (the slow lane's).
    pub fn grouped_by_endpoint(mut self) -> Self {
        self.group_by_endpoint = true;
        self
    }

    /// The message group of a message on this queue, if it has one: on a standard
    /// queue, SQS's fair queues keep one group's backlog from delaying the others'. The
    /// slow lane groups its attempts by endpoint; otherwise a message is its tenant's,
    /// so that one tenant's flood does not hold up the other tenants' first attempts.
    fn group_of<'m>(&self, message: &'m QueueMessage) -> Option<&'m str> {
        match message {
            QueueMessage::AttemptV1 { endpoint_id, .. } | QueueMessage::AttemptV2 { endpoint_id, .. }
                if self.group_by_endpoint =>
            {
                Some(endpoint_id.as_str())
            }
            _ => message.tenant().map(|t| t.as_str()),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

impl SqsQueue {
    /// One SendMessageBatch; one result per message of the range.
    async fn send_chunk(
        &self,
        messages: &[QueueMessage],
        bodies: &[String],
        range: std::ops::Range<usize>,
    ) -> Vec<PortResult<()>> {
        let entries: Result<Vec<_>, _> = range
            .clone()
            .map(|i| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(&bodies[i])
                    .set_message_group_id(self.group_of(&messages[i]).map(str::to_owned))
                    .build()
            })
            .collect();
        let entries = match entries {
            Ok(entries) => entries,
            Err(e) => {
                let e = PortError::permanent("SendMessageBatch", e.to_string()).caused_by(e);
                return range.map(|_| Err(e.clone())).collect();
            }
        };
        let req = self
            .client
            .send_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries));
        match req.send().await {
            Ok(out) => {
                let mut chunk: Vec<PortResult<()>> = range.clone().map(|_| Ok(())).collect();
                for f in out.failed() {
                    let Some(pos) = f
                        .id()
                        .parse::<usize>()
                        .ok()
                        .and_then(|i| i.checked_sub(range.start))
                    else {
                        continue;
                    };
                    let detail = format!("{} {}", f.code(), f.message().unwrap_or(""));
                    if let Some(slot) = chunk.get_mut(pos) {
                        *slot = Err(if f.sender_fault() {
                            PortError::permanent("SendMessageBatch entry", detail)
                        } else {
                            PortError::retryable("SendMessageBatch entry", detail)
                        });
                    }
                }
                chunk
            }
            // One failure for the whole batch: each message carries it (and its cause).
            Err(e) => {
                let err = classify("SendMessageBatch", e);
                range.map(|_| Err(err.clone())).collect()
            }
        }
    }
}

/// Seconds, rounded up so a message never wakes before its time.
fn whole_seconds(d: Duration) -> i32 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    i32::try_from(secs).unwrap_or(i32::MAX)
}

/// Splits bodies into runs that fit one SendMessageBatch each.
fn chunk_bodies(bodies: &[String]) -> Vec<std::ops::Range<usize>> {
    let mut chunks = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, b) in bodies.iter().enumerate() {
        let full = i - start == BATCH_ENTRIES || (i > start && bytes + b.len() > BATCH_BYTES);
        if full {
            chunks.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += b.len();
    }
    if start < bodies.len() {
        chunks.push(start..bodies.len());
    }
    chunks
}

#[async_trait]
impl Queue for SqsQueue {
    async fn send(&self, message: &QueueMessage) -> PortResult<()> {
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(message.to_body())
            .set_message_group_id(self.group_of(message).map(str::to_owned))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("SendMessage", e))
    }

    async fn send_after(&self, message: &QueueMessage, delay: Duration) -> PortResult<()> {
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(message.to_body())
            .set_message_group_id(self.group_of(message).map(str::to_owned))
            .delay_seconds(whole_seconds(delay.min(MAX_QUEUE_DELAY)))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("SendMessage", e))
    }

    async fn hide(&self, receipt_handle: &str, hidden: Duration) -> PortResult<()> {
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(whole_seconds(hidden.min(MAX_VISIBILITY)))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("ChangeMessageVisibility", e))
    }

    async fn send_batch(&self, messages: &[QueueMessage]) -> Vec<PortResult<()>> {
        let bodies: Vec<String> = messages.iter().map(QueueMessage::to_body).collect();
        // The batches go at once; their results come back in the messages' order.
        let chunks = chunk_bodies(&bodies);
        let sends = chunks
            .into_iter()
            .map(|range| self.send_chunk(messages, &bodies, range));
        futures::future::join_all(sends)
            .await
            .into_iter()
            .flatten()
            .collect()
    }
}

#[async_trait]
impl DeadLetters for SqsQueue {
    async fn take(&self) -> PortResult<Vec<Received>> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| classify("ReceiveMessage", e))?;
        Ok(out
            .messages()
            .iter()
            .map(|m| Received {
                body: m.body().unwrap_or_default().to_owned(),
                receipt_handle: m.receipt_handle().unwrap_or_default().to_owned(),
                receive_count: m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0),
            })
            .collect())
    }

    async fn remove(&self, receipt_handle: &str) -> PortResult<()> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt_handle)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("DeleteMessage", e))
    }
}

#[async_trait]
impl QueueGauge for SqsQueue {
    async fn depth(&self) -> PortResult<QueueDepth> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .map_err(|e| classify("GetQueueAttributes", e))?;
        let attrs = out.attributes();
        let get = |name: QueueAttributeName| {
            attrs
                .and_then(|a| a.get(&name))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Ok(QueueDepth {
            visible: get(QueueAttributeName::ApproximateNumberOfMessages),
            in_flight: get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
            delayed: get(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_hold_at_most_ten_entries_and_a_mebibyte() {
        let small: Vec<String> = (0..25).map(|_| "x".into()).collect();
        assert_eq!(chunk_bodies(&small), vec![0..10, 10..20, 20..25]);
        let big: Vec<String> = (0..3).map(|_| "x".repeat(400 * 1024)).collect();
        assert_eq!(chunk_bodies(&big), vec![0..2, 2..3]);
        assert!(chunk_bodies(&[]).is_empty());
    }
}
