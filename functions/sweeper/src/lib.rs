//! The sweeper, run every minute by EventBridge. It makes sure nothing is lost:
//! - re-drives deliveries whose next attempt is overdue with no worker on it (a Lambda
//!   died between steps, a message was lost or deleted) under a new wake token, so the
//!   lost message, should it ever come back, is stale;
//! - fails open deliveries whose attempts are spent;
//! - drains the DLQ into `failed` deliveries with the reason, so nothing sits unseen
//!   (an event's fan-out needs no sweep: its message stays on the queue until every
//!   target has a delivery, and a message that dies comes here);
//! - publishes what it did and the backlog as EMF metrics.
//!
//! Due work is read from the sparse `open` index, never a scan. Every change is a
//! conditional write on the state the sweep read, so overlapping sweeps are safe.

use hookline::config::{ConfigError, Env};
use hookline::delivery::Delivery;
use hookline::event::Event;
use hookline::give_up::give_up;
use hookline::ids::DeliveryId;
use hookline::message::{self, QueueMessage};
use hookline::ops;
use hookline::ports::{
    Clock, DeadLetters, DeliveryStore, EndpointStore, EventStore, FanoutClaim, PortResult, Queue, QueueDepth,
    QueueGauge, Received,
};
use hookline::replay::{EventsRead, Reopen, replay};
use hookline::telemetry::{Metrics, Unit};
use hookline::timestamp::Timestamp;
use serde::Serialize;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct SweepSettings {
    /// How overdue work must be before the sweeper steps in.
    pub grace: Duration,
    /// The most overdue deliveries (and fan-outs) one sweep re-drives.
    pub batch: u32,
    /// The fan-out lease, as the delivery function uses it.
    pub lease: Duration,
    /// The most DLQ messages one sweep drains.
    pub dlq_max: u32,
    /// Open deliveries are counted up to this.
    pub count_limit: u32,
}

impl Default for SweepSettings {
    fn default() -> Self {
        Self {
            grace: Duration::from_secs(300),
            batch: 500,
            lease: Duration::from_secs(180),
            dlq_max: 100,
            count_limit: 10_000,
        }
    }
}

#[derive(Debug)]
pub struct Config {
    pub table: String,
    pub queue_url: String,
    pub dlq_url: String,
    pub settings: SweepSettings,
}

impl Config {
    pub fn from_env(mut env: Env) -> Result<Self, ConfigError> {
        let table = env.required("HOOKLINE_TABLE");
        let queue_url = env.required("HOOKLINE_QUEUE_URL");
        let dlq_url = env.required("HOOKLINE_DLQ_URL");
        let d = SweepSettings::default();
        let mut secs = |name: &str, default: Duration, max: u64| {
            Duration::from_secs(
                env.parsed_with(name, default.as_secs(), |s| match s.parse::<u64>() {
                    Ok(n) if (1..=max).contains(&n) => Ok(n),
                    _ => Err(format!("must be whole seconds from 1 to {max}")),
                }),
            )
        };
        let grace = secs("HOOKLINE_SWEEP_GRACE_SECONDS", d.grace, 86_400);
        let lease = secs("HOOKLINE_LEASE_SECONDS", d.lease, 900);
        let batch = env.parsed_with("HOOKLINE_SWEEP_BATCH", d.batch, |s| match s.parse() {
            Ok(n) if (1..=10_000).contains(&n) => Ok(n),
            _ => Err("must be from 1 to 10000".into()),
        });
        env.finish()?;
        Ok(Self {
            table,
            queue_url,
            dlq_url,
            settings: SweepSettings {
                grace,
                batch,
                lease,
                ..d
            },
        })
    }
}

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct SweepReport {
    pub redriven: u32,
    pub exhausted: u32,
    pub in_flight_overdue: u32,
    pub dlq_drained: u32,
    /// Dead letters that could not be recorded as failed deliveries (their first KiB is logged).
    pub dlq_dropped: u32,
    pub open_deliveries: u32,
    pub oldest_open_age_seconds: u64,
    pub queue_visible: u64,
    pub queue_in_flight: u64,
    pub queue_delayed: u64,
    pub dlq_depth: u64,
}

pub struct Sweeper<S, Q, D, C> {
    pub store: S,
    pub queue: Q,
    pub dlq: D,
    pub clock: C,
    pub settings: SweepSettings,
}

impl<S, Q, D, C> Sweeper<S, Q, D, C>
where
    S: EventStore + EndpointStore + DeliveryStore,
    Q: Queue + QueueGauge,
    D: DeadLetters + QueueGauge,
    C: Clock,
{
    pub async fn sweep(&self) -> PortResult<SweepReport> {
        let now = self.clock.now();
        let mut report = SweepReport::default();
        let mut ops: Vec<Event> = Vec::new();
        let mut events = EventsRead::default();

        self.redrive_deliveries(now, &mut report, &mut ops, &mut events)
            .await?;
        self.drain_dlq(now, &mut report, &mut ops).await?;

        let (open, queue, dlq) = tokio::join!(
            self.store.count_open(self.settings.count_limit),
            self.queue.depth(),
            self.dlq.depth()
        );
        let open = open?;
        let queue: QueueDepth = queue?;
        let dlq: QueueDepth = dlq?;
        report.open_deliveries = open.open;
        report.oldest_open_age_seconds = open.oldest_due_at.map_or(0, |t| now.since(t).as_secs());
        report.queue_visible = queue.visible;
        report.queue_in_flight = queue.in_flight;
        report.queue_delayed = queue.delayed;
        report.dlq_depth = dlq.visible + dlq.in_flight + dlq.delayed;

        ops::send(&self.queue, ops).await;
        tracing::info!(?report, "sweep finished");
        Metrics::new()
            .dimension("Function", "sweeper")
            .metric("Redriven", f64::from(report.redriven), Unit::Count)
            .metric("Exhausted", f64::from(report.exhausted), Unit::Count)
            .metric("DlqDrained", f64::from(report.dlq_drained), Unit::Count)
            .metric("DlqDropped", f64::from(report.dlq_dropped), Unit::Count)
            .metric("OpenDeliveries", f64::from(report.open_deliveries), Unit::Count)
            .metric(
                "OldestOpenAge",
                report.oldest_open_age_seconds as f64,
                Unit::Seconds,
            )
            .metric("QueueVisible", report.queue_visible as f64, Unit::Count)
            .metric("QueueInFlight", report.queue_in_flight as f64, Unit::Count)
            .metric("QueueDelayed", report.queue_delayed as f64, Unit::Count)
            .metric("DlqDepth", report.dlq_depth as f64, Unit::Count)
            .emit();
        Ok(report)
    }

    async fn redrive_deliveries(
        &self,
        now: Timestamp,
        report: &mut SweepReport,
        ops: &mut Vec<Event>,
        events: &mut EventsRead,
    ) -> PortResult<()> {
        let before = now.minus(self.settings.grace);
        for due in self.store.due_deliveries(before, self.settings.batch).await? {
            let d = due.delivery;
            if due.leased_until.is_some_and(|t| t > now) {
                report.in_flight_overdue += 1;
                continue;
            }
            if d.attempts >= d.max_attempts {
                let reason = format!("its {} attempts were spent but it was never closed", d.attempts);
                if self.fail(&d, &reason, now, ops).await? {
                    report.exhausted += 1;
                }
                continue;
            }
            let Some(event) = events.get(&self.store, &d.event_id).await? else {
                if self.fail(&d, "its event is no longer stored", now, ops).await? {
                    report.exhausted += 1;
                }
                continue;
            };
            if let Some(redriven) = replay(&self.store, &self.queue, event, &d, Reopen::Redrive, now).await? {
                redriven.queued?;
                tracing::warn!(
                    event_id = %d.event_id,
                    endpoint_id = %d.endpoint_id,
                    attempt = d.attempts + 1,
                    "re-drove an overdue delivery"
                );
                report.redriven += 1;
            }
        }
        Ok(())
    }

    async fn fail(
        &self,
        d: &Delivery,
        reason: &str,
        now: Timestamp,
        ops: &mut Vec<Event>,
    ) -> PortResult<bool> {
        let failed = give_up(&self.store, d, reason, now).await?;
        if let Some(failed) = &failed {
            ops.extend(ops::delivery_exhausted(failed, now));
        }
        Ok(failed.is_some())
    }

    async fn drain_dlq(
        &self,
        now: Timestamp,
        report: &mut SweepReport,
        ops: &mut Vec<Event>,
    ) -> PortResult<()> {
        while report.dlq_drained < self.settings.dlq_max {
            let batch = self.dlq.take().await?;
            if batch.is_empty() {
                break;
            }
            for m in batch {
                match self.settle_dead(&m, now, ops).await {
                    Ok(true) => {}
                    // A worker holds its event: a later sweep settles it.
                    Ok(false) => continue,
                    // It can never be settled (the store refuses it): it is logged and
                    // removed, so that it does not stop the drain every minute.
                    Err(e) if e.is_permanent() => {
                        let head: String = m.body.chars().take(1024).collect();
                        tracing::error!(
                            error = %e,
                            receives = m.receive_count,
                            body_bytes = m.body.len(),
                            body_head = head,
                            "dropping a dead-lettered message that cannot be recorded"
                        );
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
    async fn settle_dead(&self, m: &Received, now: Timestamp, ops: &mut Vec<Event>) -> PortResult<bool> {
        match QueueMessage::from_body(&m.body) {
            // A newer version's message: it stays in the DLQ for a sweeper that knows it.
            Err(_) if message::is_unknown_type(&m.body) => {
                tracing::warn!(
                    "a dead-lettered message of a type this version does not know is left for a newer version"
                );
                Ok(false)
            }
            Err(e) => {
                tracing::error!(error = %e, body = m.body, "dropping an unreadable dead-lettered message");
                Ok(true)
            }
            Ok(QueueMessage::AttemptV1 {
                event,
                endpoint_id,
                wake,
            }) => {
                match self.store.get_delivery(&event.id, &endpoint_id).await? {
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
            Ok(QueueMessage::EventV1 { event }) => {
                self.settle_dead_event(&event, m.receive_count, now, ops).await
            }
            // Every event is tried, whatever happens to the others; settling is
            // idempotent, so a message kept for the next sweep redoes nothing settled.
            Ok(QueueMessage::EventsV1 { events }) => {
                let mut settled = true;
                let mut unavailable = None;
                for event in &events {
                    match self.settle_dead_event(event, m.receive_count, now, ops).await {
                        Ok(done) => settled &= done,
                        // This event can never be recorded: said here, by its id, since
                        // the message goes once the others are settled.
                        Err(e) if e.is_permanent() => tracing::error!(
                            error = %e,
                            event_id = %event.id,
                            "dropping a dead-lettered event that cannot be recorded"
                        ),
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

    /// An event whose message died before its fan-out finished: every target that has
    /// no delivery yet gets a failed one, so the loss is on record and the fan-out done.
    async fn settle_dead_event(
        &self,
        event: &Event,
        receives: u32,
        now: Timestamp,
        ops: &mut Vec<Event>,
    ) -> PortResult<bool> {
        let endpoints = self.store.all_endpoints().await?;
        let matching = DeliveryId::for_targets(
            now,
            endpoints
                .iter()
                .filter(|ep| ep.wants(&event.event_type))
                .map(|ep| &ep.id),
        );
        let (event, left) = match self
            .store
            .claim_fanout(event, &event.envelope_json(), &matching, now, self.settings.lease)
            .await?
        {
            FanoutClaim::Done => return Ok(true),
            // A worker is on it right now: settle it on a later sweep.
            FanoutClaim::Busy { .. } => return Ok(false),
            FanoutClaim::Fresh => (event.clone(), matching),
            FanoutClaim::Resumed {
                stored,
                targets,
                recorded,
            } => (
                stored,
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
            let mut d = Delivery::under(
                id,
                event.id.clone(),
                endpoint_id,
                event.event_type.clone(),
                max_attempts,
                now,
            );
            d.fail(&reason, now);
            ops.extend(ops::delivery_exhausted(&d, now));
            records.push(d);
        }
        let writes: Vec<_> = records.iter().map(|d| (d, None)).collect();
        self.store.record_attempts(&writes).await?;
        tracing::warn!(event_id = %event.id, failed = records.len(), "settled a dead-lettered event");
        Ok(true)
    }
}

#[cfg(test)]
mod tests;
