//! `make bench`: Hookline's speed figures beside their baselines, measured on this
//! machine, printed and written as JSON. Benchmarks are not tests: they assert nothing
//! beyond "every webhook was delivered", and only send to 127.0.0.1.
//!
//!   bench coldstart [--runs N] [--json PATH]   (with the emulator: infra/with-emulator.sh)
//!   bench throughput [--events N] [--fanout F] [--rounds R] [--json PATH]
//!   bench e2e [--rate N] [--seconds S] [--events N] [--concurrency C] [--noisy-events N]
//!             [--noisy-rate N] [--sections counts,pace,keepup,scaling,noisy] [--dynamodb dynalite|moto] [--json PATH]
//!                       (latency and AWS requests on the local stack: see e2e.rs)
//!   bench receiver      (the HTTP receiver, run as a child process so that its CPU
//!                        time is not counted as the sender's)
//!
//! Cold start: see coldstart.rs.
//!
//! Delivery throughput: see throughput.rs.

use serde_json::{Value, json};

mod awsproxy;
mod billing;
mod coldstart;
mod e2e;
mod e2e_counts;
mod e2e_history;
mod e2e_load;
mod e2e_noisy;
mod e2e_report;
mod e2e_stack;
mod throughput;

use throughput::{BATCH, event, receiver, sqs_batch, throughput};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opt = |name: &str, default: usize| -> Result<usize, String> {
        match args.iter().position(|a| a == name) {
            Some(i) => args
                .get(i + 1)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{name} takes a number")),
            None => Ok(default),
        }
    };
    let json_path = args
        .iter()
        .position(|a| a == "--json")
        .and_then(|i| args.get(i + 1).cloned());
    let result = match args.first().map(String::as_str) {
        Some("receiver") => return receiver(),
        Some("throughput") => {
            // Logs as on Lambda (JSON lines on stdout): writing them is part of the cost.
            // SAFETY: set before any other thread exists.
            unsafe { std::env::set_var("HOOKLINE_LOG_FORMAT", "json") };
            hookline::telemetry::init_tracing();
            let events = opt("--events", 10_000)?;
            let fanout = opt("--fanout", 5)?;
            let rounds = opt("--rounds", 5)?;
            tokio::runtime::Runtime::new()?.block_on(throughput(
                events.max(BATCH),
                fanout.max(1),
                rounds.max(1),
            ))?
        }
        Some("e2e") => {
            let opts = e2e::Options {
                rate: opt("--rate", 100)?.max(1),
                seconds: opt("--seconds", 60)?.max(1),
                events: opt("--events", 200)?.max(10),
                concurrency: opt("--concurrency", 4)?.clamp(1, 20),
                noisy_events: opt("--noisy-events", 100)?.max(10),
                noisy_rate: opt("--noisy-rate", 10)?.max(1),
                sections: args
                    .iter()
                    .position(|a| a == "--sections")
                    .and_then(|i| args.get(i + 1))
                    .map_or("counts,pace,keepup,scaling,noisy", String::as_str)
                    .split(',')
                    .map(str::to_owned)
                    .collect(),
                dynamodb: args
                    .iter()
                    .position(|a| a == "--dynamodb")
                    .and_then(|i| args.get(i + 1))
                    .map_or("dynalite", String::as_str)
                    .to_owned(),
            };
            tokio::runtime::Runtime::new()?
                .block_on(e2e::run(opts))
                .map_err(|e| e.to_string())?
        }
        Some("coldstart") => {
            let runs = opt("--runs", 10)?;
            tokio::runtime::Runtime::new()?.block_on(cold_starts(runs.max(1)))?
        }
        _ => {
            return Err(
                "usage: bench coldstart [--runs N] [--json PATH] | bench throughput [--events N] [--fanout F] [--rounds R] [--json PATH] | bench e2e [--rate N] [--seconds S] [--events N] [--concurrency C] [--noisy-events N] [--noisy-rate N] [--sections counts,pace,keepup,scaling,noisy] [--dynamodb dynalite|moto] [--json PATH]"
                    .into(),
            );
        }
    };
    if let Some(path) = json_path {
        std::fs::write(&path, serde_json::to_string_pretty(&result)?)?;
        println!("written to {path}");
    }
    Ok(())
}

/// Each function's release binary, and the hello-world baseline, started `runs` times.
async fn cold_starts(runs: usize) -> Result<Value, Box<dyn std::error::Error>> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL")
        .map_err(|_| "coldstart needs the emulator: run it through infra/with-emulator.sh")?;
    let cfg = hookline::adapters::aws_config().await?;
    let (sqs, dynamo) = (
        aws_sdk_sqs::Client::new(&cfg),
        aws_sdk_dynamodb::Client::new(&cfg),
    );
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let template = devstack::template::load(&root.join("template.yaml"))?;
    let s3 = hookline::adapters::s3::S3Data::client(&cfg);
    let stack = devstack::provision::provision(&template, "bench", &sqs, &dynamo, &s3).await?;
    let env: Vec<(String, String)> = [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("HOOKLINE_STAGE", "local"),
        ("HOOKLINE_INGEST_KEY", "fixture-ingest-key"),
        ("HOOKLINE_ADMIN_KEY", "fixture-admin-key"),
        ("HOOKLINE_QUEUE_URL", stack.queue_url("DeliveryQueue")),
        ("HOOKLINE_DLQ_URL", stack.queue_url("DeliveryDLQ")),
        ("HOOKLINE_TABLE", stack.table("Table")),
        ("HOOKLINE_DATA_BUCKET", stack.bucket("DataBucket")),
        ("HOOKLINE_LOG_FORMAT", "json"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    // DynamoDB's own emulator (dynalite), where with-emulator.sh runs one.
    .chain(
        std::env::var("AWS_ENDPOINT_URL_DYNAMODB")
            .ok()
            .map(|url| ("AWS_ENDPOINT_URL_DYNAMODB".to_owned(), url)),
    )
    .collect();
    let fixture = |rel: &str| -> Result<Value, Box<dyn std::error::Error>> {
        Ok(serde_json::from_str(&std::fs::read_to_string(root.join(rel))?)?)
    };
    let ingest_event = fixture("functions/ingest/fixtures/apigw-post-event.json")?;
    let admin_event = fixture("functions/admin/fixtures/apigw-list-endpoints.json")?;
    println!(
        "cold start: {runs} starts of each release binary against a fake Runtime API (first invocation against the emulator)"
    );
    println!(
        "{:<10} {:>12} {:>16} {:>16} {:>22} {:>22}",
        "function", "bytes", "init p50 ms", "init p95 ms", "1st invocation p50 ms", "1st invocation p95 ms"
    );
    let mut out = serde_json::Map::new();
    let mut hello_init = 0.0;
    for name in ["hello", "ingest", "delivery", "sweeper", "admin"] {
        let binary = coldstart::release_binary(name);
        let bytes = std::fs::metadata(&binary)
            .map_err(|e| format!("{}: {e} (build it: cargo build --release)", binary.display()))?
            .len();
        let (mut init, mut first) = (Vec::new(), Vec::new());
        for i in 0..runs {
            let event = match name {
                "ingest" => ingest_event.clone(),
                "admin" => admin_event.clone(),
                // A fresh event each time, so each start fans one out.
                "delivery" => serde_json::to_value(sqs_batch(&[event(i)?])?)?,
                _ => json!({}),
            };
            let s = coldstart::measure_once(&binary, &event, &env).await?;
            init.push(s.init);
            first.push(s.first_invocation);
        }
        let mut summary = coldstart::summary(&mut init, &mut first);
        let p = |k: &str, q: &str| summary[k][q].as_f64().unwrap_or(0.0);
        let (init50, init95) = (p("init_ms", "p50"), p("init_ms", "p95"));
        let (first50, first95) = (p("first_invocation_ms", "p50"), p("first_invocation_ms", "p95"));
        if name == "hello" {
            hello_init = init50;
        }
        println!("{name:<10} {bytes:>12} {init50:>16.1} {init95:>16.1} {first50:>22.1} {first95:>22.1}");
        summary["bytes"] = json!(bytes);
        summary["init_vs_hello"] = json!(init50 / hello_init.max(1e-9));
        out.insert(name.to_owned(), summary);
    }
    println!(
        "no target (issue 22 retired them: init ≤ 20 ms was met, 1.5× the hello-world is the kernel's exec of a larger binary); a regression guard"
    );
    Ok(json!({ "cold_start": out }))
}
