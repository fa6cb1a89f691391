//! Sections 3 and 4 of `make bench`, on the local stack (`make dev`'s, started here on
//! free ports with release builds, several instances per function and several queue
//! pollers, its sweeper schedule held off, and every AWS call of the functions and of
//! the queue's runner going through the counting proxy of awsproxy.rs).
//!
//! 3. End-to-end latency: events sent one by one at a steady rate to one endpoint on a
//!    receiver here; each split into ingest (the POST's round trip), queue wait (from
//!    the 202 to the first attempt's start, as recorded by delivery) and delivery (from
//!    that start to the receiver's clock).
//! 4. AWS requests per webhook (e2e_counts.rs): for fan-out 1 and 5, batch and single
//!    ingest, a named tenant, and an endpoint ordered by run, the SQS requests,
//!    DynamoDB requests and units per delivered webhook, then the cost per million
//!    webhooks at list prices from those counts and the measured durations.
//! 5. Noisy neighbours: see e2e_noisy.rs.

use crate::awsproxy::Proxy;
use crate::e2e_counts::{Phase, invocations};
use crate::e2e_report::*;
use crate::e2e_stack::*;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Options {
    pub rate: usize,
    pub seconds: usize,
    pub events: usize,
    pub concurrency: usize,
    /// The noisy-neighbour section's events per phase, and their rate.
    pub noisy_events: usize,
    pub noisy_rate: usize,
    /// Which sections run: `counts`, `latency`, `noisy`.
    pub sections: Vec<String>,
}

pub async fn run(opts: Options) -> Result<Value, BoxError> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let root = root.canonicalize()?;
    let received = Received::default();
    let rx_port = start_receiver(received.clone()).await?;
    let (emulator_port, sqs_port) = (free_port()?, free_port()?);
    let proxy = Proxy::start(
        &format!("http://127.0.0.1:{emulator_port}"),
        &format!("http://127.0.0.1:{sqs_port}"),
    )
    .await
    .map_err(|e| e.to_string())?;
    println!(
        "local stack: release builds, {} instances per function and {} queue pollers, DynamoDB on moto, SQS on LocalStack, every AWS call through a counting proxy (log: target/bench-stack.log)",
        opts.concurrency, opts.concurrency
    );
    let stack = Stack::start(&root, proxy.port, emulator_port, sqs_port, opts.concurrency).await?;
    let api = Api::new(
        reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(256)
            .timeout(Duration::from_secs(30))
            .build()?,
        stack.url.clone(),
    );
    // A named tenant's phases go through its key: what the tenant boundary costs.
    let tenant_api = api.tenant("bench").await?;

    // Every phase's endpoints, each phase with its own event type, registered at once:
    // one wait for the functions' endpoint caches (5 s) instead of one per phase.
    let base = format!("http://127.0.0.1:{rx_port}");
    api.endpoint("warm", &format!("{base}/warm"), "bench.warm")
        .await?;
    for (name, fanout, tenant) in COUNT_PHASES
        .iter()
        .map(|&(f, b, t)| (phase_name(f, b, t), f, t))
        .chain([
            (TIMING_PHASE.to_owned(), 1, false),
            (LATENCY_PHASE.to_owned(), 1, false),
        ])
    {
        let api = if tenant { &tenant_api } else { &api };
        for i in 0..fanout {
            api.endpoint(
                &format!("{name}-{i}"),
                &format!("{base}/{name}/{i}"),
                &phase_type(&name),
            )
            .await?;
        }
    }
    crate::e2e_noisy::register(&api, &base).await?;
    for batch in [true, false] {
        let name = ordered_name(batch);
        api.ordered_endpoint(
            &format!("{name}-0"),
            &format!("{base}/{name}/0"),
            &phase_type(&name),
        )
        .await?;
    }
    tokio::time::sleep(Duration::from_secs(6)).await;
    // Warm every instance: a burst wide enough to start each.
    let warm: Vec<Value> = (0..100)
        .map(|i| event(&format!("warm-{i}"), "bench.warm", i))
        .collect();
    futures::future::try_join_all(warm.iter().map(|e| api.send(e))).await?;
    settle(&received, "/warm", 100, &proxy, Duration::from_secs(300)).await?;
    proxy.take_calls();

    // The counts first, on a quiet stack; then the same fan-out-1 batch run again with
    // the proxy only forwarding, for Lambda's durations (counting serialises writes);
    // the latency run last, as it may leave the emulators behind.
    let bench = Bench {
        api,
        tenant_api,
        proxy,
        received,
        stack,
    };
    let run = |name: &str| opts.sections.iter().any(|s| s == name);
    let mut out = serde_json::Map::new();
    if run("counts") {
        let mut requests = serde_json::Map::new();
        for &(fanout, batch, tenant) in COUNT_PHASES {
            let name = phase_name(fanout, batch, tenant);
            let phase = Phase {
                name: &name,
                fanout,
                batch,
                tenant,
                ordered: false,
            };
            let r = bench.count_phase(&phase, opts.events, true).await?;
            requests.insert(name, r);
        }
        // An endpoint ordered by run, the events numbered by run as the SDK numbers them.
        for batch in [true, false] {
            let name = ordered_name(batch);
            let phase = Phase {
                name: &name,
                fanout: 1,
                batch,
                tenant: false,
                ordered: true,
            };
            let r = bench.count_phase(&phase, opts.events, true).await?;
            requests.insert(name, r);
        }
        print_requests(&requests);
        let timing = bench
            .count_phase(
                &Phase {
                    name: TIMING_PHASE,
                    fanout: 1,
                    batch: true,
                    tenant: false,
                    ordered: false,
                },
                opts.events,
                false,
            )
            .await?;
        out.insert(
            "cost_per_million".into(),
            cost(&requests["fanout1-batch"], &timing),
        );
        out.insert("aws_requests".into(), Value::Object(requests));
        out.insert("durations".into(), timing);
    }
    if run("latency") {
        out.insert("end_to_end_latency".into(), bench.latency(&opts).await?);
    }
    // Last: its hanging endpoints' retries may go on after it.
    if run("noisy") {
        out.insert(
            "noisy_neighbours".into(),
            bench.noisy(opts.noisy_events, opts.noisy_rate).await?,
        );
    }
    drop(bench);
    Ok(Value::Object(out))
}

/// The request counts' phases: (fan-out, batch ingest, a named tenant's key). The
/// default tenant's are the figures from before tenants; the named tenant's add what
/// its boundary costs (its key's and tenant's reads, its rate bucket's write).
const COUNT_PHASES: &[(usize, bool, bool)] = &[
    (1, true, false),
    (1, false, false),
    (5, true, false),
    (5, false, false),
    (1, true, true),
    (1, false, true),
];
/// Fan-out 1 with batch ingest again, the proxy only forwarding, for Lambda's durations.
const TIMING_PHASE: &str = "timing-fanout1-batch";
/// The latency run: one endpoint.
const LATENCY_PHASE: &str = "latency";

fn phase_name(fanout: usize, batch: bool, tenant: bool) -> String {
    let ingest = if batch { "batch" } else { "single" };
    match tenant {
        false => format!("fanout{fanout}-{ingest}"),
        true => format!("tenant{fanout}-{ingest}"),
    }
}

/// The phase of one endpoint ordered by run.
fn ordered_name(batch: bool) -> String {
    format!("ordered1-{}", if batch { "batch" } else { "single" })
}

/// Each phase's own event type, so that only its endpoints match its events.
pub(crate) fn phase_type(name: &str) -> String {
    format!("bench.{}", name.replace('-', "_"))
}

impl Bench {
    async fn latency(&self, opts: &Options) -> Result<Value, BoxError> {
        let Self {
            api,
            proxy,
            received,
            stack,
            ..
        } = self;
        let (event_type, prefix) = (phase_type(LATENCY_PHASE), format!("/{LATENCY_PHASE}/"));
        let total = opts.rate * opts.seconds;
        println!(
            "\nend-to-end latency: {total} events, {} a second for {} s, one endpoint, single ingest",
            opts.rate, opts.seconds
        );
        let runner_log = stack.log_len("runner.log");
        let interval = Duration::from_secs_f64(1.0 / opts.rate as f64);
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
            let id = format!("lat-{i:06}");
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
            println!("{} ingest requests failed; the first: {e}", failed.len());
        }
        // A stack that cannot keep up is reported, not waited for for ever.
        let accepted = sends.lock().map(|s| s.len()).unwrap_or(0);
        if let Err(e) = settle(received, &prefix, accepted, proxy, Duration::from_secs(120)).await {
            println!("{e}: the figures below are of those that arrived");
        }
        // How fast the emulators answered under this load: when they fall behind, so does
        // every figure below.
        let calls = proxy.take_calls();
        let mut emulators = serde_json::Map::new();
        for (service, name) in [("dynamodb", "DynamoDB (moto)"), ("sqs", "SQS (LocalStack)")] {
            let ms: Vec<f64> = calls
                .iter()
                .filter(|c| c.service == service)
                .map(|c| c.upstream_ms)
                .collect();
            let n = ms.len();
            let s = spread(ms);
            println!(
                "{name}: {n} calls, answered in p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms",
                s["p50"].as_f64().unwrap_or(f64::NAN),
                s["p95"].as_f64().unwrap_or(f64::NAN),
                s["p99"].as_f64().unwrap_or(f64::NAN)
            );
            emulators.insert(service.to_owned(), s);
        }
        // Lambda's bill is measured here, where the proxy only forwards: while it counts
        // units it serialises writes, which would lengthen every invocation.
        let invoke_ms = invocations(stack, runner_log);
        let arrived = received.first_by_event(&prefix);
        let started = proxy.first_attempts();
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
        println!(
            "{arrived_count} of {total} events arrived ({} ingest requests failed); the stack delivered {sustained:.0} events/s",
            failed.len()
        );
        let out = json!({
            "events": total, "rate_per_second": opts.rate, "seconds": opts.seconds,
            "accepted": accepted, "arrived": arrived_count, "ingest_failures": failed.len(),
            "emulator_ms": emulators, "delivered_per_second": sustained,
            "ingest_ms": spread(ingest), "queue_wait_ms": spread(wait), "delivery_ms": spread(deliver),
            "total_ms": spread(total_ms),
            "delivery_invocations": invoke_ms.len(),
            "delivery_invoke_ms_mean": invoke_ms.iter().sum::<f64>() / invoke_ms.len().max(1) as f64,
        });
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
        println!("target: total p99 ≤ 250 ms");
        Ok(out)
    }
}
