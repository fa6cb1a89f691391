//! The sweeper, run every minute by EventBridge. For now it measures: it counts open
//! deliveries whose next attempt is due (from the sparse `open` index, never a scan),
//! reads the delivery queue's and DLQ's depths, and publishes them as EMF metrics.

use hookline::config::{ConfigError, Env};
use hookline::ports::{Clock, DeliveryStore, PortResult, QueueDepth, QueueGauge};
use hookline::telemetry::{Metrics, Unit};
use serde::Serialize;

/// How many due deliveries one sweep looks at, at most.
pub const DUE_SCAN_LIMIT: u32 = 1000;

#[derive(Debug)]
pub struct Config {
    pub table: String,
    pub queue_url: String,
    pub dlq_url: String,
}

impl Config {
    pub fn from_env(mut env: Env) -> Result<Self, ConfigError> {
        let table = env.required("HOOKLINE_TABLE");
        let queue_url = env.required("HOOKLINE_QUEUE_URL");
        let dlq_url = env.required("HOOKLINE_DLQ_URL");
        env.finish()?;
        Ok(Self {
            table,
            queue_url,
            dlq_url,
        })
    }
}

#[derive(Debug, Serialize, PartialEq)]
pub struct SweepReport {
    pub due_deliveries: u32,
    pub oldest_due_age_seconds: u64,
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
}

impl<S: DeliveryStore, Q: QueueGauge, D: QueueGauge, C: Clock> Sweeper<S, Q, D, C> {
    pub async fn sweep(&self) -> PortResult<SweepReport> {
        let now = self.clock.now();
        let (open, queue, dlq) = tokio::join!(
            self.store.open_due(now, DUE_SCAN_LIMIT),
            self.queue.depth(),
            self.dlq.depth()
        );
        let open = open?;
        let queue: QueueDepth = queue?;
        let dlq: QueueDepth = dlq?;
        let report = SweepReport {
            due_deliveries: open.due,
            oldest_due_age_seconds: open.oldest_due_at.map_or(0, |t| now.since(t).as_secs()),
            queue_visible: queue.visible,
            queue_in_flight: queue.in_flight,
            queue_delayed: queue.delayed,
            dlq_depth: dlq.visible + dlq.in_flight + dlq.delayed,
        };
        tracing::info!(?report, "sweep finished");
        Metrics::new()
            .dimension("Function", "sweeper")
            .metric("DueDeliveries", f64::from(report.due_deliveries), Unit::Count)
            .metric(
                "OldestDueAge",
                report.oldest_due_age_seconds as f64,
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
