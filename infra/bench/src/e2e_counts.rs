//! Section 4 of `make bench`: the AWS requests, DynamoDB units, invocations and log
//! bytes per delivered webhook of one phase (its endpoints, and how its events are
//! sent), counted by the proxy (awsproxy.rs).

use crate::awsproxy::Call;
use crate::e2e::phase_type;
use crate::e2e_report::*;
use crate::e2e_stack::*;
use serde_json::{Value, json};
use std::time::Duration;

/// A counted phase: its endpoints (how many, whose, ordered by run or not) and how
/// its events are sent (in batches of 100, or one by one).
pub(crate) struct Phase<'a> {
    pub(crate) name: &'a str,
    pub(crate) fanout: usize,
    pub(crate) batch: bool,
    pub(crate) tenant: bool,
    pub(crate) ordered: bool,
}

/// The delivery invocations' durations (ms) in the queue runner's log since `from`.
pub(crate) fn invocations(stack: &Stack, from: u64) -> Vec<f64> {
    stack
        .log_since("runner.log", from)
        .lines()
        .filter(|l| l.contains("delivery: batch of"))
        .filter_map(|l| {
            l.split("invoke_ms=")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .and_then(|n| n.parse().ok())
        })
        .collect()
}

impl Bench {
    pub(crate) async fn count_phase(
        &self,
        phase: &Phase<'_>,
        events: usize,
        measure: bool,
    ) -> Result<Value, BoxError> {
        let &Phase {
            name,
            fanout,
            batch,
            tenant,
            ordered,
        } = phase;
        let Self {
            proxy,
            received,
            stack,
            ..
        } = self;
        let api = if tenant { &self.tenant_api } else { &self.api };
        let event_type = phase_type(name);
        let prefix = format!("/{name}/");
        proxy.take_calls();
        let (fn_log, runner_log) = (stack.log_len("functions.log"), stack.log_len("runner.log"));
        proxy.measure(measure);
        let bodies: Vec<Value> = (0..events)
            .map(|i| {
                let mut e = event(&format!("{name}-{i:05}"), &event_type, i);
                if ordered {
                    // Each run's steps 1 to 20 (`agent_data`'s runs are 20 steps long).
                    e["data"]["seq"] = json!(i % 20 + 1);
                }
                e
            })
            .collect();
        let mut ingest_ms = Vec::new();
        let mut ingest_requests = 0usize;
        if batch {
            for chunk in bodies.chunks(100) {
                ingest_ms.push(api.send_batch(chunk).await?);
                ingest_requests += 1;
            }
        } else {
            for group in bodies.chunks(10) {
                for r in futures::future::try_join_all(group.iter().map(|e| api.send(e))).await? {
                    ingest_ms.push(r.1 - r.0);
                    ingest_requests += 1;
                }
            }
        }
        settle(
            received,
            &prefix,
            events * fanout,
            proxy,
            Duration::from_secs(300),
        )
        .await?;
        proxy.measure(false);
        let calls = proxy.take_calls();
        let webhooks = (events * fanout) as f64;

        let invoke_ms = invocations(stack, runner_log);
        let log_bytes: u64 = stack
            .log_since("functions.log", fn_log)
            .lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| l.len() as u64 + 1)
            .sum();

        let per = |f: &dyn Fn(&Call) -> f64, service: &str| -> f64 {
            calls.iter().filter(|c| c.service == service).map(f).sum::<f64>() / webhooks
        };
        // Empty long polls are the pollers' idle cost (per minute, not per webhook).
        let busy = |c: &Call| !(c.op == "ReceiveMessage" && c.messages == 0);
        let sqs_per = calls
            .iter()
            .filter(|c| c.service == "sqs" && busy(c))
            .map(|c| c.billed_requests)
            .sum::<f64>()
            / webhooks;
        let mut by_op: std::collections::BTreeMap<String, f64> = std::collections::BTreeMap::new();
        for c in calls.iter().filter(|c| busy(c)) {
            *by_op.entry(format!("{} {}", c.service, c.op)).or_default() += 1.0 / webhooks;
        }
        let ingest_invocations = ingest_requests as f64;
        let delivery_invocations = invoke_ms.len() as f64;
        Ok(json!({
            "events": events, "fanout": fanout, "webhooks": webhooks, "ingest": if batch {"batch of 100"} else {"single"},
            "per_webhook": {
                "sqs_requests": sqs_per,
                "dynamodb_requests": per(&|c| c.billed_requests, "dynamodb"),
                "write_units": per(&|c| c.table_wcu + c.index_wcu, "dynamodb"),
                "table_write_units": per(&|c| c.table_wcu, "dynamodb"),
                "index_write_units": per(&|c| c.index_wcu, "dynamodb"),
                "read_units": per(&|c| c.rru, "dynamodb"),
                "api_requests": ingest_requests as f64 / webhooks,
                "lambda_invocations": (ingest_invocations + delivery_invocations) / webhooks,
                "ingest_gb_s": ingest_ms.iter().sum::<f64>() / 1000.0 * INGEST_GB / webhooks,
                // Only from a run that did not count (counting slows the writes down).
                "delivery_gb_s": invoke_ms.iter().sum::<f64>() / 1000.0 * DELIVERY_GB / webhooks,
                "log_bytes": (log_bytes as f64 + PLATFORM_LOG_BYTES as f64 * (ingest_invocations + delivery_invocations)) / webhooks,
            },
            "calls_per_webhook": by_op,
            "delivery_invocations": delivery_invocations,
            "delivery_invoke_ms_mean": invoke_ms.iter().sum::<f64>() / delivery_invocations.max(1.0),
            "ingest_ms_mean": ingest_ms.iter().sum::<f64>() / ingest_ms.len().max(1) as f64,
        }))
    }
}
