//! In-memory implementations of the ports, for unit tests of the handlers.

mod collapse;
mod data;
mod deliveries;
mod endpoints;
mod events;
mod lanes;
mod queue;
mod sender;
mod stats;
mod tenants;

pub use data::MemoryData;
pub use queue::MemoryQueue;
pub use sender::{Held, ManualClock, ScriptedProbe, ScriptedSender};

use crate::delivery::{Attempt, Delivery};
use crate::endpoint::Endpoint;
use crate::event::{Event, EventKey};
use crate::ids::{DeliveryId, EndpointId, EventId, TenantId, TenantKeyId};
use crate::ports::{PortError, PortResult};
use crate::timestamp::Timestamp;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

pub(super) type DeliveryLog = BTreeMap<(EventKey, EndpointId), DeliveryRow>;

#[derive(Debug, Clone)]
pub(super) struct EventRow {
    pub(super) event: Event,
    pub(super) targets: Vec<DeliveryId>,
    pub(super) lease_until: Timestamp,
}

#[derive(Debug, Clone)]
pub(super) struct DeliveryRow {
    pub(super) delivery: Delivery,
    pub(super) attempts: Vec<Attempt>,
    pub(super) lease_until: Option<Timestamp>,
    pub(super) due_at: Option<Timestamp>,
}

/// Every store port over maps behind one lock.
#[derive(Default)]
pub struct MemoryStore {
    endpoints: Mutex<BTreeMap<EndpointId, Endpoint>>,
    events: Mutex<HashMap<EventKey, EventRow>>,
    tenants: Mutex<BTreeMap<TenantId, crate::tenant::Tenant>>,
    /// Deleted tenants, whose ids stay taken.
    tenants_gone: Mutex<std::collections::BTreeSet<TenantId>>,
    tenant_keys: Mutex<BTreeMap<(TenantId, TenantKeyId), crate::tenant_key::TenantKey>>,
    deliveries: Mutex<DeliveryLog>,
    stats: Mutex<BTreeMap<(EndpointId, String), crate::stats::HourStats>>,
    buckets: Mutex<HashMap<String, crate::ratelimit::Bucket>>,
    /// The newest rank of each (endpoint, collapse key).
    newest: Mutex<HashMap<(EndpointId, String), String>>,
    /// Ordered lanes, and the positions taken of each (tenant, mode, key).
    lanes: Mutex<HashMap<lanes::LaneKey, lanes::Lane>>,
    positions: Mutex<HashMap<(TenantId, crate::ordering::OrderingMode, String), u64>>,
    /// Rate windows' counts, by (name, second).
    windows: Mutex<HashMap<(String, i64), u32>>,
    /// Moved by every change to the endpoints.
    pub(super) registry_version: std::sync::atomic::AtomicU64,
    /// Oldest first.
    pub dead_letters: Mutex<Vec<crate::dead_letter::DeadLetter>>,
    /// When set, every call fails with a retryable error.
    pub unavailable: std::sync::atomic::AtomicBool,
    /// This many of the next `record_attempts` calls fail with a retryable error.
    pub failing_writes: std::sync::atomic::AtomicU32,
    /// The next `record_attempts` call awaits this before it writes.
    pub before_next_write: Mutex<Option<futures::future::BoxFuture<'static, ()>>>,
    /// Calls by these port methods' names (`claim_fanout`, `take` …) fail with a
    /// permanent error, as DynamoDB refusing a request would.
    pub refusing: Mutex<Vec<&'static str>>,
}

impl MemoryStore {
    pub(super) fn check(&self) -> PortResult<()> {
        if self.unavailable.load(std::sync::atomic::Ordering::SeqCst) {
            Err(PortError::retryable("memory store", "unavailable (test)"))
        } else {
            Ok(())
        }
    }

    pub(super) fn bump_registry(&self) {
        self.registry_version
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// Fails with a permanent error if the test refuses calls to `method`.
    pub(super) fn refuse(&self, method: &'static str) -> PortResult<()> {
        if self.refusing.lock().unwrap().contains(&method) {
            Err(PortError::permanent(
                method,
                "ValidationException (400): refused (test)",
            ))
        } else {
            Ok(())
        }
    }

    /// Whether the event (of the default tenant) is stored and each of its targets has
    /// a delivery.
    pub fn event_is_done(&self, id: &EventId) -> bool {
        let id = &EventKey::new(TenantId::default(), id.clone());
        let targets = match self.events.lock().unwrap().get(id) {
            Some(e) => e.targets.clone(),
            None => return false,
        };
        let recorded = self.recorded(id);
        targets.iter().all(|t| recorded.contains(t))
    }

    /// The deliveries of the event that are recorded.
    pub(super) fn recorded(&self, id: &EventKey) -> std::collections::HashSet<DeliveryId> {
        self.deliveries
            .lock()
            .unwrap()
            .iter()
            .filter(|((e, _), _)| e == id)
            .map(|(_, r)| r.delivery.id.clone())
            .collect()
    }
}
