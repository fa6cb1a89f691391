//! How a delivery waits for its next attempt. A wait up to the longest message delay
//! (`DelaySeconds`, 15 min) travels as a new, delayed attempt message. A longer one is
//! *parked*: it waits in the table, not on the queue (its message is let go), and the
//! sweeper queues its attempt once it is due. A message hidden through a wait of hours
//! would count against the queue's in-flight quota (about 120,000) the whole time: one
//! dead endpoint at 10 webhooks a second would fill it in about 3.5 h, and then no
//! endpoint's webhooks would be received from the queue at all. A message waiting its
//! endpoint's rate-limit turn (seconds) still sleeps hidden.

use crate::timestamp::Timestamp;
use std::time::Duration;

/// A message may act this much before its time: SQS never delivers early, so this
/// only absorbs clock skew and rounding.
pub const EARLY_TOLERANCE: Duration = Duration::from_secs(1);

/// The queue's bounds on waiting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HopLimits {
    /// Waits up to this go through `DelaySeconds`.
    pub max_delay: Duration,
    /// The queue's `maxReceiveCount`: a kept message must stay well under it.
    pub max_receives: u32,
}

/// How a short wait is carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hop {
    /// Keep the message that woke the delivery, hidden this long.
    Hide(Duration),
    /// Send a fresh attempt message, delayed.
    Send,
}

/// Whether a wait of `wait` until the next attempt is parked in the table (the
/// sweeper queues the attempt when due) rather than carried by a delayed message.
pub fn parks(wait: Duration, limits: HopLimits) -> bool {
    wait > limits.max_delay
}

/// A message waiting its endpoint's rate-limit turn: it sleeps hidden, unless it has
/// been received often already, when a fresh one (same wake token) waits instead.
pub fn waiting_turn(wait: Duration, receives: u32, limits: HopLimits) -> Hop {
    if receives.saturating_add(3) <= limits.max_receives {
        Hop::Hide(wait)
    } else {
        Hop::Send
    }
}

/// How long a message that arrived before its delivery's next attempt is due should
/// sleep; `None` when it is on time.
pub fn too_early(due: Option<Timestamp>, now: Timestamp) -> Option<Duration> {
    due.filter(|at| *at > now.saturating_add(EARLY_TOLERANCE))
        .map(|at| at.since(now))
}

/// The delay of a fresh message for an attempt due `at`: as long as the queue allows,
/// and a later hop takes it the rest of the way.
pub fn delay_until(at: Timestamp, now: Timestamp, limits: HopLimits) -> Duration {
    at.since(now).min(limits.max_delay)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: HopLimits = HopLimits {
        max_delay: Duration::from_secs(900),
        max_receives: 10,
    };

    #[test]
    fn a_wait_sqs_can_delay_goes_in_a_message_and_a_longer_one_is_parked() {
        assert!(!parks(Duration::from_secs(900), LIMITS));
        assert!(parks(Duration::from_secs(901), LIMITS));
        assert!(parks(Duration::from_secs(30 * 3600), LIMITS));
    }

    #[test]
    fn a_message_waiting_its_turn_sleeps_unless_received_often() {
        let wait = Duration::from_millis(200);
        assert_eq!(waiting_turn(wait, 7, LIMITS), Hop::Hide(wait));
        assert_eq!(waiting_turn(wait, 8, LIMITS), Hop::Send);
    }

    #[test]
    fn a_message_is_early_only_beyond_the_tolerance() {
        let now = Timestamp::from_unix_millis(10_000);
        assert_eq!(too_early(None, now), None);
        assert_eq!(too_early(Some(Timestamp::from_unix_millis(11_000)), now), None);
        assert_eq!(
            too_early(Some(Timestamp::from_unix_millis(11_001)), now),
            Some(Duration::from_millis(1_001))
        );
    }

    #[test]
    fn a_fresh_message_is_delayed_at_most_the_queues_longest_delay() {
        let now = Timestamp::from_unix_millis(0);
        let soon = Timestamp::from_unix_millis(5_000);
        let later = Timestamp::from_unix_millis(3_600_000);
        assert_eq!(delay_until(soon, now, LIMITS), Duration::from_secs(5));
        assert_eq!(delay_until(later, now, LIMITS), Duration::from_secs(900));
        assert_eq!(
            delay_until(now, soon, LIMITS),
            Duration::ZERO,
            "past due: at once"
        );
    }
}
