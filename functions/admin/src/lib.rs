//! The admin function: the operator's API. Endpoints (create, list, get, delete), the
//! delivery log (list, get with attempts, retry), events with their deliveries, and
//! `GET /health`.

use futures::StreamExt;
use hookline::api;
use hookline::auth::{ApiKeys, Scope};
use hookline::config::{ConfigError, Env, KeySource, key_source, retention, ssrf_policy};
use hookline::delivery::AttemptOutcome;
use hookline::delivery::DeliveryStatus;
use hookline::endpoint::EndpointView;
use hookline::endpoint_input::{apply_patch, parse_new_endpoint};
use hookline::event::Event;
use hookline::event::EventType;
use hookline::ids::{DeliveryId, EndpointId, EventId};
use hookline::message::QueueMessage;
use hookline::ports::{
    Clock, DeliveryQuery, DeliveryStore, EndpointStore, EventStore, PortError, Queue, StatsStore,
    WebhookSender,
};
use hookline::problem::{FieldProblem, Problem};
use hookline::signing::EndpointSecret;
use hookline::ssrf::SsrfPolicy;
use hookline::stats::{HourStats, hour_of};
use hookline::timestamp::Timestamp;
use hookline::webhook::signed_request;
use http::Method;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::json;
use std::time::Duration;

/// The longest a synchronous test send waits (an endpoint may allow up to 30 s).
const TEST_TIMEOUT: Duration = Duration::from_secs(25);

/// The API's OpenAPI document, served at `GET /openapi.yaml`.
pub const OPENAPI: &str = include_str!("../../../infra/openapi.yaml");

/// Endpoint bodies are small; anything larger is a mistake.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 200;
pub const DEFAULT_ROTATION_GRACE_SECONDS: u64 = 86_400;
pub const MAX_ROTATION_GRACE_SECONDS: u64 = 7 * 86_400;
/// One recovery call re-sends at most this many deliveries; `more` says if it stopped.
pub const MAX_RECOVER: u32 = 1000;
/// Stats reach back at most this far (their counters live as long as deliveries).
pub const MAX_STATS_HOURS: u32 = 24 * 30;
const STATS_READS_AT_ONCE: usize = 16;
/// The type of `POST /v1/endpoints/{id}/test`'s event unless the caller names one.
pub const TEST_EVENT_TYPE: &str = "hookline.endpoint.test";

#[derive(Debug)]
pub struct Config {
    pub keys: KeySource,
    pub table: String,
    pub queue_url: String,
    pub retention: Duration,
    pub ssrf: SsrfPolicy,
    pub disable_after: Duration,
}

impl Config {
    pub fn from_env(mut env: Env) -> Result<Self, ConfigError> {
        let keys = key_source(&mut env);
        let table = env.required("HOOKLINE_TABLE");
        let queue_url = env.required("HOOKLINE_QUEUE_URL");
        let retention = retention(&mut env);
        let ssrf = ssrf_policy(&mut env);
        let disable_after =
            Duration::from_secs(env.parsed_or("HOOKLINE_DISABLE_AFTER_SECONDS", 5 * 86_400u64));
        env.finish()?;
        Ok(Self {
            keys,
            table,
            queue_url,
            retention,
            ssrf,
            disable_after,
        })
    }
}

pub struct Admin<S, Q, H, C> {
    pub keys: ApiKeys,
    pub store: S,
    pub queue: Q,
    /// Sends test events, through the same signing, SSRF and HTTP code as delivery.
    pub sender: H,
    pub clock: C,
    pub ssrf: SsrfPolicy,
    /// How far back the delivery log reaches by default.
    pub retention: Duration,
    /// How long an endpoint may fail before it is disabled (as the delivery side has it).
    pub disable_after: Duration,
}

type HttpResult = Result<http::Response<String>, Problem>;

impl<S, Q, H, C> Admin<S, Q, H, C>
where
    S: EndpointStore + DeliveryStore + EventStore + StatsStore,
    Q: Queue,
    H: WebhookSender,
    C: Clock,
{
    pub async fn handle(&self, req: Request) -> Response<Body> {
        let request_id = req.lambda_context_ref().map(|c| c.request_id.clone());
        api::serve(req.method(), req.uri().path(), request_id, self.route(&req))
            .await
            .map(Body::from)
    }

    async fn route(&self, req: &Request) -> HttpResult {
        let path = req.uri().path().trim_end_matches('/');
        let segments: Vec<&str> = path.split('/').skip(1).collect();
        let method = req.method();
        if segments.as_slice() == ["openapi.yaml"] {
            return match *method {
                Method::GET => Ok(http::Response::builder()
                    .status(200)
                    .header(http::header::CONTENT_TYPE, "application/yaml")
                    .body(OPENAPI.to_owned())
                    .unwrap_or_default()),
                _ => Err(Problem::method_not_allowed("`/openapi.yaml` takes GET")),
            };
        }
        if segments.as_slice() == ["health"] {
            return match *method {
                Method::GET => Ok(api::json(
                    200,
                    &json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}),
                )),
                _ => Err(Problem::method_not_allowed("`/health` takes GET")),
            };
        }
        let allowed = |m: &str| Problem::method_not_allowed(format!("`{path}` takes {m}"));
        match segments.as_slice() {
            ["v1", "endpoints", ..] | ["v1", "deliveries", ..] | ["v1", "events", _] | ["v1", "stats"] => {
                api::authorize(&self.keys, req.headers(), Scope::Admin)?;
            }
            _ => return Err(Problem::not_found(format!("no route for `{path}`"))),
        }
        match (segments.as_slice(), method.clone()) {
            (["v1", "endpoints"], Method::POST) => self.create(req).await,
            (["v1", "endpoints"], Method::GET) => self.list(req).await,
            (["v1", "endpoints"], _) => Err(allowed("GET and POST")),
            (["v1", "endpoints", id], m) => {
                let id = EndpointId::parse(id).map_err(|_| no_endpoint(id))?;
                match m {
                    Method::GET => self.get(&id).await,
                    Method::PATCH => self.patch(&id, req).await,
                    Method::DELETE => self.delete(&id).await,
                    _ => Err(allowed("GET, PATCH and DELETE")),
                }
            }
            (["v1", "endpoints", id, "rotate-secret"], Method::POST) => {
                let id = EndpointId::parse(id).map_err(|_| no_endpoint(id))?;
                self.rotate(&id, req).await
            }
            (["v1", "endpoints", id, "recover"], Method::POST) => {
                let id = EndpointId::parse(id).map_err(|_| no_endpoint(id))?;
                self.recover(&id, req).await
            }
            (["v1", "endpoints", _, "rotate-secret" | "recover"], _) => Err(allowed("POST")),
            (["v1", "endpoints", id, "stats"], Method::GET) => {
                let id = EndpointId::parse(id).map_err(|_| no_endpoint(id))?;
                self.stats(Some(&id), req).await
            }
            (["v1", "endpoints", _, "stats"], _) => Err(allowed("GET")),
            (["v1", "endpoints", id, "test"], Method::POST) => {
                let id = EndpointId::parse(id).map_err(|_| no_endpoint(id))?;
                self.test(&id, req).await
            }
            (["v1", "endpoints", _, "test"], _) => Err(allowed("POST")),
            (["v1", "endpoints", id, "diagnose"], Method::GET) => {
                let id = EndpointId::parse(id).map_err(|_| no_endpoint(id))?;
                self.diagnose(&id).await
            }
            (["v1", "endpoints", _, "diagnose"], _) => Err(allowed("GET")),
            (["v1", "stats"], Method::GET) => self.stats(None, req).await,
            (["v1", "stats"], _) => Err(allowed("GET")),
            (["v1", "deliveries"], Method::GET) => self.deliveries(req).await,
            (["v1", "deliveries"], _) => Err(allowed("GET")),
            (["v1", "deliveries", id], Method::GET) => self.delivery(&parse_delivery_id(id)?).await,
            (["v1", "deliveries", _], _) => Err(allowed("GET")),
            (["v1", "deliveries", id, "retry"], Method::POST) => self.retry(&parse_delivery_id(id)?).await,
            (["v1", "deliveries", _, "retry"], _) => Err(allowed("POST")),
            (["v1", "events", id], Method::GET) => self.event(id).await,
            (["v1", "events", _], _) => Err(allowed("GET")),
            _ => Err(Problem::not_found(format!("no route for `{path}`"))),
        }
    }

    async fn create(&self, req: &Request) -> HttpResult {
        let value = api::json_body(req.headers(), req.body().as_ref(), MAX_BODY_BYTES)?;
        let endpoint = parse_new_endpoint(&value, &self.ssrf, self.clock.now())
            .map_err(|errors| Problem::validation("the endpoint is not valid", errors))?;
        // The form passed; now every address the host resolves to must pass too.
        if let Err(e) = self.ssrf.resolve_destination(&endpoint.url).await {
            return Err(Problem::validation(
                "the endpoint is not valid",
                vec![FieldProblem::new("/url", format!("the URL {e}"))],
            ));
        }
        self.store
            .create_endpoint(&endpoint)
            .await
            .map_err(store_problem)?;
        tracing::info!(endpoint_id = %endpoint.id, "endpoint created");
        let mut body = serde_json::to_value(EndpointView::from(&endpoint)).unwrap_or_default();
        // The only time the secret is shown.
        body["secret"] = json!(endpoint.secret.expose());
        let mut res = api::json(201, &body);
        if let Ok(loc) = format!("/v1/endpoints/{}", endpoint.id).parse() {
            res.headers_mut().insert(http::header::LOCATION, loc);
        }
        Ok(res)
    }

    async fn list(&self, req: &Request) -> HttpResult {
        let mut q = Query::new(req.uri());
        let limit = q.limit();
        let cursor = q.take("cursor");
        q.finish()?;
        let page = self
            .store
            .list_endpoints(limit, cursor.as_deref())
            .await
            .map_err(|e| cursor_problem(e, &cursor))?;
        let data: Vec<EndpointView> = page.items.iter().map(EndpointView::from).collect();
        Ok(api::json(
            200,
            &json!({"data": data, "next_cursor": page.next_cursor}),
        ))
    }

    async fn get(&self, id: &EndpointId) -> HttpResult {
        match self.store.get_endpoint(id).await.map_err(store_problem)? {
            Some(e) => Ok(with_etag(api::json(200, &EndpointView::from(&e)), &e)),
            None => Err(no_endpoint(id.as_str())),
        }
    }

    /// A partial update, made only against the version the caller read (`If-Match`
    /// with the endpoint's ETag, or `version` in the body), so two operators cannot
    /// silently overwrite each other.
    async fn patch(&self, id: &EndpointId, req: &Request) -> HttpResult {
        let value = api::json_body(req.headers(), req.body().as_ref(), MAX_BODY_BYTES)?;
        let from_header = req
            .headers()
            .get(http::header::IF_MATCH)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().trim_start_matches("W/").trim_matches('"').parse::<u64>());
        let from_body = value.get("version").map(|v| v.as_u64().ok_or(()));
        let read_version = match (from_header, from_body) {
            (Some(Ok(v)), _) | (None, Some(Ok(v))) => v,
            (Some(Err(_)), _) => {
                return Err(Problem::bad_request("If-Match must be an ETag this API gave out"));
            }
            (None, Some(Err(()))) => {
                return Err(Problem::validation(
                    "the endpoint is not valid",
                    vec![FieldProblem::new(
                        "/version",
                        "must be the endpoint's version, a whole number",
                    )],
                ));
            }
            (None, None) => {
                return Err(Problem::precondition_required(
                    "send the version you read: `If-Match` with the endpoint's ETag, or `version` in the body",
                ));
            }
        };
        let mut e = self
            .store
            .get_endpoint(id)
            .await
            .map_err(store_problem)?
            .ok_or_else(|| no_endpoint(id.as_str()))?;
        if e.version != read_version {
            return Err(stale(&e));
        }
        let url_before = e.url.clone();
        apply_patch(&mut e, &value, &self.ssrf, self.clock.now())
            .map_err(|errors| Problem::validation("the endpoint is not valid", errors))?;
        if e.url != url_before
            && let Err(err) = self.ssrf.resolve_destination(&e.url).await
        {
            return Err(Problem::validation(
                "the endpoint is not valid",
                vec![FieldProblem::new("/url", format!("the URL {err}"))],
            ));
        }
        e.version = read_version + 1;
        if !self
            .store
            .update_endpoint(&e, read_version)
            .await
            .map_err(store_problem)?
        {
            let now = self
                .store
                .get_endpoint(id)
                .await
                .map_err(store_problem)?
                .ok_or_else(|| no_endpoint(id.as_str()))?;
            return Err(stale(&now));
        }
        tracing::info!(endpoint_id = %id, version = e.version, "endpoint updated");
        Ok(with_etag(api::json(200, &EndpointView::from(&e)), &e))
    }

    /// A new secret; the old one keeps signing beside it for the grace period.
    async fn rotate(&self, id: &EndpointId, req: &Request) -> HttpResult {
        let value = api::optional_json_body(req.headers(), req.body().as_ref(), MAX_BODY_BYTES)?;
        let mut errors = Vec::new();
        let Some(obj) = api::object(&value, "/", &mut errors) else {
            return Err(Problem::validation("the rotation is not valid", errors));
        };
        api::refuse_unknown_fields(obj, &["grace_seconds", "secret"], "", &mut errors);
        let grace = match obj.get("grace_seconds") {
            None => Duration::from_secs(DEFAULT_ROTATION_GRACE_SECONDS),
            Some(v) => match v.as_u64().filter(|s| *s <= MAX_ROTATION_GRACE_SECONDS) {
                Some(s) => Duration::from_secs(s),
                None => {
                    errors.push(FieldProblem::new(
                        "/grace_seconds",
                        format!("must be whole seconds from 0 to {MAX_ROTATION_GRACE_SECONDS}"),
                    ));
                    Duration::ZERO
                }
            },
        };
        let new = match api::opt_str(obj, "secret", "", &mut errors) {
            None => Some(EndpointSecret::generate()),
            Some(s) => EndpointSecret::parse(s)
                .map_err(|e| errors.push(FieldProblem::new("/secret", e.to_string())))
                .ok(),
        };
        let Some(new) = new.filter(|_| errors.is_empty()) else {
            return Err(Problem::validation("the rotation is not valid", errors));
        };
        // Read, rotate, write on condition; another change in between means read again.
        for _ in 0..3 {
            let mut e = self
                .store
                .get_endpoint(id)
                .await
                .map_err(store_problem)?
                .ok_or_else(|| no_endpoint(id.as_str()))?;
            let read_version = e.version;
            e.rotate_secret(new.clone(), grace, self.clock.now());
            e.version = read_version + 1;
            if self
                .store
                .update_endpoint(&e, read_version)
                .await
                .map_err(store_problem)?
            {
                tracing::info!(endpoint_id = %id, grace_seconds = grace.as_secs(), "secret rotated");
                let mut body = serde_json::to_value(EndpointView::from(&e)).unwrap_or_default();
                body["secret"] = json!(e.secret.expose());
                return Ok(with_etag(api::json(200, &body), &e));
            }
        }
        Err(Problem::conflict("the endpoint kept changing; try again"))
    }

    /// Sends again every failed delivery of the endpoint in a time range.
    async fn recover(&self, id: &EndpointId, req: &Request) -> HttpResult {
        let value = api::json_body(req.headers(), req.body().as_ref(), MAX_BODY_BYTES)?;
        let mut errors = Vec::new();
        let Some(obj) = api::object(&value, "/", &mut errors) else {
            return Err(Problem::validation("the recovery is not valid", errors));
        };
        api::refuse_unknown_fields(obj, &["since", "until"], "", &mut errors);
        let mut time = |key: &str| {
            api::opt_str(obj, key, "", &mut errors).and_then(|raw| {
                Timestamp::parse_rfc3339(raw)
                    .map_err(|_| {
                        errors.push(FieldProblem::new(
                            format!("/{key}"),
                            "must be an RFC 3339 date-time",
                        ))
                    })
                    .ok()
            })
        };
        let since = time("since");
        let until = time("until");
        if !obj.contains_key("since") {
            errors.push(FieldProblem::new("/since", "is required"));
        }
        if !errors.is_empty() {
            return Err(Problem::validation("the recovery is not valid", errors));
        }
        if self
            .store
            .get_endpoint(id)
            .await
            .map_err(store_problem)?
            .is_none()
        {
            return Err(no_endpoint(id.as_str()));
        }
        let now = self.clock.now();
        let mut query = DeliveryQuery {
            endpoint: Some(id.clone()),
            status: Some(DeliveryStatus::Failed),
            event_type: None,
            since: since.unwrap_or(now),
            until: until.unwrap_or(now),
            limit: MAX_PAGE,
            cursor: None,
        };
        let (mut recovered, mut skipped) = (0u32, 0u32);
        let mut events: std::collections::HashMap<EventId, Option<hookline::event::Event>> =
            Default::default();
        loop {
            let page = self.store.list_deliveries(&query).await.map_err(store_problem)?;
            for seen in page.items {
                if !events.contains_key(&seen.event_id) {
                    let stored = self
                        .store
                        .get_event(&seen.event_id)
                        .await
                        .map_err(store_problem)?;
                    events.insert(seen.event_id.clone(), stored.map(|s| s.event));
                }
                let Some(Some(event)) = events.get(&seen.event_id) else {
                    skipped += 1;
                    continue;
                };
                let mut again = seen.clone();
                again.retry_now(now);
                if !self
                    .store
                    .replace_delivery(&seen, &again)
                    .await
                    .map_err(store_problem)?
                {
                    skipped += 1;
                    continue;
                }
                let wake = again.wake.clone().unwrap_or_default();
                let message = QueueMessage::AttemptV1 {
                    event: event.clone(),
                    endpoint_id: id.clone(),
                    wake,
                };
                if let Err(e) = self.queue.send(&message).await {
                    tracing::warn!(error = %e, delivery_id = %again.id, "could not queue a recovery; the sweeper will");
                }
                recovered += 1;
            }
            match page.next_cursor {
                Some(c) if recovered + skipped < MAX_RECOVER => query.cursor = Some(c),
                more => {
                    tracing::info!(endpoint_id = %id, recovered, skipped, "recovery requested");
                    return Ok(api::json(
                        202,
                        &json!({"recovered": recovered, "skipped": skipped, "more": more.is_some()}),
                    ));
                }
            }
        }
    }

    async fn delete(&self, id: &EndpointId) -> HttpResult {
        if self.store.delete_endpoint(id).await.map_err(store_problem)? {
            tracing::info!(endpoint_id = %id, "endpoint deleted");
            Ok(api::empty(204))
        } else {
            Err(no_endpoint(id.as_str()))
        }
    }

    /// Sends a signed test event now and answers with what the endpoint said. Nothing
    /// is recorded: it is a probe, not a delivery.
    async fn test(&self, id: &EndpointId, req: &Request) -> HttpResult {
        let value = api::optional_json_body(req.headers(), req.body().as_ref(), MAX_BODY_BYTES)?;
        let mut errors = Vec::new();
        let Some(obj) = api::object(&value, "/", &mut errors) else {
            return Err(Problem::validation("the test is not valid", errors));
        };
        api::refuse_unknown_fields(obj, &["event_type", "data"], "", &mut errors);
        let event_type = match api::opt_str(obj, "event_type", "", &mut errors) {
            None => EventType::parse(TEST_EVENT_TYPE).ok(),
            Some(t) => EventType::parse(t)
                .map_err(|e| errors.push(FieldProblem::new("/event_type", e.to_string())))
                .ok(),
        };
        let (Some(event_type), true) = (event_type, errors.is_empty()) else {
            return Err(Problem::validation("the test is not valid", errors));
        };
        let e = self
            .store
            .get_endpoint(id)
            .await
            .map_err(store_problem)?
            .ok_or_else(|| no_endpoint(id.as_str()))?;
        let now = self.clock.now();
        let event = Event {
            id: EventId::generate(),
            event_type,
            data: obj
                .get("data")
                .cloned()
                .unwrap_or_else(|| json!({"message": "a test event from Hookline"})),
            timestamp: now,
            source: "hookline.test".into(),
            version: hookline::event::ENVELOPE_VERSION.into(),
        };
        let body = event.envelope_json().into();
        let mut request = signed_request(&event, body, &e, &DeliveryId::generate(), now.unix_seconds());
        // The answer must come back inside API Gateway's 30 s integration limit.
        request.timeout = request.timeout.min(TEST_TIMEOUT);
        let started = std::time::Instant::now();
        let outcome = self.sender.post(request).await;
        let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        tracing::info!(endpoint_id = %id, status = outcome.status_code(), latency_ms, "test event sent");
        let mut answer = json!({
            "success": outcome.is_success(),
            "latency_ms": latency_ms,
            "event": event,
        });
        match &outcome {
            AttemptOutcome::Response { status, body, .. } => {
                answer["status"] = json!(status);
                answer["body"] = json!(body);
            }
            AttemptOutcome::Error { error, message } => {
                answer["error"] = json!(error);
                answer["message"] = json!(message);
            }
        }
        Ok(api::json(200, &answer))
    }

    /// What stands between the endpoint and its webhooks: DNS, reachability, recent
    /// failures and latency, the auto-disable clock, and what to do about it.
    async fn diagnose(&self, id: &EndpointId) -> HttpResult {
        let e = self
            .store
            .get_endpoint(id)
            .await
            .map_err(store_problem)?
            .ok_or_else(|| no_endpoint(id.as_str()))?;
        let now = self.clock.now();
        let mut advice: Vec<String> = Vec::new();
        let url = url::Url::parse(&e.url).ok();
        let host = url
            .as_ref()
            .and_then(|u| u.host_str())
            .unwrap_or_default()
            .trim_matches(['[', ']'])
            .to_owned();
        let port = url
            .as_ref()
            .and_then(url::Url::port_or_known_default)
            .unwrap_or(443);

        // DNS, and which addresses the SSRF policy lets Hookline reach.
        let lookup = tokio::time::timeout(
            hookline::ssrf::DNS_TIMEOUT,
            tokio::net::lookup_host((host.as_str(), port)),
        );
        let (addresses, dns_error) = match lookup.await {
            Ok(Ok(found)) => (found.collect::<Vec<_>>(), None),
            Ok(Err(err)) => (Vec::new(), Some(err.to_string())),
            Err(_) => (Vec::new(), Some("no answer within 5 s".to_owned())),
        };
        let checked: Vec<serde_json::Value> = addresses
            .iter()
            .map(|a| match self.ssrf.check_ip(a.ip()) {
                Ok(()) => json!({"address": a.ip().to_string(), "allowed": true}),
                Err(why) => {
                    json!({"address": a.ip().to_string(), "allowed": false, "reason": why.to_string()})
                }
            })
            .collect();
        let allowed: Vec<std::net::SocketAddr> = addresses
            .iter()
            .copied()
            .filter(|a| self.ssrf.check_ip(a.ip()).is_ok())
            .collect();
        if let Some(err) = &dns_error {
            advice.push(format!(
                "The host `{host}` does not resolve ({err}): check the URL's host name."
            ));
        } else if allowed.is_empty() {
            advice.push(format!(
                "`{host}` resolves only to addresses Hookline may not reach (not public): point the endpoint at a public address."
            ));
        }

        // Reachability: a TCP connection to the first address Hookline may use.
        let reach = match allowed.first() {
            None => json!({"checked": false}),
            Some(addr) => {
                let started = std::time::Instant::now();
                match tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr)).await
                {
                    Ok(Ok(_)) => json!({"checked": true, "reachable": true, "address": addr.to_string(),
                                        "connect_ms": started.elapsed().as_millis() as u64}),
                    Ok(Err(err)) => {
                        advice.push(format!("Nothing accepts connections at {addr}: is the receiver running, and the port open to the internet?"));
                        json!({"checked": true, "reachable": false, "address": addr.to_string(), "error": err.to_string()})
                    }
                    Err(_) => {
                        advice.push(format!("Connecting to {addr} timed out after 5 s: a firewall may be dropping the traffic."));
                        json!({"checked": true, "reachable": false, "address": addr.to_string(), "error": "timed out after 5 s"})
                    }
                }
            }
        };

        // The last day's attempts, from the hourly counters.
        let mut day = HourStats::default();
        for h in self
            .store
            .read_stats(
                id,
                &hour_of(now.minus(Duration::from_secs(23 * 3600))),
                &hour_of(now),
            )
            .await
            .map_err(store_problem)?
        {
            day.merge(&h);
        }
        let summary = day.summary();
        if day.attempts >= 3 && day.attempt_failures * 2 > day.attempts {
            advice.push(format!(
                "{} of the last day's {} attempts failed: the errors are in GET /v1/deliveries?endpoint_id={id}&status=retrying.",
                day.attempt_failures, day.attempts
            ));
        }
        if let Some(mean) = summary.mean_response_ms
            && mean * 10 > u64::from(e.timeout_seconds) * 1000 * 8
        {
            advice.push(format!(
                "Answers take {mean} ms on average, close to the {} s timeout: answer 2xx first and do the work afterwards, or raise timeout_seconds.",
                e.timeout_seconds
            ));
        }

        // The auto-disable clock.
        let disables_at = e.failing_since.map(|t| t.saturating_add(self.disable_after));
        match (&e.status, e.failing_since) {
            (hookline::endpoint::EndpointStatus::Disabled, _) => advice.push(format!(
                "It is disabled ({}): once the receiver is fixed, enable it with PATCH {{\"status\": \"active\"}} and send the missed webhooks again with POST /v1/endpoints/{id}/recover.",
                e.disabled_reason.as_deref().unwrap_or("by an operator")
            )),
            (_, Some(since)) => advice.push(format!(
                "Every attempt has failed since {since}; it will be disabled at {} unless one succeeds.",
                disables_at.map(|t| t.to_rfc3339()).unwrap_or_default()
            )),
            _ => {}
        }
        if advice.is_empty() {
            advice.push("No problem found.".into());
        }
        Ok(api::json(
            200,
            &json!({
                "endpoint_id": id,
                "url": e.url,
                "dns": {"host": host, "resolved": dns_error.is_none(), "error": dns_error, "addresses": checked},
                "reachability": reach,
                "last_24h": summary,
                "status": e.status,
                "disabled_reason": e.disabled_reason,
                "failing_since": e.failing_since,
                "disables_at": disables_at,
                "advice": advice,
            }),
        ))
    }

    /// Totals and per-endpoint figures over the last `hours`, from the hourly counters.
    async fn stats(&self, only: Option<&EndpointId>, req: &Request) -> HttpResult {
        let mut q = Query::new(req.uri());
        let hours = q
            .parse("hours", |s| match s.parse::<u32>() {
                Ok(n) if (1..=MAX_STATS_HOURS).contains(&n) => Ok(n),
                _ => Err(format!(
                    "must be a whole number of hours from 1 to {MAX_STATS_HOURS}"
                )),
            })
            .unwrap_or(24);
        q.finish()?;
        let now = self.clock.now();
        let from = hour_of(now.minus(Duration::from_secs(u64::from(hours - 1) * 3600)));
        let to = hour_of(now);
        let endpoints = match only {
            Some(id) => vec![
                self.store
                    .get_endpoint(id)
                    .await
                    .map_err(store_problem)?
                    .ok_or_else(|| no_endpoint(id.as_str()))?,
            ],
            None => self.store.all_endpoints().await.map_err(store_problem)?,
        };
        // One query per endpoint, several at once.
        let reads: Vec<_> = endpoints
            .iter()
            .map(|e| {
                let (from, to) = (from.clone(), to.clone());
                async move {
                    let mut sum = HourStats::default();
                    for h in self.store.read_stats(&e.id, &from, &to).await? {
                        sum.merge(&h);
                    }
                    Ok::<_, PortError>((e, sum))
                }
            })
            .collect();
        let sums: Vec<_> = futures::stream::iter(reads)
            .buffered(STATS_READS_AT_ONCE)
            .collect()
            .await;
        let mut total = HourStats::default();
        let mut per = Vec::with_capacity(endpoints.len());
        for r in sums {
            let (e, sum) = r.map_err(store_problem)?;
            total.merge(&sum);
            per.push(json!({"endpoint_id": e.id, "name": e.name, "stats": sum.summary()}));
        }
        let body = match only {
            Some(_) => json!({"hours": hours, "endpoint_id": endpoints[0].id, "stats": total.summary()}),
            None => json!({"hours": hours, "totals": total.summary(), "endpoints": per}),
        };
        Ok(api::json(200, &body))
    }

    async fn deliveries(&self, req: &Request) -> HttpResult {
        let mut q = Query::new(req.uri());
        let now = self.clock.now();
        let endpoint = q.parse("endpoint_id", |s| EndpointId::parse(s).map_err(|e| e.to_string()));
        let status = q.parse("status", |s| {
            DeliveryStatus::parse(s)
                .ok_or_else(|| "must be pending, retrying, delivered or failed".to_owned())
        });
        let event_type = q.parse("event_type", |s| EventType::parse(s).map_err(|e| e.to_string()));
        let since = q.parse("since", |s| {
            Timestamp::parse_rfc3339(s).map_err(|_| "must be an RFC 3339 date-time".into())
        });
        let until = q.parse("until", |s| {
            Timestamp::parse_rfc3339(s).map_err(|_| "must be an RFC 3339 date-time".into())
        });
        let limit = q.limit();
        let cursor = q.take("cursor");
        q.finish()?;
        // Nothing older than the retention period is kept, so nothing older is looked for.
        let oldest = now.minus(self.retention);
        let query = DeliveryQuery {
            endpoint,
            status,
            event_type,
            since: since.map_or(oldest, |s| s.max(oldest)),
            until: until.unwrap_or(now),
            limit,
            cursor: cursor.clone(),
        };
        let page = self
            .store
            .list_deliveries(&query)
            .await
            .map_err(|e| cursor_problem(e, &cursor))?;
        Ok(api::json(
            200,
            &json!({"data": page.items, "next_cursor": page.next_cursor}),
        ))
    }

    async fn delivery(&self, id: &DeliveryId) -> HttpResult {
        match self.store.find_delivery(id).await.map_err(store_problem)? {
            Some((d, attempts)) => {
                let mut body = serde_json::to_value(&d).unwrap_or_default();
                body["attempts"] = json!(attempts);
                Ok(api::json(200, &body))
            }
            None => Err(no_delivery(id.as_str())),
        }
    }

    /// One more attempt now, through the queue like any other.
    async fn retry(&self, id: &DeliveryId) -> HttpResult {
        let (seen, _) = self
            .store
            .find_delivery(id)
            .await
            .map_err(store_problem)?
            .ok_or_else(|| no_delivery(id.as_str()))?;
        let event = self
            .store
            .get_event(&seen.event_id)
            .await
            .map_err(store_problem)?
            .ok_or_else(|| {
                Problem::conflict("the delivery's event is no longer stored (past its retention)")
            })?
            .event;
        let mut again = seen.clone();
        again.retry_now(self.clock.now());
        if !self
            .store
            .replace_delivery(&seen, &again)
            .await
            .map_err(store_problem)?
        {
            return Err(Problem::conflict(
                "the delivery changed meanwhile; read it again and retry",
            ));
        }
        let wake = again.wake.clone().unwrap_or_default();
        let message = QueueMessage::AttemptV1 {
            event,
            endpoint_id: again.endpoint_id.clone(),
            wake,
        };
        // If this send fails the delivery is open and due, and the sweeper re-drives it.
        if let Err(e) = self.queue.send(&message).await {
            tracing::warn!(error = %e, delivery_id = %id, "could not queue the retry; the sweeper will");
        }
        tracing::info!(delivery_id = %id, "retry requested");
        Ok(api::json(202, &again))
    }

    async fn event(&self, raw: &str) -> HttpResult {
        let id = EventId::parse(raw).map_err(|_| no_event(raw))?;
        let stored = self
            .store
            .get_event(&id)
            .await
            .map_err(store_problem)?
            .ok_or_else(|| no_event(raw))?;
        let deliveries: Vec<_> = self
            .store
            .deliveries_for_event(&id)
            .await
            .map_err(store_problem)?
            .into_iter()
            .map(|(d, _)| d)
            .collect();
        let recorded = deliveries.iter().map(|d| d.id.clone()).collect();
        Ok(api::json(
            200,
            &json!({"event": stored.event, "fanned_out": stored.fanned_out(&recorded), "deliveries": deliveries}),
        ))
    }
}

/// A query string read parameter by parameter; unknown and bad ones are all reported.
struct Query {
    pairs: Vec<(String, String)>,
    errors: Vec<FieldProblem>,
}

impl Query {
    fn new(uri: &http::Uri) -> Self {
        Self {
            pairs: api::query(uri),
            errors: Vec::new(),
        }
    }

    fn take(&mut self, name: &str) -> Option<String> {
        let i = self.pairs.iter().position(|(k, _)| k == name)?;
        Some(self.pairs.remove(i).1)
    }

    fn parse<T>(&mut self, name: &str, f: impl FnOnce(&str) -> Result<T, String>) -> Option<T> {
        let raw = self.take(name)?;
        f(&raw)
            .map_err(|e| self.errors.push(FieldProblem::new(format!("?{name}"), e)))
            .ok()
    }

    fn limit(&mut self) -> u32 {
        self.parse("limit", |s| match s.parse::<u32>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
            _ => Err(format!("must be a whole number from 1 to {MAX_PAGE}")),
        })
        .unwrap_or(DEFAULT_PAGE)
    }

    fn finish(mut self) -> Result<(), Problem> {
        for (k, _) in std::mem::take(&mut self.pairs) {
            self.errors
                .push(FieldProblem::new(format!("?{k}"), "unknown query parameter"));
        }
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(Problem::validation("the query is not valid", self.errors))
        }
    }
}

fn with_etag(mut res: http::Response<String>, e: &hookline::endpoint::Endpoint) -> http::Response<String> {
    if let Ok(v) = format!("\"{}\"", e.version).parse() {
        res.headers_mut().insert(http::header::ETAG, v);
    }
    res
}

fn stale(now: &hookline::endpoint::Endpoint) -> Problem {
    Problem::precondition_failed(format!(
        "the endpoint changed since you read it (it is at version {}); read it again, then apply your change",
        now.version
    ))
}

fn parse_delivery_id(raw: &str) -> Result<DeliveryId, Problem> {
    DeliveryId::parse(raw).map_err(|_| no_delivery(raw))
}

fn no_endpoint(id: &str) -> Problem {
    Problem::not_found(format!("there is no endpoint `{id}`"))
}

fn no_delivery(id: &str) -> Problem {
    Problem::not_found(format!("there is no delivery `{id}`"))
}

fn no_event(id: &str) -> Problem {
    Problem::not_found(format!(
        "there is no event `{id}` (events are kept for the retention period)"
    ))
}

fn cursor_problem(e: PortError, cursor: &Option<String>) -> Problem {
    match e {
        e if e.is_permanent() && cursor.is_some() => Problem::validation(
            "the query is not valid",
            vec![FieldProblem::new("?cursor", "is not a cursor this API gave out")],
        ),
        e => store_problem(e),
    }
}

fn store_problem(e: PortError) -> Problem {
    tracing::error!(error = %e, "the store failed");
    if e.is_retryable() {
        Problem::unavailable()
    } else {
        Problem::internal()
    }
}

#[cfg(test)]
mod tests;
