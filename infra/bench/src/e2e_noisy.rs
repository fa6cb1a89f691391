//! 5. One bad endpoint slows no one. Five fast endpoints take the same events alone,
//!    then beside one endpoint, then five, that hang past their 30 s timeout (a receiver
//!    here holds their requests 31 s). For the fast endpoints: the rate their webhooks
//!    arrived at and the p99 of send → arrival, beside the alone run's, as ratios. Then
//!    the hanging receivers recover, and the time until every one of their deliveries
//!    has arrived is measured: they must not starve either.

use crate::e2e_report::spread;
use crate::e2e_stack::*;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Fast endpoints in every phase.
pub(crate) const FAST: usize = 5;
/// (phase, hanging endpoints beside the fast ones).
pub(crate) const NOISY_PHASES: &[(&str, usize)] = &[("nn-alone", 0), ("nn-one", 1), ("nn-five", 5)];
/// How long a phase may take to deliver its fast webhooks before it is reported as is.
const PHASE_LIMIT: Duration = Duration::from_secs(900);

pub(crate) fn noisy_type(phase: &str) -> String {
    format!("bench.{}", phase.replace('-', "_"))
}

/// Registers every phase's endpoints (with the others, before the caches are warmed).
pub(crate) async fn register(api: &Api, base: &str) -> Result<(), BoxError> {
    for &(phase, hangs) in NOISY_PHASES {
        let t = noisy_type(phase);
        for i in 0..FAST {
            api.endpoint_with(
                &format!("{phase}-fast-{i}"),
                &format!("{base}/{phase}/fast/{i}"),
                &t,
                5,
            )
            .await?;
        }
        for i in 0..hangs {
            api.endpoint_with(
                &format!("{phase}-hang-{i}"),
                &format!("{base}/{phase}/hang/{i}"),
                &t,
                30,
            )
            .await?;
        }
    }
    Ok(())
}

impl Bench {
    /// The three phases, then the recovery.
    pub(crate) async fn noisy(&self, events: usize, rate: usize) -> Result<Value, BoxError> {
        println!(
            "\nnoisy neighbours: {FAST} fast endpoints, alone and beside 1 and 5 that hang past a 30 s timeout; {events} events each, {rate} a second, single ingest"
        );
        self.received.1.store(true, Ordering::SeqCst);
        let mut phases = serde_json::Map::new();
        for &(phase, hangs) in NOISY_PHASES {
            let r = self.noisy_phase(phase, events, rate).await?;
            println!(
                "{phase:<9} beside {hangs} hanging: {:>6.1} fast webhooks/s, p50 {:>8.0} ms, p99 {:>8.0} ms{}",
                r["fast_per_second"].as_f64().unwrap_or(f64::NAN),
                r["fast_latency_ms"]["p50"].as_f64().unwrap_or(f64::NAN),
                r["fast_latency_ms"]["p99"].as_f64().unwrap_or(f64::NAN),
                if r["complete"] == true {
                    ""
                } else {
                    " (not all arrived)"
                }
            );
            phases.insert(phase.to_owned(), r);
        }
        let alone = &phases["nn-alone"];
        let mut ratios = serde_json::Map::new();
        for &(phase, _) in &NOISY_PHASES[1..] {
            let p = &phases[phase];
            let rate_ratio = p["fast_per_second"].as_f64().unwrap_or(0.0)
                / alone["fast_per_second"].as_f64().unwrap_or(f64::NAN);
            let p99_ratio = p["fast_latency_ms"]["p99"].as_f64().unwrap_or(f64::NAN)
                / alone["fast_latency_ms"]["p99"].as_f64().unwrap_or(f64::NAN);
            println!(
                "{phase:<9} against alone: rate {rate_ratio:.2}x (target ≥ 0.90x), p99 {p99_ratio:.2}x (target ≤ 1.5x)"
            );
            ratios.insert(phase.to_owned(), json!({"rate": rate_ratio, "p99": p99_ratio}));
        }

        // Recovery: the hanging receivers answer at once from now on.
        self.received.1.store(false, Ordering::SeqCst);
        let want: usize = NOISY_PHASES.iter().map(|&(_, h)| h * events).sum();
        let started = Instant::now();
        let hung = || {
            NOISY_PHASES
                .iter()
                .map(|&(phase, _)| self.received.unique_under(&format!("/{phase}/hang/")))
                .sum::<usize>()
        };
        while hung() < want && started.elapsed() < PHASE_LIMIT {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let recovered = hung();
        let secs = started.elapsed().as_secs_f64();
        println!(
            "recovery: {recovered} of the hanging endpoints' {want} deliveries arrived {secs:.0} s after they recovered"
        );
        Ok(json!({
            "fast_endpoints": FAST, "events": events, "rate_per_second": rate,
            "phases": phases, "against_alone": ratios,
            "recovery": {"deliveries": want, "arrived": recovered, "seconds": secs},
        }))
    }

    async fn noisy_phase(&self, phase: &str, events: usize, rate: usize) -> Result<Value, BoxError> {
        let t = noisy_type(phase);
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
        let mut sent: HashMap<String, f64> = HashMap::new();
        let mut tasks = Vec::with_capacity(events);
        for i in 0..events {
            tick.tick().await;
            let id = format!("{phase}-{i:05}");
            sent.insert(id.clone(), now_ms());
            let (api, body) = (self.api.clone(), event(&id, &t, i));
            tasks.push(tokio::spawn(async move { api.send(&body).await.map(|_| ()) }));
        }
        for t in futures::future::join_all(tasks).await {
            t.map_err(|e| e.to_string())??;
        }
        let fast = format!("/{phase}/fast/");
        let started = Instant::now();
        while self.received.unique_under(&fast) < events * FAST && started.elapsed() < PHASE_LIMIT {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Each fast webhook's first arrival, from its event's send.
        let mut first: HashMap<(String, String), f64> = HashMap::new();
        for (id, path, at) in self.received.under(&fast) {
            let e = first.entry((id, path)).or_insert(at);
            *e = e.min(at);
        }
        let latency: Vec<f64> = first
            .iter()
            .filter_map(|((id, _), at)| sent.get(id).map(|t0| at - t0))
            .collect();
        let first_sent = sent.values().copied().fold(f64::INFINITY, f64::min);
        let last_in = first.values().copied().fold(f64::NEG_INFINITY, f64::max);
        let arrived = first.len();
        Ok(json!({
            "fast_webhooks": events * FAST, "arrived": arrived, "complete": arrived == events * FAST,
            "fast_per_second": arrived as f64 / ((last_in - first_sent) / 1000.0).max(1e-3),
            "fast_latency_ms": spread(latency),
        }))
    }
}
