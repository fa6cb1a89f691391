//! Made for agents: progress that collapses and expires, against a receiver that is
//! down for a while and comes back.

use crate::support::*;
use hookline::delivery::DeliveryStatus;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const RUNS: usize = 3;
const STEPS: usize = 5;

/// Pumps the queues until `done` holds, at most `secs` seconds; the delayed retries
/// become visible as their time comes.
async fn pump_until(h: &Harness, secs: u64, what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        h.pump().await;
        if done().await {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn statuses(h: &Harness, ids: &[hookline::EventId]) -> Vec<DeliveryStatus> {
    let mut out = Vec::new();
    for id in ids {
        out.extend(h.deliveries_of(id).await.into_iter().map(|(d, _)| d.status));
    }
    out
}

#[tokio::test]
async fn after_an_outage_only_the_newest_progress_per_key_arrives_and_expired_events_never_do() {
    // GIVEN a receiver that is down (500), and an endpoint retrying every second
    let h = Harness::new().await;
    let rx = Receiver::start().await;
    let down = Arc::new(AtomicBool::new(true));
    let d = down.clone();
    rx.behave("/agent", move |_| Answer::Respond {
        status: if d.load(Ordering::SeqCst) { 500 } else { 200 },
        body: String::new(),
        retry_after: None,
        delay: Duration::ZERO,
    });
    let body = json!({
        "name": "agent-ui", "url": rx.url("/agent"), "event_types": ["agent_processing", "agent_heartbeat"],
        "retry_schedule": [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
    });
    let r = h
        .call_admin("POST", "/v1/endpoints", Some(ADMIN_KEY), Some(&body.to_string()))
        .await;
    assert_eq!(r.status, 201, "{}", r.json);

    // WHEN three runs each report five steps of progress under their run's collapse key,
    // and two heartbeats that are worthless after 2 s are sent, all while it is down
    let t0 = hookline::Timestamp::now();
    let mut progress = vec![Vec::new(); RUNS];
    for step in 0..STEPS {
        for (run, sent) in progress.iter_mut().enumerate() {
            let at = t0.saturating_add(Duration::from_millis((step * RUNS + run) as u64));
            sent.push(
                h.send_event(&json!({
                    "event_type": "agent_processing", "data": {"run": run, "step": step},
                    "timestamp": at.to_rfc3339(), "collapse_key": format!("run-{run}:progress"),
                    "ttl_seconds": 600,
                }))
                .await,
            );
        }
    }
    let heartbeats = vec![
        h.send_event(&json!({"event_type": "agent_heartbeat", "data": {"n": 1}, "ttl_seconds": 2}))
            .await,
        h.send_event(&json!({"event_type": "agent_heartbeat", "data": {"n": 2}, "ttl_seconds": 2}))
            .await,
    ];
    h.pump().await;
    // The heartbeats' deliveries run out of time while it is down.
    pump_until(&h, 30, "the heartbeats to expire", async || {
        statuses(&h, &heartbeats).await == [DeliveryStatus::Expired; 2]
    })
    .await;

    // AND it comes back
    down.store(false, Ordering::SeqCst);
    let all: Vec<_> = progress.iter().flatten().cloned().collect();
    pump_until(&h, 60, "every progress delivery to end", async || {
        statuses(&h, &all).await.iter().all(|s| !s.is_open())
    })
    .await;

    // THEN of each run, only its newest step arrived, once; no heartbeat ever did
    let arrived: Vec<serde_json::Value> = rx
        .received("/agent")
        .iter()
        .filter(|r| r.answered == Some(200))
        .map(Received::json)
        .collect();
    let mut got: Vec<(u64, u64)> = arrived
        .iter()
        .map(|b| {
            (
                b["data"]["run"].as_u64().unwrap_or(99),
                b["data"]["step"].as_u64().unwrap_or(99),
            )
        })
        .collect();
    got.sort_unstable();
    let newest: Vec<(u64, u64)> = (0..RUNS as u64).map(|run| (run, STEPS as u64 - 1)).collect();
    assert_eq!(got, newest, "the newest step of each run, once each");
    assert!(arrived.iter().all(|b| b["event_type"] == "agent_processing"));
    assert!(
        arrived
            .iter()
            .all(|b| b["collapse_key"].is_string() && b["expires_at"].is_string())
    );
    // AND every older step ended superseded, visible in the log and the statistics
    for sent in &progress {
        let ended = statuses(&h, sent).await;
        assert_eq!(
            ended[..STEPS - 1],
            [DeliveryStatus::Superseded; STEPS - 1],
            "{ended:?}"
        );
        assert_eq!(ended[STEPS - 1], DeliveryStatus::Delivered);
    }
    let superseded = h
        .call_admin("GET", "/v1/deliveries?status=superseded", Some(ADMIN_KEY), None)
        .await;
    assert_eq!(
        superseded.json["data"].as_array().map(Vec::len),
        Some(RUNS * (STEPS - 1))
    );
    let stats = h
        .call_admin("GET", "/v1/stats?hours=1", Some(ADMIN_KEY), None)
        .await;
    let totals = &stats.json["totals"];
    assert_eq!(
        (
            totals["superseded"].as_u64(),
            totals["expired"].as_u64(),
            totals["delivered"].as_u64()
        ),
        (Some((RUNS * (STEPS - 1)) as u64), Some(2), Some(RUNS as u64)),
        "{}",
        stats.json
    );
    // AND an operator cannot send an expired or superseded delivery again
    let (expired, _) = h.deliveries_of(&heartbeats[0]).await.remove(0);
    let retry = h
        .call_admin(
            "POST",
            &format!("/v1/deliveries/{}/retry", expired.id),
            Some(ADMIN_KEY),
            None,
        )
        .await;
    assert_eq!(retry.status, 409, "{}", retry.json);
}
