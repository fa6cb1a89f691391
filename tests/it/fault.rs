//! The fault test: many events to receivers that fail in every way a receiver can,
//! a delivery process killed in the middle of batches, and queue messages deleted
//! behind Hookline's back. Afterwards every (event, endpoint) must be `delivered` or
//! `failed` with its attempts on record; nothing may be lost.
//!
//! `make test` runs it small; `make soak` runs it with HOOKLINE_FAULT_EVENTS=10000.
//! The retry schedule, leases and visibility timeout are shortened by configuration.

use crate::support::*;
use async_trait::async_trait;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use delivery_fn::Settings;
use devstack::esm::{EsmError, SqsHandler};
use hookline::EventId;
use hookline::delivery::DeliveryStatus;
use hookline::message::QueueMessage;
use hookline::ports::DeliveryStore;
use hookline::retry::RetryDefaults;
use serde_json::json;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};
use sweeper_fn::SweepSettings;

/// The receivers, each behind its own path: what it does, and how its deliveries end.
const RECEIVERS: &[(&str, DeliveryStatus)] = &[
    ("/ok", DeliveryStatus::Delivered),
    ("/flaky-500", DeliveryStatus::Delivered),
    ("/busy-503-retry-after", DeliveryStatus::Delivered),
    ("/throttled-429", DeliveryStatus::Delivered),
    ("/hangs-past-timeout", DeliveryStatus::Delivered),
    ("/resets-connection", DeliveryStatus::Delivered),
    ("/slow", DeliveryStatus::Delivered),
    ("/always-500", DeliveryStatus::Failed),
];

fn behave(rx: &Receiver) {
    let respond = |status: u16, retry_after: Option<u64>, delay_ms: u64| Answer::Respond {
        status,
        body: String::new(),
        retry_after,
        delay: Duration::from_millis(delay_ms),
    };
    rx.behave("/flaky-500", move |n| {
        if n < 2 {
            respond(500, None, 0)
        } else {
            respond(200, None, 0)
        }
    });
    rx.behave("/busy-503-retry-after", move |n| {
        if n < 1 {
            respond(503, Some(1), 0)
        } else {
            respond(204, None, 0)
        }
    });
    rx.behave("/throttled-429", move |n| {
        if n < 1 {
            respond(429, None, 0)
        } else {
            respond(200, None, 0)
        }
    });
    rx.behave("/hangs-past-timeout", move |n| {
        if n < 1 {
            respond(200, None, 2500)
        } else {
            respond(200, None, 0)
        }
    });
    rx.behave("/resets-connection", move |n| {
        if n < 1 {
            Answer::Reset
        } else {
            respond(200, None, 0)
        }
    });
    rx.behave("/slow", move |_| respond(200, None, 300));
    rx.behave("/always-500", move |_| respond(500, None, 0));
    rx.behave("/gone", move |_| respond(410, None, 0));
}

/// The delivery function, killed in the middle of every `kill_every`-th batch while
/// `killing` is on: its work so far stays done, and SQS brings the batch back.
struct Killer {
    inner: InProcess,
    calls: AtomicU32,
    kill_every: u32,
    killing: Arc<AtomicBool>,
    kills: AtomicU32,
}

#[async_trait]
impl SqsHandler for Killer {
    async fn invoke(&self, event: SqsEvent) -> Result<SqsBatchResponse, EsmError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        let deliverer = self.inner.0.clone();
        let task = tokio::spawn(async move { deliverer.handle(event).await });
        if self.killing.load(Ordering::SeqCst) && n % self.kill_every == self.kill_every - 1 {
            tokio::time::sleep(Duration::from_millis(15)).await;
            task.abort();
            self.kills.fetch_add(1, Ordering::SeqCst);
            return Err(EsmError::Invoke("killed in the middle of the batch".into()));
        }
        task.await.map_err(|e| EsmError::Invoke(e.to_string()))
    }
}

fn options() -> Options {
    Options {
        settings: Settings {
            lease: Duration::from_secs(3),
            concurrency: 32,
            retry: RetryDefaults {
                schedule: vec![
                    Duration::ZERO,
                    Duration::from_secs(1),
                    Duration::from_secs(1),
                    Duration::from_secs(2),
                ],
                floor: Duration::from_secs(1),
                retry_after_max: Duration::from_secs(2),
            },
            // Waits over 1 s keep their message hidden, so that path is exercised too.
            max_delay: Duration::from_secs(1),
            max_receives: 100,
            disable_after: Duration::from_secs(3600),
            // Under the endpoints' 1 s timeout, so that the slow and hanging receivers
            // are handed to the slow lane, and back, while everything else goes on.
            inline_deadline: Duration::from_millis(500),
            ..Settings::default()
        },
        sweep: SweepSettings {
            grace: Duration::from_secs(6),
            lease: Duration::from_secs(3),
            ..SweepSettings::default()
        },
        visibility_timeout: Some(Duration::from_secs(5)),
        endpoint_cache: Duration::from_secs(2),
        // The stray consumer below receives (and hands back) event messages too, and
        // every receive counts towards maxReceiveCount: with the template's 10, a long
        // run can dead-letter an event before it is tried — a different fault (tested on
        // its own: the DLQ drain) from the one this test is about.
        max_receive_count: Some(100),
        ..Options::default()
    }
}

/// Deletes visible attempt messages as a stray consumer would; other messages go back.
async fn delete_behind_our_back(h: &Harness) -> u32 {
    let url = h.stack.queue_url("DeliveryQueue");
    let Ok(out) = h
        .sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .send()
        .await
    else {
        return 0;
    };
    let mut deleted = 0;
    for m in out.messages() {
        let receipt = m.receipt_handle().unwrap_or_default();
        let is_attempt = matches!(
            QueueMessage::from_body(m.body().unwrap_or_default()),
            Ok(QueueMessage::AttemptV1 { .. })
        );
        if is_attempt {
            let _ = h
                .sqs
                .delete_message()
                .queue_url(url)
                .receipt_handle(receipt)
                .send()
                .await;
            deleted += 1;
        } else {
            let _ = h
                .sqs
                .change_message_visibility()
                .queue_url(url)
                .receipt_handle(receipt)
                .visibility_timeout(0)
                .send()
                .await;
        }
    }
    deleted
}

async fn visible_depth(h: &Harness) -> u64 {
    let out = h
        .sqs
        .get_queue_attributes()
        .queue_url(h.stack.queue_url("DeliveryQueue"))
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .expect("queue attributes");
    out.attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[derive(Default, Debug)]
struct Tally {
    pairs: usize,
    delivered: usize,
    failed: usize,
    attempts: usize,
    lost: Vec<String>,
    wrong: Vec<String>,
}

/// Every (event, endpoint) pair that should exist, by the endpoint's path.
async fn account(h: &Harness, events: &[(EventId, &'static str)], paths: &HashMap<String, String>) -> Tally {
    let store = h.store();
    let expected: HashMap<&str, DeliveryStatus> = RECEIVERS.iter().copied().collect();
    let mut t = Tally::default();
    for (id, path) in events {
        let recorded = store
            .deliveries_for_event(&hookline::event::EventKey::of_default(id))
            .await
            .expect("deliveries");
        let by_path: HashMap<&str, _> = recorded
            .iter()
            .map(|(d, a)| {
                (
                    paths
                        .get(d.endpoint_id.as_str())
                        .map(String::as_str)
                        .unwrap_or("?"),
                    (d, a),
                )
            })
            .collect();
        for want in ["/ok", path] {
            t.pairs += 1;
            match by_path.get(want) {
                Some((d, attempts)) if !d.status.is_open() => {
                    t.attempts += attempts.len();
                    match d.status {
                        DeliveryStatus::Delivered => t.delivered += 1,
                        _ => t.failed += 1,
                    }
                    if attempts.is_empty() || attempts.len() as u32 != d.attempts {
                        t.wrong.push(format!(
                            "{id} {want}: {} attempts recorded, delivery says {}",
                            attempts.len(),
                            d.attempts
                        ));
                    }
                    if Some(&d.status) != expected.get(want).or(Some(&DeliveryStatus::Failed)) {
                        t.wrong
                            .push(format!("{id} {want}: {:?} ({:?})", d.status, d.failure_reason));
                    }
                }
                Some((d, _)) => t.lost.push(format!("{id} {want}: still {:?}", d.status)),
                None => t.lost.push(format!("{id} {want}: no delivery")),
            }
        }
    }
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn under_every_fault_every_event_is_accounted_for() {
    let var = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let total = var("HOOKLINE_FAULT_EVENTS", 48) as usize;
    // moto's Query reads its whole table on every call, so a long run goes in rounds of
    // this many events, each on a fresh stack, to keep the emulator's cost flat.
    let per_round = var("HOOKLINE_FAULT_ROUND", 500).max(10) as usize;
    let limit = Duration::from_secs(var("HOOKLINE_FAULT_SECONDS", 150));
    let started = Instant::now();
    let mut all = RoundOutcome::default();
    let mut round = 0;
    while all.events < total {
        let events = per_round.min(total - all.events);
        let remaining = limit.saturating_sub(started.elapsed());
        let r = fault_round(round, events, remaining).await;
        all.add(&r);
        round += 1;
    }
    println!(
        "fault test, all {round} rounds: {} events, {} deliveries ({} delivered, {} failed), {} attempts recorded, \
         {} requests received, {} duplicates after a success, {} killed batches, {} messages deleted behind our back, \
         lost = {}, {:.1} s",
        all.events,
        all.tally.pairs,
        all.tally.delivered,
        all.tally.failed,
        all.tally.attempts,
        all.requests,
        all.duplicates,
        all.kills,
        all.deleted,
        all.tally.lost.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        all.tally.lost.is_empty(),
        "lost: {:?}",
        &all.tally.lost[..all.tally.lost.len().min(20)]
    );
    assert!(
        all.tally.wrong.is_empty(),
        "wrong: {:?}",
        &all.tally.wrong[..all.tally.wrong.len().min(20)]
    );
}

#[derive(Default)]
struct RoundOutcome {
    events: usize,
    tally: Tally,
    requests: usize,
    duplicates: u32,
    kills: u32,
    deleted: u32,
}

impl RoundOutcome {
    fn add(&mut self, r: &RoundOutcome) {
        self.events += r.events;
        self.tally.pairs += r.tally.pairs;
        self.tally.delivered += r.tally.delivered;
        self.tally.failed += r.tally.failed;
        self.tally.attempts += r.tally.attempts;
        self.tally.lost.extend(r.tally.lost.iter().cloned());
        self.tally.wrong.extend(r.tally.wrong.iter().cloned());
        self.requests += r.requests;
        self.duplicates += r.duplicates;
        self.kills += r.kills;
        self.deleted += r.deleted;
    }
}

/// One round: its own stack, receivers and events (`fault-<round>-<i>`).
async fn fault_round(round: usize, total: usize, limit: Duration) -> RoundOutcome {
    let started = Instant::now();

    // GIVEN one receiver per kind of failure, each subscribed to its own event type,
    // and one that always answers, subscribed to everything
    let h = Harness::with(options()).await;
    let rx = Receiver::start().await;
    behave(&rx);
    let mut paths: HashMap<String, String> = HashMap::new();
    let mut kinds: Vec<&'static str> = RECEIVERS
        .iter()
        .map(|(p, _)| *p)
        .filter(|p| *p != "/ok")
        .collect();
    kinds.push("/gone");
    for path in kinds.iter().chain(["/ok"].iter()) {
        let filter = if *path == "/ok" {
            "test.*".to_owned()
        } else {
            format!("test{}", path.replace('-', "_").replace('/', "."))
        };
        let body = json!({
            "name": path, "url": rx.url(path), "event_types": [filter],
            "timeout_seconds": 1, "max_attempts": if *path == "/always-500" { 3 } else { 8 }
        })
        .to_string();
        let r = h
            .call_admin("POST", "/v1/endpoints", Some(ADMIN_KEY), Some(&body))
            .await;
        assert_eq!(r.status, 201, "{}", r.json);
        paths.insert(r.json["id"].as_str().unwrap().to_owned(), (*path).to_owned());
    }

    // Event i goes to /ok and to one failure kind; /gone gets exactly one event.
    let plan: Vec<&'static str> = (0..total)
        .map(|i| {
            if i == 0 {
                "/gone"
            } else {
                kinds[(i - 1) % (kinds.len() - 1)]
            }
        })
        .collect();

    let killing = Arc::new(AtomicBool::new(true));
    let killer = Arc::new(Killer {
        inner: InProcess(h.deliverer.clone()),
        calls: AtomicU32::new(0),
        kill_every: 9,
        killing: killing.clone(),
        kills: AtomicU32::new(0),
    });
    let h = Arc::new(h);
    let stop = Arc::new(AtomicBool::new(false));

    // Four pollers, as Lambda would run concurrent batches, and two on the slow lane.
    let mut pollers = tokio::task::JoinSet::new();
    for slow in [false, false, false, false, true, true] {
        let (h, killer, stop) = (h.clone(), killer.clone(), stop.clone());
        pollers.spawn(async move {
            let esm = if slow { h.slow_esm.as_ref() } else { Some(&h.esm) };
            let Some(esm) = esm else { return };
            while !stop.load(Ordering::SeqCst) {
                match esm.poll_once(killer.as_ref()).await {
                    Ok(s) if s.received == 0 => tokio::time::sleep(Duration::from_millis(50)).await,
                    _ => {}
                }
            }
        });
    }

    // A stray consumer, competing with the pollers, deletes some attempt messages.
    let to_delete = (total as u32 / 10).max(3);
    let stray = {
        let (h, stop) = (h.clone(), stop.clone());
        tokio::spawn(async move {
            let mut deleted = 0;
            while deleted < to_delete && !stop.load(Ordering::SeqCst) {
                deleted += delete_behind_our_back(&h).await;
            }
            deleted
        })
    };

    // WHEN the events are sent in waves that keep the queue shallow, while the
    // sweeper runs
    let mut sent: Vec<(EventId, &'static str)> = Vec::with_capacity(total);
    let mut sweeps = 0;
    let mut last_sweep = Instant::now();
    let mut next = 0;
    let mut settled = false;
    while started.elapsed() < limit {
        if next < total && visible_depth(&h).await < 200 {
            let wave: Vec<serde_json::Value> = (next..(next + 100).min(total))
                .map(|i| {
                    let t = format!("test{}", plan[i].replace('-', "_").replace('/', "."));
                    json!({"id": format!("fault-{round}-{i}"), "event_type": t, "data": {"i": i}})
                })
                .collect();
            let r = h
                .call_ingest(
                    "POST",
                    "/v1/events/batch",
                    Some(INGEST_KEY),
                    Some(&json!({"events": wave}).to_string()),
                )
                .await;
            assert_eq!(r.status, 202, "{}", r.json);
            assert_eq!(r.json["failed"], 0, "{}", r.json);
            let end = (next + 100).min(total);
            for (i, kind) in plan.iter().enumerate().take(end).skip(next) {
                sent.push((EventId::parse(&format!("fault-{round}-{i}")).unwrap(), *kind));
            }
            next = (next + 100).min(total);
        }
        if next == total && started.elapsed() > limit / 3 {
            killing.store(false, Ordering::SeqCst);
        }
        if last_sweep.elapsed() > Duration::from_secs(2) {
            let r = h.sweeper().sweep().await.expect("sweep");
            sweeps += 1;
            if sweeps % 10 == 0 {
                eprintln!(
                    "fault test, round {round}: {:.0} s, {next}/{total} events sent, {} open deliveries, queue {}+{}+{} (visible, in flight, delayed), {} re-driven",
                    started.elapsed().as_secs_f64(),
                    r.open_deliveries,
                    r.queue_visible,
                    r.queue_in_flight,
                    r.queue_delayed,
                    r.redriven
                );
            }
            last_sweep = Instant::now();
            // Quiet: nothing open, nothing queued. Then account for every pair (once:
            // it reads every event's deliveries).
            let quiet = r.open_deliveries == 0 && r.queue_visible + r.queue_in_flight + r.queue_delayed == 0;
            if next == total && quiet && account(&h, &sent, &paths).await.lost.is_empty() {
                settled = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.store(true, Ordering::SeqCst);
    while pollers.join_next().await.is_some() {}
    let deleted = stray.await.unwrap_or(0);

    // THEN every pair is delivered or failed with its attempts logged, and nothing is lost
    let t = account(&h, &sent, &paths).await;
    let received = rx.all_received();
    let ids: HashSet<String> = sent.iter().map(|(id, _)| id.to_string()).collect();
    let mut per_pair: BTreeMap<(String, String), u32> = BTreeMap::new();
    let mut ok_per_pair: BTreeMap<(String, String), u32> = BTreeMap::new();
    for r in &received {
        let id = r.header("webhook-id");
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
        if !id.starts_with("hookline.") {
            assert!(ids.contains(&id), "an unknown webhook-id {id}");
            assert_eq!(body["id"], id.as_str(), "the body's id is the webhook-id");
        }
        *per_pair.entry((r.path.clone(), id.clone())).or_default() += 1;
        if r.answered.is_some_and(|s| (200..300).contains(&s)) {
            *ok_per_pair.entry((r.path.clone(), id)).or_default() += 1;
        }
    }
    let duplicates: u32 = ok_per_pair.values().map(|n| n - 1).sum();
    println!(
        "fault test, round {round}: {} events, {} deliveries ({} delivered, {} failed), {} attempts recorded, {} requests received, \
         {} duplicates after a success, {} killed batches, {} messages deleted behind our back, {} sweeps, lost = {}, \
         wrong = {}, {:.1} s",
        sent.len(),
        t.pairs,
        t.delivered,
        t.failed,
        t.attempts,
        received.len(),
        duplicates,
        killer.kills.load(Ordering::SeqCst),
        deleted,
        sweeps,
        t.lost.len(),
        t.wrong.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(settled || t.lost.is_empty(), "not settled within {limit:?}");
    assert_eq!(sent.len(), total);
    assert!(t.lost.is_empty(), "lost: {:?}", &t.lost[..t.lost.len().min(20)]);
    assert!(
        t.wrong.is_empty(),
        "wrong: {:?}",
        &t.wrong[..t.wrong.len().min(20)]
    );
    assert!(
        killer.kills.load(Ordering::SeqCst) > 0,
        "the test must kill at least one batch"
    );
    // The endpoint that answered 410 was disabled, and the operator endpoint-less setup
    // still recorded why.
    let gone_id = paths
        .iter()
        .find(|(_, p)| p.as_str() == "/gone")
        .map(|(id, _)| id.clone())
        .unwrap();
    let gone = h
        .call_admin("GET", &format!("/v1/endpoints/{gone_id}"), Some(ADMIN_KEY), None)
        .await;
    assert_eq!(gone.json["status"], "disabled", "{}", gone.json);
    // Every delivered pair got at least one success at its receiver.
    for (id, path) in &sent {
        for want in ["/ok", path] {
            if want != "/always-500" && want != "/gone" {
                assert!(
                    ok_per_pair.contains_key(&(want.to_string(), id.to_string())),
                    "{id} {want} never succeeded"
                );
            }
        }
    }
    RoundOutcome {
        events: sent.len(),
        requests: received.len(),
        duplicates,
        kills: killer.kills.load(Ordering::SeqCst),
        deleted,
        tally: t,
    }
}
