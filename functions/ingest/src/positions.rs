//! Events' places in ordered lanes (`hookline::ordering`), kept only where an
//! endpoint ordered that way takes the event (so that no one else pays for them, and
//! their events are as they were): a place the producer did not count gets its
//! position from the tenant's counter for that run or thread, one atomic add per key
//! per request, in the order the request holds them.

use crate::Ingest;
use hookline::event::Event;
use hookline::ids::TenantId;
use hookline::ordering::{self, Order, OrderedEndpoint};
use hookline::ports::{Clock, EndpointStore, LaneStore, PortResult};
use hookline::telemetry::{Metrics, Unit};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The active endpoints ordered by run or thread.
type Ordered = Arc<Vec<OrderedEndpoint>>;

/// Which endpoints are ordered, and which events they take: the registry's version is
/// read at most every `ttl` (one GetItem), the list only when it has moved, as the
/// delivery function keeps its endpoints (an endpoint made ordered is seen within `ttl`).
pub struct OrderedEndpointCache {
    ttl: Duration,
    entry: tokio::sync::Mutex<Option<Entry>>,
}

struct Entry {
    checked_at: Instant,
    version: u64,
    ordered: Ordered,
}

impl OrderedEndpointCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entry: tokio::sync::Mutex::new(None),
        }
    }

    /// The list as of at most `ttl` ago; `None` when it cannot be read (then every
    /// place is kept: ordering is not given up for a failed read).
    async fn current(&self, store: &(impl LaneStore + EndpointStore)) -> Option<Ordered> {
        let mut entry = self.entry.lock().await;
        if let Some(e) = entry.as_ref()
            && e.checked_at.elapsed() < self.ttl
        {
            return Some(e.ordered.clone());
        }
        let read = async {
            let version = store.registry_version().await?;
            if let Some(e) = entry.as_mut()
                && e.version == version
            {
                e.checked_at = Instant::now();
                return Ok(e.ordered.clone());
            }
            let ordered: Ordered = Arc::new(store.ordered_endpoints().await?);
            *entry = Some(Entry {
                checked_at: Instant::now(),
                version,
                ordered: ordered.clone(),
            });
            PortResult::Ok(ordered)
        };
        match read.await {
            Ok(ordered) => Some(ordered),
            Err(e) => {
                tracing::warn!(error = %e, "the ordered endpoints could not be read; every place is kept");
                None
            }
        }
    }
}

impl<Q, E: LaneStore + EndpointStore, C: Clock> Ingest<Q, E, C> {
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
