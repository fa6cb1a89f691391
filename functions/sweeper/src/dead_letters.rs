//! Draining the DLQ: each dead-lettered message becomes the failed deliveries it
//! stands for, so that no loss goes unseen; a message that cannot be settled yet stays
//! for the next sweep.

use crate::{SweepReport, Sweeper};
use hookline::dead_letter::{DeadLetter, FoundBy};
use hookline::delivery::Delivery;
use hookline::event::Event;
use hookline::ids::DeliveryId;
use hookline::message::{self, QueueMessage};
use hookline::ops::{self, EventMessage, Report};
use hookline::ports::{
    Clock, DeadLetterStore, DeadLetters, DeliveryStore, EndpointStore, EventStore, FanoutClaim, PortResult,
    Queue, Received,
};
use hookline::timestamp::Timestamp;

impl<S, Q, D, C> Sweeper<S, Q, D, C>
where
    S: EventStore + EndpointStore + DeliveryStore + DeadLetterStore,
    Q: Queue,
    D: DeadLetters,
    C: Clock,
{
    pub(crate) async fn drain_dlq(
        &self,
        now: Timestamp,
        report: &mut SweepReport,
        ops: &mut Vec<Report>,
    ) -> PortResult<()> {
        while report.dlq_drained < self.settings.dlq_max {
            let batch = self.dlq.take().await?;
            if batch.is_empty() {
                break;
            }
            for m in batch {
                match self.settle_dead(&m, now, ops, report).await {
                    Ok(true) => {}
                    // A worker holds its event: a later sweep settles it.
                    Ok(false) => continue,
                    // It can never be settled as deliveries (the store refuses them): it is
                    // kept as a dead letter and removed, so that it does not stop the drain
                    // every minute. Only if even that is refused for good is it dropped,
                    // named in the log by its size and receives, never by its body.
                    Err(e) if e.is_permanent() => {
                        let reason = format!("its deliveries could not be recorded: {}", e.op());
                        match self.keep_dead_letter(&m, reason, &m.body, now, report).await {
                            Ok(()) => {}
                            Err(k) if k.is_retryable() => {
                                tracing::warn!(error = %k, "a dead-lettered message is left for the next sweep");
                                continue;
                            }
                            Err(k) => tracing::error!(
                                error = %e,
                                dead_letter_error = %k,
                                receives = m.receive_count,
                                body_bytes = m.body.len(),
                                "dropping a dead-lettered message that can be recorded neither as deliveries nor as a dead letter"
                            ),
                        }
                        report.dlq_dropped += 1;
                    }
                    // The store is unavailable now: this one waits for the next sweep,
                    // the others are still tried.
                    Err(e) => {
                        tracing::warn!(error = %e, "a dead-lettered message is left for the next sweep");
                        continue;
                    }
                }
                self.dlq.remove(&m.receipt_handle).await?;
                report.dlq_drained += 1;
            }
        }
        Ok(())
    }

    /// Turns one dead-lettered message into failed deliveries. Whether it is settled
    /// (and may leave the DLQ).
    async fn settle_dead(
        &self,
        m: &Received,
        now: Timestamp,
        ops: &mut Vec<Report>,
        report: &mut SweepReport,
    ) -> PortResult<bool> {
        match QueueMessage::from_body(&m.body) {
            // A newer version's message: it stays in the DLQ for a sweeper that knows it.
            Err(_) if message::is_unknown_type(&m.body) => {
                tracing::warn!(
                    "a dead-lettered message of a type this version does not know is left for a newer version"
                );
                Ok(false)
            }
            Err(e) => {
                tracing::error!(error = %e, body_bytes = m.body.len(), "an unreadable dead-lettered message");
                self.keep_dead_letter(m, format!("unreadable: {e}"), &m.body, now, report)
                    .await?;
                Ok(true)
            }
            Ok(
                QueueMessage::AttemptV1 {
                    event,
                    endpoint_id,
                    wake,
                }
                | QueueMessage::AttemptV2 {
                    event,
                    endpoint_id,
                    wake,
                },
            ) => {
                match self.store.get_delivery(&event.key(), &endpoint_id).await? {
                    Some(d) if d.status.is_open() && d.wake.as_deref() == Some(wake.as_str()) => {
                        let reason = format!(
                            "its attempt message was dead-lettered after {} receives",
                            m.receive_count
                        );
                        self.fail(&d, &reason, now, ops).await?;
                    }
                    // Stale, or the delivery moved on: nothing was lost.
                    _ => {}
                }
                Ok(true)
            }
            Ok(QueueMessage::EventV1 { event } | QueueMessage::EventV2 { event }) => {
                self.settle_dead_message_event(&event, m, now, ops, report).await
            }
            // A report whose fan-out died: its event, made from the store as delivery
            // makes it, is settled like any other.
            Ok(QueueMessage::ReportV1 { report: r }) => match ops::resolve(&self.store, &r).await? {
                Some(event) => self.settle_dead_event(&event, m, now, ops, report).await,
                None => Ok(true),
            },
            // Every event is tried, whatever happens to the others; settling is
            // idempotent, so a message kept for the next sweep redoes nothing settled.
            Ok(QueueMessage::EventsV1 { events }) => {
                let mut settled = true;
                let mut unavailable = None;
                for event in &events {
                    match self.settle_dead_message_event(event, m, now, ops, report).await {
                        Ok(done) => settled &= done,
                        // This event can never be recorded: the message is kept as a dead
                        // letter that names it, since the message goes once the others
                        // are settled.
                        Err(e) if e.is_permanent() => {
                            tracing::error!(error = %e, event_id = %event.id, "a dead-lettered event that cannot be recorded");
                            let reason = format!(
                                "the deliveries of its event `{}` could not be recorded: {}",
                                event.id,
                                e.op()
                            );
                            if let Err(k) = self.keep_dead_letter(m, reason, &m.body, now, report).await {
                                unavailable = Some(k);
                            }
                        }
                        Err(e) => unavailable = Some(e),
                    }
                }
                match unavailable {
                    Some(e) => Err(e),
                    None => Ok(settled),
                }
            }
        }
    }

    /// An event from a dead event message. One with a reserved type is not Hookline's
    /// (its own events travel as reports) unless the version before reports queued it:
    /// that one is read as its report; any other is kept as a forged dead letter and
    /// never settled into deliveries, so no retry or recovery can send it.
    async fn settle_dead_message_event(
        &self,
        event: &Event,
        m: &Received,
        now: Timestamp,
        ops: &mut Vec<Report>,
        report: &mut SweepReport,
    ) -> PortResult<bool> {
        match ops::event_message(event) {
            EventMessage::Client => self.settle_dead_event(event, m, now, ops, report).await,
            EventMessage::Report(r) => match ops::resolve(&self.store, &r).await? {
                Some(made) => self.settle_dead_event(&made, m, now, ops, report).await,
                None => Ok(true),
            },
            EventMessage::Forged(reason) => {
                self.keep_dead_letter(m, reason, &event.envelope_json(), now, report)
                    .await?;
                Ok(true)
            }
        }
    }

    /// An event whose message died before its fan-out finished: every target that has
    /// no delivery yet gets a failed one, so the loss is on record and the fan-out done.
    async fn settle_dead_event(
        &self,
        event: &Event,
        m: &Received,
        now: Timestamp,
        ops: &mut Vec<Report>,
        report: &mut SweepReport,
    ) -> PortResult<bool> {
        let receives = m.receive_count;
        let endpoints = self.store.all_endpoints().await?;
        let matching = DeliveryId::for_targets(
            now,
            endpoints.iter().filter(|ep| ep.receives(event)).map(|ep| &ep.id),
        );
        let (event, left) = match self
            .store
            .claim_fanout(event, &event.envelope_json(), &matching, now, self.settings.lease)
            .await?
        {
            FanoutClaim::Done => return Ok(true),
            // A worker is on it right now: settle it on a later sweep.
            FanoutClaim::Busy { .. } => return Ok(false),
            // Another event holds its id: this copy was never to be delivered.
            FanoutClaim::Conflict(c) => {
                self.keep_dead_letter(
                    m,
                    c.dead_letter_reason(event),
                    &event.envelope_json(),
                    now,
                    report,
                )
                .await?;
                return Ok(true);
            }
            FanoutClaim::Fresh => (event.clone(), matching),
            FanoutClaim::Resumed {
                stored,
                targets,
                recorded,
            } => (
                *stored,
                targets.into_iter().filter(|t| !recorded.contains(t)).collect(),
            ),
        };
        let reason = format!(
            "its event message was dead-lettered after {receives} receives, before this endpoint was tried"
        );
        let mut records = Vec::new();
        for id in left {
            let Some(endpoint_id) = id.endpoint_id() else {
                tracing::error!(delivery_id = %id, "a claimed delivery id names no endpoint; skipped");
                continue;
            };
            let max_attempts = endpoints
                .iter()
                .find(|ep| ep.id == endpoint_id)
                .map_or(1, |ep| ep.max_attempts);
            let mut d = Delivery::under(id, &event, endpoint_id, max_attempts, now);
            d.fail(&reason, now);
            ops.extend(ops::delivery_exhausted(&d));
            records.push(d);
        }
        let writes: Vec<_> = records.iter().map(|d| (d, None)).collect();
        self.store.record_attempts(&writes).await?;
        tracing::warn!(event_id = %event.id, failed = records.len(), "settled a dead-lettered event");
        Ok(true)
    }

    /// Keeps what cannot be settled (the message's body, or one event of it) as a dead
    /// letter, for the operator.
    async fn keep_dead_letter(
        &self,
        m: &Received,
        reason: String,
        body: &str,
        now: Timestamp,
        report: &mut SweepReport,
    ) -> PortResult<()> {
        let letter = DeadLetter::new(FoundBy::Sweeper, reason, None, m.receive_count, body, now);
        self.store.record_dead_letter(&letter).await?;
        tracing::warn!(dead_letter_id = %letter.id, body_sha256 = letter.body_sha256, receives = m.receive_count, "kept as a dead letter");
        report.dead_letters += 1;
        Ok(())
    }
}
