//! The end-to-end sections of `make bench`, on the local stack (`make dev`'s, started
//! here on free ports with release builds, several instances per function and several
//! queue pollers, its sweeper schedule held off, and every AWS call of the functions and
//! of the queue's runner going through the counting proxy of awsproxy.rs).
//!
//! - AWS requests per webhook (e2e_counts.rs): for fan-out 1 and 5, batch and single
//!   ingest, a named tenant, and an endpoint ordered by run, the SQS requests,
//!   DynamoDB requests and units per delivered webhook, then the cost per million
//!   webhooks at list prices from those counts and the measured durations.
//! - Offered load (e2e_load.rs): latency at a human's pace, whether the stack keeps up
//!   at 100 events a second, and how it scales, on an empty table and on one holding
//!   100,000 deliveries.
//! - Noisy neighbours: see e2e_noisy.rs.

use crate::awsproxy::Proxy;
use crate::e2e_counts::Phase;
use crate::e2e_report::*;
use crate::e2e_stack::*;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

pub struct Options {
    pub rate: usize,
    pub seconds: usize,
    pub events: usize,
    pub concurrency: usize,
    /// The noisy-neighbour section's events per phase, and their rate.
    pub noisy_events: usize,
    pub noisy_rate: usize,
    /// Which sections run: `counts`, `pace`, `keepup`, `scaling`, `noisy`.
    pub sections: Vec<String>,
    /// The stack's DynamoDB: `dynalite` (as `make dev` runs it) or `moto`.
    pub dynamodb: String,
}

pub async fn run(opts: Options) -> Result<Value, BoxError> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let root = root.canonicalize()?;
    let received = Received::default();
    let rx_port = start_receiver(received.clone()).await?;
    let (emulator_port, dynamodb_port, sqs_port) = (free_port()?, free_port()?, free_port()?);
    let dynamodb_url = match opts.dynamodb.as_str() {
        "moto" => format!("http://127.0.0.1:{emulator_port}"),
        _ => format!("http://127.0.0.1:{dynamodb_port}"),
    };
    let proxy = Proxy::start(
        &format!("http://127.0.0.1:{emulator_port}"),
        &dynamodb_url,
        &format!("http://127.0.0.1:{sqs_port}"),
    )
    .await
    .map_err(|e| e.to_string())?;
    println!(
        "local stack: release builds, {} instances per function and {} queue pollers, DynamoDB on {}, SQS on LocalStack, S3 on moto, every AWS call through a counting proxy (log: target/bench-stack.log)",
        opts.concurrency, opts.concurrency, opts.dynamodb
    );
    let ports = StackPorts {
        proxy: proxy.port,
        emulator: emulator_port,
        dynamodb: dynamodb_port,
        sqs: sqs_port,
    };
    let stack = Stack::start(&root, &ports, &opts.dynamodb, opts.concurrency).await?;
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
        .chain([(TIMING_PHASE.to_owned(), 1, false)])
        .chain(crate::e2e_load::load_phases().into_iter().map(|n| (n, 1, false)))
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
    // the offered-load runs after them, as they may leave the emulators behind.
    let bench = Bench {
        api,
        tenant_api,
        proxy,
        received,
        stack,
        dynamodb: opts.dynamodb.clone(),
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
    if run("pace") {
        out.insert("pace".into(), bench.pace().await?);
    }
    if run("keepup") {
        out.insert("keep_up".into(), bench.keep_up(opts.rate, opts.seconds).await?);
    }
    if run("scaling") {
        out.insert("scaling".into(), bench.scaling_table(&dynamodb_url).await?);
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
