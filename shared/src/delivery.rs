//! Deliveries (one event to one endpoint) and their attempts, as a small state machine:
//! `pending` → `delivered` | `retrying` → … → `delivered` | `failed`; and, for events
//! that expire or collapse, `expired` (not made by the event's expiry) or `superseded`
//! (a newer event under its collapse key came), each instead of an attempt.

use crate::event::{Event, EventType};
use crate::ids::{DeliveryId, EndpointId, EventId, TenantId};
use crate::retry::{RetryPolicy, Verdict};
use crate::timestamp::Timestamp;
use serde::{Deserialize, Serialize};

pub use crate::delivery_status::DeliveryStatus;

/// How much of a response body is kept.
pub const RESPONSE_BODY_LIMIT: usize = 1024;

/// Why an attempt got no HTTP response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransportError {
    Timeout,
    Connect,
    /// The destination resolved to an address the SSRF policy refuses.
    Blocked,
    Dns,
    Other,
}

/// What one attempt came to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AttemptOutcome {
    Response {
        status: u16,
        body: String,
        /// A `Retry-After` the receiver sent, in seconds from the response.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_seconds: Option<u64>,
    },
    Error {
        error: TransportError,
        message: String,
    },
}

impl AttemptOutcome {
    pub fn is_success(&self) -> bool {
        matches!(self, Self::Response { status, .. } if (200..300).contains(status))
    }

    pub fn status_code(&self) -> Option<u16> {
        match self {
            Self::Response { status, .. } => Some(*status),
            Self::Error { .. } => None,
        }
    }

    /// A short description for the delivery's `last_error`.
    pub fn error_text(&self) -> Option<String> {
        match self {
            _ if self.is_success() => None,
            Self::Response { status, .. } => Some(format!("HTTP {status}")),
            Self::Error { message, .. } => Some(message.clone()),
        }
    }
}

/// Keeps at most `RESPONSE_BODY_LIMIT` bytes, cut on a character boundary.
pub fn cut_body(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(RESPONSE_BODY_LIMIT)]);
    let mut s = text.into_owned();
    while s.len() > RESPONSE_BODY_LIMIT {
        s.pop();
    }
    s
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Attempt {
    pub number: u32,
    pub started_at: Timestamp,
    pub duration_ms: u64,
    #[serde(flatten)]
    pub outcome: AttemptOutcome,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Delivery {
    pub id: DeliveryId,
    /// The tenant of its event and endpoint.
    pub tenant_id: TenantId,
    pub event_id: EventId,
    pub endpoint_id: EndpointId,
    pub event_type: EventType,
    pub status: DeliveryStatus,
    /// Attempts made so far (the API shows the attempts themselves as `attempts`).
    #[serde(rename = "attempt_count")]
    pub attempts: u32,
    pub max_attempts: u32,
    pub next_attempt_at: Option<Timestamp>,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    /// Why a `failed`, `expired` or `superseded` delivery ended so.
    pub failure_reason: Option<String>,
    /// Names the one queue message that may make the next attempt; a message that
    /// carries another token is stale and dropped.
    #[serde(skip)]
    pub wake: Option<String>,
    /// Its place in its endpoint's ordered lane (`crate::ordering`), if it has one.
    #[serde(rename = "lane", skip_serializing_if = "Option::is_none")]
    pub order: Option<crate::ordering::LanePlace>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Delivery {
    /// Where its event is stored.
    pub fn event_key(&self) -> crate::event::EventKey {
        crate::event::EventKey::new(self.tenant_id.clone(), self.event_id.clone())
    }

    /// A new delivery in the default tenant.
    pub fn new(
        event_id: EventId,
        endpoint_id: EndpointId,
        event_type: EventType,
        max_attempts: u32,
        now: Timestamp,
    ) -> Self {
        let id = DeliveryId::generate_for(now, &endpoint_id);
        let tenant_id = TenantId::default();
        Self::open(
            id,
            tenant_id,
            event_id,
            endpoint_id,
            event_type,
            max_attempts,
            now,
        )
    }

    /// A new delivery of `event` under an id given out before it was made (an event's
    /// claim names its deliveries' ids, so that a resumed fan-out makes the same ones).
    /// It was created when its id was: the log sorts and windows deliveries by that time.
    pub fn under(
        id: DeliveryId,
        event: &Event,
        endpoint_id: EndpointId,
        max_attempts: u32,
        now: Timestamp,
    ) -> Self {
        let (event_id, event_type) = (event.id.clone(), event.event_type.clone());
        let tenant_id = event.tenant_id.clone();
        Self::open(
            id,
            tenant_id,
            event_id,
            endpoint_id,
            event_type,
            max_attempts,
            now,
        )
    }

    /// A pending delivery, due now, created when its id was made.
    fn open(
        id: DeliveryId,
        tenant_id: TenantId,
        event_id: EventId,
        endpoint_id: EndpointId,
        event_type: EventType,
        max_attempts: u32,
        now: Timestamp,
    ) -> Self {
        let created_at = id.made_at_millis().map_or(now, Timestamp::from_unix_millis);
        Self {
            id,
            tenant_id,
            event_id,
            endpoint_id,
            event_type,
            status: DeliveryStatus::Pending,
            attempts: 0,
            max_attempts,
            next_attempt_at: Some(now),
            last_status_code: None,
            last_error: None,
            failure_reason: None,
            wake: None,
            order: None,
            created_at,
            updated_at: now,
        }
    }

    /// Applies a finished attempt and the policy's verdict on it. A retry gets a new
    /// wake token: the message that will carry it is the only one that may act next.
    pub fn apply(&mut self, outcome: &AttemptOutcome, verdict: &Verdict, finished_at: Timestamp) {
        self.attempts += 1;
        self.updated_at = finished_at;
        self.last_status_code = outcome.status_code();
        self.last_error = outcome.error_text();
        match verdict {
            Verdict::Delivered => {
                self.status = DeliveryStatus::Delivered;
                self.next_attempt_at = None;
                self.wake = None;
            }
            Verdict::RetryIn(wait) => {
                self.status = DeliveryStatus::Retrying;
                self.next_attempt_at = Some(finished_at.saturating_add(*wait));
                self.wake = Some(new_wake());
            }
            Verdict::GiveUp { reason, .. } => self.fail(reason, finished_at),
            Verdict::Expire { at } => {
                self.close(DeliveryStatus::Expired, &crate::expiry::reason(*at), finished_at);
            }
        }
    }

    /// This delivery after its next attempt came to `outcome`, with the policy's
    /// verdict on it (`jitter` in `[0, 1)` spreads the retry's time), cut by the
    /// event's expiry.
    pub fn judged(
        &self,
        policy: &RetryPolicy,
        outcome: &AttemptOutcome,
        jitter: f64,
        expires_at: Option<Timestamp>,
        finished_at: Timestamp,
    ) -> (Delivery, Verdict) {
        let verdict = crate::expiry::cut(
            policy.judge(self.attempts + 1, outcome, jitter),
            expires_at,
            finished_at,
        );
        let mut next = self.clone();
        next.max_attempts = policy.max_attempts();
        next.apply(outcome, &verdict, finished_at);
        (next, verdict)
    }

    /// An operator asks for one more attempt now, whatever the state: the delivery
    /// opens again with a fresh wake token and room for exactly one more attempt.
    pub fn retry_now(&mut self, now: Timestamp) {
        self.status = DeliveryStatus::Retrying;
        self.max_attempts = self.max_attempts.max(self.attempts + 1);
        self.next_attempt_at = Some(now);
        self.wake = Some(new_wake());
        self.failure_reason = None;
        self.updated_at = now;
    }

    /// Puts the next attempt off until `at` (a rate limit's turn), under a new wake
    /// token for the message that will make it.
    pub fn defer(&mut self, at: Timestamp) {
        self.next_attempt_at = Some(at);
        self.wake = Some(new_wake());
    }

    /// Parks a retry whose wait is too long for a delayed message (`crate::hop`): no
    /// message carries it, so it holds no wake token, and the sweeper queues its
    /// attempt (under a new one) when it is due.
    pub fn park(&mut self) {
        self.wake = None;
    }

    /// Waiting in the table for the sweeper to queue its next attempt: an attempted,
    /// open delivery that no message may wake. (A first attempt waiting its turn in an
    /// ordered lane has no token either, but its lane's move wakes it.)
    pub fn is_parked(&self) -> bool {
        self.status.is_open() && self.attempts > 0 && self.wake.is_none()
    }

    /// Ends the delivery as `failed` with the reason.
    pub fn fail(&mut self, reason: &str, now: Timestamp) {
        self.close(DeliveryStatus::Failed, reason, now);
    }

    /// Ends the delivery with a closed `status` (failed, expired, superseded) and why.
    pub fn close(&mut self, status: DeliveryStatus, reason: &str, now: Timestamp) {
        debug_assert!(!status.is_open() && status != DeliveryStatus::Delivered);
        self.status = status;
        self.next_attempt_at = None;
        self.wake = None;
        self.failure_reason = Some(reason.to_owned());
        self.updated_at = now;
    }
}

/// A fresh wake token.
pub fn new_wake() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn delivery(max_attempts: u32) -> Delivery {
        Delivery::new(
            EventId::parse("evt_1").unwrap(),
            EndpointId::parse("ep_1").unwrap(),
            EventType::parse("a.b").unwrap(),
            max_attempts,
            Timestamp::from_unix_millis(0),
        )
    }

    fn response(status: u16) -> AttemptOutcome {
        AttemptOutcome::Response {
            status,
            body: String::new(),
            retry_after_seconds: None,
        }
    }

    fn apply(d: &mut Delivery, outcome: &AttemptOutcome, at: Timestamp) {
        let verdict = RetryPolicy::with_max_attempts(d.max_attempts).judge(d.attempts + 1, outcome, 0.5);
        d.apply(outcome, &verdict, at);
    }

    #[test]
    fn a_2xx_delivers() {
        let mut d = delivery(8);
        apply(&mut d, &response(204), Timestamp::from_unix_millis(10));
        assert_eq!(
            (d.status, d.attempts, d.next_attempt_at),
            (DeliveryStatus::Delivered, 1, None)
        );
        assert_eq!(d.wake, None);
    }

    #[test]
    fn a_failure_with_attempts_left_retries_at_the_policy_time_under_a_new_wake_token() {
        let mut d = delivery(8);
        let t = Timestamp::from_unix_millis(1_000);
        apply(&mut d, &response(500), t);
        assert_eq!(d.status, DeliveryStatus::Retrying);
        assert_eq!(d.next_attempt_at, Some(t.saturating_add(Duration::from_secs(5))));
        assert_eq!(d.last_error.as_deref(), Some("HTTP 500"));
        assert_eq!(d.last_status_code, Some(500));
        let first = d.wake.clone().expect("a wake token");
        apply(&mut d, &response(500), t);
        assert_ne!(d.wake.as_deref(), Some(first.as_str()));
    }

    #[test]
    fn the_last_allowed_failure_fails_the_delivery_with_the_reason() {
        let mut d = delivery(1);
        let err = AttemptOutcome::Error {
            error: TransportError::Timeout,
            message: "timed out after 15 s".into(),
        };
        apply(&mut d, &err, Timestamp::from_unix_millis(5));
        assert_eq!(d.status, DeliveryStatus::Failed);
        assert_eq!(d.next_attempt_at, None);
        assert_eq!(d.last_error.as_deref(), Some("timed out after 15 s"));
        assert_eq!(d.failure_reason.as_deref(), Some("all 1 attempts failed"));
    }

    #[test]
    fn a_judged_delivery_takes_the_policys_attempt_count_and_verdict() {
        let d = delivery(8);
        let policy = RetryPolicy::with_max_attempts(2);
        let (next, verdict) = d.judged(
            &policy,
            &response(500),
            0.5,
            None,
            Timestamp::from_unix_millis(10),
        );
        assert_eq!(verdict, Verdict::RetryIn(Duration::from_secs(5)));
        assert_eq!(
            (next.max_attempts, next.attempts, next.status),
            (2, 1, DeliveryStatus::Retrying)
        );
        let (last, verdict) = next.judged(
            &policy,
            &response(500),
            0.5,
            None,
            Timestamp::from_unix_millis(20),
        );
        assert!(matches!(verdict, Verdict::GiveUp { .. }));
        assert_eq!(last.status, DeliveryStatus::Failed);
        assert_eq!(d.attempts, 0, "judging changes a copy");
    }

    #[test]
    fn a_retry_that_would_come_after_the_events_expiry_ends_it_expired() {
        let d = delivery(8);
        let policy = RetryPolicy::with_max_attempts(8);
        let expires = Some(Timestamp::from_unix_millis(10_000));
        let (next, verdict) = d.judged(
            &policy,
            &response(500),
            0.5,
            expires,
            Timestamp::from_unix_millis(10),
        );
        assert_eq!(
            verdict,
            Verdict::RetryIn(Duration::from_secs(5)),
            "due before the expiry"
        );
        // The next wait (5 min) would end past it.
        let (last, _) = next.judged(
            &policy,
            &response(500),
            0.5,
            expires,
            Timestamp::from_unix_millis(5_020),
        );
        assert_eq!(
            (last.status, last.next_attempt_at, last.wake.as_deref()),
            (DeliveryStatus::Expired, None, None)
        );
        assert!(last.failure_reason.unwrap().contains("expired at"));
        assert_eq!(
            DeliveryStatus::parse("superseded"),
            Some(DeliveryStatus::Superseded)
        );
        assert!(!DeliveryStatus::Expired.is_open());
    }

    #[test]
    fn response_bodies_are_cut_to_1_kib_on_a_char_boundary() {
        assert_eq!(cut_body(b"ok"), "ok");
        let long = "é".repeat(1000);
        let cut = cut_body(long.as_bytes());
        assert!(cut.len() <= RESPONSE_BODY_LIMIT);
        assert!(cut.len() >= RESPONSE_BODY_LIMIT - 4);
    }
}
