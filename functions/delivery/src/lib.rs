//! The delivery function: SQS records in, signed POSTs out, every attempt recorded.
//!
//! Two kinds of message arrive. An *event* message fans out: the handler claims the
//! event (so a redelivered or duplicated message never fans out twice), POSTs to every
//! matching endpoint at once and records one delivery and one attempt per endpoint.
//! An *attempt* message wakes one delivery for its next try. A failed attempt with
//! tries left gets its next attempt message, delayed by SQS (`DelaySeconds`, up to
//! 15 min); a longer wait keeps the current attempt message and hides it with
//! `ChangeMessageVisibility` (up to 12 h a hop), reported as a batch item failure so
//! SQS brings it back then. A message that arrives early goes back to sleep the same
//! way. Only the message whose wake token matches the delivery's may act, and every
//! write is conditional on the attempt count it read, so duplicates and redeliveries
//! never regress a delivery.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use futures::{StreamExt, stream};
use hookline::config::{ConfigError, Env, retention, ssrf_policy};
use hookline::delivery::{Attempt, Delivery, DeliveryStatus};
use hookline::endpoint::{Endpoint, EndpointStatus};
use hookline::event::Event;
use hookline::ids::{DeliveryId, EndpointId};
use hookline::message::{self, QueueMessage};
use hookline::ops;
use hookline::ports::{
    Clock, DeliveryStore, EndpointStore, EventStore, FanoutClaim, MAX_QUEUE_DELAY, MAX_VISIBILITY, PortError,
    PortResult, Queue, RateLimiter, StatsStore, WebhookSender,
};
use hookline::retry::{RetryDefaults, Verdict, parse_schedule};
use hookline::ssrf::SsrfPolicy;
use hookline::stats::StatsBatch;
use hookline::telemetry::{Metrics, Unit};
use hookline::webhook::signed_request;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::Instrument;

/// Fan-outs' deliveries are written together once this many have gathered: what one
/// BatchWriteItem takes.
const WRITE_TOGETHER: usize = 25;

/// A message may act this much before its time: SQS never delivers early, so this
/// only absorbs clock skew and rounding.
const EARLY_TOLERANCE: Duration = Duration::from_secs(1);

/// How delivery behaves; every knob comes from the environment.
#[derive(Clone, Debug)]
pub struct Settings {
    /// How long a worker holds an event's fan-out or a delivery's attempt.
    pub lease: Duration,
    /// POSTs in flight at once per invocation.
    pub concurrency: usize,
    pub retry: RetryDefaults,
    /// Waits up to this go through `DelaySeconds`; longer ones keep the message hidden.
    pub max_delay: Duration,
    /// The queue's `maxReceiveCount`: a kept message must stay well under it.
    pub max_receives: u32,
    /// An endpoint failing this long with no success is disabled.
    pub disable_after: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(180),
            concurrency: 100,
            retry: RetryDefaults::default(),
            max_delay: MAX_QUEUE_DELAY,
            max_receives: 10,
            disable_after: Duration::from_secs(5 * 86_400),
        }
    }
}

fn secs_in(env: &mut Env, name: &str, default: Duration, range: std::ops::RangeInclusive<u64>) -> Duration {
    let d = default.as_secs();
    Duration::from_secs(env.parsed_with(name, d, |s| match s.parse::<u64>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(format!(
            "must be whole seconds from {} to {}",
            range.start(),
            range.end()
        )),
    }))
}

impl Settings {
    pub fn from_env(env: &mut Env) -> Self {
        let d = Settings::default();
        let mut retry = RetryDefaults::default();
        retry.schedule = env.parsed_with("HOOKLINE_RETRY_SCHEDULE", retry.schedule, parse_schedule);
        retry.floor = secs_in(env, "HOOKLINE_RETRY_FLOOR_SECONDS", retry.floor, 0..=3600);
        retry.retry_after_max = secs_in(
            env,
            "HOOKLINE_RETRY_AFTER_MAX_SECONDS",
            retry.retry_after_max,
            1..=86_400,
        );
        Self {
            lease: secs_in(env, "HOOKLINE_LEASE_SECONDS", d.lease, 1..=900),
            concurrency: env.parsed_with("HOOKLINE_DELIVERY_CONCURRENCY", d.concurrency, |s| {
                match s.parse() {
                    Ok(n) if (1..=256).contains(&n) => Ok(n),
                    _ => Err("must be from 1 to 256".into()),
                }
            }),
            retry,
            max_delay: secs_in(env, "HOOKLINE_MAX_DELAY_SECONDS", d.max_delay, 0..=900),
            max_receives: env.parsed_with("HOOKLINE_QUEUE_MAX_RECEIVES", d.max_receives, |s| {
                match s.parse() {
                    Ok(n) if (3..=1000).contains(&n) => Ok(n),
                    _ => Err("must be the queue's maxReceiveCount, 3 to 1000".into()),
                }
            }),
            disable_after: secs_in(
                env,
                "HOOKLINE_DISABLE_AFTER_SECONDS",
                d.disable_after,
                1..=90 * 86_400,
            ),
        }
    }
}

#[derive(Debug)]
pub struct Config {
    pub table: String,
    pub queue_url: String,
    pub retention: Duration,
    pub ssrf: SsrfPolicy,
    pub endpoint_cache: Duration,
    pub settings: Settings,
}

impl Config {
    pub fn from_env(mut env: Env) -> Result<Self, ConfigError> {
        let table = env.required("HOOKLINE_TABLE");
        let queue_url = env.required("HOOKLINE_QUEUE_URL");
        let retention = retention(&mut env);
        let ssrf = ssrf_policy(&mut env);
        let endpoint_cache = Duration::from_secs(env.parsed_or("HOOKLINE_ENDPOINT_CACHE_SECONDS", 5u64));
        let settings = Settings::from_env(&mut env);
        env.finish()?;
        Ok(Self {
            table,
            queue_url,
            retention,
            ssrf,
            endpoint_cache,
            settings,
        })
    }
}

/// The endpoints as last read, each shared by the deliveries that use it.
type Endpoints = Arc<Vec<Arc<Endpoint>>>;

/// Endpoints, kept for a few seconds across warm invocations. One read refreshes them
/// however many events of a batch ask at once: the others wait for it.
pub struct EndpointCache {
    ttl: Duration,
    entry: tokio::sync::Mutex<Option<(Instant, Endpoints)>>,
}

impl EndpointCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entry: tokio::sync::Mutex::new(None),
        }
    }

    async fn all(&self, store: &impl EndpointStore) -> PortResult<Endpoints> {
        let mut entry = self.entry.lock().await;
        if let Some((at, eps)) = entry.as_ref()
            && at.elapsed() < self.ttl
        {
            return Ok(eps.clone());
        }
        let fresh: Endpoints = Arc::new(store.all_endpoints().await?.into_iter().map(Arc::new).collect());
        *entry = Some((Instant::now(), fresh.clone()));
        Ok(fresh)
    }

    /// One endpoint; one the cache does not know yet is read from the store.
    async fn one(&self, store: &impl EndpointStore, id: &EndpointId) -> PortResult<Option<Arc<Endpoint>>> {
        if let Some(e) = self.all(store).await?.iter().find(|e| &e.id == id) {
            return Ok(Some(e.clone()));
        }
        Ok(store.get_endpoint(id).await?.map(Arc::new))
    }
}

pub struct Deliverer<S, H, Q, C> {
    pub store: S,
    pub sender: H,
    pub queue: Q,
    pub clock: C,
    pub endpoints: EndpointCache,
    pub settings: Settings,
}

/// What became of one SQS record.
#[derive(Debug)]
enum Disposition {
    Done,
    /// Leave it on the queue: SQS brings it back after its visibility timeout.
    Again(PortError),
    /// Hide it this long, then SQS brings it back.
    Sleep(Duration),
    /// Its attempts are made; done once its deliveries are written, which happens
    /// for the whole batch at once.
    Record(Box<Fanned>),
}

/// A fan-out whose attempts are made, waiting for its deliveries to be written with
/// the batch's others: one BatchWriteItem carries up to 25 of any of its events.
#[derive(Debug)]
struct Fanned {
    event: Event,
    attempted: Vec<(Arc<Endpoint>, Delivery, Attempt, Verdict)>,
    /// Over their endpoint's rate limit: pending, their attempt waits its turn.
    waiting: Vec<Delivery>,
    /// Their endpoint was deleted or disabled since the claim.
    gone: Vec<Delivery>,
}

impl Fanned {
    fn records(&self) -> impl Iterator<Item = (&Delivery, Option<&Attempt>)> {
        self.attempted
            .iter()
            .map(|(_, d, a, _)| (d, Some(a)))
            .chain(self.waiting.iter().chain(&self.gone).map(|d| (d, None)))
    }
}

/// What becomes of a record: kept beats hidden beats done, and a longer hide wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Keep {
    Done,
    Sleep(Duration),
    Again,
}

/// Where a fan-out sends, under the delivery id its claim named: an endpoint, or one
/// gone since the event was claimed (with the reason its delivery fails).
enum Target {
    Send(Arc<Endpoint>, DeliveryId),
    Gone(EndpointId, DeliveryId, String),
}

enum Work {
    Event(Event),
    Attempt {
        event: Event,
        endpoint_id: EndpointId,
        wake: String,
    },
    Unreadable,
    /// A message type this version does not know: a newer version's, kept for it.
    Newer,
}

/// What handling a batch produces besides its dispositions: operational events to
/// send and statistics to add, both written once at the batch's end.
#[derive(Default)]
struct Outputs {
    ops: Vec<Event>,
    stats: StatsBatch,
    /// Attempt latencies by (outcome, status class): one EMF line each per invocation
    /// rather than one per attempt (a quarter of the log bytes of a webhook).
    attempts: BTreeMap<(&'static str, &'static str), Vec<f64>>,
}

/// The batch's attempt metrics, as EMF lines of at most 100 samples.
fn emit_attempt_metrics(attempts: &BTreeMap<(&'static str, &'static str), Vec<f64>>) {
    for ((outcome, status_class), latencies) in attempts {
        for chunk in latencies.chunks(100) {
            Metrics::new()
                .dimension("Outcome", *outcome)
                .dimension("StatusClass", *status_class)
                .rollup(&["Outcome"])
                .rollup(&[])
                .metric("Attempts", chunk.len() as f64, Unit::Count)
                .samples("AttemptLatency", chunk, Unit::Milliseconds)
                .emit();
        }
    }
}

/// The metrics' `StatusClass` of an attempt: `2xx`, `4xx` …, or `error` when no answer
/// came. Static strings: one per attempt would otherwise be formatted.
fn status_class(status: Option<u16>) -> &'static str {
    const CLASSES: [&str; 10] = [
        "0xx", "1xx", "2xx", "3xx", "4xx", "5xx", "6xx", "7xx", "8xx", "9xx",
    ];
    status
        .and_then(|s| CLASSES.get(usize::from(s / 100)))
        .copied()
        .unwrap_or("error")
}

/// One invocation's shared state: its outputs, and the POSTs it may have in flight.
struct OpsOut {
    out: Mutex<Outputs>,
    /// `concurrency` POSTs at once for the whole invocation, however many events its
    /// records carry (a packed batch holds up to 100).
    posts: tokio::sync::Semaphore,
}

impl OpsOut {
    fn new(concurrency: usize) -> Self {
        Self {
            out: Mutex::new(Outputs::default()),
            posts: tokio::sync::Semaphore::new(concurrency.max(1)),
        }
    }

    fn lock(&self) -> std::sync::LockResult<std::sync::MutexGuard<'_, Outputs>> {
        self.out.lock()
    }
}

impl<S, H, Q, C> Deliverer<S, H, Q, C>
where
    S: EventStore + EndpointStore + DeliveryStore + StatsStore + RateLimiter,
    H: WebhookSender,
    Q: Queue,
    C: Clock,
{
    pub async fn handle(&self, batch: SqsEvent) -> SqsBatchResponse {
        // Copies of one event in one batch are handled once, and share the outcome; a
        // record may carry several events (packed), each its own work.
        let mut groups: Vec<(Work, Vec<usize>)> = Vec::new();
        let mut by_event: HashMap<String, usize> = HashMap::new();
        for (at, record) in batch.records.iter().enumerate() {
            for work in parse(record) {
                match work {
                    Work::Event(event) => match by_event.get(event.id.as_str()) {
                        Some(&g) => {
                            if !groups[g].1.contains(&at) {
                                groups[g].1.push(at);
                            }
                        }
                        None => {
                            by_event.insert(event.id.to_string(), groups.len());
                            groups.push((Work::Event(event), vec![at]));
                        }
                    },
                    other => groups.push((other, vec![at])),
                }
            }
        }

        let ops = OpsOut::new(self.settings.concurrency);
        let outcomes = self.run(&groups, &batch.records, &ops).await;

        // A record stays as long as any of its works wants it to.
        let mut keep = vec![Keep::Done; batch.records.len()];
        for ((_, records), outcome) in groups.iter().zip(outcomes) {
            let k = match outcome {
                Disposition::Done => Keep::Done,
                Disposition::Again(e) => {
                    tracing::warn!(error = %e, "leaving the message for SQS to bring back");
                    Keep::Again
                }
                Disposition::Sleep(d) => Keep::Sleep(d),
                // `run` settled them all.
                Disposition::Record(_) => Keep::Again,
            };
            for &at in records {
                keep[at] = keep[at].max(k);
            }
        }
        let mut response = SqsBatchResponse::default();
        for (record, k) in batch.records.iter().zip(keep) {
            match k {
                Keep::Done => continue,
                Keep::Again => {}
                Keep::Sleep(d) => {
                    let receipt = record.receipt_handle.as_deref().unwrap_or_default();
                    if let Err(e) = self.queue.hide(receipt, d.max(Duration::from_secs(1))).await {
                        tracing::warn!(error = %e, "could not hide the message; it returns after the queue's visibility timeout");
                    }
                }
            }
            response.add_failure(record.message_id.clone().unwrap_or_default());
        }
        let Outputs { ops, stats, attempts } = ops.out.into_inner().unwrap_or_default();
        emit_attempt_metrics(&attempts);
        let rows = stats.into_rows();
        if !rows.is_empty()
            && let Err(e) = self.store.add_stats(&rows).await
        {
            tracing::warn!(error = %e, "could not add this batch's statistics");
        }
        ops::send(&self.queue, ops).await;
        response
    }

    /// Handles every work of the batch at once. Fan-outs whose attempts are made are
    /// written as they finish, together once a BatchWriteItem's worth (25) has gathered:
    /// a batch's requests are shared, and a fan-out does not wait for slower ones (a
    /// timeout or crash loses only what was not yet written). A write runs beside the
    /// fan-outs still sending, so their answers are read while it is out.
    async fn run(
        &self,
        groups: &[(Work, Vec<usize>)],
        records: &[SqsMessage],
        ops: &OpsOut,
    ) -> Vec<Disposition> {
        let mut running: stream::FuturesUnordered<_> = groups
            .iter()
            .enumerate()
            .map(|(i, (work, at))| async move { (i, self.handle_one(work, &records[at[0]], ops).await) })
            .collect();
        let mut writing = stream::FuturesUnordered::new();
        let mut outcomes: Vec<Option<Disposition>> = (0..groups.len()).map(|_| None).collect();
        let mut gathered: Vec<(usize, Box<Fanned>)> = Vec::new();
        let mut pending = 0;
        loop {
            tokio::select! {
                Some((i, outcome)) = running.next(), if !running.is_empty() => {
                    match outcome {
                        Disposition::Record(f) => {
                            pending += f.records().count();
                            gathered.push((i, f));
                        }
                        other => outcomes[i] = Some(other),
                    }
                    // What is left goes once nothing else is sending.
                    if pending >= WRITE_TOGETHER || (running.is_empty() && !gathered.is_empty()) {
                        writing.push(self.record(std::mem::take(&mut gathered), ops));
                        pending = 0;
                    }
                }
                Some(settled) = writing.next(), if !writing.is_empty() => {
                    for (i, d) in settled {
                        outcomes[i] = Some(d);
                    }
                }
                else => break,
            }
        }
        outcomes
            .into_iter()
            .map(|o| {
                o.unwrap_or(Disposition::Again(PortError::retryable(
                    "delivery",
                    "not handled",
                )))
            })
            .collect()
    }

    /// Writes these fan-outs' deliveries together, then finishes each; if the write
    /// fails, each of their messages stays for SQS to bring back, and the copy read
    /// again sends only to the targets not recorded.
    async fn record(&self, fanned: Vec<(usize, Box<Fanned>)>, ops: &OpsOut) -> Vec<(usize, Disposition)> {
        let records: Vec<(&Delivery, Option<&Attempt>)> =
            fanned.iter().flat_map(|(_, f)| f.records()).collect();
        let written = self.store.record_attempts(&records).await;
        drop(records);
        let settled: Vec<Disposition> = match &written {
            Ok(()) => {
                futures::future::join_all(fanned.iter().map(|(_, f)| self.finish(f, ops))).await;
                fanned.iter().map(|_| Disposition::Done).collect()
            }
            Err(e) => {
                futures::future::join_all(fanned.iter().map(|(_, f)| self.give_back(&f.event, e.clone())))
                    .await
            }
        };
        fanned.iter().map(|(i, _)| *i).zip(settled).collect()
    }

    async fn handle_one(&self, work: &Work, record: &SqsMessage, ops: &OpsOut) -> Disposition {
        match work {
            Work::Unreadable => Disposition::Done,
            Work::Newer => Disposition::Again(PortError::retryable(
                "read queue message",
                "a type this version does not know; left for a newer version",
            )),
            Work::Event(event) => {
                let span =
                    tracing::info_span!("record", event_id = %event.id, event_type = %event.event_type);
                self.fan_out(event, ops).instrument(span).await
            }
            Work::Attempt {
                event,
                endpoint_id,
                wake,
            } => {
                let receives = record
                    .attributes
                    .get("ApproximateReceiveCount")
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(1);
                let span = tracing::info_span!("record", event_id = %event.id, endpoint_id = %endpoint_id);
                self.next_attempt(event, endpoint_id, wake, receives, ops)
                    .instrument(span)
                    .await
            }
        }
    }

    async fn fan_out(&self, event: &Event, ops: &OpsOut) -> Disposition {
        let endpoints = match self.endpoints.all(&self.store).await {
            Ok(eps) => eps,
            Err(e) => return Disposition::Again(e),
        };
        let now = self.clock.now();
        // Each matching endpoint's delivery gets its id now: the claim names them.
        let matching: Vec<&Arc<Endpoint>> = endpoints
            .iter()
            .filter(|ep| ep.wants(&event.event_type))
            .collect();
        let ids = DeliveryId::for_targets(now, matching.iter().map(|ep| &ep.id));
        // Made once: the claim stores these bytes and every endpoint is sent them.
        let envelope = event.envelope_json();
        let (event, body, targets) = match self
            .store
            .claim_fanout(event, &envelope, &ids, now, self.settings.lease)
            .await
        {
            Err(e) => return Disposition::Again(e),
            Ok(FanoutClaim::Done) => {
                tracing::info!("duplicate event: already fanned out");
                return Disposition::Done;
            }
            Ok(FanoutClaim::Busy { until }) => {
                tracing::info!(%until, "another worker is fanning this event out; back when its lease ends");
                return Disposition::Sleep(until.since(now));
            }
            Ok(FanoutClaim::Fresh) => (
                event.clone(),
                bytes::Bytes::from(envelope),
                matching
                    .into_iter()
                    .zip(ids)
                    .map(|(ep, id)| Target::Send(ep.clone(), id))
                    .collect(),
            ),
            Ok(FanoutClaim::Resumed {
                stored,
                targets,
                recorded,
            }) => {
                tracing::info!(
                    recorded = recorded.len(),
                    targets = targets.len(),
                    "resuming a fan-out that was cut short"
                );
                let left = targets.into_iter().filter(|t| !recorded.contains(t));
                match self.resumed_targets(&endpoints, left).await {
                    // The stored copy is the one sent.
                    Ok(targets) => {
                        let body = bytes::Bytes::from(stored.envelope_json());
                        (stored, body, targets)
                    }
                    Err(e) => return self.give_back(&stored, e).await,
                }
            }
        };
        match self.attempt_all(event, body, targets, ops).await {
            Ok(fanned) => Disposition::Record(Box::new(fanned)),
            Err((event, e)) => self.give_back(&event, e).await,
        }
    }

    /// The targets of a resumed fan-out still to go, as they stand now: one deleted or
    /// disabled since the claim gets a failed delivery, so that the fan-out can finish.
    async fn resumed_targets(
        &self,
        cached: &[Arc<Endpoint>],
        left: impl Iterator<Item = DeliveryId>,
    ) -> PortResult<Vec<Target>> {
        let mut out = Vec::new();
        for id in left {
            let Some(endpoint_id) = id.endpoint_id() else {
                // Not an id this version gives out: nothing can be sent under it.
                tracing::error!(delivery_id = %id, "a claimed delivery id names no endpoint; skipped");
                continue;
            };
            let ep = match cached.iter().find(|ep| ep.id == endpoint_id) {
                Some(ep) => Some(ep.clone()),
                None => self.store.get_endpoint(&endpoint_id).await?.map(Arc::new),
            };
            out.push(match ep {
                None => Target::Gone(
                    endpoint_id,
                    id,
                    "the endpoint was deleted before its first attempt".into(),
                ),
                Some(ep) if ep.status == EndpointStatus::Disabled => {
                    let reason = format!(
                        "the endpoint is disabled: {}",
                        ep.disabled_reason.as_deref().unwrap_or("by an operator")
                    );
                    Target::Gone(endpoint_id, id, reason)
                }
                Some(ep) => Target::Send(ep, id),
            });
        }
        Ok(out)
    }

    async fn give_back(&self, event: &Event, e: PortError) -> Disposition {
        if let Err(release) = self.store.release_fanout(&event.id).await {
            tracing::warn!(error = %release, "could not release the fan-out lease; it will lapse");
        }
        if !e.is_retryable() {
            // Trying again cannot help. It is logged loudly, and SQS's redrive policy
            // takes the message to the DLQ once its receives run out, where the sweeper
            // turns it into failed deliveries.
            tracing::error!(error = %e, "permanent failure handling the event");
        }
        Disposition::Again(e)
    }

    /// Sends to every target; the deliveries are written with the batch's others.
    async fn attempt_all(
        &self,
        event: Event,
        body: bytes::Bytes,
        targets: Vec<Target>,
        ops: &OpsOut,
    ) -> Result<Fanned, (Event, PortError)> {
        let body = &body;
        // An endpoint over its rate limit gets a pending delivery whose attempt waits its turn.
        let now = self.clock.now();
        let mut sendable = Vec::with_capacity(targets.len());
        let mut waiting: Vec<Delivery> = Vec::new();
        let mut gone: Vec<Delivery> = Vec::new();
        for target in targets {
            let (ep, id) = match target {
                Target::Send(ep, id) => (ep, id),
                Target::Gone(endpoint_id, id, reason) => {
                    let mut d = Delivery::under(
                        id,
                        event.id.clone(),
                        endpoint_id,
                        event.event_type.clone(),
                        1,
                        now,
                    );
                    d.fail(&reason, now);
                    gone.push(d);
                    continue;
                }
            };
            let mut fresh = Delivery::under(
                id,
                event.id.clone(),
                ep.id.clone(),
                event.event_type.clone(),
                ep.max_attempts,
                now,
            );
            match self.turn(&ep, now).await {
                Err(e) => return Err((event, e)),
                Ok(None) => sendable.push((ep, fresh)),
                Ok(Some(wait)) => {
                    fresh.defer(now.saturating_add(wait));
                    waiting.push(fresh);
                }
            }
        }
        // The futures are built up front: a closure inside the stream would hide
        // their `Send`-ness from the compiler (rust-lang/rust#102211).
        let event_ref = &event;
        let attempts: Vec<_> = sendable
            .into_iter()
            .map(|(ep, fresh)| async move {
                let (updated, attempt, verdict) = self.attempt(event_ref, body, &ep, &fresh, ops).await;
                (ep, updated, attempt, verdict)
            })
            .collect();
        // Sized up front: an element is large, and growing the vector as attempts
        // finish copied them over and over.
        let mut attempted = Vec::with_capacity(attempts.len());
        {
            let mut finishing = stream::iter(attempts).buffer_unordered(self.settings.concurrency);
            while let Some(done) = finishing.next().await {
                attempted.push(done);
            }
        }
        Ok(Fanned {
            event,
            attempted,
            waiting,
            gone,
        })
    }

    /// After its deliveries are written: the endpoints' failing streaks, the retries'
    /// messages, and what the operator hears of.
    async fn finish(&self, f: &Fanned, ops: &OpsOut) {
        let now = self.clock.now();
        for (ep, delivery, attempt, verdict) in &f.attempted {
            self.after_attempt(ep, delivery, attempt, verdict, ops).await;
            if delivery.status == DeliveryStatus::Retrying {
                self.schedule(&f.event, delivery).await;
            }
        }
        for delivery in &f.waiting {
            self.schedule(&f.event, delivery).await;
        }
        for failed in &f.gone {
            tracing::warn!(event_id = %f.event.id, endpoint_id = %failed.endpoint_id, reason = failed.failure_reason.as_deref(), "delivery failed");
            push(ops, ops::delivery_exhausted(failed, now));
            if let Ok(mut out) = ops.lock() {
                out.stats.entry(&failed.endpoint_id, now).failed += 1;
            }
        }
    }

    /// Whether the endpoint's rate limit lets a request go now, or how long to wait.
    async fn turn(&self, ep: &Endpoint, now: Timestamp) -> PortResult<Option<Duration>> {
        match ep.rate_limit_per_second {
            None => Ok(None),
            Some(rate) => self.store.take(&ep.id, rate, now).await,
        }
    }

    /// Sends the message that will make the delivery's next attempt. If sending fails
    /// the delivery stays due, and the sweeper re-drives it.
    async fn schedule(&self, event: &Event, d: &Delivery) {
        let (Some(at), Some(wake)) = (d.next_attempt_at, d.wake.clone()) else {
            return;
        };
        let wait = at.since(self.clock.now()).min(self.settings.max_delay);
        let message = QueueMessage::AttemptV1 {
            event: event.clone(),
            endpoint_id: d.endpoint_id.clone(),
            wake,
        };
        if let Err(e) = self.queue.send_after(&message, wait).await {
            tracing::warn!(error = %e, endpoint_id = %d.endpoint_id, "could not queue the next attempt; the sweeper will re-drive it");
        }
    }

    async fn next_attempt(
        &self,
        event: &Event,
        endpoint_id: &EndpointId,
        wake: &str,
        receives: u32,
        ops: &OpsOut,
    ) -> Disposition {
        let seen = match self.store.get_delivery(&event.id, endpoint_id).await {
            Err(e) => return Disposition::Again(e),
            Ok(Some(d)) if d.status.is_open() && d.wake.as_deref() == Some(wake) => d,
            Ok(_) => {
                tracing::info!("stale attempt message: the delivery moved on without it");
                return Disposition::Done;
            }
        };
        let now = self.clock.now();
        if let Some(at) = seen.next_attempt_at
            && at > now.saturating_add(EARLY_TOLERANCE)
        {
            return Disposition::Sleep(at.since(now));
        }
        let ep = match self.endpoints.one(&self.store, endpoint_id).await {
            Err(e) => return Disposition::Again(e),
            Ok(None) => return self.end(&seen, "the endpoint was deleted", ops).await,
            Ok(Some(ep)) if ep.status == EndpointStatus::Disabled => {
                let reason = format!(
                    "the endpoint is disabled: {}",
                    ep.disabled_reason.as_deref().unwrap_or("by an operator")
                );
                return self.end(&seen, &reason, ops).await;
            }
            Ok(Some(ep)) => ep,
        };
        match self.turn(&ep, now).await {
            Err(e) => return Disposition::Again(e),
            Ok(None) => {}
            Ok(Some(wait)) if receives + 3 <= self.settings.max_receives => return Disposition::Sleep(wait),
            // Received often already: a fresh message, same token, waits instead.
            Ok(Some(wait)) => {
                let message = QueueMessage::AttemptV1 {
                    event: event.clone(),
                    endpoint_id: endpoint_id.clone(),
                    wake: wake.to_owned(),
                };
                return match self.queue.send_after(&message, wait).await {
                    Ok(()) => Disposition::Done,
                    Err(e) => Disposition::Again(e),
                };
            }
        }
        match self.store.claim_attempt(&seen, now, self.settings.lease).await {
            Err(e) => return Disposition::Again(e),
            // Another worker holds it, and its own message carries the delivery on.
            Ok(false) => return Disposition::Done,
            Ok(true) => {}
        }
        let body = bytes::Bytes::from(event.envelope_json());
        let (mut updated, attempt, verdict) = self.attempt(event, &body, &ep, &seen, ops).await;
        // A long wait keeps this very message, so the delivery keeps its wake token;
        // unless the message has been received so often that SQS might dead-letter it.
        let keep = match &verdict {
            Verdict::RetryIn(wait) if *wait > self.settings.max_delay => {
                let hops = wait.as_secs().div_ceil(MAX_VISIBILITY.as_secs()) as u32;
                receives + hops + 2 <= self.settings.max_receives
            }
            _ => false,
        };
        if keep {
            updated.wake = Some(wake.to_owned());
        }
        match self.store.record_attempt(&seen, &updated, &attempt).await {
            Err(e) => return Disposition::Again(e),
            Ok(false) => {
                tracing::warn!("the delivery changed while this attempt was made; its record is dropped");
                return Disposition::Done;
            }
            Ok(true) => {}
        }
        self.after_attempt(&ep, &updated, &attempt, &verdict, ops).await;
        match (&verdict, keep) {
            (Verdict::RetryIn(wait), true) => Disposition::Sleep(*wait),
            (Verdict::RetryIn(_), false) => {
                self.schedule(event, &updated).await;
                Disposition::Done
            }
            _ => Disposition::Done,
        }
    }

    /// Fails an open delivery that can go no further, and reports it.
    async fn end(&self, seen: &Delivery, reason: &str, ops: &OpsOut) -> Disposition {
        let now = self.clock.now();
        let mut failed = seen.clone();
        failed.fail(reason, now);
        match self.store.fail_delivery(seen, &failed).await {
            Err(e) => Disposition::Again(e),
            Ok(done) => {
                if done {
                    tracing::warn!(reason, "delivery failed");
                    push(ops, ops::delivery_exhausted(&failed, now));
                    if let Ok(mut out) = ops.lock() {
                        out.stats.entry(&failed.endpoint_id, now).failed += 1;
                    }
                }
                Disposition::Done
            }
        }
    }

    /// One signed POST, judged by the endpoint's retry policy.
    async fn attempt(
        &self,
        event: &Event,
        body: &bytes::Bytes,
        ep: &Endpoint,
        before: &Delivery,
        ops: &OpsOut,
    ) -> (Delivery, Attempt, Verdict) {
        let number = before.attempts + 1;
        let span = tracing::info_span!("attempt", endpoint_id = %ep.id, attempt = number);
        async {
            // Waiting for a slot is not part of the attempt (nor of its signature's
            // time). The semaphore is never closed: on error the POST goes anyway.
            let permit = ops.posts.acquire().await.ok();
            let started_at = self.clock.now();
            let request = signed_request(event, body.clone(), ep, &before.id, started_at.unix_seconds());
            let clock = Instant::now();
            let outcome = self.sender.post(request).await;
            drop(permit);
            let duration_ms = u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX);
            let finished_at = self.clock.now();
            let policy = ep.retry_policy(&self.settings.retry);
            let verdict = policy.judge(number, &outcome, hookline::random_unit());
            let mut delivery = before.clone();
            delivery.max_attempts = policy.max_attempts();
            delivery.apply(&outcome, &verdict, finished_at);
            let status_class = status_class(outcome.status_code());
            tracing::info!(
                event_id = %event.id,
                delivery_id = %delivery.id,
                status = delivery.status.as_str(),
                status_code = outcome.status_code(),
                duration_ms,
                error = outcome.error_text(),
                next_attempt_at = delivery.next_attempt_at.map(|t| t.to_rfc3339()),
                "attempt finished"
            );
            if let Ok(mut out) = ops.lock() {
                out.attempts
                    .entry((delivery.status.as_str(), status_class))
                    .or_default()
                    .push(duration_ms as f64);
            }
            let attempt = Attempt {
                number,
                started_at,
                duration_ms,
                outcome,
            };
            (delivery, attempt, verdict)
        }
        .instrument(span)
        .await
    }

    /// Keeps the endpoint's failing streak, disables it when the streak is too long or
    /// it answered 410, and reports exhausted deliveries and disabled endpoints.
    async fn after_attempt(
        &self,
        ep: &Endpoint,
        d: &Delivery,
        attempt: &Attempt,
        verdict: &Verdict,
        ops: &OpsOut,
    ) {
        let now = self.clock.now();
        let outcome = &attempt.outcome;
        if let Ok(mut out) = ops.lock() {
            let hour = out.stats.entry(&ep.id, attempt.started_at);
            hour.attempt(attempt.duration_ms, outcome.is_success());
            match d.status {
                DeliveryStatus::Delivered => hour.delivered += 1,
                DeliveryStatus::Failed => hour.failed += 1,
                _ => {}
            }
        }
        if d.status == DeliveryStatus::Failed {
            push(ops, ops::delivery_exhausted(d, now));
        }
        if outcome.is_success() {
            if ep.failing_since.is_some()
                && let Err(e) = self.store.note_success(&ep.id).await
            {
                tracing::warn!(error = %e, "could not clear the endpoint's failing streak");
            }
            return;
        }
        let since = match ep.failing_since {
            Some(t) => t,
            None => self.store.note_failure(&ep.id, now).await.unwrap_or_else(|e| {
                tracing::warn!(error = %e, "could not note the endpoint's failure");
                now
            }),
        };
        let (reason, failing_before) = match verdict {
            Verdict::GiveUp {
                disable_endpoint: true,
                reason,
            } => (reason.clone(), None),
            _ if now.since(since) >= self.settings.disable_after => (
                format!(
                    "every attempt has failed since {since}, with no success for {} s",
                    now.since(since).as_secs()
                ),
                Some(Timestamp::from_unix_millis(
                    now.unix_millis() - self.settings.disable_after.as_millis() as i64,
                )),
            ),
            _ => return,
        };
        match self
            .store
            .disable_endpoint(&ep.id, &reason, now, failing_before)
            .await
        {
            Ok(true) => {
                tracing::warn!(endpoint_id = %ep.id, reason, "endpoint disabled");
                let mut disabled = ep.clone();
                disabled.failing_since = Some(since);
                push(ops, ops::endpoint_disabled(&disabled, &reason, now));
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "could not disable the endpoint"),
        }
    }
}

use hookline::Timestamp;

fn push(ops: &OpsOut, event: Option<Event>) {
    if let (Some(e), Ok(mut out)) = (event, ops.lock()) {
        out.ops.push(e);
    }
}

fn parse(record: &SqsMessage) -> Vec<Work> {
    let body = record.body.as_deref().unwrap_or("");
    match QueueMessage::from_body(body) {
        Ok(QueueMessage::EventV1 { event }) => vec![Work::Event(event)],
        Ok(QueueMessage::EventsV1 { events }) => events.into_iter().map(Work::Event).collect(),
        Ok(QueueMessage::AttemptV1 {
            event,
            endpoint_id,
            wake,
        }) => vec![Work::Attempt {
            event,
            endpoint_id,
            wake,
        }],
        Err(_) if message::is_unknown_type(body) => vec![Work::Newer],
        Err(e) => {
            // Not ours or corrupt: no retry can fix it. Log it whole, and count it.
            tracing::error!(
                message_id = record.message_id.as_deref().unwrap_or(""),
                error = %e,
                body,
                "dropping an unreadable queue message"
            );
            Metrics::new()
                .metric("UnreadableMessages", 1.0, Unit::Count)
                .emit();
            vec![Work::Unreadable]
        }
    }
}

#[cfg(test)]
mod tests;
