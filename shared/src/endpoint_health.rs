//! An endpoint's health after each attempt: its failing streak (since when every
//! attempt has failed), and when a failure disables it — at once when it answered 410
//! Gone, or once the streak has gone on for the service's `disable_after`.

use crate::retry::Verdict;
use crate::timestamp::Timestamp;
use std::time::Duration;

/// What an attempt does to its endpoint's failing streak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Streak {
    /// A success with no streak running: nothing to write.
    Healthy,
    /// A success that ends the streak.
    Recovered,
    /// The first failure after a success: the streak starts (the store says when, since
    /// another worker may have started it a moment earlier).
    Starts,
    /// Another failure of a streak running since then.
    Failing { since: Timestamp },
}

/// The streak after an attempt to an endpoint failing since `failing_since`, as the
/// caller's view of the endpoint has it (a cached view, a few seconds old at most).
/// `retried`: the attempt was not its delivery's first, so a failure came before it. Its
/// success ends a streak even where the view shows none: the streak may have started
/// after the view was read, and one left standing after a success would, at the next
/// failure days later, disable an endpoint that had recovered.
pub fn streak_after(failing_since: Option<Timestamp>, success: bool, retried: bool) -> Streak {
    match (success, failing_since) {
        (true, None) if retried => Streak::Recovered,
        (true, None) => Streak::Healthy,
        (true, Some(_)) => Streak::Recovered,
        (false, None) => Streak::Starts,
        (false, Some(since)) => Streak::Failing { since },
    }
}

/// An endpoint to disable, and on what condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Disable {
    pub reason: String,
    /// Only if its streak began by then (so that a success meanwhile, which ended the
    /// streak, or a newer streak, keeps it enabled); `None` disables it whatever.
    pub failing_before: Option<Timestamp>,
}

/// Whether a failed attempt, judged `verdict`, disables an endpoint failing since
/// `since`.
pub fn disable_after_failure(
    verdict: &Verdict,
    since: Timestamp,
    now: Timestamp,
    disable_after: Duration,
) -> Option<Disable> {
    match verdict {
        Verdict::GiveUp {
            disable_endpoint: true,
            reason,
        } => Some(Disable {
            reason: reason.clone(),
            failing_before: None,
        }),
        _ if now.since(since) >= disable_after => Some(Disable {
            reason: format!(
                "every attempt has failed since {since}, with no success for {} s",
                now.since(since).as_secs()
            ),
            failing_before: Some(Timestamp::from_unix_millis(
                now.unix_millis() - disable_after.as_millis() as i64,
            )),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_unix_millis(secs * 1000)
    }

    #[test]
    fn a_streak_starts_with_a_failure_and_ends_with_a_success() {
        assert_eq!(streak_after(None, true, false), Streak::Healthy);
        assert_eq!(streak_after(None, false, false), Streak::Starts);
        assert_eq!(
            streak_after(Some(at(5)), false, true),
            Streak::Failing { since: at(5) }
        );
        assert_eq!(streak_after(Some(at(5)), true, false), Streak::Recovered);
    }

    #[test]
    fn a_retry_that_succeeds_ends_a_streak_the_cached_view_did_not_show_yet() {
        assert_eq!(streak_after(None, true, true), Streak::Recovered);
    }

    #[test]
    fn gone_disables_at_once_whatever_the_streak() {
        let gone = Verdict::GiveUp {
            reason: "the endpoint answered 410 Gone".into(),
            disable_endpoint: true,
        };
        assert_eq!(
            disable_after_failure(&gone, at(100), at(100), 5 * DAY),
            Some(Disable {
                reason: "the endpoint answered 410 Gone".into(),
                failing_before: None
            })
        );
    }

    #[test]
    fn a_streak_disables_only_once_it_has_run_the_whole_window() {
        let retry = Verdict::RetryIn(Duration::from_secs(5));
        let start = at(1_000_000);
        let almost = start.saturating_add(5 * DAY - Duration::from_secs(1));
        assert_eq!(disable_after_failure(&retry, start, almost, 5 * DAY), None);
        let now = start.saturating_add(5 * DAY);
        let d = disable_after_failure(&retry, start, now, 5 * DAY).expect("disabled");
        assert_eq!(
            d.failing_before,
            Some(start),
            "the streak must have begun by then"
        );
        assert!(d.reason.contains("no success for 432000 s"), "{}", d.reason);
        // A retry the policy gave up on is no reason to disable by itself.
        let spent = Verdict::GiveUp {
            reason: "all 3 attempts failed".into(),
            disable_endpoint: false,
        };
        assert_eq!(disable_after_failure(&spent, start, almost, 5 * DAY), None);
    }
}
