//! The sweeper, run every minute by EventBridge. It makes sure nothing is lost:
//! - queues the attempts of parked deliveries (retries whose wait was longer than a
//!   message's delay, `hookline::hop`) once they are due;
//! - re-drives deliveries whose next attempt is overdue with no worker on it (a Lambda
//!   died between steps, a message was lost or deleted) under a new wake token, so the
//!   lost message, should it ever come back, is stale;
//! - fails open deliveries whose attempts are spent;
//! - drains the DLQ into `failed` deliveries with the reason (or, for a message that
//!   cannot be read or recorded, a dead letter the operator reads), so nothing sits unseen
//!   (an event's fan-out needs no sweep: its message stays on the queue until every
//!   target has a delivery, and a message that dies comes here);
//! - publishes what it did and the backlog as EMF metrics.
//!
//! Due work is read from the sparse `open` index, never a scan. Every change is a
//! conditional write on the state the sweep read, so overlapping sweeps are safe.

mod config;
mod dead_letters;
mod redrive;

pub use config::{Config, SweepSettings};

use hookline::delivery::Delivery;
use hookline::give_up::give_up;
use hookline::ops::{self, Report};
use hookline::ports::{
    Clock, DeadLetterStore, DeadLetters, DeliveryStore, EndpointStore, EventStore, PortResult, Queue,
    QueueDepth, QueueGauge,
};
use hookline::telemetry::{Metrics, Unit};
use hookline::timestamp::Timestamp;
use serde::Serialize;

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct SweepReport {
    /// Parked deliveries whose attempt was queued, due.
    pub woken: u32,
    pub redriven: u32,
    pub exhausted: u32,
    pub in_flight_overdue: u32,
    pub dlq_drained: u32,
    /// Dead-lettered messages whose deliveries the store refused for good: kept as dead
    /// letters instead (`GET /v1/dead-letters`).
    pub dlq_dropped: u32,
    /// Dead letters recorded: those, and messages that could not be read.
    pub dead_letters: u32,
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
    S: EventStore + EndpointStore + DeliveryStore + DeadLetterStore,
    Q: Queue + QueueGauge,
    D: DeadLetters + QueueGauge,
    C: Clock,
{
    pub async fn sweep(&self) -> PortResult<SweepReport> {
        let now = self.clock.now();
        let mut report = SweepReport::default();
        let mut ops: Vec<Report> = Vec::new();
        self.redrive_deliveries(now, &mut report, &mut ops).await?;
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
            .metric("Woken", f64::from(report.woken), Unit::Count)
            .metric("Redriven", f64::from(report.redriven), Unit::Count)
            .metric("Exhausted", f64::from(report.exhausted), Unit::Count)
            .metric("DlqDrained", f64::from(report.dlq_drained), Unit::Count)
            .metric("DlqDropped", f64::from(report.dlq_dropped), Unit::Count)
            .metric("DeadLetters", f64::from(report.dead_letters), Unit::Count)
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
}

impl<S: DeliveryStore, Q, D, C> Sweeper<S, Q, D, C> {
    /// Fails a delivery that can go no further, and reports it. Whether this call did.
    pub(crate) async fn fail(
        &self,
        d: &Delivery,
        reason: &str,
        now: Timestamp,
        ops: &mut Vec<Report>,
    ) -> PortResult<bool> {
        let failed = give_up(&self.store, d, reason, now).await?;
        if let Some(failed) = &failed {
            ops.extend(ops::delivery_exhausted(failed));
        }
        Ok(failed.is_some())
    }
}

#[cfg(test)]
mod tests;
