//! Events' places in ordered lanes (`hookline::ordering`), kept only where an
//! endpoint ordered that way takes the event (so that no one else pays for them, and
//! their events are as they were): a place the producer did not count gets its
//! position from the tenant's counter for that run or thread, one atomic add per key
//! per request, in the order the request holds them.

use crate::Ingest;
use hookline::event::Event;
use hookline::ids::TenantId;
use hookline::ordering::{self, Order, OrderedEndpoint};
use hookline::ports::{Clock, LaneStore};
use hookline::telemetry::{Metrics, Unit};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The active endpoints ordered by run or thread.
type Ordered = Arc<Vec<OrderedEndpoint>>;

/// Which endpoints are ordered, and which events they take, read at most every `ttl`
/// (an endpoint made ordered is seen by ingest within it).
pub struct OrderedModes {
    ttl: Duration,
    entry: tokio::sync::Mutex<Option<(Instant, Ordered)>>,
}

impl OrderedModes {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entry: tokio::sync::Mutex::new(None),
        }
    }

    /// The set as of at most `ttl` ago; `None` when it cannot be read (then every place
    /// is kept: ordering is not given up for a failed read).
    async fn current(&self, store: &impl LaneStore) -> Option<Ordered> {
        let mut entry = self.entry.lock().await;
        if let Some((at, set)) = entry.as_ref()
            && at.elapsed() < self.ttl
        {
            return Some(set.clone());
        }
        match store.ordered_endpoints().await {
            Ok(ordered) => {
                let set = Arc::new(ordered);
                *entry = Some((Instant::now(), set.clone()));
                Some(set)
            }
            Err(e) => {
                tracing::warn!(error = %e, "the ordered endpoints could not be read; every place is kept");
                None
            }
        }
    }
}

impl<Q, E: LaneStore, C: Clock> Ingest<Q, E, C> {
    /// Fills the positions of these events' places, in order. A counter that cannot be
    /// reached leaves its events unordered there (they are still taken: a lane is a
    /// nicety, the event is not), and says so in a metric.
    pub(crate) async fn give_positions<'a>(&self, events: impl IntoIterator<Item = &'a mut Event>) {
        let now = self.clock.now();
        let mut events: Vec<&mut Event> = events.into_iter().filter(|e| e.order.is_some()).collect();
        if events.is_empty() {
            return;
        }
        if let Some(ordered) = self.ordered.current(&self.events).await {
            for e in &mut events {
                ordering::keep_used(e, &ordered);
            }
        }
        let mut tenants: Vec<TenantId> = Vec::new();
        for e in &events {
            if !tenants.contains(&e.tenant_id) {
                tenants.push(e.tenant_id.clone());
            }
        }
        for tenant in tenants {
            let mut orders: Vec<&mut Order> = events
                .iter_mut()
                .filter(|e| e.tenant_id == tenant)
                .filter_map(|e| e.order.as_mut())
                .collect();
            let wanted = ordering::wanted(orders.iter().map(|o| &**o));
            let taken = futures::future::join_all(wanted.into_iter().map(|((mode, key), n)| {
                let tenant = &tenant;
                async move {
                    let first = self.events.take_positions(tenant, mode, &key, n, now).await;
                    ((mode, key), first)
                }
            }))
            .await;
            let mut given = Vec::new();
            for (sequence, first) in taken {
                match first {
                    Ok(first) => given.push((sequence, first)),
                    Err(e) => {
                        tracing::warn!(error = %e, mode = sequence.0.as_str(), "positions could not be taken; these events are not ordered by it");
                        Metrics::new().metric("UnorderedEvents", 1.0, Unit::Count).emit();
                    }
                }
            }
            ordering::assign(orders.iter_mut().map(|o| &mut **o), &given);
        }
        for e in events {
            if e.order.as_ref().is_some_and(Order::is_empty) {
                e.order = None;
            }
        }
    }
}
