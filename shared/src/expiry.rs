//! Expiry: an event may say when it stops being worth sending (`expires_at`, or
//! `ttl_seconds` from its receipt): an agent's progress is worthless an hour later. A
//! delivery not made by then ends `expired`: no attempt is made at or after that time,
//! and a retry that would fall there ends the delivery at once instead of waiting.

use crate::event::Event;
use crate::retry::Verdict;
use crate::timestamp::Timestamp;
use std::time::Duration;

/// The longest `ttl_seconds`, and how far ahead `expires_at` may be: as long as the
/// longest retry schedule lasts (a day and a half by default, 19 waits of a day at most).
pub const MAX_TTL: Duration = Duration::from_secs(20 * 86_400);

/// When the event expired, if it may no longer be sent at `now`.
pub fn expired_at(event: &Event, now: Timestamp) -> Option<Timestamp> {
    event.expires_at.filter(|at| *at <= now)
}

/// The policy's verdict on an attempt, cut by the event's expiry: a retry due at or
/// after it is no retry.
pub fn cut(verdict: Verdict, expires_at: Option<Timestamp>, finished_at: Timestamp) -> Verdict {
    match (verdict, expires_at) {
        (Verdict::RetryIn(wait), Some(at)) if finished_at.saturating_add(wait) >= at => {
            Verdict::Expire { at }
        }
        (v, _) => v,
    }
}

/// Why a delivery ended `expired`.
pub fn reason(at: Timestamp) -> String {
    format!("the event expired at {at} before it was delivered")
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_800_000_000_000;

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_unix_millis(T + ms)
    }

    #[test]
    fn a_retry_due_before_the_expiry_stays_a_retry() {
        let v = cut(Verdict::RetryIn(Duration::from_secs(5)), Some(at(10_000)), at(0));
        assert_eq!(v, Verdict::RetryIn(Duration::from_secs(5)));
        assert_eq!(
            cut(Verdict::RetryIn(Duration::from_secs(5)), None, at(0)),
            Verdict::RetryIn(Duration::from_secs(5))
        );
    }

    #[test]
    fn a_retry_due_at_or_after_the_expiry_ends_the_delivery_now() {
        let v = cut(Verdict::RetryIn(Duration::from_secs(10)), Some(at(10_000)), at(0));
        assert_eq!(v, Verdict::Expire { at: at(10_000) });
        assert_eq!(
            cut(Verdict::Delivered, Some(at(0)), at(5)),
            Verdict::Delivered,
            "a success stands"
        );
    }
}
