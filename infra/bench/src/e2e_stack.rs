//! The local stack the end-to-end sections run on, its receiver, and the API client
//! that sends the events.

use crate::awsproxy::Proxy;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub(crate) fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

pub(crate) fn free_port() -> Result<u16, BoxError> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Webhooks received, by event id: (path, when, in unix ms). Requests to a path with
/// `/hang/` in it, while `hang` is set, are held 31 s and not counted (their sender has
/// given up after its 30 s timeout); once it is cleared they are answered at once.
#[derive(Clone, Default)]
pub(crate) struct Received(
    pub(crate) Arc<Mutex<Vec<(String, String, f64)>>>,
    pub(crate) Arc<std::sync::atomic::AtomicBool>,
);

impl Received {
    pub(crate) fn count_under(&self, prefix: &str) -> usize {
        self.0
            .lock()
            .map(|v| v.iter().filter(|(_, p, _)| p.starts_with(prefix)).count())
            .unwrap_or(0)
    }
    /// Distinct (event, path) pairs received under `prefix`.
    pub(crate) fn unique_under(&self, prefix: &str) -> usize {
        self.0
            .lock()
            .map(|v| {
                v.iter()
                    .filter(|(_, p, _)| p.starts_with(prefix))
                    .map(|(id, p, _)| (id, p))
                    .collect::<std::collections::HashSet<_>>()
                    .len()
            })
            .unwrap_or(0)
    }

    /// Every arrival under `prefix`: (event, path, when).
    pub(crate) fn under(&self, prefix: &str) -> Vec<(String, String, f64)> {
        self.0
            .lock()
            .map(|v| {
                v.iter()
                    .filter(|(_, p, _)| p.starts_with(prefix))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(crate) fn first_by_event(&self, prefix: &str) -> HashMap<String, f64> {
        let mut m = HashMap::new();
        if let Ok(v) = self.0.lock() {
            for (id, _, t) in v.iter().filter(|(_, p, _)| p.starts_with(prefix)) {
                m.entry(id.clone()).or_insert(*t);
            }
        }
        m
    }
}

pub(crate) async fn start_receiver(received: Received) -> Result<u16, BoxError> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let received = received.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let received = received.clone();
                        async move {
                            let at = now_ms();
                            let id = req
                                .headers()
                                .get("webhook-id")
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default()
                                .to_owned();
                            let path = req.uri().path().to_owned();
                            let _ = req.into_body().collect().await;
                            if path.contains("/hang/") && received.1.load(std::sync::atomic::Ordering::SeqCst)
                            {
                                tokio::time::sleep(Duration::from_secs(31)).await;
                                return Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                                    Bytes::from_static(b"late"),
                                )));
                            }
                            if let Ok(mut v) = received.0.lock() {
                                v.push((id, path, at));
                            }
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                                Bytes::from_static(b"ok"),
                            )))
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(port)
}

/// Where the local stack's parts listen: the counting proxy the functions call, moto,
/// dynalite (unused when DynamoDB is moto's), LocalStack's SQS.
pub(crate) struct StackPorts {
    pub(crate) proxy: u16,
    pub(crate) emulator: u16,
    pub(crate) dynamodb: u16,
    pub(crate) sqs: u16,
}

/// The local stack, started by infra/dev.sh and stopped (TERM to its pid) on drop.
pub(crate) struct Stack {
    pub(crate) child: Child,
    pub(crate) url: String,
    pub(crate) state: PathBuf,
}

impl Stack {
    pub(crate) async fn start(
        root: &Path,
        ports: &StackPorts,
        dynamodb: &str,
        concurrency: usize,
    ) -> Result<Self, BoxError> {
        let api_port = free_port()?;
        let state = root.join("target/bench-stack");
        let log = std::fs::File::create(root.join("target/bench-stack.log"))?;
        let child = Command::new(root.join("infra/dev.sh"))
            .current_dir(root)
            .env("HOOKLINE_API_PORT", api_port.to_string())
            .env("HOOKLINE_WATCH_PORT", free_port()?.to_string())
            .env("HOOKLINE_EMULATOR_PORT", ports.emulator.to_string())
            .env("HOOKLINE_DEV_DYNAMODB", dynamodb)
            .env("HOOKLINE_DYNAMODB_PORT", ports.dynamodb.to_string())
            .env("HOOKLINE_DEV_SQS", "localstack")
            .env("HOOKLINE_SQS_PORT", ports.sqs.to_string())
            .env("HOOKLINE_DEV_PREFIX", "bench")
            .env("HOOKLINE_DEV_STATE", &state)
            .env("HOOKLINE_DEV_NO_RELOAD", "1")
            .env("HOOKLINE_DEV_RELEASE", "1")
            .env("HOOKLINE_DEV_CONCURRENCY", concurrency.to_string())
            // The slow lane's own capacity, as SlowLaneMaxConcurrency gives it on AWS.
            .env("HOOKLINE_DEV_SLOW_POLLERS", "2")
            .env("HOOKLINE_DEV_INSTANCES", (concurrency + 2).to_string())
            .env("HOOKLINE_DEV_SWEEP_EVERY", "86400")
            .env(
                "HOOKLINE_FUNCTIONS_AWS_URL",
                format!("http://127.0.0.1:{}", ports.proxy),
            )
            .env("HOOKLINE_PUBLIC_DESTINATIONS", "deny")
            .env("HOOKLINE_LOG_FORMAT", "json")
            // The production default: endpoints are re-read every 5 s.
            .env("HOOKLINE_ENDPOINT_CACHE_SECONDS", "5")
            // Retries come back within seconds, so that the noisy-neighbour section sees a
            // hanging endpoint's deliveries through once it recovers (no other section
            // fails an attempt).
            .env("HOOKLINE_RETRY_SCHEDULE", "0,5,10,20,30,60,120,300")
            .env("HOOKLINE_RETRY_FLOOR_SECONDS", "5")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let stack = Self {
            child,
            url: format!("http://127.0.0.1:{api_port}"),
            state,
        };
        let mut stack = stack;
        let client = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = stack.child.try_wait() {
                return Err(format!("the local stack stopped ({status}); see target/bench-stack.log").into());
            }
            if let Ok(r) = client.get(format!("{}/health", stack.url)).send().await
                && r.status().is_success()
            {
                break;
            }
            if started.elapsed() > Duration::from_secs(900) {
                return Err("the local stack did not answer in 15 min; see target/bench-stack.log".into());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Ok(stack)
    }

    pub(crate) fn log_len(&self, name: &str) -> u64 {
        std::fs::metadata(self.state.join(name)).map_or(0, |m| m.len())
    }

    /// The log's lines written since `from` bytes.
    pub(crate) fn log_since(&self, name: &str, from: u64) -> String {
        use std::io::{Read, Seek, SeekFrom};
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(self.state.join(name))
            && f.seek(SeekFrom::Start(from)).is_ok()
        {
            let _ = f.read_to_string(&mut s);
        }
        s
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // dev.sh stops what it started on TERM; it is stopped by its pid.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

#[derive(Clone)]
pub(crate) struct Api {
    pub(crate) client: reqwest::Client,
    pub(crate) url: String,
    /// The key events are sent with: the operator's, or a tenant's.
    pub(crate) ingest_key: String,
    /// The tenant endpoints are registered in; `None`: the default tenant.
    pub(crate) tenant: Option<String>,
}

/// What every phase runs against: the API, the proxy, the receiver and the stack's logs.
pub(crate) struct Bench {
    pub(crate) api: Api,
    /// The same API as a named tenant sees it, with that tenant's ingest key.
    pub(crate) tenant_api: Api,
    pub(crate) proxy: Proxy,
    pub(crate) received: Received,
    pub(crate) stack: Stack,
    /// Which emulator serves DynamoDB: `dynalite` or `moto`.
    pub(crate) dynamodb: String,
}

impl Api {
    /// The operator's API, on the default tenant.
    pub(crate) fn new(client: reqwest::Client, url: String) -> Self {
        Self {
            client,
            url,
            ingest_key: "dev-ingest-key".into(),
            tenant: None,
        }
    }

    /// A new tenant, with an ingest key of its own and a rate limit out of the way, and
    /// this API as that tenant sees it: its endpoints and events are the tenant's.
    pub(crate) async fn tenant(&self, id: &str) -> Result<Api, BoxError> {
        let admin = |path: &str, body: Value| {
            self.client
                .post(format!("{}{path}", self.url))
                .header("x-api-key", "dev-admin-key")
                .json(&body)
                .send()
        };
        let body = json!({"id": id, "name": id, "limits": {"ingest_per_second": 1_000_000}});
        let res = admin("/v1/tenants", body).await?;
        if !res.status().is_success() {
            return Err(format!("creating a tenant: {} {}", res.status(), res.text().await?).into());
        }
        let res = admin(&format!("/v1/tenants/{id}/keys"), json!({"scope": "ingest"})).await?;
        let key: Value = res.json().await?;
        let key = key["key"].as_str().ok_or("no key in the answer")?;
        Ok(Api {
            ingest_key: key.to_owned(),
            tenant: Some(id.to_owned()),
            ..self.clone()
        })
    }

    pub(crate) async fn endpoint(&self, name: &str, url: &str, event_type: &str) -> Result<(), BoxError> {
        self.endpoint_with(name, url, event_type, 15).await
    }

    pub(crate) async fn endpoint_with(
        &self,
        name: &str,
        url: &str,
        event_type: &str,
        timeout_seconds: u32,
    ) -> Result<(), BoxError> {
        self.create_endpoint(json!({"name": name, "url": url, "event_types": [event_type], "timeout_seconds": timeout_seconds, "tenant_id": self.tenant}))
            .await
    }

    /// An endpoint ordered by run (`hookline::ordering`).
    pub(crate) async fn ordered_endpoint(
        &self,
        name: &str,
        url: &str,
        event_type: &str,
    ) -> Result<(), BoxError> {
        self.create_endpoint(json!({"name": name, "url": url, "event_types": [event_type], "ordering": "run", "tenant_id": self.tenant}))
            .await
    }

    async fn create_endpoint(&self, body: Value) -> Result<(), BoxError> {
        let res = self
            .client
            .post(format!("{}/v1/endpoints", self.url))
            .header("x-api-key", "dev-admin-key")
            .json(&body)
            .send()
            .await?;
        if !res.status().is_success() {
            return Err(format!("creating an endpoint: {} {}", res.status(), res.text().await?).into());
        }
        Ok(())
    }

    /// One event; the POST's round trip in ms.
    pub(crate) async fn send(&self, event: &Value) -> Result<(f64, f64), BoxError> {
        let t0 = now_ms();
        let res = self
            .client
            .post(format!("{}/v1/events", self.url))
            .header("x-api-key", &self.ingest_key)
            .json(event)
            .send()
            .await?;
        let t1 = now_ms();
        if res.status().as_u16() != 202 {
            return Err(format!("ingest answered {}: {}", res.status(), res.text().await?).into());
        }
        Ok((t0, t1))
    }

    pub(crate) async fn send_batch(&self, events: &[Value]) -> Result<f64, BoxError> {
        let t0 = now_ms();
        let res = self
            .client
            .post(format!("{}/v1/events/batch", self.url))
            .header("x-api-key", &self.ingest_key)
            .json(&json!({ "events": events }))
            .send()
            .await?;
        let took = now_ms() - t0;
        let status = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        if status.as_u16() != 202 || body["accepted"].as_u64() != Some(events.len() as u64) {
            return Err(format!("batch ingest answered {status}: {body}").into());
        }
        Ok(took)
    }
}

/// An agent's event with about 1 KiB of data, as in the throughput section.
pub(crate) fn event(id: &str, event_type: &str, i: usize) -> Value {
    json!({
        "id": id,
        "event_type": event_type,
        "source": "bench",
        "data": crate::throughput::agent_data(i)
    })
}
pub(crate) async fn settle(
    received: &Received,
    prefix: &str,
    want: usize,
    proxy: &Proxy,
    limit: Duration,
) -> Result<(), BoxError> {
    let started = Instant::now();
    while received.count_under(prefix) < want {
        if started.elapsed() > limit {
            return Err(format!(
                "only {} of {want} webhooks arrived in {} s",
                received.count_under(prefix),
                limit.as_secs()
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut seen = proxy.calls_so_far();
    loop {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let now = proxy.calls_so_far();
        if now == seen && proxy.busy() == 0 {
            return Ok(());
        }
        seen = now;
    }
}
