//! The integration harness: a fresh stack on the emulator per test (resources made
//! from template.yaml under a unique prefix), the real handlers wired to the real
//! adapters, the event-source mapping that feeds them, and HTTP receivers on 127.0.0.1.

use crate::calls;
use admin_fn::Admin;
use async_trait::async_trait;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use delivery_fn::{Deliverer, EndpointCache, Settings, SlowLane};
use devstack::esm::{EsmError, EventSourceMapping, PollStats, SqsHandler};
use devstack::provision::{Stack, provision};
use hookline::adapters::dynamo::DynamoStore;
use hookline::adapters::http::HttpSender;
use hookline::adapters::probe::TcpProbe;
use hookline::adapters::s3::S3Data;
use hookline::adapters::sqs::SqsQueue;
use hookline::auth::ApiKeys;
use hookline::ports::{Clock, SystemClock};
use hookline::ssrf::SsrfPolicy;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use ingest_fn::Ingest;
use lambda_http::Body;
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use sweeper_fn::{SweepSettings, Sweeper};
use tokio::net::TcpListener;

pub const INGEST_KEY: &str = "it-ingest-key";
pub const ADMIN_KEY: &str = "it-admin-key";

pub fn local_policy() -> SsrfPolicy {
    SsrfPolicy::parse_allowed("127.0.0.0/8,::1/128").expect("valid ranges")
}

/// How a test's stack is set up; configuration, never special code.
pub struct Options {
    /// The SSRF policy the delivery side applies at send time.
    pub send_policy: SsrfPolicy,
    pub settings: Settings,
    pub sweep: SweepSettings,
    /// Overrides the queue's visibility timeout (the template's is minutes long).
    pub visibility_timeout: Option<Duration>,
    /// How long the delivery side caches endpoints (none, so new ones count at once).
    pub endpoint_cache: Duration,
    /// Overrides the queue's `maxReceiveCount` (the template's is 10).
    pub max_receive_count: Option<u32>,
    /// Whether the slow lane is configured (as in template.yaml).
    pub slow_lane: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            send_policy: local_policy(),
            settings: Settings {
                concurrency: 8,
                ..Settings::default()
            },
            sweep: SweepSettings::default(),
            visibility_timeout: None,
            endpoint_cache: Duration::ZERO,
            max_receive_count: None,
            slow_lane: true,
        }
    }
}

pub struct Harness {
    pub stack: Stack,
    /// The test's own clients, for setting up and looking; not any function's calls.
    pub sqs: aws_sdk_sqs::Client,
    pub dynamo: aws_sdk_dynamodb::Client,
    /// The sweeper's clients (the other functions' are inside their handlers).
    sweeper_clients: (aws_sdk_sqs::Client, aws_sdk_dynamodb::Client),
    pub ingest: Ingest<SqsQueue, DynamoStore, SystemClock>,
    pub admin: Admin<DynamoStore, SqsQueue, HttpSender, TcpProbe, SystemClock>,
    pub deliverer: Arc<Deliverer<DynamoStore, HttpSender, SqsQueue, SystemClock>>,
    pub sweep: SweepSettings,
    pub esm: EventSourceMapping,
    /// The slow lane's event-source mapping, when it is configured.
    pub slow_esm: Option<EventSourceMapping>,
}

pub struct InProcess(pub Arc<Deliverer<DynamoStore, HttpSender, SqsQueue, SystemClock>>);

#[async_trait]
impl SqsHandler for InProcess {
    async fn invoke(&self, event: SqsEvent) -> Result<SqsBatchResponse, EsmError> {
        Ok(self.0.handle(event).await)
    }
}

impl Harness {
    pub async fn new() -> Self {
        Self::with(Options::default()).await
    }

    pub async fn with_send_policy(send_policy: SsrfPolicy) -> Self {
        Self::with(Options {
            send_policy,
            ..Options::default()
        })
        .await
    }

    pub async fn with(options: Options) -> Self {
        let Options {
            send_policy,
            settings,
            sweep,
            visibility_timeout,
            endpoint_cache,
            max_receive_count,
            slow_lane,
        } = options;
        assert!(
            std::env::var_os("AWS_ENDPOINT_URL").is_some(),
            "integration tests need the emulator: run them with `make test` \
             (or infra/with-emulator.sh cargo nextest run)"
        );
        let cfg = hookline::adapters::aws_config().await.expect("trusted roots");
        let sqs = aws_sdk_sqs::Client::new(&cfg);
        let dynamo = aws_sdk_dynamodb::Client::new(&cfg);
        let template =
            devstack::template::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml"))
                .expect("template.yaml loads");
        let prefix = format!("it-{}", uuid::Uuid::now_v7().simple());
        let s3 = hookline::adapters::s3::S3Data::client(&cfg);
        let stack = provision(&template, &prefix, &sqs, &dynamo, &s3)
            .await
            .expect("stack provisions");
        // Both lanes' queues, as the template makes them alike.
        for lane in ["DeliveryQueue", "SlowQueue"] {
            if let Some(max) = max_receive_count {
                let policy = serde_json::json!({"deadLetterTargetArn": stack.queue_arn("DeliveryDLQ"), "maxReceiveCount": max});
                sqs.set_queue_attributes()
                    .queue_url(stack.queue_url(lane))
                    .attributes(
                        aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy,
                        policy.to_string(),
                    )
                    .send()
                    .await
                    .expect("redrive policy set");
            }
            if let Some(v) = visibility_timeout {
                sqs.set_queue_attributes()
                    .queue_url(stack.queue_url(lane))
                    .attributes(
                        aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
                        v.as_secs().to_string(),
                    )
                    .send()
                    .await
                    .expect("visibility timeout set");
            }
        }
        let keys = ApiKeys::new(INGEST_KEY, ADMIN_KEY);
        // Each function gets clients of its own, which record its calls (calls.rs).
        let store = |function| {
            DynamoStore::new(
                calls::dynamo_for(&cfg, function),
                stack.table("Table"),
                Duration::from_secs(86_400),
            )
        };
        let queue =
            |function| SqsQueue::new(calls::sqs_for(&cfg, function), stack.queue_url("DeliveryQueue"));
        let data = |function| -> Arc<dyn hookline::ports::DataStore> {
            Arc::new(S3Data::new(
                calls::s3_for(&cfg, function),
                stack.bucket("DataBucket"),
            ))
        };
        let ingest = Ingest {
            keys: keys.clone(),
            queue: queue("ingest"),
            events: store("ingest"),
            data: data("ingest"),
            clock: SystemClock,
            max_body_bytes: ingest_fn::DEFAULT_MAX_BODY_BYTES,
            limits: Default::default(),
            ordered: ingest_fn::OrderedEndpointCache::new(Duration::ZERO),
        };
        let admin = Admin {
            keys,
            store: store("admin"),
            queue: queue("admin"),
            sender: HttpSender::new(local_policy()).expect("http client"),
            probe: TcpProbe,
            data: data("admin"),
            clock: SystemClock,
            ssrf: local_policy(),
            retention: Duration::from_secs(30 * 86_400),
            disable_after: Duration::from_secs(5 * 86_400),
            limits: Default::default(),
        };
        let deliverer = Arc::new(Deliverer {
            store: store("delivery"),
            sender: HttpSender::new(send_policy).expect("http client"),
            queue: queue("delivery"),
            clock: SystemClock,
            data: data("delivery"),
            endpoints: EndpointCache::new(endpoint_cache),
            settings,
            slow_lane: slow_lane.then(|| SlowLane {
                queue: SqsQueue::new(calls::sqs_for(&cfg, "delivery"), stack.queue_url("SlowQueue"))
                    .grouped_by_endpoint(),
                arn: stack.queue_arn("SlowQueue").to_owned(),
            }),
        });
        // Lambda's event-source mapping polls with the function's role, so its calls
        // are the delivery function's too.
        let mut esm = EventSourceMapping::new(
            calls::sqs_for(&cfg, "delivery"),
            stack.queue_url("DeliveryQueue"),
            stack.queue_arn("DeliveryQueue"),
        );
        esm.wait = Duration::ZERO;
        let slow_esm = slow_lane.then(|| {
            let mut esm = EventSourceMapping::new(
                calls::sqs_for(&cfg, "delivery"),
                stack.queue_url("SlowQueue"),
                stack.queue_arn("SlowQueue"),
            );
            esm.wait = Duration::ZERO;
            esm
        });
        let sweeper_clients = (
            calls::sqs_for(&cfg, "sweeper"),
            calls::dynamo_for(&cfg, "sweeper"),
        );
        Self {
            stack,
            sqs,
            dynamo,
            sweeper_clients,
            ingest,
            admin,
            deliverer,
            sweep,
            esm,
            slow_esm,
        }
    }

    pub fn sweeper(&self) -> Sweeper<DynamoStore, SqsQueue, SqsQueue, SystemClock> {
        self.sweeper_with(SystemClock)
    }

    pub fn sweeper_with<C: Clock>(&self, clock: C) -> Sweeper<DynamoStore, SqsQueue, SqsQueue, C> {
        let (sqs, dynamo) = self.sweeper_clients.clone();
        Sweeper {
            store: DynamoStore::new(dynamo, self.stack.table("Table"), Duration::from_secs(86_400)),
            queue: SqsQueue::new(sqs.clone(), self.stack.queue_url("DeliveryQueue")),
            dlq: SqsQueue::new(sqs, self.stack.queue_url("DeliveryDLQ")),
            clock,
            settings: self.sweep.clone(),
        }
    }

    pub fn store(&self) -> DynamoStore {
        DynamoStore::new(
            self.dynamo.clone(),
            self.stack.table("Table"),
            Duration::from_secs(86_400),
        )
    }

    /// Runs both lanes' event-source mappings until neither queue has anything visible.
    pub async fn pump(&self) -> PollStats {
        let handler = InProcess(self.deliverer.clone());
        let mut total = PollStats::default();
        for _ in 0..50 {
            let mut s = self.esm.poll_once(&handler).await.expect("poll");
            if s.received == 0
                && let Some(slow) = &self.slow_esm
            {
                s = slow.poll_once(&handler).await.expect("poll the slow lane");
            }
            if s.received == 0 {
                return total;
            }
            total.received += s.received;
            total.deleted += s.deleted;
            total.kept += s.kept;
        }
        panic!("the queues never drained");
    }

    /// Runs the fast lane's event-source mapping only, until its queue is empty.
    pub async fn pump_fast_lane(&self) -> PollStats {
        let handler = InProcess(self.deliverer.clone());
        let mut total = PollStats::default();
        loop {
            let s = self.esm.poll_once(&handler).await.expect("poll");
            if s.received == 0 {
                return total;
            }
            total.received += s.received;
            total.deleted += s.deleted;
            total.kept += s.kept;
        }
    }

    pub async fn queue_is_empty(&self) -> bool {
        let out = self
            .sqs
            .receive_message()
            .queue_url(self.stack.queue_url("DeliveryQueue"))
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .send()
            .await
            .expect("receive");
        out.messages().is_empty()
    }
}

pub struct Reply {
    pub status: u16,
    pub json: Value,
    pub headers: http::HeaderMap,
}

pub fn request(method: &str, path: &str, key: Option<&str>, body: Option<&str>) -> lambda_http::Request {
    let mut b = http::Request::builder().method(method).uri(path);
    if let Some(k) = key {
        b = b.header("authorization", format!("Bearer {k}"));
    }
    if body.is_some() {
        b = b.header("content-type", "application/json");
    }
    b.body(body.map_or(Body::Empty, |s| Body::from(s.to_owned())))
        .expect("request builds")
}

pub fn reply(res: lambda_http::Response<Body>) -> Reply {
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let bytes = res.body().as_ref().to_vec();
    let json = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("JSON reply")
    };
    Reply {
        status,
        json,
        headers,
    }
}

impl Harness {
    pub async fn call_ingest(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&str>,
    ) -> Reply {
        reply(self.ingest.handle(request(method, path, key, body)).await)
    }

    pub async fn call_admin(&self, method: &str, path: &str, key: Option<&str>, body: Option<&str>) -> Reply {
        reply(self.admin.handle(request(method, path, key, body)).await)
    }

    /// A default-tenant event's deliveries, each with its attempts, as stored.
    pub async fn deliveries_of(
        &self,
        id: &hookline::EventId,
    ) -> Vec<(hookline::delivery::Delivery, Vec<hookline::delivery::Attempt>)> {
        use hookline::ports::DeliveryStore;
        self.store()
            .deliveries_for_event(&hookline::event::EventKey::of_default(id))
            .await
            .expect("the event's deliveries")
    }

    /// Registers an endpoint and returns (id, secret).
    /// Sends one event as an agent would (`POST /v1/events`, the ingest key): its id.
    pub async fn send_event(&self, body: &serde_json::Value) -> hookline::EventId {
        let r = self
            .call_ingest("POST", "/v1/events", Some(INGEST_KEY), Some(&body.to_string()))
            .await;
        assert_eq!(r.status, 202, "{}", r.json);
        hookline::EventId::parse(r.json["id"].as_str().unwrap()).unwrap()
    }

    /// Sends events in one batch (`POST /v1/events/batch`, the ingest key); all must be
    /// accepted.
    pub async fn send_batch(&self, events: &[serde_json::Value]) {
        let body = serde_json::json!({ "events": events }).to_string();
        let r = self
            .call_ingest("POST", "/v1/events/batch", Some(INGEST_KEY), Some(&body))
            .await;
        assert_eq!(r.status, 202, "{}", r.json);
        assert_eq!(r.json["accepted"], events.len(), "{}", r.json);
    }

    /// Every item of an admin listing, read `limit` at a time by its cursor (at most
    /// `pages` pages).
    pub async fn read_all(&self, path: &str, limit: u32, pages: usize) -> Vec<Value> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let first = format!("{path}{sep}limit={limit}");
        let mut at = first.clone();
        let mut items = Vec::new();
        for _ in 0..pages {
            let r = self.call_admin("GET", &at, Some(ADMIN_KEY), None).await;
            assert_eq!(r.status, 200, "{}", r.json);
            items.extend(r.json["data"].as_array().cloned().unwrap_or_default());
            match r.json["next_cursor"].as_str() {
                Some(c) => at = format!("{first}&cursor={c}"),
                None => break,
            }
        }
        items
    }

    pub async fn register(&self, name: &str, url: &str, event_types: &[&str]) -> (String, String) {
        let body = serde_json::json!({"name": name, "url": url, "event_types": event_types}).to_string();
        let r = self
            .call_admin("POST", "/v1/endpoints", Some(ADMIN_KEY), Some(&body))
            .await;
        assert_eq!(r.status, 201, "{}", r.json);
        (
            r.json["id"].as_str().unwrap().to_owned(),
            r.json["secret"].as_str().unwrap().to_owned(),
        )
    }
}

/// A request a receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub headers: http::HeaderMap,
    pub body: Bytes,
    /// The status it was answered with; `None` when the connection was dropped.
    pub answered: Option<u16>,
}

impl Received {
    /// Checks its Standard Webhooks signature with `secret` (`whsec_…`), as a receiver
    /// would now.
    pub fn verify_standard(&self, secret: &str) -> Result<(), hookline::signing::VerifyError> {
        let secret = hookline::signing::EndpointSecret::parse(secret).expect("a secret");
        hookline::signing::verify_standard(
            &secret,
            &self.header("webhook-id"),
            &self.header("webhook-timestamp"),
            &self.header("webhook-signature"),
            &self.body,
            hookline::Timestamp::now().unix_seconds(),
            300,
        )
    }

    /// Its body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }
}

/// How a receiver path answers.
#[derive(Clone, Debug)]
pub enum Answer {
    Respond {
        status: u16,
        body: String,
        retry_after: Option<u64>,
        delay: Duration,
    },
    /// Drop the connection without an answer.
    Reset,
}

/// Chooses the reply from how many times this path has seen this `webhook-id` before.
pub type Behaviour = Arc<dyn Fn(u32) -> Answer + Send + Sync>;

type Behaviours = Arc<Mutex<HashMap<String, Behaviour>>>;
type Seen = Arc<Mutex<HashMap<(String, String), u32>>>;

/// An HTTP receiver on 127.0.0.1 that records every request. Paths answer 200 unless
/// told otherwise. It stops when dropped.
pub struct Receiver {
    pub base: String,
    got: Arc<Mutex<Vec<Received>>>,
    behaviours: Behaviours,
    task: tokio::task::JoinHandle<()>,
}

async fn answer_one(
    req: hyper::Request<Incoming>,
    got: Arc<Mutex<Vec<Received>>>,
    behaviours: Behaviours,
    seen: Seen,
) -> Result<hyper::Response<Full<Bytes>>, std::io::Error> {
    let path = req.uri().path().to_owned();
    let headers = req.headers().clone();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let nth = {
        let mut seen = seen.lock().unwrap();
        let n = seen.entry((path.clone(), id)).or_insert(0);
        *n += 1;
        *n - 1
    };
    let behaviour = behaviours.lock().unwrap().get(&path).cloned();
    let reply = behaviour.map_or(
        Answer::Respond {
            status: 200,
            body: "ok".into(),
            retry_after: None,
            delay: Duration::ZERO,
        },
        |b| b(nth),
    );
    let answered = match &reply {
        Answer::Respond { status, .. } => Some(*status),
        Answer::Reset => None,
    };
    got.lock().unwrap().push(Received {
        path,
        headers,
        body,
        answered,
    });
    match reply {
        Answer::Reset => Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "reset by the test",
        )),
        Answer::Respond {
            status,
            body,
            retry_after,
            delay,
        } => {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let mut res = hyper::Response::builder().status(status);
            if let Some(ra) = retry_after {
                res = res.header("retry-after", ra.to_string());
            }
            Ok(res.body(Full::new(Bytes::from(body))).expect("response builds"))
        }
    }
}

impl Receiver {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let behaviours: Behaviours = Arc::default();
        let seen: Seen = Arc::default();
        let (g, b) = (got.clone(), behaviours.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (g, b, seen) = (g.clone(), b.clone(), seen.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req| answer_one(req, g.clone(), b.clone(), seen.clone()));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Self {
            base,
            got,
            behaviours,
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn answer(&self, path: &str, status: u16, body: &str) {
        let body = body.to_owned();
        self.behave(path, move |_| Answer::Respond {
            status,
            body: body.clone(),
            retry_after: None,
            delay: Duration::ZERO,
        });
    }

    pub fn behave(&self, path: &str, f: impl Fn(u32) -> Answer + Send + Sync + 'static) {
        self.behaviours
            .lock()
            .unwrap()
            .insert(path.to_owned(), Arc::new(f));
    }

    pub fn received(&self, path: &str) -> Vec<Received> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    pub fn all_received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}
