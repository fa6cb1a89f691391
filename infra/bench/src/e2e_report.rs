//! The end-to-end sections' figures: spreads of timings, the requests per webhook, and
//! the cost per million webhooks at list prices.

use serde_json::{Value, json};

/// List prices, us-east-1, as of 2026-11 (AWS pricing pages).
pub(crate) mod price {
    /// HTTP API, per request (first 300 million a month).
    pub const API_REQUEST: f64 = 1.00 / 1e6;
    /// Lambda arm64, per GB-second and per request.
    pub const LAMBDA_GB_S: f64 = 0.000_013_333_4;
    pub const LAMBDA_REQUEST: f64 = 0.20 / 1e6;
    /// SQS standard, per request (each 64 KiB chunk of a payload is one).
    pub const SQS_REQUEST: f64 = 0.40 / 1e6;
    /// DynamoDB on demand, per write and read request unit.
    pub const WRU: f64 = 0.625 / 1e6;
    pub const RRU: f64 = 0.125 / 1e6;
    /// CloudWatch Logs, per GB ingested (standard class).
    pub const LOG_GB: f64 = 0.50;
}
/// Memory of the functions in template.yaml (GB).
pub(crate) const INGEST_GB: f64 = 0.25;
pub(crate) const DELIVERY_GB: f64 = 0.5;
/// Lambda's own START, END and REPORT lines per invocation (bytes, text format).
pub(crate) const PLATFORM_LOG_BYTES: u64 = 300;

pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub(crate) fn spread(mut v: Vec<f64>) -> Value {
    v.sort_by(f64::total_cmp);
    json!({"p50": percentile(&v, 50.0), "p95": percentile(&v, 95.0), "p99": percentile(&v, 99.0), "max": v.last().copied().unwrap_or(f64::NAN), "n": v.len()})
}

/// Waits until `want` webhooks arrived under `prefix` and the proxy has answered no call
/// for a second and has none in hand (the deliveries' writes and the queue's deletes
/// come after the last webhook, and a write may wait its turn for longer than that).
pub(crate) fn print_requests(r: &serde_json::Map<String, Value>) {
    println!("\nAWS requests per delivered webhook (1 KiB events; the pollers' empty long polls left out)");
    println!(
        "{:<16} {:>8} {:>9} {:>11} {:>11} {:>10} {:>10}",
        "", "SQS req", "DDB req", "write units", "(indexes)", "read units", "log bytes"
    );
    for (name, v) in r {
        let p = &v["per_webhook"];
        let f = |k: &str| p[k].as_f64().unwrap_or(f64::NAN);
        println!(
            "{name:<16} {:>8.3} {:>9.2} {:>11.2} {:>11.2} {:>10.2} {:>10.0}",
            f("sqs_requests"),
            f("dynamodb_requests"),
            f("write_units"),
            f("index_write_units"),
            f("read_units"),
            f("log_bytes")
        );
    }
    for (name, v) in r {
        let ops: Vec<String> = v["calls_per_webhook"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, n)| format!("{k} {:.2}", n.as_f64().unwrap_or(0.0)))
                    .collect()
            })
            .unwrap_or_default();
        println!("  {name}: {}", ops.join(", "));
    }
    for ingest in ["batch", "single"] {
        // What the tenant boundary costs: a named tenant's phase beside the default tenant's.
        print_beside(
            r,
            &format!("tenant1-{ingest}"),
            &format!("fanout1-{ingest}"),
            &format!("a named tenant's key, {ingest} ingest, beside the default tenant's"),
            &[
                ("dynamodb_requests", "DynamoDB requests"),
                ("write_units", "write units"),
                ("read_units", "read units"),
            ],
        );
    }
    for ingest in ["batch", "single"] {
        // What ordering costs: an endpoint ordered by run beside an unordered one.
        print_beside(
            r,
            &format!("ordered1-{ingest}"),
            &format!("fanout1-{ingest}"),
            &format!("an endpoint ordered by run, {ingest} ingest, beside an unordered one"),
            &[
                ("sqs_requests", "SQS requests"),
                ("dynamodb_requests", "DynamoDB requests"),
                ("write_units", "write units"),
                ("read_units", "read units"),
            ],
        );
    }
    let units = |name: &str| {
        r.get(name)
            .and_then(|v| v["per_webhook"]["write_units"].as_f64())
            .unwrap_or(f64::NAN)
    };
    println!(
        "write units per webhook: fan-out 1, batch ingest {:.2} (before 2.03; the floor ≈ 1.0 is the event's item, the rest its share of a page and of the counters), fan-out 5 {:.2} (before 1.23; target ≤ 1.1: {})",
        units("fanout1-batch"),
        units("fanout5-batch"),
        met(units("fanout5-batch") <= 1.1)
    );
}

/// Phase `name`'s figures per webhook less phase `against`'s, one line, when both ran.
fn print_beside(
    r: &serde_json::Map<String, Value>,
    name: &str,
    against: &str,
    label: &str,
    fields: &[(&str, &str)],
) {
    let (Some(p), Some(base)) = (r.get(name), r.get(against)) else {
        return;
    };
    let diff = |k: &str| {
        p["per_webhook"][k].as_f64().unwrap_or(f64::NAN) - base["per_webhook"][k].as_f64().unwrap_or(f64::NAN)
    };
    let parts: Vec<String> = fields
        .iter()
        .map(|(k, what)| format!("{:+.3} {what}", diff(k)))
        .collect();
    println!("{label}: {} per webhook", parts.join(", "));
}

/// How a figure stands against its target.
pub(crate) fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "not met" }
}

pub(crate) fn cost(phase: &Value, timing: &Value) -> Value {
    let p = &phase["per_webhook"];
    let f = |k: &str| {
        // Lambda's durations from the run that only forwarded.
        let from = if k.ends_with("_gb_s") {
            &timing["per_webhook"]
        } else {
            p
        };
        from[k].as_f64().unwrap_or(0.0)
    };
    let m = 1e6;
    let lines = [
        ("API Gateway HTTP API", f("api_requests") * price::API_REQUEST * m),
        (
            "Lambda (arm64 GB-s + requests)",
            ((f("ingest_gb_s") + f("delivery_gb_s")) * price::LAMBDA_GB_S
                + f("lambda_invocations") * price::LAMBDA_REQUEST)
                * m,
        ),
        ("SQS", f("sqs_requests") * price::SQS_REQUEST * m),
        ("DynamoDB writes", f("write_units") * price::WRU * m),
        ("DynamoDB reads", f("read_units") * price::RRU * m),
        ("CloudWatch Logs", f("log_bytes") / 1e9 * price::LOG_GB * m),
    ];
    let total: f64 = lines.iter().map(|(_, c)| c).sum();
    println!(
        "\ncost per million webhooks, fan-out 1, batch ingest (list prices, us-east-1; Lambda's GB-s from the run that only forwarded)"
    );
    for (name, c) in &lines {
        println!("  {name:<32} ${c:>7.3}");
    }
    println!(
        "  {:<32} ${total:>7.3}   (target ≤ $1.00: {}; before $1.62)",
        "total",
        met(total <= 1.0)
    );
    println!(
        "  not per webhook: DynamoDB storage ($0.25/GB-month, kept RetentionDays), the queue pollers' empty polls, custom metrics"
    );
    json!({
        "lines": lines.iter().map(|(n, c)| json!({"item": n, "usd": c})).collect::<Vec<_>>(),
        "total_usd": total,
    })
}
