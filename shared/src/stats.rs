//! Delivery statistics kept as counters in hourly buckets per endpoint, added to as
//! deliveries happen, so the dashboard never reads individual deliveries.

use crate::delivery::{Attempt, Delivery, DeliveryStatus};
use crate::ids::EndpointId;
use crate::timestamp::Timestamp;
use serde::Serialize;
use std::collections::HashMap;

/// Upper bounds (ms) of the latency histogram's buckets; one more bucket takes the rest.
pub const LATENCY_BOUNDS_MS: [u64; 9] = [50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000];
pub const BUCKETS: usize = LATENCY_BOUNDS_MS.len() + 1;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HourStats {
    pub attempts: u64,
    pub attempt_failures: u64,
    pub delivered: u64,
    pub failed: u64,
    /// Deliveries that ended `expired` and `superseded` (`crate::expiry`, `crate::collapse`).
    pub expired: u64,
    pub superseded: u64,
    pub latency_sum_ms: u64,
    pub latency_buckets: [u64; BUCKETS],
}

impl HourStats {
    pub fn attempt(&mut self, duration_ms: u64, success: bool) {
        self.attempts += 1;
        self.attempt_failures += u64::from(!success);
        self.latency_sum_ms += duration_ms;
        let i = LATENCY_BOUNDS_MS
            .iter()
            .position(|b| duration_ms <= *b)
            .unwrap_or(BUCKETS - 1);
        self.latency_buckets[i] += 1;
    }

    /// Counts a delivery's end by its status (an open one has not ended).
    pub fn ended(&mut self, status: DeliveryStatus) {
        match status {
            DeliveryStatus::Delivered => self.delivered += 1,
            DeliveryStatus::Failed => self.failed += 1,
            DeliveryStatus::Expired => self.expired += 1,
            DeliveryStatus::Superseded => self.superseded += 1,
            DeliveryStatus::Pending | DeliveryStatus::Retrying => {}
        }
    }

    pub fn merge(&mut self, o: &HourStats) {
        self.attempts += o.attempts;
        self.attempt_failures += o.attempt_failures;
        self.delivered += o.delivered;
        self.failed += o.failed;
        self.expired += o.expired;
        self.superseded += o.superseded;
        self.latency_sum_ms += o.latency_sum_ms;
        for (a, b) in self.latency_buckets.iter_mut().zip(o.latency_buckets) {
            *a += b;
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == HourStats::default()
    }

    /// The summary the API shows.
    pub fn summary(&self) -> StatsSummary {
        let finished = self.delivered + self.failed;
        StatsSummary {
            total: finished,
            attempts: self.attempts,
            failed_attempts: self.attempt_failures,
            delivered: self.delivered,
            failed: self.failed,
            expired: self.expired,
            superseded: self.superseded,
            success_rate: (finished > 0).then(|| self.delivered as f64 / finished as f64),
            mean_response_ms: (self.attempts > 0).then(|| self.latency_sum_ms / self.attempts),
            p50_response_ms: self.percentile(0.5),
            p95_response_ms: self.percentile(0.95),
        }
    }

    /// The upper bound of the bucket holding the percentile (`None` past the last bound).
    fn percentile(&self, p: f64) -> Option<u64> {
        if self.attempts == 0 {
            return None;
        }
        let rank = (p * self.attempts as f64).ceil() as u64;
        let mut seen = 0;
        for (i, n) in self.latency_buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return LATENCY_BOUNDS_MS.get(i).copied();
            }
        }
        None
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StatsSummary {
    /// Deliveries that ended (delivered or failed) in the period.
    pub total: u64,
    pub attempts: u64,
    pub failed_attempts: u64,
    /// Deliveries that ended delivered, and that ended failed.
    pub delivered: u64,
    pub failed: u64,
    /// Deliveries that ended unsent: their event expired first, or a newer event under
    /// its collapse key superseded it. Neither counts in `total` or the success rate:
    /// they are what the sender asked for, not the receiver's doing.
    pub expired: u64,
    pub superseded: u64,
    /// delivered / (delivered + failed), over deliveries that ended.
    pub success_rate: Option<f64>,
    pub mean_response_ms: Option<u64>,
    /// The median, to the histogram's bucket bound.
    pub p50_response_ms: Option<u64>,
    /// The 95th percentile, to the histogram's bucket bound.
    pub p95_response_ms: Option<u64>,
}

/// The hour bucket of a time: `2026-11-29T08`.
pub fn hour_of(t: Timestamp) -> String {
    t.to_rfc3339().chars().take(13).collect()
}

/// Counters gathered over one batch, written once per (endpoint, hour).
#[derive(Debug, Default)]
pub struct StatsBatch(HashMap<(EndpointId, String), HourStats>);

impl StatsBatch {
    pub fn entry(&mut self, ep: &EndpointId, at: Timestamp) -> &mut HourStats {
        self.0.entry((ep.clone(), hour_of(at))).or_default()
    }

    /// An attempt, and its delivery's end when it ended with it.
    pub fn attempt(&mut self, d: &Delivery, a: &Attempt) {
        let hour = self.entry(&d.endpoint_id, a.started_at);
        hour.attempt(a.duration_ms, a.outcome.is_success());
        hour.ended(d.status);
    }

    /// A delivery that ended without an attempt (failed, expired or superseded).
    pub fn ended(&mut self, d: &Delivery, now: Timestamp) {
        self.entry(&d.endpoint_id, now).ended(d.status);
    }

    pub fn into_rows(self) -> Vec<(EndpointId, String, HourStats)> {
        self.0.into_iter().map(|((e, h), s)| (e, h, s)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_give_rates_means_and_a_p95() {
        let mut s = HourStats::default();
        for ms in [10, 20, 30, 40, 60, 70, 80, 90, 120, 3000] {
            s.attempt(ms, ms < 3000);
        }
        s.delivered = 9;
        s.failed = 1;
        let sum = s.summary();
        assert_eq!((sum.attempts, sum.failed_attempts), (10, 1));
        assert_eq!(sum.success_rate, Some(0.9));
        assert_eq!(sum.mean_response_ms, Some(352));
        assert_eq!(sum.p95_response_ms, Some(5000));
        assert_eq!(HourStats::default().summary().p95_response_ms, None);
    }

    #[test]
    fn hours_are_utc_and_batches_merge_per_endpoint_and_hour() {
        let t = Timestamp::parse_rfc3339("2026-11-29T08:59:59Z").unwrap();
        assert_eq!(hour_of(t), "2026-11-29T08");
        let ep = EndpointId::parse("ep_1").unwrap();
        let mut b = StatsBatch::default();
        b.entry(&ep, t).attempt(5, true);
        b.entry(&ep, t).attempt(5, true);
        let rows = b.into_rows();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].2.attempts, 2);
    }
}
