//! In-memory implementations of the ports, for unit tests of the handlers.

use crate::delivery::{Attempt, AttemptOutcome, Delivery};
use crate::endpoint::Endpoint;
use crate::event::Event;
use crate::ids::{EndpointId, EventId};
use crate::message::QueueMessage;
use crate::ports::*;
use crate::timestamp::Timestamp;
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

type DeliveryLog = BTreeMap<(EventId, EndpointId), (Delivery, Vec<Attempt>)>;

#[derive(Debug, Clone)]
struct StoredEvent {
    event: Event,
    done: bool,
    lease_until: Timestamp,
}

/// Every store port over maps behind one lock.
#[derive(Default)]
pub struct MemoryStore {
    endpoints: Mutex<BTreeMap<EndpointId, Endpoint>>,
    events: Mutex<HashMap<EventId, StoredEvent>>,
    deliveries: Mutex<DeliveryLog>,
    /// When set, every call fails with a retryable error.
    pub unavailable: std::sync::atomic::AtomicBool,
}

impl MemoryStore {
    fn check(&self) -> PortResult<()> {
        if self.unavailable.load(std::sync::atomic::Ordering::SeqCst) {
            Err(PortError::Retryable("store unavailable (test)".into()))
        } else {
            Ok(())
        }
    }

    pub fn event_is_done(&self, id: &EventId) -> bool {
        self.events.lock().unwrap().get(id).is_some_and(|e| e.done)
    }
}

#[async_trait]
impl EndpointStore for MemoryStore {
    async fn create_endpoint(&self, endpoint: &Endpoint) -> PortResult<()> {
        self.check()?;
        self.endpoints
            .lock()
            .unwrap()
            .insert(endpoint.id.clone(), endpoint.clone());
        Ok(())
    }

    async fn get_endpoint(&self, id: &EndpointId) -> PortResult<Option<Endpoint>> {
        self.check()?;
        Ok(self.endpoints.lock().unwrap().get(id).cloned())
    }

    async fn list_endpoints(&self, limit: u32, cursor: Option<&str>) -> PortResult<Page<Endpoint>> {
        self.check()?;
        let all = self.endpoints.lock().unwrap();
        let after = cursor
            .map(|c| EndpointId::parse(c).map_err(|_| PortError::Permanent("bad cursor".into())))
            .transpose()?;
        let items: Vec<Endpoint> = all
            .values()
            .filter(|e| after.as_ref().is_none_or(|a| &e.id > a))
            .take(limit as usize)
            .cloned()
            .collect();
        let next_cursor = (items.len() == limit as usize)
            .then(|| items.last().map(|e| e.id.to_string()))
            .flatten();
        Ok(Page { items, next_cursor })
    }

    async fn delete_endpoint(&self, id: &EndpointId) -> PortResult<bool> {
        self.check()?;
        Ok(self.endpoints.lock().unwrap().remove(id).is_some())
    }

    async fn all_endpoints(&self) -> PortResult<Vec<Endpoint>> {
        self.check()?;
        Ok(self.endpoints.lock().unwrap().values().cloned().collect())
    }
}

#[async_trait]
impl EventStore for MemoryStore {
    async fn claim_fanout(&self, event: &Event, now: Timestamp, lease: Duration) -> PortResult<FanoutClaim> {
        self.check()?;
        let mut events = self.events.lock().unwrap();
        let until = now.saturating_add(lease);
        match events.get_mut(&event.id) {
            None => {
                events.insert(
                    event.id.clone(),
                    StoredEvent {
                        event: event.clone(),
                        done: false,
                        lease_until: until,
                    },
                );
                Ok(FanoutClaim::Fresh)
            }
            Some(s) if s.done => Ok(FanoutClaim::Done),
            Some(s) if s.lease_until > now => Ok(FanoutClaim::Busy { until: s.lease_until }),
            Some(s) => {
                s.lease_until = until;
                Ok(FanoutClaim::Resumed {
                    stored: s.event.clone(),
                })
            }
        }
    }

    async fn complete_fanout(&self, id: &EventId, _deliveries: u32, _now: Timestamp) -> PortResult<()> {
        self.check()?;
        if let Some(s) = self.events.lock().unwrap().get_mut(id) {
            s.done = true;
        }
        Ok(())
    }

    async fn release_fanout(&self, id: &EventId) -> PortResult<()> {
        if let Some(s) = self.events.lock().unwrap().get_mut(id) {
            s.lease_until = Timestamp::from_unix_millis(0);
        }
        Ok(())
    }
}

#[async_trait]
impl DeliveryStore for MemoryStore {
    async fn record_attempts(&self, records: &[(Delivery, Attempt)]) -> PortResult<()> {
        self.check()?;
        let mut all = self.deliveries.lock().unwrap();
        for (d, a) in records {
            let slot = all
                .entry((d.event_id.clone(), d.endpoint_id.clone()))
                .or_insert_with(|| (d.clone(), Vec::new()));
            slot.0 = d.clone();
            slot.1.push(a.clone());
        }
        Ok(())
    }

    async fn deliveries_for_event(&self, id: &EventId) -> PortResult<Vec<(Delivery, Vec<Attempt>)>> {
        self.check()?;
        Ok(self
            .deliveries
            .lock()
            .unwrap()
            .iter()
            .filter(|((e, _), _)| e == id)
            .map(|(_, v)| v.clone())
            .collect())
    }

    async fn open_due(&self, now: Timestamp, limit: u32) -> PortResult<OpenDeliveries> {
        self.check()?;
        let all = self.deliveries.lock().unwrap();
        let mut due: Vec<Timestamp> = all
            .values()
            .filter(|(d, _)| d.status.is_open())
            .filter_map(|(d, _)| d.next_attempt_at)
            .filter(|t| *t <= now)
            .collect();
        due.sort();
        due.truncate(limit as usize);
        Ok(OpenDeliveries {
            due: due.len() as u32,
            oldest_due_at: due.first().copied(),
        })
    }
}

/// A queue that keeps what was sent.
#[derive(Default)]
pub struct MemoryQueue {
    pub sent: Mutex<Vec<QueueMessage>>,
    pub unavailable: std::sync::atomic::AtomicBool,
    pub depth: Mutex<QueueDepth>,
}

impl MemoryQueue {
    pub fn sent(&self) -> Vec<QueueMessage> {
        self.sent.lock().unwrap().clone()
    }
}

#[async_trait]
impl Queue for MemoryQueue {
    async fn send(&self, message: &QueueMessage) -> PortResult<()> {
        if self.unavailable.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(PortError::Retryable("queue unavailable (test)".into()));
        }
        self.sent.lock().unwrap().push(message.clone());
        Ok(())
    }

    async fn send_batch(&self, messages: &[QueueMessage]) -> Vec<PortResult<()>> {
        let mut out = Vec::new();
        for m in messages {
            out.push(self.send(m).await);
        }
        out
    }
}

#[async_trait]
impl QueueGauge for MemoryQueue {
    async fn depth(&self) -> PortResult<QueueDepth> {
        Ok(*self.depth.lock().unwrap())
    }
}

/// A sender that answers from a script (then 200) and records what it was asked.
#[derive(Default)]
pub struct ScriptedSender {
    pub script: Mutex<HashMap<String, VecDeque<AttemptOutcome>>>,
    pub requests: Mutex<Vec<OutboundRequest>>,
}

impl ScriptedSender {
    /// The next requests to `url` get these outcomes, in order.
    pub fn answer(&self, url: &str, outcomes: impl IntoIterator<Item = AttemptOutcome>) {
        self.script
            .lock()
            .unwrap()
            .entry(url.to_owned())
            .or_default()
            .extend(outcomes);
    }

    pub fn requests(&self) -> Vec<OutboundRequest> {
        self.requests.lock().unwrap().clone()
    }
}

#[async_trait]
impl WebhookSender for ScriptedSender {
    async fn post(&self, request: OutboundRequest) -> AttemptOutcome {
        let next = self
            .script
            .lock()
            .unwrap()
            .get_mut(&request.url)
            .and_then(VecDeque::pop_front);
        self.requests.lock().unwrap().push(request);
        next.unwrap_or(AttemptOutcome::Response {
            status: 200,
            body: "ok".into(),
        })
    }
}

/// A clock the test moves.
pub struct ManualClock(Mutex<Timestamp>);

impl ManualClock {
    pub fn at(t: Timestamp) -> Self {
        Self(Mutex::new(t))
    }
    pub fn advance(&self, d: Duration) {
        let mut t = self.0.lock().unwrap();
        *t = t.saturating_add(d);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap()
    }
}
