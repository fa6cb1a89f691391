//! One invocation's shared state: the endpoints as of its batch, the POSTs it may have
//! in flight, and what it reports once at its end (operational events, statistics,
//! attempt metrics).

use crate::endpoint_cache::{EndpointCache, Endpoints};
use hookline::attempt_metrics::AttemptMetrics;
use hookline::delivery::{Attempt, Delivery, DeliveryStatus};
use hookline::endpoint::Endpoint;
use hookline::id_batch::DeliveryIdBatch;
use hookline::ids::{DeliveryId, EndpointId};
use hookline::ops::{self, Report};
use hookline::ports::{EndpointStore, PortResult, Queue, StatsStore};
use hookline::stats::StatsBatch;
use hookline::timestamp::Timestamp;
use std::sync::{Arc, Mutex};

/// What an invocation reports, written once at its end.
#[derive(Default)]
pub struct Reports {
    ops: Vec<Report>,
    stats: StatsBatch,
    attempts: AttemptMetrics,
}

impl Reports {
    /// Writes the metrics, the statistics and the operational events. A failure is
    /// logged: the work they report is done and must not be undone for a report.
    pub async fn flush(self, store: &impl StatsStore, queue: &impl Queue) {
        let Self { ops, stats, attempts } = self;
        attempts.emit();
        let rows = stats.into_rows();
        if !rows.is_empty()
            && let Err(e) = store.add_stats(&rows).await
        {
            tracing::warn!(error = %e, "could not add this batch's statistics");
        }
        ops::send(queue, ops).await;
    }
}

pub struct Invocation {
    reports: Mutex<Reports>,
    /// Endpoints this invocation moved to another lane (each is moved once).
    moved: Mutex<std::collections::HashSet<EndpointId>>,
    /// The endpoints as of this invocation: read (or confirmed) once, on first use.
    endpoints: tokio::sync::OnceCell<Endpoints>,
    /// `concurrency` POSTs at once for the whole invocation, however many events its
    /// records carry (a packed batch holds up to 100).
    pub posts: tokio::sync::Semaphore,
    /// The ids of the deliveries its fan-outs make: one batch, so that the store keeps
    /// those to one endpoint that end at once together (`hookline::id_batch`).
    ids: std::sync::OnceLock<DeliveryIdBatch>,
}

impl Invocation {
    pub fn new(concurrency: usize) -> Self {
        Self {
            reports: Mutex::new(Reports::default()),
            endpoints: tokio::sync::OnceCell::new(),
            moved: Mutex::default(),
            posts: tokio::sync::Semaphore::new(concurrency.max(1)),
            ids: std::sync::OnceLock::new(),
        }
    }

    /// One event's deliveries' ids, one per endpoint, in this invocation's batch (made
    /// at `now` on first use).
    pub fn delivery_ids<'a>(
        &self,
        now: Timestamp,
        endpoints: impl IntoIterator<Item = &'a EndpointId>,
    ) -> Vec<DeliveryId> {
        self.ids
            .get_or_init(|| DeliveryIdBatch::new(now))
            .for_targets(endpoints)
    }

    /// The endpoints as of this batch, from the cache once it is confirmed current.
    pub async fn endpoints(
        &self,
        cache: &EndpointCache,
        store: &impl EndpointStore,
    ) -> PortResult<Endpoints> {
        self.endpoints
            .get_or_try_init(|| cache.current(store))
            .await
            .cloned()
    }

    /// One endpoint as of this batch; one created since is read from the store.
    pub async fn endpoint(
        &self,
        cache: &EndpointCache,
        store: &impl EndpointStore,
        id: &EndpointId,
    ) -> PortResult<Option<Arc<Endpoint>>> {
        if let Some(e) = self.endpoints(cache, store).await?.iter().find(|e| &e.id == id) {
            return Ok(Some(e.clone()));
        }
        Ok(store.get_endpoint(id).await?.map(Arc::new))
    }

    /// Whether this is the first move of the endpoint in this invocation.
    pub fn first_move(&self, id: &EndpointId) -> bool {
        self.moved.lock().is_ok_and(|mut m| m.insert(id.clone()))
    }

    pub fn into_reports(self) -> Reports {
        self.reports.into_inner().unwrap_or_default()
    }

    fn with(&self, f: impl FnOnce(&mut Reports)) {
        if let Ok(mut r) = self.reports.lock() {
            f(&mut r);
        }
    }

    /// A fact for an operational event, to send.
    pub fn report(&self, report: Option<Report>) {
        if let Some(r) = report {
            self.with(|reports| reports.ops.push(r));
        }
    }

    /// An attempt's latency, for the metrics.
    pub fn timed(&self, status: DeliveryStatus, status_code: Option<u16>, tenant: &str, duration_ms: u64) {
        self.with(|r| r.attempts.record(status, status_code, tenant, duration_ms));
    }

    /// An attempt recorded: counted, and reported if it ended its delivery failed.
    pub fn attempted(&self, d: &Delivery, a: &Attempt) {
        self.with(|r| r.stats.attempt(d, a));
        if d.status == DeliveryStatus::Failed {
            self.report(ops::delivery_exhausted(d));
        }
    }

    /// A delivery ended without an attempt: counted, and reported if it failed.
    pub fn ended(&self, d: &Delivery, now: Timestamp) {
        if d.status == DeliveryStatus::Failed {
            self.report(ops::delivery_exhausted(d));
        }
        self.with(|r| r.stats.ended(d, now));
    }
}
