//! The retry policy: after a failed attempt, whether and when to try again. Pure code:
//! the caller passes the outcome, the attempt count and the jitter, so tests control
//! every input.

use crate::delivery::{AttemptOutcome, TransportError};
use std::time::Duration;

/// Waits before attempts 2, 3, …: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h
/// for attempts 1 to 8 — about 28 h in all. `DEFAULT_SCHEDULE[n]` is the wait before
/// attempt `n + 1`; the first is not waited for.
pub const DEFAULT_SCHEDULE: [Duration; 8] = [
    Duration::ZERO,
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];

/// Jitter spreads retries by ±this fraction so that many failures do not return at once.
const JITTER_FRACTION: f64 = 0.1;
/// A Retry-After shorter than this is raised to it.
const RETRY_AFTER_MIN: Duration = Duration::from_secs(1);

/// The service-wide settings every endpoint's policy starts from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryDefaults {
    pub schedule: Vec<Duration>,
    /// A timeout or a 429 never retries sooner than this.
    pub floor: Duration,
    /// A Retry-After longer than this is cut to it.
    pub retry_after_max: Duration,
}

impl Default for RetryDefaults {
    fn default() -> Self {
        Self {
            schedule: DEFAULT_SCHEDULE.to_vec(),
            floor: Duration::from_secs(30),
            retry_after_max: Duration::from_secs(12 * 3600),
        }
    }
}

/// What to do after an attempt.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    Delivered,
    RetryIn(Duration),
    GiveUp {
        reason: String,
        disable_endpoint: bool,
    },
    /// The retry would fall at or after the event's expiry (`crate::expiry`): the
    /// delivery ends `expired`.
    Expire {
        at: crate::timestamp::Timestamp,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    schedule: Vec<Duration>,
    max_attempts: u32,
    floor: Duration,
    retry_after_max: Duration,
}

impl RetryPolicy {
    /// An endpoint's policy: its own list of waits if it has one (then it makes
    /// `waits + 1` attempts), else the default schedule cut or extended (by its last
    /// step) to `max_attempts`.
    pub fn for_endpoint(
        defaults: &RetryDefaults,
        max_attempts: u32,
        own_schedule: Option<&[Duration]>,
    ) -> Self {
        let (schedule, max_attempts) = match own_schedule {
            Some(waits) => {
                let mut s = vec![Duration::ZERO];
                s.extend_from_slice(waits);
                let n = u32::try_from(s.len()).unwrap_or(u32::MAX);
                (s, n)
            }
            None => (defaults.schedule.clone(), max_attempts.max(1)),
        };
        Self {
            schedule,
            max_attempts,
            floor: defaults.floor,
            retry_after_max: defaults.retry_after_max,
        }
    }

    /// The default schedule for `max_attempts` attempts.
    pub fn with_max_attempts(max_attempts: u32) -> Self {
        Self::for_endpoint(&RetryDefaults::default(), max_attempts, None)
    }

    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The scheduled wait after `attempts_made` failures, jittered; `jitter` is in `[0, 1)`.
    fn scheduled_wait(&self, attempts_made: u32, jitter: f64) -> Duration {
        let idx = usize::try_from(attempts_made).unwrap_or(usize::MAX);
        let base = self
            .schedule
            .get(idx)
            .or(self.schedule.last())
            .copied()
            .unwrap_or(Duration::ZERO);
        let factor = 1.0 + JITTER_FRACTION * (2.0 * jitter.clamp(0.0, 1.0) - 1.0);
        base.mul_f64(factor)
    }

    /// Judges attempt number `attempts_made` (counting this one) by its outcome.
    pub fn judge(&self, attempts_made: u32, outcome: &AttemptOutcome, jitter: f64) -> Verdict {
        if outcome.is_success() {
            return Verdict::Delivered;
        }
        if let AttemptOutcome::Response { status: 410, .. } = outcome {
            return Verdict::GiveUp {
                reason: "the endpoint answered 410 Gone".into(),
                disable_endpoint: true,
            };
        }
        if attempts_made >= self.max_attempts {
            return Verdict::GiveUp {
                reason: format!("all {} attempts failed", self.max_attempts),
                disable_endpoint: false,
            };
        }
        let mut wait = self.scheduled_wait(attempts_made, jitter);
        let (throttled, retry_after) = match outcome {
            AttemptOutcome::Response {
                status,
                retry_after_seconds,
                ..
            } => (
                *status == 429,
                retry_after_seconds.filter(|_| matches!(status, 429 | 503)),
            ),
            AttemptOutcome::Error { .. } => (false, None),
        };
        if let Some(secs) = retry_after {
            wait = Duration::from_secs(secs).clamp(RETRY_AFTER_MIN, self.retry_after_max);
        }
        let timed_out = matches!(
            outcome,
            AttemptOutcome::Error {
                error: TransportError::Timeout,
                ..
            }
        );
        if throttled || timed_out {
            wait = wait.max(self.floor);
        }
        Verdict::RetryIn(wait)
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::for_endpoint(&RetryDefaults::default(), DEFAULT_SCHEDULE.len() as u32, None)
    }
}

/// Parses `HOOKLINE_RETRY_SCHEDULE`-style lists: comma-separated seconds.
pub fn parse_schedule(s: &str) -> Result<Vec<Duration>, String> {
    let waits = s
        .split(',')
        .map(|p| {
            p.trim()
                .parse::<u64>()
                .map(Duration::from_secs)
                .map_err(|_| format!("`{p}` is not whole seconds"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if waits.is_empty() {
        return Err("the list is empty".into());
    }
    Ok(waits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> AttemptOutcome {
        AttemptOutcome::Response {
            status: code,
            body: String::new(),
            retry_after_seconds: None,
        }
    }

    fn retry_after(code: u16, secs: u64) -> AttemptOutcome {
        AttemptOutcome::Response {
            status: code,
            body: String::new(),
            retry_after_seconds: Some(secs),
        }
    }

    fn timeout() -> AttemptOutcome {
        AttemptOutcome::Error {
            error: TransportError::Timeout,
            message: "timed out".into(),
        }
    }

    fn wait(v: Verdict) -> Duration {
        match v {
            Verdict::RetryIn(d) => d,
            other => panic!("expected a retry, got {other:?}"),
        }
    }

    #[test]
    fn the_default_schedule_spans_about_28_hours_in_8_attempts() {
        let p = RetryPolicy::default();
        let total: Duration = (1..8).map(|n| wait(p.judge(n, &status(500), 0.5))).sum();
        assert_eq!(
            total,
            Duration::from_secs(5 + 300 + 1800 + 7200 + 18000 + 36000 + 36000)
        );
        assert!(total > Duration::from_secs(27 * 3600) && total < Duration::from_secs(29 * 3600));
        assert!(matches!(
            p.judge(8, &status(500), 0.5),
            Verdict::GiveUp {
                disable_endpoint: false,
                ..
            }
        ));
    }

    #[test]
    fn a_success_is_delivered_whatever_the_count() {
        assert_eq!(
            RetryPolicy::default().judge(8, &status(204), 0.5),
            Verdict::Delivered
        );
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        let p = RetryPolicy::default();
        assert_eq!(wait(p.judge(2, &status(500), 0.0)), Duration::from_secs(270));
        assert_eq!(wait(p.judge(2, &status(500), 1.0)), Duration::from_secs(330));
    }

    #[test]
    fn max_attempts_cuts_or_extends_the_schedule() {
        let one = RetryPolicy::with_max_attempts(1);
        assert!(matches!(one.judge(1, &status(500), 0.5), Verdict::GiveUp { .. }));
        let twelve = RetryPolicy::with_max_attempts(12);
        assert_eq!(
            wait(twelve.judge(11, &status(500), 0.5)),
            Duration::from_secs(36000)
        );
        assert!(matches!(
            twelve.judge(12, &status(500), 0.5),
            Verdict::GiveUp { .. }
        ));
    }

    #[test]
    fn an_endpoint_may_bring_its_own_list_of_waits() {
        let waits = [Duration::from_secs(1), Duration::from_secs(2)];
        let p = RetryPolicy::for_endpoint(&RetryDefaults::default(), 8, Some(&waits));
        assert_eq!(p.max_attempts(), 3);
        assert_eq!(wait(p.judge(1, &status(500), 0.5)), Duration::from_secs(1));
        assert_eq!(wait(p.judge(2, &status(500), 0.5)), Duration::from_secs(2));
        assert!(matches!(p.judge(3, &status(500), 0.5), Verdict::GiveUp { .. }));
    }

    #[test]
    fn retry_after_on_429_or_503_is_honoured_within_bounds() {
        let p = RetryPolicy::default();
        assert_eq!(
            wait(p.judge(1, &retry_after(503, 120), 0.5)),
            Duration::from_secs(120)
        );
        assert_eq!(
            wait(p.judge(1, &retry_after(503, 0), 0.5)),
            Duration::from_secs(1)
        );
        assert_eq!(
            wait(p.judge(1, &retry_after(503, 10 * 86_400), 0.5)),
            Duration::from_secs(12 * 3600)
        );
        // Only 429 and 503 carry a meaningful Retry-After.
        assert_eq!(
            wait(p.judge(1, &retry_after(500, 120), 0.5)),
            Duration::from_secs(5)
        );
    }

    #[test]
    fn a_timeout_or_429_never_retries_sooner_than_the_floor() {
        let p = RetryPolicy::default();
        assert_eq!(wait(p.judge(1, &timeout(), 0.5)), Duration::from_secs(30));
        assert_eq!(wait(p.judge(1, &status(429), 0.5)), Duration::from_secs(30));
        assert_eq!(
            wait(p.judge(1, &retry_after(429, 2), 0.5)),
            Duration::from_secs(30)
        );
        assert_eq!(wait(p.judge(3, &timeout(), 0.5)), Duration::from_secs(1800));
    }

    #[test]
    fn gone_stops_at_once_and_disables_the_endpoint() {
        let v = RetryPolicy::default().judge(1, &status(410), 0.5);
        assert!(
            matches!(
                v,
                Verdict::GiveUp {
                    disable_endpoint: true,
                    ..
                }
            ),
            "{v:?}"
        );
    }

    #[test]
    fn schedules_parse_from_seconds() {
        assert_eq!(
            parse_schedule("0, 1,2").unwrap(),
            vec![Duration::ZERO, Duration::from_secs(1), Duration::from_secs(2)]
        );
        assert!(parse_schedule("1,x").is_err());
    }
}
