//! Ordered lanes against DynamoDB (moto) and a real receiver: a run's events reach an
//! ordered endpoint one after another, through failures and out-of-order arrival.

use crate::support::*;
use hookline::Timestamp;
use hookline::event::EventKey;
use hookline::ids::{EndpointId, EventId, TenantId};
use hookline::memory::MemoryStore;
use hookline::ordering::{LanePlace, OrderingMode, Turn};
use hookline::ports::{LaneStore, TurnEnded, Waiter};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

fn place(position: u64) -> LanePlace {
    LanePlace {
        mode: OrderingMode::Run,
        key: "run-1".into(),
        position,
        previous_failed: false,
    }
}

fn key(id: &str) -> EventKey {
    EventKey::of_default(&EventId::parse(id).unwrap())
}

/// One call to a lane store (run lane `run-1` of `ep_lane`, thread `t-1`'s counter).
enum Step {
    Take(u64),
    Claim(u64, &'static str),
    Park(u64, &'static str),
    End(u64, bool),
    Skip(u64, u64),
}

/// The lane's story, step by step: the third event arrives first (waits, parks), the
/// second ends ahead of its turn; the first takes its turn (twice: the second time it
/// already holds it) and ends; the lane moves past the ended second to the waiting
/// third, which goes marked; a late end is behind; a gap (4) is skipped to 5, once, and
/// 4 arriving after is passed.
const STORY: &[Step] = &[
    Step::Take(3),
    Step::Take(2),
    Step::Claim(3, "evt_3"),
    Step::Park(3, "evt_3"),
    Step::End(2, true),
    Step::Claim(1, "evt_1"),
    Step::Claim(1, "evt_1"),
    Step::Park(1, "evt_1"),
    Step::End(1, false),
    Step::End(2, true),
    Step::Claim(3, "evt_3"),
    Step::End(1, false),
    Step::End(3, false),
    Step::Skip(5, 4),
    Step::Skip(5, 4),
    Step::Claim(5, "evt_5"),
    Step::Claim(4, "evt_4"),
];

/// What a lane store answered to each step of the story.
async fn steps(store: &impl LaneStore) -> Vec<String> {
    let ep = EndpointId::parse("ep_lane").unwrap();
    let now = Timestamp::from_unix_millis(1_795_935_600_000);
    let tenant = TenantId::default();
    let mut out = Vec::new();
    for step in STORY {
        let said = match *step {
            Step::Take(n) => format!(
                "{:?}",
                store
                    .take_positions(&tenant, OrderingMode::Thread, "t-1", n, now)
                    .await
            ),
            Step::Claim(p, id) => format!("{:?}", store.claim_turn(&ep, &place(p), &key(id), now).await),
            Step::Park(p, id) => format!("{:?}", store.park(&ep, &place(p), &key(id), now).await),
            Step::End(p, failed) => format!("{:?}", store.end_turn(&ep, &place(p), failed, now).await),
            Step::Skip(p, from) => format!("{:?}", store.skip_to(&ep, &place(p), from, now).await),
        };
        out.push(
            said.strip_prefix("Ok(")
                .and_then(|s| s.strip_suffix(')'))
                .unwrap_or(&said)
                .to_owned(),
        );
    }
    out
}

#[tokio::test]
async fn the_lane_store_on_dynamodb_answers_as_the_in_memory_one_does() {
    let h = Harness::new().await;
    let dynamo = steps(&h.store()).await;
    let memory = steps(&MemoryStore::default()).await;
    assert_eq!(dynamo, memory);
    // And what they answer is the lane's rule.
    assert_eq!(&memory[..2], ["1", "4"]);
    assert!(memory[2].starts_with("Wait(LaneState { next: 1"), "{}", memory[2]);
    assert_eq!(memory[4], format!("{:?}", TurnEnded::Kept));
    assert_eq!(
        memory[5],
        format!(
            "{:?}",
            Turn::Go {
                previous_failed: false
            }
        )
    );
    assert_eq!(
        memory[6],
        format!(
            "{:?}",
            Turn::Go {
                previous_failed: false
            }
        )
    );
    assert_eq!(
        memory[9],
        format!("{:?}", TurnEnded::Moved(Some(Waiter::Event(key("evt_3")))))
    );
    assert_eq!(
        memory[10],
        format!(
            "{:?}",
            Turn::Go {
                previous_failed: true
            }
        )
    );
    assert_eq!(memory[11], format!("{:?}", TurnEnded::Behind));
    assert_eq!((memory[13].as_str(), memory[14].as_str()), ("true", "false"));
    assert_eq!(
        memory[15],
        format!(
            "{:?}",
            Turn::Go {
                previous_failed: true
            }
        )
    );
    assert_eq!(memory[16], format!("{:?}", Turn::Passed));
}

const RUNS: u64 = 50;
const PER_RUN: u64 = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_events_over_fifty_runs_reach_an_ordered_endpoint_in_order_through_failures() {
    // GIVEN a receiver that answers 500 to 3 requests in 10, an endpoint ordered by
    // run and one not, both retrying every second
    let h = Harness::new().await;
    let rx = Receiver::start().await;
    for path in ["/ordered", "/plain"] {
        let n = Arc::new(AtomicU32::new(0));
        rx.behave(path, move |_| Answer::Respond {
            status: if n.fetch_add(1, Ordering::SeqCst) % 10 < 3 {
                500
            } else {
                200
            },
            body: String::new(),
            retry_after: None,
            delay: Duration::ZERO,
        });
    }
    let schedule = vec![1; 19];
    for (name, path, ordering) in [("timeline", "/ordered", "run"), ("firehose", "/plain", "none")] {
        let body =
            json!({"name": name, "url": rx.url(path), "retry_schedule": schedule, "ordering": ordering});
        let r = h
            .call_admin("POST", "/v1/endpoints", Some(ADMIN_KEY), Some(&body.to_string()))
            .await;
        assert_eq!(r.status, 201, "{}", r.json);
        assert_eq!(r.json["ordering"], ordering);
    }

    // WHEN 1,000 events of 50 runs are sent as the SDK sends them (`run_id`, `seq`),
    // in batches of 100, each run's events out of order within a batch
    let mut events = Vec::new();
    for seq in 1..=PER_RUN {
        for run in 0..RUNS {
            events.push(
                json!({"event_type": "node_completed", "data": {"run_id": format!("run-{run}"), "seq": seq}}),
            );
        }
    }
    let started = Instant::now();
    for chunk in events.chunks_mut(100) {
        chunk.reverse();
        h.send_batch(chunk).await;
    }
    let delivered = |path: &str| {
        let mut ok = std::collections::HashSet::new();
        for r in rx.received(path) {
            if r.answered == Some(200) {
                ok.insert(r.header("webhook-id"));
            }
        }
        ok.len() as u64
    };
    // Polled as Lambda's mapping does, by several pollers at once, until both have every
    // event.
    let handler = InProcess(h.deliverer.clone());
    let deadline = Instant::now() + Duration::from_secs(300);
    let plain_done = std::sync::Mutex::new(None);
    let poller = || async {
        while delivered("/ordered") < RUNS * PER_RUN || delivered("/plain") < RUNS * PER_RUN {
            assert!(
                Instant::now() < deadline,
                "timed out: ordered {}, plain {}",
                delivered("/ordered"),
                delivered("/plain")
            );
            if h.esm.poll_once(&handler).await.expect("poll").received == 0 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let mut done = plain_done.lock().unwrap();
            if done.is_none() && delivered("/plain") == RUNS * PER_RUN {
                *done = Some(started.elapsed());
            }
        }
    };
    tokio::join!(poller(), poller(), poller(), poller());
    let plain_done = plain_done.into_inner().unwrap();
    let ordered_done = started.elapsed();

    // THEN no request for a run's event went out before its predecessor was delivered
    let mut last_delivered: HashMap<String, u64> = HashMap::new();
    let mut requests = 0;
    for r in rx.received("/ordered") {
        requests += 1;
        let body = r.json();
        let run = body["data"]["run_id"].as_str().unwrap().to_owned();
        let seq = body["data"]["seq"].as_u64().unwrap();
        assert_eq!(body["order"]["run"], json!({"key": run, "position": seq}));
        let before = last_delivered.get(&run).copied().unwrap_or(0);
        assert!(
            seq == before || seq == before + 1,
            "{run}: seq {seq} sent after {before} was delivered"
        );
        assert!(body.get("previous_failed").is_none(), "nothing failed for good");
        if r.answered == Some(200) {
            last_delivered.insert(run, seq.max(before));
        }
    }
    assert_eq!(last_delivered.len() as u64, RUNS);
    assert!(last_delivered.values().all(|&s| s == PER_RUN));
    println!(
        "ordering: 1,000 events over 50 runs, {requests} requests to the ordered endpoint, {} to the unordered; \
         unordered all delivered in {:.1} s, ordered in {:.1} s",
        rx.received("/plain").len(),
        plain_done.unwrap_or(ordered_done).as_secs_f64(),
        ordered_done.as_secs_f64()
    );
}

#[tokio::test]
async fn a_threads_events_are_numbered_in_the_order_ingest_took_them_and_arrive_so() {
    // GIVEN an endpoint ordered by thread
    let h = Harness::new().await;
    let rx = Receiver::start().await;
    let body = json!({"name": "threads", "url": rx.url("/t"), "ordering": "thread"});
    let r = h
        .call_admin("POST", "/v1/endpoints", Some(ADMIN_KEY), Some(&body.to_string()))
        .await;
    assert_eq!(r.status, 201, "{}", r.json);

    // WHEN a thread's events come in two requests (a batch, then one alone), with
    // no `seq`, beside another thread's
    let batch: Vec<_> = (1..=4)
        .map(|i| json!({"event_type": "node_completed", "data": {"thread_id": "t-1", "n": i}}))
        .chain([json!({"event_type": "node_completed", "data": {"thread_id": "t-2", "n": 1}})])
        .collect();
    h.send_batch(&batch).await;
    h.send_event(&json!({"event_type": "node_completed", "data": {"thread_id": "t-1", "n": 5}}))
        .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while rx.received("/t").len() < 6 {
        assert!(
            Instant::now() < deadline,
            "timed out: {} received",
            rx.received("/t").len()
        );
        h.pump().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // THEN each thread's events carry positions from 1 in that order, and arrive in it
    let got: Vec<(String, u64, u64)> = rx
        .received("/t")
        .iter()
        .map(|r| {
            let b = r.json();
            let place = &b["order"]["thread"];
            (
                place["key"].as_str().unwrap().to_owned(),
                place["position"].as_u64().unwrap(),
                b["data"]["n"].as_u64().unwrap(),
            )
        })
        .collect();
    let t1: Vec<(u64, u64)> = got.iter().filter(|g| g.0 == "t-1").map(|g| (g.1, g.2)).collect();
    assert_eq!(t1, [(1, 1), (2, 2), (3, 3), (4, 4), (5, 5)]);
    assert!(got.contains(&("t-2".to_owned(), 1, 1)));
}
