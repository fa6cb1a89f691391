//! The ports: small traits the handlers depend on. Adapters implement them with
//! DynamoDB, SQS and reqwest (`crate::adapters`), and `crate::memory` in memory.

use crate::delivery::{Attempt, AttemptOutcome, Delivery};
use crate::endpoint::Endpoint;
use crate::event::{Event, EventKey};
use crate::event_conflict::Conflict;
use crate::ids::{DeliveryId, EndpointId, TenantId, TenantKeyId};
use crate::message::QueueMessage;
pub use crate::ordering::{TurnEnded, Waiter};
pub use lanes::LaneStore;

mod lanes;
use crate::timestamp::Timestamp;
use async_trait::async_trait;
use std::collections::HashSet;
use std::time::Duration;

pub use crate::port_error::{PortError, PortResult};

/// One page of a listing, with an opaque cursor for the next.
#[derive(Clone, Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

#[async_trait]
pub trait EndpointStore: Send + Sync {
    async fn create_endpoint(&self, endpoint: &Endpoint) -> PortResult<()>;
    async fn get_endpoint(&self, id: &EndpointId) -> PortResult<Option<Endpoint>>;
    /// Oldest first, of one tenant or all. `cursor` comes from a previous page; a bad
    /// cursor is `Permanent`. A page of one tenant may hold fewer than `limit` and
    /// still have a next.
    async fn list_endpoints(
        &self,
        tenant: Option<&TenantId>,
        limit: u32,
        cursor: Option<&str>,
    ) -> PortResult<Page<Endpoint>>;
    /// Deletes it (its tenant names where its log is kept). Whether it existed.
    async fn delete_endpoint(&self, endpoint: &Endpoint) -> PortResult<bool>;
    /// Writes a changed endpoint if it is still at the version it was read at; the
    /// caller has bumped `endpoint.version`. Whether it was written.
    async fn update_endpoint(&self, endpoint: &Endpoint, read_version: u64) -> PortResult<bool>;
    /// Every endpoint, for matching events against, as of this call (strongly
    /// consistent).
    async fn all_endpoints(&self) -> PortResult<Vec<Endpoint>>;
    /// The registry's version: it moves with every change to which events go where (an
    /// endpoint created, changed, disabled or deleted), after the change is written, so
    /// a cache of the endpoints read at this version is current. Strongly consistent.
    async fn registry_version(&self) -> PortResult<u64>;
    /// An attempt failed: starts the failing streak unless one is running; returns
    /// when the streak started.
    async fn note_failure(&self, id: &EndpointId, now: Timestamp) -> PortResult<Timestamp>;
    /// Moves an endpoint to the slow lane (`Some(since)`) or back to the fast one
    /// (`None`), if it is not there already; a move moves the registry's version. Whether
    /// this call moved it.
    async fn set_lane(&self, id: &EndpointId, slow_since: Option<Timestamp>) -> PortResult<bool>;
    /// An attempt succeeded: ends the failing streak.
    async fn note_success(&self, id: &EndpointId) -> PortResult<()>;
    /// Disables an active endpoint with the reason; with `failing_before`, only if
    /// its streak began by then. Whether this call did it.
    async fn disable_endpoint(
        &self,
        id: &EndpointId,
        reason: &str,
        now: Timestamp,
        failing_before: Option<Timestamp>,
    ) -> PortResult<bool>;
}

/// Who fans an event out. The claim is a lease, so a worker that dies mid-way does
/// not block the event for ever, and two copies of one event never fan out at once.
///
/// Nothing marks a fan-out finished: it is finished when each of its targets has a
/// delivery. Until then its queue message stays (SQS brings it back after a crash, and
/// the sweeper turns a dead-lettered one into failed deliveries), so the claim is the
/// event's one write on the way to its first attempts.
#[derive(Clone, Debug, PartialEq)]
pub enum FanoutClaim {
    /// First sight of this event id: it is stored with its targets (the ids of the
    /// deliveries to make, each naming its endpoint), and ours to fan out.
    Fresh,
    /// Seen before, its fan-out was cut short and its lease is over: ours again. The
    /// stored copy and its targets win over the message and over today's endpoints (the
    /// first body sent under an id is the one); `recorded` already have a delivery.
    Resumed {
        stored: Box<Event>,
        targets: Vec<DeliveryId>,
        recorded: HashSet<DeliveryId>,
    },
    /// Every target has a delivery: a duplicate.
    Done,
    /// Another worker holds the lease until then.
    Busy { until: Timestamp },
    /// The id is taken by another event (`event_conflict`): this copy is not fanned
    /// out, and the stored one's own message goes on with it.
    Conflict(Conflict),
}

/// An event as stored, with the endpoints it was fanned out to.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredEvent {
    pub event: Event,
    /// The deliveries it was to make when it was first claimed, one per endpoint that
    /// matched it then.
    pub targets: Vec<DeliveryId>,
}

impl StoredEvent {
    /// Whether each target is among the deliveries `recorded`.
    pub fn fanned_out(&self, recorded: &HashSet<DeliveryId>) -> bool {
        self.targets.iter().all(|t| recorded.contains(t))
    }
}

#[async_trait]
pub trait EventStore: Send + Sync {
    /// Stores the event with the endpoints it goes to and takes its fan-out lease; or,
    /// for an id seen before, tells what is left of its fan-out.
    /// `envelope` is `event.envelope_json()`, which the caller makes once and also sends.
    async fn claim_fanout(
        &self,
        event: &Event,
        envelope: &str,
        targets: &[DeliveryId],
        now: Timestamp,
        lease: Duration,
    ) -> PortResult<FanoutClaim>;
    async fn get_event(&self, key: &EventKey) -> PortResult<Option<StoredEvent>>;
    /// Gives the lease back early after a failure, so a retry need not wait it out.
    async fn release_fanout(&self, key: &EventKey) -> PortResult<()>;
}

/// Where checked-in event data is kept (`crate::claim_check`): S3, by key.
#[async_trait]
pub trait DataStore: Send + Sync {
    async fn put_data(&self, key: &str, data: Vec<u8>) -> PortResult<()>;
    /// The data under `key`; `None` when it is not there (its retention ended).
    async fn get_data(&self, key: &str) -> PortResult<Option<Vec<u8>>>;
    /// A URL anyone holding it may GET the data from, for `lifetime`.
    async fn data_url(&self, key: &str, lifetime: Duration) -> PortResult<String>;
}

/// Ingest's look at the ids it is sent: which are taken, and by what.
#[async_trait]
pub trait EventLookup: Send + Sync {
    /// The events stored under these keys; a key not stored is left out.
    async fn stored_events(&self, keys: &[EventKey]) -> PortResult<Vec<Event>>;
}

/// The tenants and their keys.
#[async_trait]
pub trait TenantStore: Send + Sync {
    /// Whether it was created (`false`: the id is taken, by a tenant or by a deleted
    /// one whose data is still kept).
    async fn create_tenant(&self, tenant: &crate::tenant::Tenant) -> PortResult<bool>;
    async fn get_tenant(&self, id: &TenantId) -> PortResult<Option<crate::tenant::Tenant>>;
    /// By id. A bad cursor is `Permanent`.
    async fn list_tenants(&self, limit: u32, cursor: Option<&str>)
    -> PortResult<Page<crate::tenant::Tenant>>;
    /// Writes a changed tenant if it still exists. Whether it did.
    async fn update_tenant(&self, tenant: &crate::tenant::Tenant) -> PortResult<bool>;
    /// Whether it existed. Its id stays taken while its data is kept (the retention),
    /// so that a new tenant under it does not inherit the old one's log and events.
    async fn delete_tenant(&self, id: &TenantId) -> PortResult<bool>;
    async fn create_key(&self, key: &crate::tenant_key::TenantKey) -> PortResult<()>;
    /// Strongly consistent: a key revoked is refused at once.
    async fn get_key(
        &self,
        tenant: &TenantId,
        id: &TenantKeyId,
    ) -> PortResult<Option<crate::tenant_key::TenantKey>>;
    /// Newest first.
    async fn list_keys(&self, tenant: &TenantId) -> PortResult<Vec<crate::tenant_key::TenantKey>>;
    /// Whether it existed.
    async fn delete_key(&self, tenant: &TenantId, id: &TenantKeyId) -> PortResult<bool>;
}

/// Open deliveries as the sweeper sees them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpenDeliveries {
    /// Open deliveries (counted up to the limit asked for).
    pub open: u32,
    /// The earliest next-attempt time among them.
    pub oldest_due_at: Option<Timestamp>,
}

#[async_trait]
pub trait DeliveryStore: Send + Sync {
    /// Writes new deliveries with their first attempt (or none, for a delivery that
    /// failed before it could be tried).
    async fn record_attempts(&self, records: &[(&Delivery, Option<&Attempt>)]) -> PortResult<()>;
    /// An event's deliveries, each with its attempts in order.
    async fn deliveries_for_event(&self, key: &EventKey) -> PortResult<Vec<(Delivery, Vec<Attempt>)>>;
    async fn get_delivery(&self, event: &EventKey, endpoint: &EndpointId) -> PortResult<Option<Delivery>>;
    /// Takes the lease on the delivery's next attempt, if nobody recorded or holds
    /// it since `seen` was read. Whether it was taken.
    async fn claim_attempt(&self, seen: &Delivery, now: Timestamp, lease: Duration) -> PortResult<bool>;
    /// Records an attempt and the delivery's new state, if the delivery is still as
    /// `seen` (same attempt count and wake token). Whether it was recorded.
    async fn record_attempt(
        &self,
        seen: &Delivery,
        updated: &Delivery,
        attempt: &Attempt,
    ) -> PortResult<bool>;
    /// Gives a delivery whose next attempt went missing a new wake token, if it is
    /// still as `seen` and nobody holds it. Whether this call did it.
    async fn redrive(&self, seen: &Delivery, wake: &str, now: Timestamp) -> PortResult<bool>;
    /// Gives up the lease `claim_attempt` took, with no attempt recorded, if the
    /// delivery is still as `seen` (the attempt is handed to another lane).
    async fn release_attempt(&self, seen: &Delivery) -> PortResult<bool>;
    /// Ends an open delivery (`failed`, `expired` or `superseded`), if it is still as
    /// `seen`.
    async fn fail_delivery(&self, seen: &Delivery, failed: &Delivery) -> PortResult<bool>;
    /// Open deliveries due by `before`, most overdue first, with their lease state.
    async fn due_deliveries(&self, before: Timestamp, limit: u32) -> PortResult<Vec<DueDelivery>>;
    /// Counts open deliveries, looking at no more than `limit`.
    async fn count_open(&self, limit: u32) -> PortResult<OpenDeliveries>;
    /// One delivery by its id, with its attempts in order.
    async fn find_delivery(&self, id: &DeliveryId) -> PortResult<Option<(Delivery, Vec<Attempt>)>>;
    /// The delivery log, newest first. A bad cursor is `Permanent`.
    async fn list_deliveries(&self, query: &DeliveryQuery) -> PortResult<Page<Delivery>>;
    /// Replaces a delivery if it is still as `seen` (attempts, status, wake token),
    /// open or not. Whether it did.
    async fn replace_delivery(&self, seen: &Delivery, updated: &Delivery) -> PortResult<bool>;
}

/// The newest event of each (endpoint, collapse key), by rank (`crate::collapse`).
#[async_trait]
pub trait CollapseStore: Send + Sync {
    /// Raises the pair's newest rank to `rank` unless a newer one is there; the newest
    /// rank after the call (`rank` when it is the newest). `now` dates it for expiry.
    async fn raise_newest(
        &self,
        endpoint: &EndpointId,
        key: &crate::collapse::CollapseKey,
        rank: &str,
        now: Timestamp,
    ) -> PortResult<String>;
    /// The pair's newest rank, strongly consistent.
    async fn newest(
        &self,
        endpoint: &EndpointId,
        key: &crate::collapse::CollapseKey,
    ) -> PortResult<Option<String>>;
}

/// Queue messages Hookline could not process, kept for the operator.
#[async_trait]
pub trait DeadLetterStore: Send + Sync {
    async fn record_dead_letter(&self, letter: &crate::dead_letter::DeadLetter) -> PortResult<()>;
    /// Newest first. A bad cursor is `Permanent`.
    async fn list_dead_letters(
        &self,
        limit: u32,
        cursor: Option<&str>,
    ) -> PortResult<Page<crate::dead_letter::DeadLetter>>;
}

/// Rate limits, as token buckets that hold one second's worth (`crate::ratelimit`).
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Takes `tokens` from the bucket (`ratelimit::take_n`); `Some(wait)` when there
    /// is none yet.
    async fn take(
        &self,
        bucket: crate::ratelimit::RateBucket<'_>,
        per_second: u32,
        tokens: u32,
        now: Timestamp,
    ) -> PortResult<Option<Duration>>;
}

/// Hourly delivery counters per endpoint.
#[async_trait]
pub trait StatsStore: Send + Sync {
    /// Adds each row's counters to its (endpoint, hour) bucket.
    async fn add_stats(&self, rows: &[(EndpointId, String, crate::stats::HourStats)]) -> PortResult<()>;
    /// The endpoint's buckets from hour `from` to hour `to`, both included.
    async fn read_stats(
        &self,
        endpoint: &EndpointId,
        from: &str,
        to: &str,
    ) -> PortResult<Vec<(String, crate::stats::HourStats)>>;
}

/// What the delivery log is asked for.
#[derive(Clone, Debug)]
pub struct DeliveryQuery {
    /// One tenant's deliveries, or every tenant's.
    pub tenant: Option<TenantId>,
    pub endpoint: Option<EndpointId>,
    pub status: Option<crate::delivery::DeliveryStatus>,
    pub event_type: Option<crate::event::EventType>,
    pub since: Timestamp,
    pub until: Timestamp,
    pub limit: u32,
    pub cursor: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DueDelivery {
    pub delivery: Delivery,
    /// Its place in the `open` index: its next attempt, or when it was last re-driven
    /// (whose message is then on its way).
    pub due_at: Timestamp,
    /// Someone is making an attempt until then.
    pub leased_until: Option<Timestamp>,
}

/// SQS's longest `DelaySeconds`.
pub const MAX_QUEUE_DELAY: Duration = Duration::from_secs(900);
/// SQS's longest visibility timeout.
pub const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 3600);

#[async_trait]
pub trait Queue: Send + Sync {
    async fn send(&self, message: &QueueMessage) -> PortResult<()>;
    /// Sends many, in as few requests as the queue allows; one result per message.
    async fn send_batch(&self, messages: &[QueueMessage]) -> Vec<PortResult<()>>;
    /// Sends a message that becomes visible after `delay` (at most `MAX_QUEUE_DELAY`).
    async fn send_after(&self, message: &QueueMessage, delay: Duration) -> PortResult<()>;
    /// Hides a received message for `hidden` (at most `MAX_VISIBILITY`).
    async fn hide(&self, receipt_handle: &str, hidden: Duration) -> PortResult<()>;
}

/// A message taken from a queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    pub body: String,
    pub receipt_handle: String,
    pub receive_count: u32,
}

/// The dead-letter queue, which the sweeper drains.
#[async_trait]
pub trait DeadLetters: Send + Sync {
    /// Up to 10 messages, without waiting.
    async fn take(&self) -> PortResult<Vec<Received>>;
    async fn remove(&self, receipt_handle: &str) -> PortResult<()>;
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueDepth {
    pub visible: u64,
    pub in_flight: u64,
    pub delayed: u64,
}

#[async_trait]
pub trait QueueGauge: Send + Sync {
    async fn depth(&self) -> PortResult<QueueDepth>;
}

/// A signed webhook request, ready to go.
#[derive(Clone, Debug)]
pub struct OutboundRequest {
    pub url: String,
    /// Built once with their final names, so the client does not parse them again.
    pub headers: http::HeaderMap,
    /// Shared by every request of a fan-out: the same bytes, signed per endpoint.
    pub body: bytes::Bytes,
    pub timeout: Duration,
}

#[async_trait]
pub trait WebhookSender: Send + Sync {
    /// POSTs the request; every failure becomes an outcome, never an error.
    async fn post(&self, request: OutboundRequest) -> AttemptOutcome;
}

/// Why a probe's connection was not made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectFailure {
    /// Refused, unreachable, reset: the system's words.
    Failed(String),
    /// No answer within the probe's time.
    TimedOut,
}

/// The network as the diagnosis sees it: a host's addresses, and whether something
/// accepts connections at one. Only the diagnosis probes; deliveries go through the
/// [`WebhookSender`], whose resolver applies the SSRF policy.
#[async_trait]
pub trait NetworkProbe: Send + Sync {
    /// The host's addresses for `port`; the reason when it does not resolve in time.
    async fn resolve(&self, host: &str, port: u16) -> Result<Vec<std::net::SocketAddr>, String>;
    /// Opens a TCP connection and closes it: how long that took.
    async fn connect(&self, addr: std::net::SocketAddr) -> Result<Duration, ConnectFailure>;
}

pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}
