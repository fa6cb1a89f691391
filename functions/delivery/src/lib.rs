//! The delivery function: SQS records in, signed POSTs out, every attempt recorded.
//! For each event message it claims the event's fan-out (so a redelivered or
//! duplicated message never fans out twice), POSTs to every matching endpoint at
//! once, records one delivery and one attempt per endpoint, and reports back to SQS
//! only the records that must come again.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use futures::{StreamExt, stream};
use hookline::config::{ConfigError, Env, retention, ssrf_policy};
use hookline::delivery::{Attempt, Delivery};
use hookline::endpoint::Endpoint;
use hookline::event::Event;
use hookline::ids::EndpointId;
use hookline::message::QueueMessage;
use hookline::ports::{
    Clock, DeliveryStore, EndpointStore, EventStore, FanoutClaim, PortError, PortResult, WebhookSender,
};
use hookline::retry::RetryPolicy;
use hookline::ssrf::SsrfPolicy;
use hookline::telemetry::{Metrics, Unit};
use hookline::webhook::signed_request;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::Instrument;

#[derive(Debug)]
pub struct Config {
    pub table: String,
    pub retention: Duration,
    pub ssrf: SsrfPolicy,
    pub endpoint_cache: Duration,
    pub fanout_lease: Duration,
    pub concurrency: usize,
}

impl Config {
    pub fn from_env(mut env: Env) -> Result<Self, ConfigError> {
        let table = env.required("HOOKLINE_TABLE");
        let retention = retention(&mut env);
        let ssrf = ssrf_policy(&mut env);
        let endpoint_cache = Duration::from_secs(env.parsed_or("HOOKLINE_ENDPOINT_CACHE_SECONDS", 5u64));
        let fanout_lease =
            Duration::from_secs(env.parsed_with("HOOKLINE_FANOUT_LEASE_SECONDS", 120u64, |s| {
                match s.parse::<u64>() {
                    Ok(n) if (10..=900).contains(&n) => Ok(n),
                    _ => Err("must be seconds from 10 to 900".into()),
                }
            }));
        let concurrency = env.parsed_with("HOOKLINE_DELIVERY_CONCURRENCY", 32usize, |s| match s.parse() {
            Ok(n) if (1..=256).contains(&n) => Ok(n),
            _ => Err("must be from 1 to 256".into()),
        });
        env.finish()?;
        Ok(Self {
            table,
            retention,
            ssrf,
            endpoint_cache,
            fanout_lease,
            concurrency,
        })
    }
}

/// Endpoints, kept for a few seconds across warm invocations.
pub struct EndpointCache {
    ttl: Duration,
    entry: Mutex<Option<(Instant, Arc<Vec<Endpoint>>)>>,
}

impl EndpointCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entry: Mutex::new(None),
        }
    }

    async fn get(&self, store: &impl EndpointStore) -> PortResult<Arc<Vec<Endpoint>>> {
        if let Ok(guard) = self.entry.lock()
            && let Some((at, eps)) = guard.as_ref()
            && at.elapsed() < self.ttl
        {
            return Ok(eps.clone());
        }
        let fresh = Arc::new(store.all_endpoints().await?);
        if let Ok(mut guard) = self.entry.lock() {
            *guard = Some((Instant::now(), fresh.clone()));
        }
        Ok(fresh)
    }
}

pub struct Deliverer<S, H, C> {
    pub store: S,
    pub sender: H,
    pub clock: C,
    pub endpoints: EndpointCache,
    pub fanout_lease: Duration,
    pub concurrency: usize,
}

/// What became of one SQS record.
#[derive(Debug)]
enum Disposition {
    Done,
    /// Leave it on the queue: SQS brings it back after its visibility timeout.
    Again(PortError),
}

impl<S, H, C> Deliverer<S, H, C>
where
    S: EventStore + EndpointStore + DeliveryStore,
    H: WebhookSender,
    C: Clock,
{
    pub async fn handle(&self, batch: SqsEvent) -> SqsBatchResponse {
        // Copies of one event in one batch are handled once, and share the outcome.
        let mut groups: Vec<(Option<Event>, Vec<&SqsMessage>)> = Vec::new();
        let mut by_event: HashMap<String, usize> = HashMap::new();
        for record in &batch.records {
            match parse(record) {
                Some(event) => match by_event.get(event.id.as_str()) {
                    Some(&i) => groups[i].1.push(record),
                    None => {
                        by_event.insert(event.id.to_string(), groups.len());
                        groups.push((Some(event), vec![record]));
                    }
                },
                None => groups.push((None, vec![record])),
            }
        }

        let outcomes =
            futures::future::join_all(groups.iter().map(|(event, _)| self.handle_one(event.as_ref()))).await;

        let mut response = SqsBatchResponse::default();
        for ((_, records), outcome) in groups.iter().zip(outcomes) {
            if let Disposition::Again(e) = outcome {
                tracing::warn!(error = %e, "leaving the message for SQS to bring back");
                for r in records {
                    response.add_failure(r.message_id.clone().unwrap_or_default());
                }
            }
        }
        response
    }

    async fn handle_one(&self, event: Option<&Event>) -> Disposition {
        let Some(event) = event else {
            return Disposition::Done;
        };
        let span = tracing::info_span!("record", event_id = %event.id, event_type = %event.event_type);
        self.fan_out(event).instrument(span).await
    }

    async fn fan_out(&self, event: &Event) -> Disposition {
        let now = self.clock.now();
        let (event, already) = match self.store.claim_fanout(event, now, self.fanout_lease).await {
            Err(e) => return Disposition::Again(e),
            Ok(FanoutClaim::Done) => {
                tracing::info!("duplicate event: already fanned out");
                return Disposition::Done;
            }
            Ok(FanoutClaim::Busy { until }) => {
                return Disposition::Again(PortError::Retryable(format!(
                    "another worker is fanning this event out until {until}"
                )));
            }
            Ok(FanoutClaim::Fresh) => (event.clone(), HashSet::new()),
            Ok(FanoutClaim::Resumed { stored }) => match self.store.deliveries_for_event(&stored.id).await {
                Ok(done) => {
                    let already: HashSet<EndpointId> = done.into_iter().map(|(d, _)| d.endpoint_id).collect();
                    tracing::info!(recorded = already.len(), "resuming a fan-out that was cut short");
                    (stored, already)
                }
                Err(e) => return self.give_back(&stored, e).await,
            },
        };
        match self.deliver_all(&event, &already).await {
            Ok(count) => match self
                .store
                .complete_fanout(&event.id, count, self.clock.now())
                .await
            {
                Ok(()) => Disposition::Done,
                // Every delivery is recorded: a second pass would find them all and send nothing.
                Err(e) => self.give_back(&event, e).await,
            },
            Err(e) => self.give_back(&event, e).await,
        }
    }

    async fn give_back(&self, event: &Event, e: PortError) -> Disposition {
        if let Err(release) = self.store.release_fanout(&event.id).await {
            tracing::warn!(error = %release, "could not release the fan-out lease; it will lapse");
        }
        if !e.is_retryable() {
            // Trying again cannot help. It is logged loudly, and SQS's redrive policy
            // takes the message to the DLQ once its receives run out, where it is seen.
            tracing::error!(error = %e, "permanent failure handling the event");
        }
        Disposition::Again(e)
    }

    /// Sends to every matching endpoint not yet recorded, and records the attempts.
    async fn deliver_all(&self, event: &Event, already: &HashSet<EndpointId>) -> PortResult<u32> {
        let endpoints = self.endpoints.get(&self.store).await?;
        let targets: Vec<&Endpoint> = endpoints
            .iter()
            .filter(|ep| ep.wants(&event.event_type) && !already.contains(&ep.id))
            .collect();
        let body = event.envelope_json();
        // The futures are built up front: a closure inside the stream would hide
        // their `Send`-ness from the compiler (rust-lang/rust#102211).
        let attempts: Vec<_> = targets
            .into_iter()
            .map(|ep| {
                let span = tracing::info_span!("attempt", endpoint_id = %ep.id, attempt = 1u32);
                self.first_attempt(event, &body, ep).instrument(span)
            })
            .collect();
        let records: Vec<(Delivery, Attempt)> = stream::iter(attempts)
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        self.store.record_attempts(&records).await?;
        Ok(u32::try_from(records.len() + already.len()).unwrap_or(u32::MAX))
    }

    async fn first_attempt(&self, event: &Event, body: &str, ep: &Endpoint) -> (Delivery, Attempt) {
        let started_at = self.clock.now();
        let mut delivery = Delivery::new(
            event.id.clone(),
            ep.id.clone(),
            event.event_type.clone(),
            ep.max_attempts,
            started_at,
        );
        let request = signed_request(event, body, ep, &delivery.id, started_at.unix_seconds());
        let clock = Instant::now();
        let outcome = self.sender.post(request).await;
        let duration_ms = u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX);
        let finished_at = self.clock.now();
        let policy = RetryPolicy::with_max_attempts(ep.max_attempts);
        delivery.record(&outcome, &policy, finished_at, hookline::random_unit());
        let status_class = outcome
            .status_code()
            .map_or_else(|| "error".to_owned(), |s| format!("{}xx", s / 100));
        tracing::info!(
            delivery_id = %delivery.id,
            status = delivery.status.as_str(),
            status_code = outcome.status_code(),
            duration_ms,
            error = outcome.error_text(),
            "attempt finished"
        );
        Metrics::new()
            .dimension("Outcome", delivery.status.as_str())
            .metric("Attempts", 1.0, Unit::Count)
            .metric("AttemptLatency", duration_ms as f64, Unit::Milliseconds)
            .property("StatusClass", status_class)
            .property("event_id", event.id.as_str())
            .property("endpoint_id", ep.id.as_str())
            .emit();
        let attempt = Attempt {
            number: 1,
            started_at,
            duration_ms,
            outcome,
        };
        (delivery, attempt)
    }
}

fn parse(record: &SqsMessage) -> Option<Event> {
    let body = record.body.as_deref().unwrap_or("");
    match QueueMessage::from_body(body) {
        Ok(QueueMessage::EventV1 { event }) => Some(event),
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
            None
        }
    }
}
#[cfg(test)]
mod tests;
