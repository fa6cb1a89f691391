//! Lanes: one slow receiver must not slow the others. Every endpoint is in the *fast*
//! lane until it holds a delivery batch longer than the inline deadline (two seconds by
//! default): then it moves to the *slow* lane, a queue of its own with its own
//! event-source mapping and concurrency, where its attempts get their full timeout and
//! spend that lane's capacity only. An attempt there that answers within the deadline
//! (whatever it answers) brings it back.
//!
//! In the fast lane no attempt is waited for beyond the deadline: one still out then is
//! given up (the receiver may have it; a webhook is delivered at least once, and
//! `webhook-id` names the duplicate), its delivery handed to the slow lane as it was
//! before the attempt, and the endpoint moved.

use crate::endpoint::Endpoint;
use crate::timestamp::Timestamp;
use serde::Serialize;
use std::time::Duration;

/// The default inline deadline.
pub const DEFAULT_INLINE_DEADLINE: Duration = Duration::from_secs(2);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Lane {
    Fast,
    Slow,
}

impl Lane {
    /// The lane an endpoint is in now.
    pub fn of(ep: &Endpoint) -> Self {
        if ep.slow_since.is_some() {
            Self::Slow
        } else {
            Self::Fast
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fast => "fast",
            Self::Slow => "slow",
        }
    }
}

/// How long the fast lane waits for an attempt: the deadline, or the endpoint's own
/// timeout when that is shorter (it cannot hold a batch longer than that anyway).
/// `None` when the fast lane need not watch it: its timeout is within the deadline.
pub fn inline_wait(ep: &Endpoint, deadline: Duration) -> Option<Duration> {
    let timeout = Duration::from_secs(u64::from(ep.timeout_seconds));
    (timeout > deadline).then_some(deadline)
}

/// The endpoint's lane after an attempt made in the slow lane that took `took`: back in
/// the fast lane when it answered (or failed) within the deadline.
pub fn after_slow_attempt(took: Duration, deadline: Duration) -> Option<Lane> {
    (took <= deadline).then_some(Lane::Fast)
}

/// The `slow_since` an endpoint moved to `lane` at `now` gets.
pub fn slow_since(lane: Lane, now: Timestamp) -> Option<Timestamp> {
    match lane {
        Lane::Slow => Some(now),
        Lane::Fast => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::EventTypeFilter;

    fn endpoint(timeout_seconds: u32) -> Endpoint {
        let mut e = Endpoint::new(
            "crm".into(),
            "https://crm.example.com/".into(),
            vec![EventTypeFilter::All],
            Timestamp::from_unix_millis(0),
        );
        e.timeout_seconds = timeout_seconds;
        e
    }

    #[test]
    fn an_endpoint_is_fast_until_it_is_marked_slow() {
        let mut e = endpoint(15);
        assert_eq!(Lane::of(&e), Lane::Fast);
        e.slow_since = slow_since(Lane::Slow, Timestamp::from_unix_millis(5));
        assert_eq!(Lane::of(&e), Lane::Slow);
        assert_eq!(slow_since(Lane::Fast, Timestamp::from_unix_millis(9)), None);
    }

    #[test]
    fn the_fast_lane_watches_only_endpoints_that_could_hold_it_past_the_deadline() {
        let deadline = Duration::from_secs(2);
        assert_eq!(inline_wait(&endpoint(15), deadline), Some(deadline));
        assert_eq!(
            inline_wait(&endpoint(2), deadline),
            None,
            "it gives up by then itself"
        );
        assert_eq!(inline_wait(&endpoint(1), deadline), None);
    }

    #[test]
    fn an_answer_within_the_deadline_brings_a_slow_endpoint_back() {
        let deadline = Duration::from_secs(2);
        assert_eq!(
            after_slow_attempt(Duration::from_millis(40), deadline),
            Some(Lane::Fast)
        );
        assert_eq!(after_slow_attempt(deadline, deadline), Some(Lane::Fast));
        assert_eq!(after_slow_attempt(Duration::from_secs(30), deadline), None);
    }
}
