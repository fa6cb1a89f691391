//! The ingest function: `POST /v1/events`, `POST /v1/events/batch` and
//! `POST /v1/langgraph/runs` (LangGraph Platform's run webhooks). It validates, assigns
//! ids and queues. Its one DynamoDB call is a consistent read of the ids it is sent,
//! so that an id taken by another event is a 409 (`hookline::event_conflict`).

use hookline::access::{self, Acting, TenantRefused};
use hookline::api;
use hookline::auth::ApiKeys;
use hookline::config::{ConfigError, Env, KeySource, key_source};
use hookline::event::{Event, EventKey, EventType};
use hookline::event_conflict::Conflict;
use hookline::event_input::{batch_events, parse_event};
use hookline::ids::{EventId, TenantId};
use hookline::message::{self, QueueMessage};
use hookline::ports::{
    Clock, DataStore, EndpointStore, EventLookup, LaneStore, PortError, Queue, RateLimiter, TenantStore,
};
use hookline::problem::{FieldProblem, Problem};
use hookline::ratelimit::RateBucket;
use hookline::tenancy::{Need, Principal};
use hookline::tenant_limits::LimitDefaults;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

mod check_in;
mod positions;

pub use positions::OrderedEndpointCache;

/// The largest event taken: one whose envelope is over 64 KiB travels checked in
/// (`hookline::claim_check`), so the queue and the table see it small.
pub const MAX_EVENT_BYTES: usize = hookline::claim_check::MAX_EVENT_BYTES;
pub const DEFAULT_MAX_BODY_BYTES: usize = MAX_EVENT_BYTES;
pub use hookline::event_input::MAX_BATCH_EVENTS;
/// A LangGraph run webhook may carry a large state, which is trimmed rather than refused.
pub const MAX_LANGGRAPH_BODY_BYTES: usize = 6_000_000 - 64 * 1024;
/// Lambda takes at most 6 MB in a synchronous invocation.
pub const MAX_BATCH_BODY_BYTES: usize = 6_000_000 - 64 * 1024;

#[derive(Debug)]
pub struct Config {
    pub keys: KeySource,
    pub queue_url: String,
    /// Where the ids already taken are looked up.
    pub table: String,
    /// Where large events' data is checked in (S3).
    pub data_bucket: String,
    pub max_body_bytes: usize,
    /// Each tenant's events a second, unless it has its own limit.
    pub limits: LimitDefaults,
}

impl Config {
    pub fn from_env(mut env: Env) -> Result<Self, ConfigError> {
        let keys = key_source(&mut env);
        let queue_url = env.required("HOOKLINE_QUEUE_URL");
        let table = env.required("HOOKLINE_TABLE");
        let data_bucket = env.required("HOOKLINE_DATA_BUCKET");
        let max_body_bytes =
            env.parsed_with(
                "HOOKLINE_MAX_BODY_BYTES",
                DEFAULT_MAX_BODY_BYTES,
                |s| match s.parse::<usize>() {
                    Ok(n) if (1024..=MAX_EVENT_BYTES).contains(&n) => Ok(n),
                    _ => Err(format!("must be a byte count from 1024 to {MAX_EVENT_BYTES}")),
                },
            );
        let limits = LimitDefaults::from_env(&mut env);
        env.finish()?;
        Ok(Self {
            keys,
            queue_url,
            table,
            data_bucket,
            max_body_bytes,
            limits,
        })
    }
}

pub struct Ingest<Q, E, C> {
    pub keys: ApiKeys,
    pub queue: Q,
    /// Where ids already taken are looked up.
    pub events: E,
    /// Where large events' data is checked in (`hookline::claim_check`).
    pub data: Arc<dyn DataStore>,
    pub clock: C,
    pub max_body_bytes: usize,
    /// Each tenant's events a second (counted in `events`' store, per second).
    pub limits: LimitDefaults,
    /// Which tenants' events take places in ordered lanes.
    pub ordered: OrderedEndpointCache,
}

impl<Q: Queue, E: EventLookup + TenantStore + RateLimiter + LaneStore + EndpointStore, C: Clock>
    Ingest<Q, E, C>
{
    pub async fn handle(&self, req: Request) -> Response<Body> {
        let request_id = req.lambda_context_ref().map(|c| c.request_id.clone());
        api::serve(req.method(), req.uri().path(), request_id, self.route(&req))
            .await
            .map(Body::from)
    }

    async fn route(&self, req: &Request) -> Result<http::Response<String>, Problem> {
        let path = req.uri().path().trim_end_matches('/');
        if !matches!(path, "/v1/events" | "/v1/events/batch" | "/v1/langgraph/runs") {
            return Err(Problem::not_found(format!("no route for `{path}`")));
        }
        if req.method() != http::Method::POST {
            return Err(Problem::method_not_allowed(format!("`{path}` takes POST")));
        }
        let now = self.clock.now();
        // The Platform can send static headers, but a `token` in the webhook URL's query
        // string is simpler to set per run, so both are accepted for its runs; the query
        // string is never logged.
        let token = (path == "/v1/langgraph/runs")
            .then(|| api::query(req.uri()).into_iter().find(|(k, _)| k == "token"))
            .flatten();
        let key = token
            .map(|(_, t)| t)
            .or_else(|| api::presented_key(req.headers()))
            .ok_or_else(Problem::unauthorized)?;
        let who = access::principal_of(&self.keys, &self.events, &key, now).await?;
        access::require(&who, Need::Ingest)?;
        match path {
            "/v1/events" => self.single(req, &who).await,
            "/v1/events/batch" => self.batch(req, &who).await,
            _ => self.langgraph_run(req, &who, &key).await,
        }
    }

    /// Whether the tenant may send `events` more now; a 429 with when to try again if
    /// not. A tenant without a limit costs no call.
    async fn within_rate(&self, acting: &Acting, events: u32) -> Result<(), Problem> {
        let Some(rate) = self
            .limits
            .ingest_per_second(acting.tenant.is_default(), &acting.limits)
        else {
            return Ok(());
        };
        let bucket = RateBucket::TenantIngest(&acting.tenant);
        match self.events.take(bucket, rate, events, self.clock.now()).await {
            Ok(None) => Ok(()),
            Ok(Some(wait)) => {
                tracing::info!(tenant_id = %acting.tenant, rate, "refused: the tenant's ingest rate is reached");
                Err(Problem::too_many_requests(
                    format!(
                        "the tenant `{}` may send {rate} events a second; send again after the time in Retry-After",
                        acting.tenant
                    ),
                    wait.as_secs_f64().ceil() as u64,
                ))
            }
            // The limit protects the others; a store that cannot count lets the event in.
            Err(e) => {
                tracing::warn!(error = %e, "the ingest rate could not be counted; taken unchecked");
                Ok(())
            }
        }
    }

    /// A LangGraph Platform run webhook, for the tenant of its key or, with an
    /// operator's key, the one `?tenant_id=` names.
    /// `key` is the key it came with: like the operator's, it never leaves in a payload.
    async fn langgraph_run(
        &self,
        req: &Request,
        who: &Principal,
        key: &str,
    ) -> Result<http::Response<String>, Problem> {
        let named = match api::query(req.uri()).into_iter().find(|(k, _)| k == "tenant_id") {
            None => None,
            Some((_, raw)) => Some(TenantId::parse(&raw).map_err(|e| {
                Problem::validation(
                    "the query is not valid",
                    vec![FieldProblem::new("?tenant_id", e.to_string())],
                )
            })?),
        };
        let acting = access::acting_tenant(who, &self.events, named)
            .await
            .map_err(|r| r.problem("?tenant_id"))?;
        self.within_rate(&acting, 1).await?;
        // The sender cannot shrink a run's state and does not retry a 413: a run whose
        // state is too large is reported without it (`values` says how large it was).
        let value = api::json_body(req.headers(), req.body().as_ref(), MAX_LANGGRAPH_BODY_BYTES)?;
        let [ingest, admin] = self.keys.own_keys();
        let mut event = hookline::langgraph::run_event(&value, self.clock.now(), &[ingest, admin, key])
            .map_err(|errors| Problem::validation("the body is not a LangGraph run that ended", errors))?;
        if event.envelope_json().len() > MAX_EVENT_BYTES {
            hookline::langgraph::drop_values(&mut event);
        }
        hookline::langgraph::fit_depth(&mut event)
            .map_err(|p| Problem::validation("the run nests too deep to deliver", vec![p]))?;
        event.tenant_id = acting.tenant;
        // A run's end is ordered in its thread (and its run), as any event is.
        event.order = hookline::ordering::asked(hookline::ordering::keys_of(&event.data, None));
        self.check_in(&mut event).await?;
        let (id, event_type) = self.queue_event(event, true).await?;
        Ok(api::json(202, &json!({ "id": id, "event_type": event_type })))
    }

    /// Queues one event as its message, if its id is not another event's (an id
    /// Hookline made just now is no one's: `sent_id` says whether the sender gave it).
    async fn queue_event(&self, mut event: Event, sent_id: bool) -> Result<(EventId, EventType), Problem> {
        if sent_id && let Some(c) = self.conflicts([&event]).await.pop().flatten() {
            tracing::info!(event_id = %event.id, fields = ?c.fields(), "refused: the id is another event's");
            return Err(c.problem(&event));
        }
        self.give_positions([&mut event]).await;
        let (id, event_type) = (event.id.clone(), event.event_type.clone());
        let message = QueueMessage::event(event);
        self.queue.send(&message).await.map_err(|e| queue_problem(&e))?;
        tracing::info!(event_id = %id, %event_type, "event queued");
        Ok((id, event_type))
    }

    async fn single(&self, req: &Request, who: &Principal) -> Result<http::Response<String>, Problem> {
        let value = api::json_body(req.headers(), req.body().as_ref(), self.max_body_bytes)?;
        let mut errors = Vec::new();
        let Some(mut event) = parse_event(&value, "", self.clock.now(), &mut errors) else {
            return Err(Problem::validation("the event is not valid", errors));
        };
        let acting = access::acting_tenant(who, &self.events, named_tenant(&value, &event))
            .await
            .map_err(|r| r.problem("/tenant_id"))?;
        self.within_rate(&acting, 1).await?;
        event.tenant_id = acting.tenant;
        self.check_in(&mut event).await?;
        let (id, _) = self.queue_event(event, value.get("id").is_some()).await?;
        Ok(api::json(202, &json!({ "id": id })))
    }

    async fn batch(&self, req: &Request, who: &Principal) -> Result<http::Response<String>, Problem> {
        let value = api::json_body(req.headers(), req.body().as_ref(), MAX_BATCH_BODY_BYTES)?;
        let events =
            batch_events(&value).map_err(|errors| Problem::validation("the batch is not valid", errors))?;

        // Validate every event first; queue the valid ones in as few calls as SQS allows.
        let now = self.clock.now();
        let mut results: Vec<Value> = Vec::with_capacity(events.len());
        let mut to_send: Vec<(usize, Event)> = Vec::new();
        let mut all_errors = Vec::new();
        // Each tenant named is looked up once per batch: what it acts for, or the tenant
        // that is not there.
        let mut tenants: HashMap<Option<TenantId>, Result<Acting, TenantId>> = HashMap::new();
        for (i, v) in events.iter().enumerate() {
            let at = format!("/events/{i}");
            let mut errs = Vec::new();
            let mut parsed = parse_event(v, &at, now, &mut errs);
            if let Some(event) = &mut parsed {
                let named = named_tenant(v, event);
                if !tenants.contains_key(&named) {
                    let acting = match access::acting_tenant(who, &self.events, named.clone()).await {
                        Ok(a) => Ok(a),
                        Err(TenantRefused::Unknown(t)) => Err(t),
                        Err(r) => return Err(r.problem("/tenant_id")),
                    };
                    tenants.insert(named.clone(), acting);
                }
                match &tenants[&named] {
                    Ok(a) => event.tenant_id = a.tenant.clone(),
                    Err(t) => {
                        errs.extend(TenantRefused::Unknown(t.clone()).at(&format!("{at}/tenant_id")));
                        parsed = None;
                    }
                }
            }
            match parsed {
                Some(event) if event.envelope_json().len() > self.max_body_bytes.max(1024) + 1024 => {
                    errs.push(FieldProblem::new(
                        &at,
                        format!("the event is larger than {} bytes", self.max_body_bytes),
                    ));
                }
                Some(event) => {
                    results.push(json!({"index": i, "id": event.id, "status": "accepted"}));
                    to_send.push((i, event));
                    continue;
                }
                None => {}
            }
            results.push(json!({"index": i, "status": "rejected", "errors": errs}));
            all_errors.extend(errs);
        }

        // Each tenant's events count against its rate, the batch as a whole.
        let mut per_tenant: HashMap<&TenantId, u32> = HashMap::new();
        for (_, e) in &to_send {
            *per_tenant.entry(&e.tenant_id).or_default() += 1;
        }
        // (A tenant may be reached by two names: none, and its own id.)
        for (tenant, n) in per_tenant {
            let mut acting = tenants.values().filter_map(|r| r.as_ref().ok());
            if let Some(acting) = acting.find(|a| &a.tenant == tenant) {
                self.within_rate(acting, n).await?;
            }
        }

        // Large events' data is stored, all at once; one that cannot be is not queued.
        let (to_send, mut failed_retryable) = self.check_in_all(to_send, &mut results).await;

        // An id another event holds, in the store or earlier in this batch, is refused
        // (an id Hookline made is no one's).
        let sent_id = |i: usize| events.get(i).is_some_and(|v| v.get("id").is_some());
        let mut conflicts = self
            .conflicts(to_send.iter().filter(|(i, _)| sent_id(*i)).map(|(_, e)| e))
            .await
            .into_iter();
        let mut conflicting = 0;
        let mut to_send: Vec<(usize, Event)> = to_send
            .into_iter()
            .filter_map(|(i, event)| {
                let conflict = if sent_id(i) {
                    conflicts.next().flatten()
                } else {
                    None
                };
                let Some(c) = conflict else {
                    return Some((i, event));
                };
                let errs = c.problems(&format!("/events/{i}"));
                if let Some(r) = results.get_mut(i) {
                    *r = json!({"index": i, "status": "rejected", "errors": errs});
                }
                all_errors.extend(errs);
                conflicting += 1;
                None
            })
            .collect();

        // Positions last, for only what is queued: a position taken and not queued is a
        // gap its lane waits out.
        self.give_positions(to_send.iter_mut().map(|(_, e)| e)).await;
        // Events travel packed, several to a message: fewer SQS requests and invocations.
        let packed = message::pack(to_send);
        let messages: Vec<QueueMessage> = packed.iter().map(|(_, m)| m.clone()).collect();
        let sent = self.queue.send_batch(&messages).await;
        for ((at, _), outcome) in packed.iter().zip(sent) {
            if let Err(e) = outcome {
                tracing::error!(indexes = ?at, error = %e, "queueing batch events failed");
                let retryable = e.is_retryable();
                for i in at {
                    failed_retryable += usize::from(retryable);
                    if let Some(r) = results.get_mut(*i) {
                        r["status"] = json!("failed");
                        r["retryable"] = json!(retryable);
                    }
                }
            }
        }
        let count = |s: &str| results.iter().filter(|r| r["status"] == s).count();
        let (accepted, rejected, failed) = (count("accepted"), count("rejected"), count("failed"));
        tracing::info!(accepted, rejected, failed, "batch handled");
        if accepted == 0 && failed == 0 && conflicting == rejected {
            let mut p = Problem::conflict("every event in the batch is sent under an id another event holds");
            p.errors = all_errors;
            return Err(p);
        }
        if accepted == 0 && failed == 0 {
            return Err(Problem::validation("no event in the batch is valid", all_errors));
        }
        if accepted == 0 {
            return Err(if failed_retryable > 0 {
                Problem::unavailable()
            } else {
                Problem::internal()
            });
        }
        Ok(api::json(
            202,
            &json!({"accepted": accepted, "rejected": rejected, "failed": failed, "results": results}),
        ))
    }
}

impl<Q, E: EventLookup, C> Ingest<Q, E, C> {
    /// For each event in order, its conflict with the event stored under its id or sent
    /// under it earlier in the same request. A store that cannot answer finds none: the
    /// event is taken, and should it conflict, delivery's claim finds it and keeps it
    /// as a dead letter (a 202 is never held back by the look-up).
    async fn conflicts<'a>(&self, events: impl IntoIterator<Item = &'a Event>) -> Vec<Option<Conflict>> {
        let events: Vec<&Event> = events.into_iter().collect();
        let keys: Vec<EventKey> = events.iter().map(|e| e.key()).collect();
        let stored: HashMap<EventKey, Event> = if keys.is_empty() {
            HashMap::new()
        } else {
            match self.events.stored_events(&keys).await {
                Ok(stored) => stored.into_iter().map(|e| (e.key(), e)).collect(),
                Err(e) => {
                    tracing::warn!(error = %e, "the ids could not be looked up; taken unchecked");
                    HashMap::new()
                }
            }
        };
        let mut earlier: HashMap<EventKey, &Event> = HashMap::new();
        events
            .into_iter()
            .map(|e| {
                let key = e.key();
                match stored.get(&key).or_else(|| earlier.get(&key).copied()) {
                    Some(held) => Conflict::between(held, e),
                    None => {
                        earlier.insert(key, e);
                        None
                    }
                }
            })
            .collect()
    }
}

/// The tenant an event's body names, if it names one (`parse_event` read it into the
/// event, where an absent one reads as `default`).
fn named_tenant(v: &Value, event: &Event) -> Option<TenantId> {
    v.get("tenant_id")
        .is_some_and(|t| !t.is_null())
        .then(|| event.tenant_id.clone())
}

fn queue_problem(e: &PortError) -> Problem {
    tracing::error!(error = %e, "queueing the event failed");
    if e.is_retryable() {
        Problem::unavailable()
    } else {
        Problem::internal()
    }
}

#[cfg(test)]
mod tests;
