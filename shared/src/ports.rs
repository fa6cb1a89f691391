//! The ports: small traits the handlers depend on. Adapters implement them with
//! DynamoDB, SQS and reqwest (`crate::adapters`), and `crate::memory` in memory.

use crate::delivery::{Attempt, AttemptOutcome, Delivery};
use crate::endpoint::Endpoint;
use crate::event::Event;
use crate::ids::{EndpointId, EventId};
use crate::message::QueueMessage;
use crate::timestamp::Timestamp;
use async_trait::async_trait;
use std::time::Duration;
use thiserror::Error;

/// A storage or queue failure, split by what the caller should do about it.
#[derive(Debug, Error)]
pub enum PortError {
    /// Throttling, timeouts, 5xx: the same call may succeed later.
    #[error("temporarily unavailable: {0}")]
    Retryable(String),
    /// Bad input or configuration: trying again will not help.
    #[error("{0}")]
    Permanent(String),
}

impl PortError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Retryable(_))
    }
}

pub type PortResult<T> = Result<T, PortError>;

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
    /// Oldest first. `cursor` comes from a previous page; a bad cursor is `Permanent`.
    async fn list_endpoints(&self, limit: u32, cursor: Option<&str>) -> PortResult<Page<Endpoint>>;
    /// Whether it existed.
    async fn delete_endpoint(&self, id: &EndpointId) -> PortResult<bool>;
    /// Every endpoint, for matching events against.
    async fn all_endpoints(&self) -> PortResult<Vec<Endpoint>>;
}

/// Who fans an event out. The claim is a lease, so a worker that dies mid-way does
/// not block the event for ever, and two copies of one event never fan out at once.
#[derive(Clone, Debug, PartialEq)]
pub enum FanoutClaim {
    /// First sight of this event id: it is stored, and ours to fan out.
    Fresh,
    /// Seen before, its fan-out was cut short and its lease is over: ours again. The
    /// stored copy wins over the message (the first body sent under an id is the one).
    Resumed { stored: Event },
    /// Fanned out already: a duplicate.
    Done,
    /// Another worker holds the lease until then.
    Busy { until: Timestamp },
}

#[async_trait]
pub trait EventStore: Send + Sync {
    async fn claim_fanout(&self, event: &Event, now: Timestamp, lease: Duration) -> PortResult<FanoutClaim>;
    async fn complete_fanout(&self, id: &EventId, deliveries: u32, now: Timestamp) -> PortResult<()>;
    /// Gives the lease back early after a failure, so a retry need not wait it out.
    async fn release_fanout(&self, id: &EventId) -> PortResult<()>;
}

/// Open deliveries as the sweeper sees them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpenDeliveries {
    /// Open deliveries whose next attempt is due by now.
    pub due: u32,
    /// When the earliest of them fell due.
    pub oldest_due_at: Option<Timestamp>,
}

#[async_trait]
pub trait DeliveryStore: Send + Sync {
    /// Writes deliveries with their latest attempt.
    async fn record_attempts(&self, records: &[(Delivery, Attempt)]) -> PortResult<()>;
    /// An event's deliveries, each with its attempts in order.
    async fn deliveries_for_event(&self, id: &EventId) -> PortResult<Vec<(Delivery, Vec<Attempt>)>>;
    /// Counts open deliveries due by `now`, looking at no more than `limit`.
    async fn open_due(&self, now: Timestamp, limit: u32) -> PortResult<OpenDeliveries>;
}

#[async_trait]
pub trait Queue: Send + Sync {
    async fn send(&self, message: &QueueMessage) -> PortResult<()>;
    /// Sends many, in as few requests as the queue allows; one result per message.
    async fn send_batch(&self, messages: &[QueueMessage]) -> Vec<PortResult<()>>;
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
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub timeout: Duration,
}

#[async_trait]
pub trait WebhookSender: Send + Sync {
    /// POSTs the request; every failure becomes an outcome, never an error.
    async fn post(&self, request: OutboundRequest) -> AttemptOutcome;
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
