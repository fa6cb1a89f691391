//! Attempt metrics: the count and latency of attempts by outcome, status class and
//! tenant (`metric_tenants`: a bounded set of values), gathered over an invocation and
//! written as one EMF line per (outcome, class, tenant) rather than one per attempt (a
//! quarter of a webhook's log bytes). Each line also publishes under (outcome, class),
//! outcome alone and the total, as before tenants, and under tenant alone.

use crate::delivery::DeliveryStatus;
use crate::telemetry::{Metrics, Unit};
use std::collections::BTreeMap;

/// EMF takes at most 100 values of one metric in a line.
const SAMPLES_PER_LINE: usize = 100;

/// Attempt latencies by (outcome, status class, tenant's metric value).
#[derive(Debug, Default)]
pub struct AttemptMetrics(BTreeMap<(&'static str, &'static str, String), Vec<f64>>);

impl AttemptMetrics {
    /// One attempt, by the status it left its delivery in, the HTTP status it got, and
    /// its tenant's `Tenant` value (`MetricTenants::label`).
    pub fn record(
        &mut self,
        outcome: DeliveryStatus,
        status_code: Option<u16>,
        tenant: &str,
        duration_ms: u64,
    ) {
        self.0
            .entry((outcome.as_str(), status_class(status_code), tenant.to_owned()))
            .or_default()
            .push(duration_ms as f64);
    }

    /// The EMF lines, at most 100 samples each.
    pub fn lines(&self) -> Vec<Metrics> {
        let mut lines = Vec::new();
        for ((outcome, status_class, tenant), latencies) in &self.0 {
            for chunk in latencies.chunks(SAMPLES_PER_LINE) {
                lines.push(
                    Metrics::new()
                        .dimension("Outcome", *outcome)
                        .dimension("StatusClass", *status_class)
                        .dimension("Tenant", tenant.as_str())
                        .rollup(&["Outcome", "StatusClass"])
                        .rollup(&["Tenant"])
                        .rollup(&["Outcome"])
                        .rollup(&[])
                        .metric("Attempts", chunk.len() as f64, Unit::Count)
                        .samples("AttemptLatency", chunk, Unit::Milliseconds),
                );
            }
        }
        lines
    }

    pub fn emit(&self) {
        for line in self.lines() {
            line.emit();
        }
    }
}

/// The metrics' `StatusClass` of an attempt: `2xx`, `4xx` …, or `error` when no answer
/// came. Static strings: one per attempt would otherwise be formatted.
pub fn status_class(status: Option<u16>) -> &'static str {
    const CLASSES: [&str; 10] = [
        "0xx", "1xx", "2xx", "3xx", "4xx", "5xx", "6xx", "7xx", "8xx", "9xx",
    ];
    status
        .and_then(|s| CLASSES.get(usize::from(s / 100)))
        .copied()
        .unwrap_or("error")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_is_classed_by_its_hundreds_and_no_answer_is_an_error() {
        assert_eq!(status_class(Some(204)), "2xx");
        assert_eq!(status_class(Some(503)), "5xx");
        assert_eq!(status_class(None), "error");
        assert_eq!(status_class(Some(1000)), "error", "not a status");
    }

    #[test]
    fn attempts_make_one_line_per_outcome_and_class_of_at_most_100_samples() {
        let mut m = AttemptMetrics::default();
        for i in 0..150 {
            m.record(DeliveryStatus::Delivered, Some(200), "default", i);
        }
        m.record(DeliveryStatus::Retrying, None, "default", 5000);
        m.record(DeliveryStatus::Delivered, Some(204), "(other)", 7);
        let lines: Vec<serde_json::Value> = m
            .lines()
            .iter()
            .map(|l| serde_json::from_str(&l.to_line(0)).unwrap())
            .collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(
            (lines[0]["Outcome"].as_str(), lines[0]["Tenant"].as_str()),
            (Some("delivered"), Some("(other)"))
        );
        assert_eq!(lines[1]["Tenant"], "default");
        assert_eq!(lines[1]["Attempts"], 100.0);
        assert_eq!(lines[2]["Attempts"], 50.0);
        assert_eq!(lines[3]["StatusClass"], "error");
        assert_eq!(lines[3]["AttemptLatency"], serde_json::json!([5000.0]));
        // Published as before tenants too, and per tenant.
        assert_eq!(
            lines[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            serde_json::json!([
                ["Outcome", "StatusClass", "Tenant"],
                ["Outcome", "StatusClass"],
                ["Tenant"],
                ["Outcome"],
                []
            ])
        );
    }
}
