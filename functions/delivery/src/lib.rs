//! The delivery function: SQS records in, signed POSTs out, every attempt recorded.
//!
//! Two kinds of message arrive. An *event* message fans out (`fan_out`): the handler
//! claims the event (so a redelivered or duplicated message never fans out twice),
//! POSTs to every matching endpoint at once and records one delivery and one attempt
//! per endpoint. An *attempt* message wakes one delivery for its next try
//! (`next_attempt`). How a retry waits on SQS is `hookline::hop`'s rule; what an
//! attempt does to its endpoint's health is `hookline::endpoint_health`'s; what a store
//! failure does is `hookline::store_failure`'s. Only the message whose wake token
//! matches the delivery's may act, and every write is conditional on the attempt count
//! it read, so duplicates and redeliveries never regress a delivery.

mod attempt;
mod batch;
mod bodies;
mod config;
mod endpoint_cache;
mod fan_out;
mod invocation;
mod lanes;
mod next_attempt;
mod turns;
mod unsent;

pub use config::{Config, Settings};
pub use endpoint_cache::EndpointCache;
pub use lanes::SlowLane;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use batch::{Disposition, Work, Works};
use fan_out::AttemptedFanOut;
use futures::{StreamExt, stream};
use hookline::dead_letter::{DeadLetter, FoundBy};
use hookline::ports::{
    Clock, CollapseStore, DeadLetterStore, DeliveryStore, EndpointStore, EventStore, LaneStore, PortError,
    Queue, RateLimiter, StatsStore, WebhookSender,
};
use hookline::telemetry::{Metrics, Unit};
use invocation::Invocation;
use tracing::Instrument;

/// Fan-outs' deliveries are written together once this many have gathered: what one
/// BatchWriteItem takes.
const WRITE_TOGETHER: usize = 25;

pub struct Deliverer<S, H, Q, C> {
    pub store: S,
    pub sender: H,
    pub queue: Q,
    pub clock: C,
    /// Where checked-in events' data is (`hookline::claim_check`).
    pub data: std::sync::Arc<dyn hookline::ports::DataStore>,
    pub endpoints: EndpointCache,
    pub settings: Settings,
    /// Attempts to endpoints too slow to wait for go here (`hookline::lane`).
    pub slow_lane: Option<SlowLane<Q>>,
}

impl<S, H, Q, C> Deliverer<S, H, Q, C>
where
    S: EventStore
        + EndpointStore
        + DeliveryStore
        + StatsStore
        + RateLimiter
        + DeadLetterStore
        + CollapseStore
        + LaneStore,
    H: WebhookSender,
    Q: Queue,
    C: Clock,
{
    pub async fn handle(&self, batch: SqsEvent) -> SqsBatchResponse {
        let works = batch::works(&batch.records);
        let invocation = Invocation::new(self.settings.concurrency);
        let outcomes = self.run(&works, &batch.records, &invocation).await;
        let response = batch::respond(&batch.records, &works, outcomes, |r| {
            self.queue_of(self.lane_of(r))
        })
        .await;
        invocation.into_reports().flush(&self.store, &self.queue).await;
        response
    }

    /// Handles every work of the batch at once. Fan-outs whose attempts are made are
    /// written as they finish, together once a BatchWriteItem's worth (25) has gathered:
    /// a batch's requests are shared, and a fan-out does not wait for slower ones (a
    /// timeout or crash loses only what was not yet written). A write runs beside the
    /// fan-outs still sending, so their answers are read while it is out.
    async fn run(&self, works: &Works, records: &[SqsMessage], inv: &Invocation) -> Vec<Disposition> {
        let mut running: stream::FuturesUnordered<_> = works
            .iter()
            .enumerate()
            .map(|(i, (work, at))| async move { (i, self.handle_one(work, &records[at[0]], inv).await) })
            .collect();
        let mut writing = stream::FuturesUnordered::new();
        let mut outcomes: Vec<Option<Disposition>> = (0..works.len()).map(|_| None).collect();
        let mut gathered: Vec<(usize, Box<AttemptedFanOut>)> = Vec::new();
        let mut pending = 0;
        loop {
            tokio::select! {
                Some((i, outcome)) = running.next(), if !running.is_empty() => {
                    match outcome {
                        Disposition::Record(f) => {
                            pending += f.records().count();
                            gathered.push((i, f));
                        }
                        other => outcomes[i] = Some(other),
                    }
                    // What is left goes once nothing else is sending.
                    if pending >= WRITE_TOGETHER || (running.is_empty() && !gathered.is_empty()) {
                        writing.push(self.record(std::mem::take(&mut gathered), inv));
                        pending = 0;
                    }
                }
                Some(settled) = writing.next(), if !writing.is_empty() => {
                    for (i, d) in settled {
                        outcomes[i] = Some(d);
                    }
                }
                else => break,
            }
        }
        outcomes
            .into_iter()
            .map(|o| {
                o.unwrap_or_else(|| Disposition::Redeliver(PortError::retryable("delivery", "not handled")))
            })
            .collect()
    }

    async fn handle_one(&self, work: &Work, record: &SqsMessage, inv: &Invocation) -> Disposition {
        match work {
            Work::Unreadable { error } => {
                let body = record.body.as_deref().unwrap_or("");
                self.keep_dead_letter(record, format!("unreadable: {error}"), body)
                    .await
            }
            Work::Forged { reason, event_json } => {
                self.keep_dead_letter(record, reason.clone(), event_json).await
            }
            Work::Report(report) => match hookline::ops::resolve(&self.store, report).await {
                Ok(Some(event)) => {
                    let span =
                        tracing::info_span!("record", event_id = %event.id, event_type = %event.event_type);
                    self.fan_out(&event, record, inv).instrument(span).await
                }
                Ok(None) => Disposition::Done,
                Err(e) => Disposition::Redeliver(e),
            },
            Work::Newer => Disposition::Redeliver(PortError::retryable(
                "read queue message",
                "a type this version does not know; left for a newer version",
            )),
            Work::Event(event) => {
                let span =
                    tracing::info_span!("record", event_id = %event.id, event_type = %event.event_type);
                self.fan_out(event, record, inv).instrument(span).await
            }
            Work::Attempt {
                event,
                endpoint_id,
                wake,
            } => {
                let receives = batch::receive_count(record);
                let span = tracing::info_span!("record", event_id = %event.id, endpoint_id = %endpoint_id);
                let here = self.lane_of(record);
                self.next_attempt(event, endpoint_id, wake, receives, here, inv)
                    .instrument(span)
                    .await
            }
        }
    }
}

impl<S: DeadLetterStore, H, Q, C: Clock> Deliverer<S, H, Q, C> {
    /// Keeps what a message held that cannot be processed (its body, or the one event
    /// of it that cannot) as a dead letter, then lets it go; while the record cannot be
    /// written, the message stays (and the sweeper keeps it from the DLQ).
    pub(crate) async fn keep_dead_letter(
        &self,
        record: &SqsMessage,
        reason: String,
        body: &str,
    ) -> Disposition {
        let receives = batch::receive_count(record);
        let letter = DeadLetter::new(
            FoundBy::Delivery,
            reason,
            record.message_id.clone(),
            receives,
            body,
            self.clock.now(),
        );
        match self.store.record_dead_letter(&letter).await {
            Ok(()) => {
                tracing::warn!(dead_letter_id = %letter.id, body_sha256 = letter.body_sha256, "kept as a dead letter");
                Metrics::new()
                    .dimension("Function", "delivery")
                    .metric("DeadLetters", 1.0, Unit::Count)
                    .emit();
                Disposition::Done
            }
            Err(e) => Disposition::Redeliver(e),
        }
    }
}

#[cfg(test)]
mod tests;
