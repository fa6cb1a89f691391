//! In-memory implementations of the ports, for unit tests of the handlers.

use crate::delivery::{Attempt, AttemptOutcome, Delivery};
use crate::endpoint::{Endpoint, EndpointStatus};
use crate::event::Event;
use crate::ids::{DeliveryId, EndpointId, EventId};
use crate::message::QueueMessage;
use crate::ports::*;
use crate::timestamp::Timestamp;
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

type DeliveryLog = BTreeMap<(EventId, EndpointId), DeliveryRow>;

#[derive(Debug, Clone)]
struct EventRow {
    event: Event,
    targets: Vec<DeliveryId>,
    lease_until: Timestamp,
}

#[derive(Debug, Clone)]
struct DeliveryRow {
    delivery: Delivery,
    attempts: Vec<Attempt>,
    lease_until: Option<Timestamp>,
    due_at: Option<Timestamp>,
}

/// Every store port over maps behind one lock.
#[derive(Default)]
pub struct MemoryStore {
    endpoints: Mutex<BTreeMap<EndpointId, Endpoint>>,
    events: Mutex<HashMap<EventId, EventRow>>,
    deliveries: Mutex<DeliveryLog>,
    stats: Mutex<BTreeMap<(EndpointId, String), crate::stats::HourStats>>,
    buckets: Mutex<HashMap<EndpointId, crate::ratelimit::Bucket>>,
    /// When set, every call fails with a retryable error.
    pub unavailable: std::sync::atomic::AtomicBool,
    /// This many of the next `record_attempts` calls fail with a retryable error.
    pub failing_writes: std::sync::atomic::AtomicU32,
    /// The next `record_attempts` call awaits this before it writes.
    pub before_next_write: Mutex<Option<futures::future::BoxFuture<'static, ()>>>,
}

impl MemoryStore {
    fn check(&self) -> PortResult<()> {
        if self.unavailable.load(std::sync::atomic::Ordering::SeqCst) {
            Err(PortError::Retryable("store unavailable (test)".into()))
        } else {
            Ok(())
        }
    }

    /// Whether the event is stored and each of its targets has a delivery.
    pub fn event_is_done(&self, id: &EventId) -> bool {
        let targets = match self.events.lock().unwrap().get(id) {
            Some(e) => e.targets.clone(),
            None => return false,
        };
        let recorded = self.recorded(id);
        targets.iter().all(|t| recorded.contains(t))
    }

    /// The deliveries of the event that are recorded.
    fn recorded(&self, id: &EventId) -> std::collections::HashSet<DeliveryId> {
        self.deliveries
            .lock()
            .unwrap()
            .iter()
            .filter(|((e, _), _)| e == id)
            .map(|(_, r)| r.delivery.id.clone())
            .collect()
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

    async fn update_endpoint(&self, endpoint: &Endpoint, read_version: u64) -> PortResult<bool> {
        self.check()?;
        let mut all = self.endpoints.lock().unwrap();
        match all.get_mut(&endpoint.id) {
            Some(e) if e.version == read_version => {
                *e = endpoint.clone();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn all_endpoints(&self) -> PortResult<Vec<Endpoint>> {
        self.check()?;
        Ok(self.endpoints.lock().unwrap().values().cloned().collect())
    }

    async fn note_failure(&self, id: &EndpointId, now: Timestamp) -> PortResult<Timestamp> {
        self.check()?;
        let mut all = self.endpoints.lock().unwrap();
        Ok(all
            .get_mut(id)
            .map_or(now, |e| *e.failing_since.get_or_insert(now)))
    }

    async fn note_success(&self, id: &EndpointId) -> PortResult<()> {
        self.check()?;
        if let Some(e) = self.endpoints.lock().unwrap().get_mut(id) {
            e.failing_since = None;
        }
        Ok(())
    }

    async fn disable_endpoint(
        &self,
        id: &EndpointId,
        reason: &str,
        now: Timestamp,
        failing_before: Option<Timestamp>,
    ) -> PortResult<bool> {
        self.check()?;
        let mut all = self.endpoints.lock().unwrap();
        match all.get_mut(id) {
            Some(e)
                if e.status == EndpointStatus::Active
                    && failing_before.is_none_or(|cut| e.failing_since.is_some_and(|f| f <= cut)) =>
            {
                e.status = EndpointStatus::Disabled;
                e.disabled_reason = Some(reason.to_owned());
                e.updated_at = now;
                e.version += 1;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

#[async_trait]
impl EventStore for MemoryStore {
    async fn claim_fanout(
        &self,
        event: &Event,
        envelope: &str,
        targets: &[DeliveryId],
        now: Timestamp,
        lease: Duration,
    ) -> PortResult<FanoutClaim> {
        self.check()?;
        if envelope.len() > crate::event::STORE_ITEM_LIMIT {
            // As DynamoDB refuses an item over 400 KB.
            return Err(PortError::Permanent(
                "ValidationException: item size too large (test)".into(),
            ));
        }
        // Only a copy of an event already seen asks what is recorded (one pass over
        // every delivery, which a first sight must not pay: the bench fans out 50,000).
        let seen = self.events.lock().unwrap().contains_key(&event.id);
        let recorded = if seen {
            self.recorded(&event.id)
        } else {
            Default::default()
        };
        let mut events = self.events.lock().unwrap();
        let until = now.saturating_add(lease);
        match events.get_mut(&event.id) {
            None => {
                events.insert(
                    event.id.clone(),
                    EventRow {
                        event: event.clone(),
                        targets: targets.to_vec(),
                        lease_until: until,
                    },
                );
                Ok(FanoutClaim::Fresh)
            }
            Some(s) if s.targets.iter().all(|t| recorded.contains(t)) => Ok(FanoutClaim::Done),
            Some(s) if s.lease_until > now => Ok(FanoutClaim::Busy { until: s.lease_until }),
            Some(s) => {
                s.lease_until = until;
                Ok(FanoutClaim::Resumed {
                    stored: s.event.clone(),
                    targets: s.targets.clone(),
                    recorded,
                })
            }
        }
    }

    async fn release_fanout(&self, id: &EventId) -> PortResult<()> {
        if let Some(s) = self.events.lock().unwrap().get_mut(id) {
            s.lease_until = Timestamp::from_unix_millis(0);
        }
        Ok(())
    }

    async fn get_event(&self, id: &EventId) -> PortResult<Option<StoredEvent>> {
        self.check()?;
        Ok(self.events.lock().unwrap().get(id).map(|r| StoredEvent {
            event: r.event.clone(),
            targets: r.targets.clone(),
        }))
    }
}

impl MemoryStore {
    /// The row, if the delivery is still open and as `seen`.
    fn as_seen<'a>(rows: &'a mut DeliveryLog, seen: &Delivery) -> Option<&'a mut DeliveryRow> {
        rows.get_mut(&(seen.event_id.clone(), seen.endpoint_id.clone()))
            .filter(|r| {
                r.delivery.status.is_open()
                    && r.delivery.attempts == seen.attempts
                    && r.delivery.wake == seen.wake
            })
    }

    fn due_of(d: &Delivery) -> Option<Timestamp> {
        if d.status.is_open() {
            d.next_attempt_at
        } else {
            None
        }
    }
}

#[async_trait]
impl DeliveryStore for MemoryStore {
    async fn record_attempts(&self, records: &[(&Delivery, Option<&Attempt>)]) -> PortResult<()> {
        let before = self.before_next_write.lock().unwrap().take();
        if let Some(before) = before {
            before.await;
        }
        self.check()?;
        let failing = &self.failing_writes;
        if failing
            .fetch_update(
                std::sync::atomic::Ordering::SeqCst,
                std::sync::atomic::Ordering::SeqCst,
                |n| n.checked_sub(1),
            )
            .is_ok()
        {
            return Err(PortError::Retryable("the write failed (test)".into()));
        }
        let mut all = self.deliveries.lock().unwrap();
        // Each record replaces what was there, as DynamoDB's PutRequest does.
        for (d, a) in records {
            all.insert(
                (d.event_id.clone(), d.endpoint_id.clone()),
                DeliveryRow {
                    delivery: (*d).clone(),
                    attempts: a.iter().map(|a| (*a).clone()).collect(),
                    lease_until: None,
                    due_at: Self::due_of(d),
                },
            );
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
            .map(|(_, r)| (r.delivery.clone(), r.attempts.clone()))
            .collect())
    }

    async fn get_delivery(&self, event: &EventId, endpoint: &EndpointId) -> PortResult<Option<Delivery>> {
        self.check()?;
        Ok(self
            .deliveries
            .lock()
            .unwrap()
            .get(&(event.clone(), endpoint.clone()))
            .map(|r| r.delivery.clone()))
    }

    async fn claim_attempt(&self, seen: &Delivery, now: Timestamp, lease: Duration) -> PortResult<bool> {
        self.check()?;
        let mut all = self.deliveries.lock().unwrap();
        match Self::as_seen(&mut all, seen) {
            Some(r) if r.lease_until.is_none_or(|t| t < now) => {
                r.lease_until = Some(now.saturating_add(lease));
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn record_attempt(
        &self,
        seen: &Delivery,
        updated: &Delivery,
        attempt: &Attempt,
    ) -> PortResult<bool> {
        self.check()?;
        let mut all = self.deliveries.lock().unwrap();
        match Self::as_seen(&mut all, seen) {
            Some(r) => {
                r.delivery = updated.clone();
                r.attempts.push(attempt.clone());
                r.lease_until = None;
                r.due_at = Self::due_of(updated);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn redrive(&self, seen: &Delivery, wake: &str, now: Timestamp) -> PortResult<bool> {
        self.check()?;
        let mut all = self.deliveries.lock().unwrap();
        match Self::as_seen(&mut all, seen) {
            Some(r) if r.lease_until.is_none_or(|t| t < now) => {
                r.delivery.wake = Some(wake.to_owned());
                r.due_at = Some(now);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn fail_delivery(&self, seen: &Delivery, failed: &Delivery) -> PortResult<bool> {
        self.check()?;
        let mut all = self.deliveries.lock().unwrap();
        match Self::as_seen(&mut all, seen) {
            Some(r) => {
                r.delivery = failed.clone();
                r.due_at = None;
                r.lease_until = None;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn due_deliveries(&self, before: Timestamp, limit: u32) -> PortResult<Vec<DueDelivery>> {
        self.check()?;
        let all = self.deliveries.lock().unwrap();
        let mut due: Vec<(Timestamp, DueDelivery)> = all
            .values()
            .filter_map(|r| {
                let at = r.due_at.filter(|t| *t <= before)?;
                Some((
                    at,
                    DueDelivery {
                        delivery: r.delivery.clone(),
                        leased_until: r.lease_until,
                    },
                ))
            })
            .collect();
        due.sort_by_key(|(t, _)| *t);
        Ok(due.into_iter().take(limit as usize).map(|(_, d)| d).collect())
    }

    async fn find_delivery(&self, id: &DeliveryId) -> PortResult<Option<(Delivery, Vec<Attempt>)>> {
        self.check()?;
        Ok(self
            .deliveries
            .lock()
            .unwrap()
            .values()
            .find(|r| &r.delivery.id == id)
            .map(|r| (r.delivery.clone(), r.attempts.clone())))
    }

    async fn list_deliveries(&self, q: &DeliveryQuery) -> PortResult<Page<Delivery>> {
        self.check()?;
        let after = q
            .cursor
            .as_deref()
            .map(|c| DeliveryId::parse(c).map_err(|_| PortError::Permanent("bad cursor".into())))
            .transpose()?;
        let all = self.deliveries.lock().unwrap();
        let mut matching: Vec<Delivery> = all
            .values()
            .map(|r| r.delivery.clone())
            .filter(|d| q.endpoint.as_ref().is_none_or(|e| &d.endpoint_id == e))
            .filter(|d| q.status.is_none_or(|s| d.status == s))
            .filter(|d| q.event_type.as_ref().is_none_or(|t| &d.event_type == t))
            .filter(|d| d.created_at >= q.since && d.created_at <= q.until)
            .collect();
        matching.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        let start = after.map_or(0, |a| {
            matching
                .iter()
                .position(|d| d.id == a)
                .map_or(matching.len(), |p| p + 1)
        });
        let items: Vec<Delivery> = matching
            .iter()
            .skip(start)
            .take(q.limit as usize)
            .cloned()
            .collect();
        let more = start + items.len() < matching.len();
        let next_cursor = if more {
            items.last().map(|d| d.id.to_string())
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    async fn replace_delivery(&self, seen: &Delivery, updated: &Delivery) -> PortResult<bool> {
        self.check()?;
        let mut all = self.deliveries.lock().unwrap();
        match all.get_mut(&(seen.event_id.clone(), seen.endpoint_id.clone())) {
            Some(r)
                if r.delivery.attempts == seen.attempts
                    && r.delivery.status == seen.status
                    && r.delivery.wake == seen.wake =>
            {
                r.delivery = updated.clone();
                r.due_at = Self::due_of(updated);
                r.lease_until = None;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn count_open(&self, limit: u32) -> PortResult<OpenDeliveries> {
        self.check()?;
        let all = self.deliveries.lock().unwrap();
        let dues: Vec<Timestamp> = all.values().filter_map(|r| r.due_at).collect();
        Ok(OpenDeliveries {
            open: u32::try_from(dues.len()).unwrap_or(u32::MAX).min(limit),
            oldest_due_at: dues.iter().min().copied(),
        })
    }
}

/// A queue that keeps what was sent (with its delay) and what was hidden.
#[derive(Default)]
pub struct MemoryQueue {
    pub sent: Mutex<Vec<QueueMessage>>,
    pub delays: Mutex<Vec<Duration>>,
    pub hidden: Mutex<Vec<(String, Duration)>>,
    pub dead: Mutex<VecDeque<Received>>,
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
        self.delays.lock().unwrap().push(Duration::ZERO);
        Ok(())
    }

    async fn send_after(&self, message: &QueueMessage, delay: Duration) -> PortResult<()> {
        self.send(message).await?;
        if let Some(d) = self.delays.lock().unwrap().last_mut() {
            *d = delay.min(MAX_QUEUE_DELAY);
        }
        Ok(())
    }

    async fn hide(&self, receipt_handle: &str, hidden: Duration) -> PortResult<()> {
        self.hidden
            .lock()
            .unwrap()
            .push((receipt_handle.to_owned(), hidden.min(MAX_VISIBILITY)));
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
impl DeadLetters for MemoryQueue {
    async fn take(&self) -> PortResult<Vec<Received>> {
        let mut dead = self.dead.lock().unwrap();
        let n = dead.len().min(10);
        Ok(dead.drain(..n).collect())
    }

    async fn remove(&self, _receipt_handle: &str) -> PortResult<()> {
        Ok(())
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
    held: Mutex<HashMap<String, Held>>,
}

/// Requests to a held URL wait for `release`; `answered` is notified as each answers.
#[derive(Clone, Default)]
pub struct Held {
    pub release: std::sync::Arc<tokio::sync::Notify>,
    pub answered: std::sync::Arc<tokio::sync::Notify>,
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

    /// Requests to `url` wait until the returned `release` is notified.
    pub fn hold(&self, url: &str) -> Held {
        let held = Held::default();
        self.held.lock().unwrap().insert(url.to_owned(), held.clone());
        held
    }
}

#[async_trait]
impl WebhookSender for ScriptedSender {
    async fn post(&self, request: OutboundRequest) -> AttemptOutcome {
        let held = self.held.lock().unwrap().get(&request.url).cloned();
        if let Some(held) = &held {
            held.release.notified().await;
        }
        let next = self
            .script
            .lock()
            .unwrap()
            .get_mut(&request.url)
            .and_then(VecDeque::pop_front);
        self.requests.lock().unwrap().push(request);
        if let Some(held) = held {
            held.answered.notify_one();
        }
        next.unwrap_or(AttemptOutcome::Response {
            status: 200,
            body: "ok".into(),
            retry_after_seconds: None,
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

#[async_trait]
impl StatsStore for MemoryStore {
    async fn add_stats(&self, rows: &[(EndpointId, String, crate::stats::HourStats)]) -> PortResult<()> {
        self.check()?;
        let mut all = self.stats.lock().unwrap();
        for (ep, hour, st) in rows {
            all.entry((ep.clone(), hour.clone())).or_default().merge(st);
        }
        Ok(())
    }

    async fn read_stats(
        &self,
        endpoint: &EndpointId,
        from: &str,
        to: &str,
    ) -> PortResult<Vec<crate::stats::HourStats>> {
        self.check()?;
        Ok(self
            .stats
            .lock()
            .unwrap()
            .iter()
            .filter(|((e, h), _)| e == endpoint && h.as_str() >= from && h.as_str() <= to)
            .map(|(_, s)| s.clone())
            .collect())
    }
}

#[async_trait]
impl RateLimiter for MemoryStore {
    async fn take(
        &self,
        endpoint: &EndpointId,
        per_second: u32,
        now: Timestamp,
    ) -> PortResult<Option<Duration>> {
        self.check()?;
        let mut buckets = self.buckets.lock().unwrap();
        match crate::ratelimit::take(buckets.get(endpoint).copied(), per_second, now) {
            Ok(b) => {
                buckets.insert(endpoint.clone(), b);
                Ok(None)
            }
            Err(wait) => Ok(Some(wait)),
        }
    }
}
