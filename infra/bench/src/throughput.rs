//! Delivery throughput: the delivery handler (real signing, serialisation, the SSRF
//! resolver's client, bookkeeping through the in-memory store and queue ports, so the
//! figure is Hookline's and not the emulator's) processes SQS batches of 10 events
//! fanned out to F endpoints on a local receiver; the baseline is a bare reqwest loop
//! sending the same, already signed requests with the same concurrency, batch by batch.

use aws_lambda_events::event::sqs::SqsEvent;
use delivery_fn::{Deliverer, EndpointCache, Settings};
use futures::future::join_all;
use hookline::endpoint::{Endpoint, EventTypeFilter};
use hookline::event::{ENVELOPE_VERSION, Event, EventType};
use hookline::ids::{DeliveryId, EventId};
use hookline::memory::{MemoryQueue, MemoryStore};
use hookline::message::QueueMessage;
use hookline::ports::{EndpointStore, OutboundRequest, SystemClock};
use hookline::ssrf::SsrfPolicy;
use hookline::timestamp::Timestamp;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Events per SQS batch, as the event-source mapping sends them.
pub const BATCH: usize = 10;

/// Process CPU time (user + system, every thread) in seconds, from /proc/self/stat.
fn cpu_seconds() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    let ticks = *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<f64>().ok())
            .unwrap_or(100.0)
    });
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses: utime is the 12th, stime the 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) / ticks
}

/// The receiver: 200 "ok" to everything, on 127.0.0.1, until its stdin closes.
pub fn receiver() -> Result<(), Box<dyn std::error::Error>> {
    use http_body_util::{BodyExt, Full};
    use hyper::body::Bytes;
    use hyper_util::rt::TokioIo;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        println!("port {}", listener.local_addr()?.port());
        std::thread::spawn(|| {
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
            std::process::exit(0);
        });
        loop {
            let (stream, _) = listener.accept().await?;
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                        let _ = req.into_body().collect().await;
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                            Bytes::from_static(b"ok"),
                        )))
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

struct ReceiverProcess {
    child: Child,
    port: u16,
}

impl ReceiverProcess {
    fn start() -> Result<Self, Box<dyn std::error::Error>> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg("receiver")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().ok_or("no stdout")?).read_line(&mut line)?;
        let port = line
            .trim()
            .strip_prefix("port ")
            .and_then(|p| p.parse().ok())
            .ok_or("the receiver did not say its port")?;
        Ok(Self { child, port })
    }
}

impl Drop for ReceiverProcess {
    fn drop(&mut self) {
        drop(self.child.stdin.take()); // it exits when its stdin closes
        let _ = self.child.wait();
    }
}

fn endpoint(i: usize, port: u16) -> Endpoint {
    Endpoint::new(
        format!("bench-{i}"),
        format!("http://127.0.0.1:{port}/hooks/{i}"),
        vec![EventTypeFilter::All],
        Timestamp::now(),
    )
}

/// What a planning agent writes: the prose of the node outputs the bench sends.
const AGENT_PROSE: &str = "I reviewed the customer's ticket and the order history before deciding on a plan. \
The shipment left the warehouse on Tuesday but the carrier has not scanned it since Thursday morning. \
Two similar orders from the same region were delayed by a sorting backlog last week, which the carrier confirmed. \
First I will check whether the tracking number maps to the regional hub in Memphis or to the one in Louisville. \
If the parcel is still inside the hub, a replacement would arrive later than the original, so waiting is cheaper. \
The customer asked twice for a refund, and the policy allows one when a delivery is five business days late. \
Today is the fourth business day, so I will not issue the refund yet but will schedule a follow-up for tomorrow. \
I drafted a reply that apologises, explains the backlog, gives the new estimate and offers expedited shipping next time. \
The search tool returned three knowledge base articles; only the one about carrier delays applies to this case. \
Next I will call the carrier API for the latest scan, then update the ticket with the estimate and set a reminder. \
Finally I will hand the summary to the reviewer node, which checks tone and policy before anything is sent out. ";

/// An agent's event with about 1 KiB of data, as the cost model assumes: a node's
/// output of prose (a different part of it for each event), its run's ids and its
/// token counts, which compress as agents' JSON does, not as padding would.
pub fn agent_data(i: usize) -> Value {
    let start = (i * 97) % (AGENT_PROSE.len() - 560);
    let start = (start..).find(|&k| AGENT_PROSE.is_char_boundary(k)).unwrap_or(0);
    let mut end = start + 560;
    while !AGENT_PROSE.is_char_boundary(end) {
        end += 1;
    }
    // Ids that differ per run and per step, as random as UUIDs are.
    let mix = |x: u64| {
        let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let uuid = |x: u64| {
        let (a, b) = (mix(x), mix(x ^ 0xdead_beef));
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            (b >> 48) & 0xffff,
            b & 0xffff_ffff_ffff
        )
    };
    let run = (i / 20) as u64;
    json!({
        "run_id": uuid(run),
        "thread_id": uuid(run ^ 0x5555),
        "node": "plan",
        "step": i % 20,
        "checkpoint_id": uuid(i as u64 ^ 0xaaaa_0000),
        "output": {
            "role": "assistant",
            "content": &AGENT_PROSE[start..end],
            "tool_calls": [{"id": format!("call_{:016x}", mix(i as u64)), "name": "carrier_tracking", "args": {"tracking_number": format!("1Z{:016X}", mix(i as u64 + 7))}}]
        },
        "usage": {"input_tokens": 1200 + (mix(i as u64) % 800), "output_tokens": 100 + (mix(i as u64 + 1) % 200), "model": "gpt-4.1-mini"},
        "duration_ms": mix(i as u64 + 2) % 5000
    })
}

/// An agent's event with about 1 KiB of data, as the cost model assumes.
pub fn event(i: usize) -> Result<Event, Box<dyn std::error::Error>> {
    Ok(Event {
        id: EventId::generate(),
        tenant_id: Default::default(),
        event_type: EventType::parse("node_completed")?,
        data: agent_data(i),
        timestamp: Timestamp::now(),
        source: "bench".into(),
        version: ENVELOPE_VERSION.into(),
        expires_at: None,
        collapse_key: None,
        data_ref: None,
        order: None,
    })
}

pub fn sqs_batch(events: &[Event]) -> Result<SqsEvent, serde_json::Error> {
    let records: Vec<Value> = events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            json!({
                "messageId": format!("m-{}-{i}", e.id),
                "receiptHandle": format!("r-{}", e.id),
                "body": QueueMessage::EventV1 { event: e.clone() }.to_body(),
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": Timestamp::now().unix_millis().to_string()},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:bench",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records }))
}

/// Fresh endpoints, events and clients; the handler's loop first, then the bare loop's.
async fn round(events: usize, fanout: usize, port: u16) -> Result<Round, Box<dyn std::error::Error>> {
    let endpoints: Vec<Endpoint> = (0..fanout).map(|i| endpoint(i, port)).collect();
    let all: Vec<Event> = (0..events + BATCH).map(event).collect::<Result<_, _>>()?;
    let (warm, measured) = all.split_at(BATCH);
    let webhooks = measured.len() * fanout;

    // Hookline: the delivery handler, batch after batch, as one warm Lambda would.
    let store = MemoryStore::default();
    for e in &endpoints {
        store.create_endpoint(e).await?;
    }
    let deliverer = Deliverer {
        store,
        sender: hookline::adapters::http::HttpSender::new(SsrfPolicy::parse_allowed("127.0.0.0/8")?)?,
        queue: MemoryQueue::default(),
        clock: SystemClock,
        data: std::sync::Arc::new(hookline::memory::MemoryData::default()),
        endpoints: EndpointCache::new(Duration::from_secs(60)),
        settings: Settings::default(),
        // Every receiver here answers at once: the handler's own cost is the figure.
        slow_lane: None,
    };
    deliverer.handle(sqs_batch(warm)?).await;
    let batches: Vec<SqsEvent> = measured.chunks(BATCH).map(sqs_batch).collect::<Result<_, _>>()?;
    let (cpu0, t0) = (cpu_seconds(), Instant::now());
    for batch in batches {
        let res = deliverer.handle(batch).await;
        if !res.batch_item_failures.is_empty() {
            return Err(format!("{} records failed", res.batch_item_failures.len()).into());
        }
    }
    let (hook_secs, hook_cpu) = (t0.elapsed().as_secs_f64(), cpu_seconds() - cpu0);
    let retries = deliverer.queue.sent().len();
    if retries > 0 {
        return Err(format!("{retries} webhooks were not delivered at the first attempt").into());
    }

    // The baseline: the same requests, signed and built beforehand, which a bare reqwest
    // client only executes.
    let now = Timestamp::now().unix_seconds();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let build = |r: OutboundRequest| -> Result<reqwest::Request, reqwest::Error> {
        let mut req = client.post(&r.url).timeout(r.timeout).body(r.body).build()?;
        *req.headers_mut() = r.headers;
        Ok(req)
    };
    let mut batches = Vec::new();
    for chunk in std::iter::once(&measured[..BATCH]).chain(measured.chunks(BATCH)) {
        let mut batch = Vec::new();
        for e in chunk {
            let body = bytes::Bytes::from(e.envelope_json());
            for ep in &endpoints {
                let signed =
                    hookline::webhook::signed_request(e, body.clone(), ep, &DeliveryId::generate(), now);
                batch.push(build(signed)?);
            }
        }
        batches.push(batch);
    }
    let send = |r: reqwest::Request| {
        let sent = client.execute(r);
        async move { sent.await.map(|res| res.status().is_success()).unwrap_or(false) }
    };
    let mut batches = batches.into_iter();
    if let Some(warm) = batches.next() {
        join_all(warm.into_iter().map(send)).await; // the same warm connections
    }
    let (cpu0, t0) = (cpu_seconds(), Instant::now());
    let mut ok = 0;
    for batch in batches {
        ok += join_all(batch.into_iter().map(send))
            .await
            .into_iter()
            .filter(|s| *s)
            .count();
    }
    let (bare_secs, bare_cpu) = (t0.elapsed().as_secs_f64(), cpu_seconds() - cpu0);
    if ok != webhooks {
        return Err(format!("the bare loop delivered {ok} of {webhooks}").into());
    }
    Ok(Round {
        hook: (hook_secs, hook_cpu),
        bare: (bare_secs, bare_cpu),
    })
}

/// One round of each loop: seconds and CPU seconds, Hookline's then the bare loop's.
struct Round {
    hook: (f64, f64),
    bare: (f64, f64),
}

pub async fn throughput(
    events: usize,
    fanout: usize,
    rounds: usize,
) -> Result<Value, Box<dyn std::error::Error>> {
    let rx = ReceiverProcess::start()?;
    let webhooks = events * fanout;
    println!(
        "delivery throughput: {events} events × {fanout} endpoints = {webhooks} webhooks, SQS batches of {BATCH}, to a receiver on 127.0.0.1; {rounds} rounds of each loop, alternating, medians"
    );
    let mut all = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        all.push(round(events, fanout, rx.port).await?);
    }
    drop(rx);
    let median = |f: &dyn Fn(&Round) -> f64| {
        let mut v: Vec<f64> = all.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (hook_secs, hook_cpu) = (median(&|r| r.hook.0), median(&|r| r.hook.1));
    let (bare_secs, bare_cpu) = (median(&|r| r.bare.0), median(&|r| r.bare.1));
    let per_sec = |secs: f64| webhooks as f64 / secs;
    let us_per = |cpu: f64| cpu * 1e6 / webhooks as f64;
    println!("{:<26} {:>12} {:>18}", "", "webhooks/s", "CPU µs/webhook");
    println!(
        "{:<26} {:>12.0} {:>18.1}",
        "Hookline delivery handler",
        per_sec(hook_secs),
        us_per(hook_cpu)
    );
    println!(
        "{:<26} {:>12.0} {:>18.1}",
        "bare reqwest loop",
        per_sec(bare_secs),
        us_per(bare_cpu)
    );
    println!(
        "ratio {:.2}× the bare loop (no target: a regression guard; 0.63× on 2026-12-02); Hookline's own work (signing, serialisation, bookkeeping): {:.1} µs per webhook",
        per_sec(hook_secs) / per_sec(bare_secs),
        us_per(hook_cpu) - us_per(bare_cpu)
    );
    Ok(json!({
        "delivery_throughput": {
            "events": events, "fanout": fanout, "webhooks": webhooks, "batch": BATCH, "rounds": rounds,
            "hookline": {"seconds": hook_secs, "webhooks_per_second": per_sec(hook_secs), "cpu_us_per_webhook": us_per(hook_cpu)},
            "bare_reqwest": {"seconds": bare_secs, "webhooks_per_second": per_sec(bare_secs), "cpu_us_per_webhook": us_per(bare_cpu)},
            "ratio": per_sec(hook_secs) / per_sec(bare_secs),
            "each_round": all.iter().map(|r| json!({
                "hookline_webhooks_per_second": per_sec(r.hook.0), "hookline_cpu_us_per_webhook": us_per(r.hook.1),
                "bare_webhooks_per_second": per_sec(r.bare.0), "bare_cpu_us_per_webhook": us_per(r.bare.1),
            })).collect::<Vec<_>>(),
        }
    }))
}
