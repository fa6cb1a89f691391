//! The ingest function: `POST /v1/events`, `POST /v1/events/batch` and
//! `POST /v1/langgraph/runs` (LangGraph Platform's run webhooks). It validates, assigns
//! ids and queues. Its one DynamoDB call is a consistent read of the ids it is sent,
//! so that an id taken by another event is a 409 (`hookline::event_conflict`).

use hookline::api;
use hookline::auth::{ApiKeys, Scope};
use hookline::config::{ConfigError, Env, KeySource, key_source};
use hookline::event::{Event, EventType};
use hookline::event_conflict::Conflict;
use hookline::event_input::{batch_events, parse_event};
use hookline::ids::EventId;
use hookline::message::{self, QueueMessage};
use hookline::ports::{Clock, EventLookup, PortError, Queue};
use hookline::problem::{FieldProblem, Problem};
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::{Value, json};
use std::collections::HashMap;

pub const DEFAULT_MAX_BODY_BYTES: usize = 256 * 1024;
/// An event is stored whole in one DynamoDB item; its queue message is a little larger.
pub const MAX_EVENT_BYTES: usize = hookline::event::MAX_STORED_BYTES;
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
    pub max_body_bytes: usize,
}

impl Config {
    pub fn from_env(mut env: Env) -> Result<Self, ConfigError> {
        let keys = key_source(&mut env);
        let queue_url = env.required("HOOKLINE_QUEUE_URL");
        let table = env.required("HOOKLINE_TABLE");
        let max_body_bytes =
            env.parsed_with(
                "HOOKLINE_MAX_BODY_BYTES",
                DEFAULT_MAX_BODY_BYTES,
                |s| match s.parse::<usize>() {
                    Ok(n) if (1024..=MAX_EVENT_BYTES).contains(&n) => Ok(n),
                    _ => Err(format!("must be a byte count from 1024 to {MAX_EVENT_BYTES}")),
                },
            );
        env.finish()?;
        Ok(Self {
            keys,
            queue_url,
            table,
            max_body_bytes,
        })
    }
}

pub struct Ingest<Q, E, C> {
    pub keys: ApiKeys,
    pub queue: Q,
    /// Where ids already taken are looked up.
    pub events: E,
    pub clock: C,
    pub max_body_bytes: usize,
}

impl<Q: Queue, E: EventLookup, C: Clock> Ingest<Q, E, C> {
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
        match path {
            "/v1/events" => {
                api::authorize(&self.keys, req.headers(), Scope::Ingest)?;
                self.single(req).await
            }
            "/v1/events/batch" => {
                api::authorize(&self.keys, req.headers(), Scope::Ingest)?;
                self.batch(req).await
            }
            _ => self.langgraph_run(req).await,
        }
    }

    /// A LangGraph Platform run webhook. The Platform can send static headers, but a
    /// `token` in the webhook URL's query string is simpler to set per run, so both
    /// are accepted; the query string is never logged.
    async fn langgraph_run(&self, req: &Request) -> Result<http::Response<String>, Problem> {
        let token = api::query(req.uri())
            .into_iter()
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v);
        match token {
            Some(t) => api::authorize_token(&self.keys, &t, Scope::Ingest)?,
            None => api::authorize(&self.keys, req.headers(), Scope::Ingest)?,
        };
        // The sender cannot shrink a run's state and does not retry a 413: a run whose
        // state is too large is reported without it (`values` says how large it was).
        let value = api::json_body(req.headers(), req.body().as_ref(), MAX_LANGGRAPH_BODY_BYTES)?;
        let mut event = hookline::langgraph::run_event(&value, self.clock.now(), &self.keys.own_keys())
            .map_err(|errors| Problem::validation("the body is not a LangGraph run that ended", errors))?;
        if event.envelope_json().len() > MAX_EVENT_BYTES {
            hookline::langgraph::drop_values(&mut event);
        }
        hookline::langgraph::fit_depth(&mut event)
            .map_err(|p| Problem::validation("the run nests too deep to deliver", vec![p]))?;
        let (id, event_type) = self.queue_event(event, true).await?;
        Ok(api::json(202, &json!({ "id": id, "event_type": event_type })))
    }

    /// Queues one event as its message, if the message is not too large and its id is
    /// not another event's (an id Hookline made just now is no one's: `sent_id` says
    /// whether the sender gave it).
    async fn queue_event(&self, event: Event, sent_id: bool) -> Result<(EventId, EventType), Problem> {
        if sent_id && let Some(c) = self.conflicts([&event]).await.pop().flatten() {
            tracing::info!(event_id = %event.id, fields = ?c.fields(), "refused: the id is another event's");
            return Err(c.problem(&event));
        }
        let (id, event_type) = (event.id.clone(), event.event_type.clone());
        let message = QueueMessage::EventV1 { event };
        if message.to_body().len() > MAX_EVENT_BYTES {
            return Err(Problem::too_large(MAX_EVENT_BYTES));
        }
        self.queue.send(&message).await.map_err(|e| queue_problem(&e))?;
        tracing::info!(event_id = %id, %event_type, "event queued");
        Ok((id, event_type))
    }

    async fn single(&self, req: &Request) -> Result<http::Response<String>, Problem> {
        let value = api::json_body(req.headers(), req.body().as_ref(), self.max_body_bytes)?;
        let mut errors = Vec::new();
        let Some(event) = parse_event(&value, "", self.clock.now(), &mut errors) else {
            return Err(Problem::validation("the event is not valid", errors));
        };
        let (id, _) = self.queue_event(event, value.get("id").is_some()).await?;
        Ok(api::json(202, &json!({ "id": id })))
    }

    async fn batch(&self, req: &Request) -> Result<http::Response<String>, Problem> {
        let value = api::json_body(req.headers(), req.body().as_ref(), MAX_BATCH_BODY_BYTES)?;
        let events =
            batch_events(&value).map_err(|errors| Problem::validation("the batch is not valid", errors))?;

        // Validate every event first; queue the valid ones in as few calls as SQS allows.
        let now = self.clock.now();
        let mut results: Vec<Value> = Vec::with_capacity(events.len());
        let mut to_send: Vec<(usize, Event)> = Vec::new();
        let mut all_errors = Vec::new();
        for (i, v) in events.iter().enumerate() {
            let at = format!("/events/{i}");
            let mut errs = Vec::new();
            match parse_event(v, &at, now, &mut errs) {
                Some(event)
                    if QueueMessage::EventV1 { event: event.clone() }.to_body().len()
                        > self.max_body_bytes.max(1024) + 1024 =>
                {
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

        // An id another event holds, in the store or earlier in this batch, is refused
        // (an id Hookline made is no one's).
        let sent_id = |i: usize| events.get(i).is_some_and(|v| v.get("id").is_some());
        let mut conflicts = self
            .conflicts(to_send.iter().filter(|(i, _)| sent_id(*i)).map(|(_, e)| e))
            .await
            .into_iter();
        let mut conflicting = 0;
        let to_send: Vec<(usize, Event)> = to_send
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

        // Events travel packed, several to a message: fewer SQS requests and invocations.
        let packed = message::pack(to_send);
        let messages: Vec<QueueMessage> = packed.iter().map(|(_, m)| m.clone()).collect();
        let sent = self.queue.send_batch(&messages).await;
        let mut failed_retryable = 0;
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
        let ids: Vec<EventId> = events.iter().map(|e| e.id.clone()).collect();
        let stored: HashMap<EventId, Event> = if ids.is_empty() {
            HashMap::new()
        } else {
            match self.events.stored_events(&ids).await {
                Ok(stored) => stored.into_iter().map(|e| (e.id.clone(), e)).collect(),
                Err(e) => {
                    tracing::warn!(error = %e, "the ids could not be looked up; taken unchecked");
                    HashMap::new()
                }
            }
        };
        let mut earlier: HashMap<&EventId, &Event> = HashMap::new();
        events
            .into_iter()
            .map(
                |e| match stored.get(&e.id).or_else(|| earlier.get(&e.id).copied()) {
                    Some(held) => Conflict::between(held, e),
                    None => {
                        earlier.insert(&e.id, e);
                        None
                    }
                },
            )
            .collect()
    }
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
