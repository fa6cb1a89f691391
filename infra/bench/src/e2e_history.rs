//! A week of history for the scaling table's second half: deliveries written straight to
//! the stack's table (past the counting proxy) by the same adapter code the delivery
//! function records them with (ids made 25 events to a batch, as an invocation makes
//! them), so that the log partitions and the `open` index hold what they would after
//! real use.

use crate::e2e_stack::{BoxError, Stack};
use hookline::adapters::dynamo::DynamoStore;
use hookline::delivery::{Attempt, AttemptOutcome, Delivery, DeliveryStatus};
use hookline::event::EventType;
use hookline::id_batch::DeliveryIdBatch;
use hookline::ids::{DeliveryId, EndpointId, EventId};
use hookline::ports::{DeliveryStore, EndpointStore};
use hookline::timestamp::Timestamp;
use std::time::{Duration, Instant};

/// How many deliveries go in one call to the store (it writes them 25 to a request).
const CHUNK: usize = 500;
/// How many events' deliveries share a batch of ids, as one delivery invocation's do
/// (the store keeps those of a batch to one endpoint that ended at once in a page).
const BATCH: usize = 25;

/// Writes `count` deliveries over the last 7 days: half to the `hot` endpoints' logs
/// (the ones measured next), half spread over every endpoint; 94 % delivered at the
/// first attempt, 5 % failed after 8, 1 % retrying (open, in the `open` index, due in
/// hours). Returns how long it took.
pub(crate) async fn preload(
    stack: &Stack,
    dynamodb_url: &str,
    hot: &[&str],
    count: usize,
) -> Result<Duration, BoxError> {
    let started = Instant::now();
    let table = stack_env(stack, "HOOKLINE_TABLE")?;
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "dev", "dev", None, None, "bench",
        ))
        .endpoint_url(dynamodb_url)
        .http_client(hookline::adapters::aws_http::AwsHttpClient::new()?)
        .build();
    let store = DynamoStore::new(
        aws_sdk_dynamodb::Client::from_conf(config),
        table,
        Duration::from_secs(30 * 86_400),
    );
    let endpoints = store.all_endpoints().await?;
    let all: Vec<(EndpointId, String)> = endpoints
        .iter()
        .map(|e| {
            (
                e.id.clone(),
                e.event_types.first().map(|t| t.to_string()).unwrap_or_default(),
            )
        })
        .collect();
    let hot: Vec<&(EndpointId, String)> = all
        .iter()
        .filter(|(_, t)| hot.iter().any(|h| t == &crate::e2e::phase_type(h)))
        .collect();
    if all.is_empty() || hot.is_empty() {
        return Err("no endpoints to give a history to".into());
    }
    let now = Timestamp::now().unix_millis();
    let week = 7 * 86_400_000i64;
    let mut made: Vec<(Delivery, Attempt)> = Vec::with_capacity(CHUNK);
    let mut batch = DeliveryIdBatch::new(Timestamp::from_unix_millis(now - week));
    for i in 0..count {
        let (endpoint, event_type) = if i % 2 == 0 {
            hot[(i / 2) % hot.len()]
        } else {
            &all[(i / 2) % all.len()]
        };
        let at = Timestamp::from_unix_millis(now - week + (i as i64 * week) / count as i64);
        let event_type = EventType::parse(event_type).map_err(|e| e.to_string())?;
        if i % BATCH == 0 {
            batch = DeliveryIdBatch::new(at);
        }
        let id = batch.for_targets([endpoint]).remove(0);
        made.push(history_delivery(i, id, endpoint, event_type, at)?);
        if made.len() == CHUNK || i + 1 == count {
            let records: Vec<(&Delivery, Option<&Attempt>)> =
                made.iter().map(|(d, a)| (d, Some(a))).collect();
            store.record_attempts(&records).await?;
            made.clear();
        }
    }
    Ok(started.elapsed())
}

fn history_delivery(
    i: usize,
    id: DeliveryId,
    endpoint: &EndpointId,
    event_type: EventType,
    at: Timestamp,
) -> Result<(Delivery, Attempt), BoxError> {
    let event_id = EventId::parse(&format!("history-{i:07}")).map_err(|e| e.to_string())?;
    let mut d = Delivery::new(event_id, endpoint.clone(), event_type, 8, at);
    d.id = id;
    let ok = AttemptOutcome::Response {
        status: 200,
        body: "ok".into(),
        retry_after_seconds: None,
    };
    let refused = AttemptOutcome::Response {
        status: 503,
        body: "unavailable".into(),
        retry_after_seconds: None,
    };
    let (status, outcome) = match i % 100 {
        0 => (DeliveryStatus::Retrying, refused),
        1..=5 => (DeliveryStatus::Failed, refused),
        _ => (DeliveryStatus::Delivered, ok),
    };
    d.status = status;
    d.attempts = if status == DeliveryStatus::Failed { 8 } else { 1 };
    d.last_status_code = outcome.status_code();
    d.last_error = outcome.error_text();
    d.next_attempt_at = (status == DeliveryStatus::Retrying)
        .then(|| Timestamp::from_unix_millis(Timestamp::now().unix_millis() + 3 * 3_600_000));
    if status == DeliveryStatus::Failed {
        d.failure_reason = Some("no attempts left".into());
    }
    d.updated_at = at;
    let attempt = Attempt {
        number: 1,
        started_at: at,
        duration_ms: 12,
        outcome,
    };
    Ok((d, attempt))
}

fn stack_env(stack: &Stack, name: &str) -> Result<String, BoxError> {
    let env = std::fs::read_to_string(stack.state.join("stack.env"))?;
    env.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
        .map(str::to_owned)
        .ok_or_else(|| format!("{name} is not in the stack's stack.env").into())
}
