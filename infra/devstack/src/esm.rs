//! Plays Lambda's SQS event-source mapping: long-poll a batch of up to 10, hand the
//! function a real `SqsEvent`, and delete exactly the messages its
//! `SqsBatchResponse` does not list. A failed invocation deletes nothing, as on AWS.

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};
use std::collections::HashSet;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum EsmError {
    #[error("SQS {op}: {detail}")]
    Sqs { op: &'static str, detail: String },
    #[error("invoking the function failed: {0}")]
    Invoke(String),
}

/// Something that runs the delivery function on an SQS event.
#[async_trait]
pub trait SqsHandler: Send + Sync {
    async fn invoke(&self, event: SqsEvent) -> Result<SqsBatchResponse, EsmError>;
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PollStats {
    pub received: usize,
    pub deleted: usize,
    pub kept: usize,
    /// How long the function took, as the invoker saw it (ms).
    pub invoke_ms: u64,
}

pub struct EventSourceMapping {
    pub sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
    pub queue_arn: String,
    pub region: String,
    pub batch_size: i32,
    pub wait: Duration,
}

impl EventSourceMapping {
    pub fn new(sqs: aws_sdk_sqs::Client, queue_url: &str, queue_arn: &str) -> Self {
        Self {
            sqs,
            queue_url: queue_url.to_owned(),
            queue_arn: queue_arn.to_owned(),
            region: "us-east-1".into(),
            batch_size: 10,
            wait: Duration::from_secs(20),
        }
    }

    fn to_record(&self, m: &Message) -> SqsMessage {
        let mut r = SqsMessage::default();
        r.message_id = m.message_id().map(str::to_owned);
        r.receipt_handle = m.receipt_handle().map(str::to_owned);
        r.body = m.body().map(str::to_owned);
        r.md5_of_body = m.md5_of_body().map(str::to_owned);
        r.attributes = m
            .attributes()
            .map(|a| {
                a.iter()
                    .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        r.event_source = Some("aws:sqs".into());
        r.event_source_arn = Some(self.queue_arn.clone());
        r.aws_region = Some(self.region.clone());
        r
    }

    /// One long poll, one invocation, one delete. Returns what happened.
    pub async fn poll_once(&self, handler: &dyn SqsHandler) -> Result<PollStats, EsmError> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(self.batch_size)
            .wait_time_seconds(i32::try_from(self.wait.as_secs()).unwrap_or(20))
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .map_err(|e| EsmError::Sqs {
                op: "ReceiveMessage",
                detail: aws_sdk_sqs::error::DisplayErrorContext(e).to_string(),
            })?;
        let messages = out.messages();
        if messages.is_empty() {
            return Ok(PollStats::default());
        }
        let mut event = SqsEvent::default();
        event.records = messages.iter().map(|m| self.to_record(m)).collect();
        let received = messages.len();

        let invoked = std::time::Instant::now();
        let response = handler.invoke(event).await?;
        let invoke_ms = u64::try_from(invoked.elapsed().as_millis()).unwrap_or(u64::MAX);
        let ids: HashSet<&str> = messages.iter().filter_map(|m| m.message_id()).collect();
        let failed: HashSet<&str> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        // An identifier that names no message of the batch fails the whole batch.
        if failed.iter().any(|f| !ids.contains(f)) {
            return Ok(PollStats {
                received,
                deleted: 0,
                kept: received,
                invoke_ms,
            });
        }
        let entries: Vec<DeleteMessageBatchRequestEntry> = messages
            .iter()
            .filter(|m| !m.message_id().is_some_and(|id| failed.contains(id)))
            .enumerate()
            .filter_map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .build()
                    .ok()
            })
            .collect();
        let deleted = entries.len();
        if !entries.is_empty() {
            self.sqs
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| EsmError::Sqs {
                    op: "DeleteMessageBatch",
                    detail: aws_sdk_sqs::error::DisplayErrorContext(e).to_string(),
                })?;
        }
        Ok(PollStats {
            received,
            deleted,
            kept: received - deleted,
            invoke_ms,
        })
    }
}

/// Invokes a function served by `cargo lambda watch` through its Lambda Invoke API.
pub struct HttpInvoker {
    pub client: reqwest::Client,
    /// e.g. `http://127.0.0.1:9000`
    pub base: String,
}

impl HttpInvoker {
    pub fn new(base: &str) -> Self {
        Self {
            client: reqwest::Client::new(),
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    pub async fn invoke_json(
        &self,
        function: &str,
        payload: &serde_json::Value,
    ) -> Result<serde_json::Value, EsmError> {
        let url = format!("{}/2015-03-31/functions/{function}/invocations", self.base);
        let res = self
            .client
            .post(&url)
            .json(payload)
            .timeout(Duration::from_secs(900))
            .send()
            .await
            .map_err(|e| EsmError::Invoke(format!("{function}: {e}")))?;
        let status = res.status();
        let body: serde_json::Value = res.json().await.unwrap_or(serde_json::Value::Null);
        if !status.is_success() || body.get("errorType").is_some() || body.get("errorMessage").is_some() {
            return Err(EsmError::Invoke(format!("{function} answered {status}: {body}")));
        }
        Ok(body)
    }
}

pub struct HttpSqsHandler {
    pub invoker: HttpInvoker,
    pub function: String,
}

#[async_trait]
impl SqsHandler for HttpSqsHandler {
    async fn invoke(&self, event: SqsEvent) -> Result<SqsBatchResponse, EsmError> {
        let payload = serde_json::to_value(&event).map_err(|e| EsmError::Invoke(e.to_string()))?;
        let body = self.invoker.invoke_json(&self.function, &payload).await?;
        serde_json::from_value(body).map_err(|e| EsmError::Invoke(format!("not an SqsBatchResponse: {e}")))
    }
}
