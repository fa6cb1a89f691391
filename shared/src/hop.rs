//! How a delivery waits on SQS for its next attempt. A wait up to the longest message
//! delay (`DelaySeconds`, 15 min) travels as a new, delayed attempt message. A longer
//! one keeps the message that woke the delivery and hides it (`ChangeMessageVisibility`,
//! up to 12 h a hop), so SQS brings it back then; unless that message has been received
//! so often that SQS might dead-letter it first, when a fresh message takes over.

use crate::ports::MAX_VISIBILITY;
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

/// How a wait is carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hop {
    /// Keep the message that woke the delivery, hidden this long.
    Hide(Duration),
    /// Send a fresh attempt message, delayed.
    Send,
}

/// After a failed attempt made from a message received `receives` times, with `wait`
/// until the next: a short wait, or one whose hops would take the message near its
/// receive limit, goes in a fresh message (the delivery's new wake token names it).
pub fn after_failed_attempt(wait: Duration, receives: u32, limits: HopLimits) -> Hop {
    if wait > limits.max_delay {
        let hops = u32::try_from(wait.as_secs().div_ceil(MAX_VISIBILITY.as_secs())).unwrap_or(u32::MAX);
        if receives.saturating_add(hops).saturating_add(2) <= limits.max_receives {
            return Hop::Hide(wait);
        }
    }
    Hop::Send
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
    fn a_wait_sqs_can_delay_goes_in_a_fresh_message() {
        assert_eq!(
            after_failed_attempt(Duration::from_secs(900), 1, LIMITS),
            Hop::Send
        );
    }

    #[test]
    fn a_longer_wait_keeps_the_message_hidden_while_its_hops_fit_the_receive_limit() {
        let ten_hours = Duration::from_secs(10 * 3600);
        assert_eq!(after_failed_attempt(ten_hours, 1, LIMITS), Hop::Hide(ten_hours));
        // 30 h is three hops of 12 h: 5 + 3 + 2 = 10 fits, 6 + 3 + 2 does not.
        let thirty_hours = Duration::from_secs(30 * 3600);
        assert_eq!(
            after_failed_attempt(thirty_hours, 5, LIMITS),
            Hop::Hide(thirty_hours)
        );
        assert_eq!(after_failed_attempt(thirty_hours, 6, LIMITS), Hop::Send);
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
