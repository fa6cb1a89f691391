//! The retry policy: when the next attempt of a failed delivery is due. Pure code:
//! the caller passes the jitter, so tests control it.

use std::time::Duration;

/// Waits before attempts 2, 3, …: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h
/// for attempts 1 to 8 — about 28 h in all.
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

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// `schedule[n]` is the wait before attempt `n + 1`; attempt 1 is not waited for.
    schedule: Vec<Duration>,
    max_attempts: u32,
}

impl RetryPolicy {
    /// The default schedule cut or extended (by its last step) to `max_attempts`.
    pub fn with_max_attempts(max_attempts: u32) -> Self {
        Self {
            schedule: DEFAULT_SCHEDULE.to_vec(),
            max_attempts: max_attempts.max(1),
        }
    }

    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// After `attempts_made` attempts have failed, the wait before the next one, or
    /// `None` when none is left. `jitter` is uniform in `[0, 1)`.
    pub fn next_delay(&self, attempts_made: u32, jitter: f64) -> Option<Duration> {
        if attempts_made >= self.max_attempts {
            return None;
        }
        let idx = usize::try_from(attempts_made).unwrap_or(usize::MAX);
        let base = self
            .schedule
            .get(idx)
            .or(self.schedule.last())
            .copied()
            .unwrap_or(Duration::ZERO);
        let factor = 1.0 + JITTER_FRACTION * (2.0 * jitter.clamp(0.0, 1.0) - 1.0);
        Some(base.mul_f64(factor))
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::with_max_attempts(DEFAULT_SCHEDULE.len() as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_schedule_spans_about_28_hours_in_8_attempts() {
        let p = RetryPolicy::default();
        let total: Duration = (1..8).map(|n| p.next_delay(n, 0.5).unwrap()).sum();
        assert_eq!(
            total,
            Duration::from_secs(5 + 300 + 1800 + 7200 + 18000 + 36000 + 36000)
        );
        assert!(total > Duration::from_secs(27 * 3600) && total < Duration::from_secs(29 * 3600));
        assert_eq!(p.next_delay(8, 0.5), None);
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        let p = RetryPolicy::default();
        assert_eq!(p.next_delay(2, 0.0), Some(Duration::from_secs(270)));
        assert_eq!(p.next_delay(2, 1.0), Some(Duration::from_secs(330)));
    }

    #[test]
    fn max_attempts_cuts_or_extends_the_schedule() {
        let one = RetryPolicy::with_max_attempts(1);
        assert_eq!(one.next_delay(1, 0.5), None);
        let twelve = RetryPolicy::with_max_attempts(12);
        assert_eq!(twelve.next_delay(11, 0.5), Some(Duration::from_secs(36000)));
        assert_eq!(twelve.next_delay(12, 0.5), None);
    }
}
