//! The offered-load sections of `make bench`: events sent one by one at a steady rate to
//! one endpoint of their own, each timed from when it was due to when the receiver had
//! it, split into ingest (the POST's round trip), queue wait (from the 202 to the first
//! attempt's start, as recorded by delivery) and delivery (from that start to the
//! receiver's clock).
//!
//! - `keepup`: 100 events a second for 60 s: do they all arrive, and does the queue
//!   wait stay short (p99 ≤ 1 s)?
//! - `pace`: 5 a second, a human's pace: p50 ≤ 50 ms and p99 ≤ 150 ms in all.
//! - `scaling`: 25, 50, 100 and 200 a second, then the same with 100,000 deliveries
//!   already in the table (e2e_history.rs).

use crate::e2e_counts::invocations;
use crate::e2e_report::{met, spread};
use crate::e2e_stack::*;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The scaling table's offered rates (events a second) and each run's length.
const SCALING_RATES: [usize; 4] = [25, 50, 100, 200];
const SCALING_SECONDS: usize = 30;
/// What the history puts in the table before the scaling table's second half.
const HISTORY_DELIVERIES: usize = 100_000;

/// The endpoint (and event type) of each load run, registered with the others at start.
pub(crate) fn load_phases() -> Vec<String> {
    let mut names = vec!["keepup".to_owned(), "pace".to_owned()];
    for history in [false, true] {
        names.extend(SCALING_RATES.iter().map(|r| scaling_name(*r, history)));
    }
    names
}

fn scaling_name(rate: usize, history: bool) -> String {
    format!("scale{rate}{}", if history { "-full" } else { "" })
}

impl Bench {
    /// `rate` events a second for `seconds` to phase `name`'s endpoint; the figures.
    pub(crate) async fn offered(&self, name: &str, rate: usize, seconds: usize) -> Result<Value, BoxError> {
        let Self {
            api,
            proxy,
            received,
            stack,
            ..
        } = self;
        let (event_type, prefix) = (crate::e2e::phase_type(name), format!("/{name}/"));
        let total = rate * seconds;
        let runner_log = stack.log_len("runner.log");
        proxy.take_calls();
        let interval = Duration::from_secs_f64(1.0 / rate as f64);
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let sends = Arc::new(Mutex::new(HashMap::<String, (f64, f64)>::new()));
        let failures = Arc::new(Mutex::new(Vec::<String>::new()));
        // Open loop with a bound: at most 64 requests in flight. A send that waits for a
        // slot is timed from when it was due, so a stack that falls behind shows it.
        let slots = Arc::new(tokio::sync::Semaphore::new(64));
        let mut tasks = Vec::with_capacity(total);
        for i in 0..total {
            tick.tick().await;
            let due = now_ms();
            let id = format!("{name}-{i:06}");
            let body = event(&id, &event_type, i);
            let api = api.clone();
            let (sends, failures, slots) = (sends.clone(), failures.clone(), slots.clone());
            tasks.push(tokio::spawn(async move {
                let Ok(_slot) = slots.acquire().await else {
                    return;
                };
                match api.send(&body).await {
                    Ok((_, acked)) => {
                        if let Ok(mut s) = sends.lock() {
                            s.insert(id, (due, acked));
                        }
                    }
                    Err(e) => {
                        if let Ok(mut f) = failures.lock() {
                            f.push(e.to_string());
                        }
                    }
                }
            }));
        }
        futures::future::join_all(tasks).await;
        let failed = failures.lock().map(|f| f.clone()).unwrap_or_default();
        if let Some(e) = failed.first() {
            println!("  {} ingest requests failed; the first: {e}", failed.len());
        }
        // A stack that cannot keep up is reported, not waited for for ever; what is left
        // then is waited out (up to 5 min more) so that the next run starts on a quiet stack.
        let accepted = sends.lock().map(|s| s.len()).unwrap_or(0);
        if let Err(e) = settle(received, &prefix, accepted, proxy, Duration::from_secs(120)).await {
            println!("  {e}: the figures below are of those that arrived then");
        }
        let arrived = received.first_by_event(&prefix);
        let started = proxy.first_attempts();
        let calls = proxy.take_calls();
        // How fast the emulators answered under this load: when they fall behind, so does
        // every figure here.
        let mut emulators = serde_json::Map::new();
        for service in ["dynamodb", "sqs"] {
            let ms: Vec<f64> = calls
                .iter()
                .filter(|c| c.service == service)
                .map(|c| c.upstream_ms)
                .collect();
            emulators.insert(service.to_owned(), spread(ms));
        }
        let invoke_ms = invocations(stack, runner_log);
        let sends = sends.lock().map(|s| s.clone()).unwrap_or_default();
        let (mut ingest, mut wait, mut deliver, mut total_ms) = (vec![], vec![], vec![], vec![]);
        for (id, (t0, t1)) in &sends {
            let (Some(t3), Some(t2)) = (arrived.get(id), started.get(id)) else {
                continue;
            };
            let t2 = *t2 as f64;
            ingest.push(t1 - t0);
            // The attempt's start is in whole ms: the split is to the ms, the total exact.
            wait.push((t2 - t1).max(0.0));
            deliver.push((t3 - t2).max(0.0));
            total_ms.push(t3 - t0);
        }
        let arrived_count = total_ms.len();
        let first_due = sends.values().map(|(t0, _)| *t0).fold(f64::INFINITY, f64::min);
        let last_in = arrived.values().copied().fold(f64::NEG_INFINITY, f64::max);
        let sustained = arrived_count as f64 / ((last_in - first_due) / 1000.0).max(1e-3);
        if arrived_count < accepted {
            let _ = settle(received, &prefix, accepted, proxy, Duration::from_secs(300)).await;
        }
        Ok(json!({
            "events": total, "rate_per_second": rate, "seconds": seconds,
            "accepted": accepted, "arrived": arrived_count, "ingest_failures": failed.len(),
            "emulator_ms": emulators, "delivered_per_second": sustained,
            "ingest_ms": spread(ingest), "queue_wait_ms": spread(wait), "delivery_ms": spread(deliver),
            "total_ms": spread(total_ms),
            "delivery_invocations": invoke_ms.len(),
            "delivery_invoke_ms_mean": invoke_ms.iter().sum::<f64>() / invoke_ms.len().max(1) as f64,
        }))
    }

    /// 100 events a second (or `--rate`) for 60 s (`--seconds`): does the stack keep up?
    pub(crate) async fn keep_up(&self, rate: usize, seconds: usize) -> Result<Value, BoxError> {
        println!(
            "\nkeeping up: {} events, {rate} a second for {seconds} s, one endpoint, single ingest (DynamoDB on {})",
            rate * seconds,
            self.dynamodb
        );
        let out = self.offered("keepup", rate, seconds).await?;
        print_split(&out);
        let (arrived, total) = (
            out["arrived"].as_u64().unwrap_or(0),
            out["events"].as_u64().unwrap_or(0),
        );
        let wait_p99 = out["queue_wait_ms"]["p99"].as_f64().unwrap_or(f64::NAN);
        let delivered = out["delivered_per_second"].as_f64().unwrap_or(0.0);
        // Keeping up is also keeping pace: a stack whose ingest falls behind shows a short
        // queue wait and a long total.
        let kept_pace = delivered >= 0.95 * rate as f64;
        println!(
            "{arrived} of {total} arrived, {delivered:.0} events/s delivered; queue wait p99 {wait_p99:.0} ms (target: all arrive at the pace offered, queue wait p99 ≤ 1,000 ms: {}; before, 2026-12-02, DynamoDB on moto: 79 events/s, queue wait p50 9.5 s, p99 16.5 s)",
            met(arrived == total && kept_pace && wait_p99 <= 1000.0)
        );
        Ok(out)
    }

    /// 5 events a second for 60 s: the latency a person watching an agent sees.
    pub(crate) async fn pace(&self) -> Result<Value, BoxError> {
        println!("\nat a human's pace: 300 events, 5 a second for 60 s, one endpoint, single ingest");
        let out = self.offered("pace", 5, 60).await?;
        print_split(&out);
        let f = |q: &str| out["total_ms"][q].as_f64().unwrap_or(f64::NAN);
        println!(
            "total p50 {:.1} ms (target ≤ 50: {}), p99 {:.1} ms (target ≤ 150: {})",
            f("p50"),
            met(f("p50") <= 50.0),
            f("p99"),
            met(f("p99") <= 150.0)
        );
        Ok(out)
    }

    /// The scaling table: each rate on the table as it is, then again once the history
    /// is written to it (straight to DynamoDB at `dynamodb_url`).
    pub(crate) async fn scaling_table(&self, dynamodb_url: &str) -> Result<Value, BoxError> {
        scaling_header();
        let empty = self.scaling(false).await?;
        let hot: Vec<String> = SCALING_RATES.iter().map(|r| scaling_name(*r, true)).collect();
        let hot: Vec<&str> = hot.iter().map(String::as_str).collect();
        let took = crate::e2e_history::preload(&self.stack, dynamodb_url, &hot, HISTORY_DELIVERIES).await?;
        println!(
            "  ({HISTORY_DELIVERIES} deliveries written to the table in {:.1} s)",
            took.as_secs_f64()
        );
        let full = self.scaling(true).await?;
        Ok(json!({"empty_table": empty, "with_history": full, "history_deliveries": HISTORY_DELIVERIES}))
    }

    /// The scaling table's rows for one state of the table.
    async fn scaling(&self, history: bool) -> Result<Value, BoxError> {
        let mut rows = serde_json::Map::new();
        for rate in SCALING_RATES {
            let name = scaling_name(rate, history);
            let out = self.offered(&name, rate, SCALING_SECONDS).await?;
            let f = |k: &str, q: &str| out[k][q].as_f64().unwrap_or(f64::NAN);
            println!(
                "{:<22} {:>7} {:>11} {:>11.0} {:>11.0} {:>11.0} {:>11.0} {:>11.0} {:>9.1}",
                if history {
                    "100,000 in the table"
                } else {
                    "empty table"
                },
                rate,
                format!("{}/{}", out["arrived"], out["events"]),
                out["delivered_per_second"].as_f64().unwrap_or(0.0),
                f("ingest_ms", "p99"),
                f("queue_wait_ms", "p50"),
                f("queue_wait_ms", "p99"),
                f("total_ms", "p99"),
                out["emulator_ms"]["dynamodb"]["p99"].as_f64().unwrap_or(f64::NAN),
            );
            rows.insert(rate.to_string(), out);
        }
        Ok(Value::Object(rows))
    }
}

fn scaling_header() {
    println!(
        "\nhow it scales: each rate for {SCALING_SECONDS} s, one endpoint, single ingest; then {HISTORY_DELIVERIES} deliveries are written to the table and the rates run again (no target: the figures must not collapse; times in ms)\n{:<22} {:>7} {:>11} {:>11} {:>11} {:>11} {:>11} {:>11} {:>9}",
        "table",
        "offered",
        "arrived",
        "delivered/s",
        "ingest p99",
        "wait p50",
        "wait p99",
        "total p99",
        "DDB p99"
    );
}

fn print_split(out: &Value) {
    println!("{:<12} {:>9} {:>9} {:>9} {:>9}", "ms", "p50", "p95", "p99", "max");
    for (label, key) in [
        ("ingest", "ingest_ms"),
        ("queue wait", "queue_wait_ms"),
        ("delivery", "delivery_ms"),
        ("total", "total_ms"),
    ] {
        let s = &out[key];
        let f = |q: &str| s[q].as_f64().unwrap_or(f64::NAN);
        println!(
            "{label:<12} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
            f("p50"),
            f("p95"),
            f("p99"),
            f("max")
        );
    }
    for (service, name) in [("dynamodb", "DynamoDB"), ("sqs", "SQS")] {
        let s = &out["emulator_ms"][service];
        let f = |q: &str| s[q].as_f64().unwrap_or(f64::NAN);
        println!(
            "{name}: {} calls, answered in p50 {:.1} ms, p99 {:.1} ms",
            s["n"],
            f("p50"),
            f("p99")
        );
    }
}
