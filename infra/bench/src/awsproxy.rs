//! A counting proxy between the local stack's functions and the AWS emulator: every
//! SQS and DynamoDB request goes through it and is forwarded unchanged. It counts
//! requests (SQS ones in 64 KiB billing chunks) and, while measuring, DynamoDB's write
//! and read units as AWS bills them: each write is serialised, the items it touches are
//! read before and after, and the units come from their sizes, table and indexes both
//! (a global secondary index is written when an item enters, leaves, changes key in, or
//! changes a projected attribute in it). It also notes when each event's first attempt
//! started (from the attempt items delivery writes), for the latency split.

use crate::billing::{attempted_item, chunks_of_64k, is_write, read_units, touched_keys, write_units};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// What one forwarded request cost.
#[derive(Clone, Debug, Default)]
pub struct Call {
    pub service: String,
    pub op: String,
    /// SQS: 64 KiB chunks billed; DynamoDB: 1.
    pub billed_requests: f64,
    /// SQS: messages in the request.
    pub messages: u64,
    pub table_wcu: f64,
    pub index_wcu: f64,
    pub rru: f64,
    /// How long the emulator took to answer (ms).
    pub upstream_ms: f64,
}

pub(crate) struct Index {
    pub(crate) keys: Vec<String>,
    /// None: ALL.
    pub(crate) projected: Option<Vec<String>>,
}

pub(crate) struct TableShape {
    pub(crate) keys: Vec<String>,
    pub(crate) indexes: Vec<Index>,
}

struct State {
    /// DynamoDB goes to `dynamodb_upstream`, SQS to `sqs_upstream`, the rest (S3) here.
    upstream: String,
    dynamodb_upstream: String,
    sqs_upstream: String,
    client: reqwest::Client,
    measure: AtomicBool,
    /// Calls being forwarded, long polls left out.
    busy: AtomicUsize,
    writes: tokio::sync::Mutex<()>,
    calls: Mutex<Vec<Call>>,
    shapes: Mutex<HashMap<String, Arc<TableShape>>>,
    first_attempts: Mutex<HashMap<String, i64>>,
}

#[derive(Clone)]
pub struct Proxy {
    state: Arc<State>,
    pub port: u16,
}

type Resp = hyper::Response<Full<Bytes>>;

impl Proxy {
    pub async fn start(
        upstream: &str,
        dynamodb_upstream: &str,
        sqs_upstream: &str,
    ) -> Result<Self, Box<dyn std::error::Error>> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let state = Arc::new(State {
            upstream: upstream.trim_end_matches('/').to_owned(),
            dynamodb_upstream: dynamodb_upstream.trim_end_matches('/').to_owned(),
            sqs_upstream: sqs_upstream.trim_end_matches('/').to_owned(),
            client: reqwest::Client::builder().no_proxy().build()?,
            measure: AtomicBool::new(false),
            busy: AtomicUsize::new(0),
            writes: tokio::sync::Mutex::new(()),
            calls: Mutex::new(Vec::new()),
            shapes: Mutex::new(HashMap::new()),
            first_attempts: Mutex::new(HashMap::new()),
        });
        let s = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let s = s.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let s = s.clone();
                        async move { Ok::<_, std::convert::Infallible>(handle(&s, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self { state, port })
    }

    /// Counts units from now on (writes are serialised while measuring).
    pub fn measure(&self, on: bool) {
        self.state.measure.store(on, Ordering::SeqCst);
    }

    /// The calls forwarded since the last take.
    pub fn take_calls(&self) -> Vec<Call> {
        std::mem::take(&mut *self.state.calls.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Calls so far that did something (an empty long poll does not count).
    pub fn calls_so_far(&self) -> usize {
        self.state
            .calls
            .lock()
            .map(|c| {
                c.iter()
                    .filter(|c| !(c.op == "ReceiveMessage" && c.messages == 0))
                    .count()
            })
            .unwrap_or(0)
    }

    /// Calls being forwarded now, long polls left out: a write waiting its turn (or for
    /// the emulator) is not in `calls_so_far` yet.
    pub fn busy(&self) -> usize {
        self.state.busy.load(Ordering::SeqCst)
    }

    /// When each event's first attempt started (unix ms), by event id.
    pub fn first_attempts(&self) -> HashMap<String, i64> {
        self.state
            .first_attempts
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default()
    }
}

/// Counts a call in `busy` until it is answered.
struct Busy<'a>(&'a AtomicUsize);

impl<'a> Busy<'a> {
    fn new(n: &'a AtomicUsize) -> Self {
        n.fetch_add(1, Ordering::SeqCst);
        Self(n)
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn handle(s: &State, req: hyper::Request<hyper::body::Incoming>) -> Resp {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return error(502, &format!("reading the request: {e}")),
    };
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let (service, op) = match target.split_once('.') {
        Some((svc, op)) if svc.starts_with("DynamoDB") => ("dynamodb", op.to_owned()),
        Some((svc, op)) if svc.starts_with("AmazonSQS") => ("sqs", op.to_owned()),
        _ => ("other", parts.uri.path().to_owned()),
    };
    let _busy = (op != "ReceiveMessage").then(|| Busy::new(&s.busy));
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    note_attempts(s, service, &op, &json);
    let measuring = s.measure.load(Ordering::SeqCst);

    let mut call = Call {
        service: service.into(),
        op: op.clone(),
        billed_requests: 1.0,
        ..Call::default()
    };
    if service == "sqs" {
        call.billed_requests = chunks_of_64k(body.len());
        call.messages = json
            .get("Entries")
            .and_then(Value::as_array)
            .map_or(1, |e| e.len() as u64);
    }
    let write = service == "dynamodb" && is_write(&op);
    let guard = if measuring && write {
        Some(s.writes.lock().await)
    } else {
        None
    };
    let touched = if guard.is_some() {
        touched_keys(&op, &json)
    } else {
        Vec::new()
    };
    let mut before = Vec::with_capacity(touched.len());
    for (table, key) in &touched {
        before.push(get_item(s, &parts.headers, table, key).await);
    }
    let upstream = match service {
        "sqs" => &s.sqs_upstream,
        "dynamodb" => &s.dynamodb_upstream,
        _ => &s.upstream,
    };
    let forwarded = std::time::Instant::now();
    let (status, headers, resp_body) = match forward(s, upstream, &parts, body).await {
        Ok(r) => r,
        Err(e) => return error(502, &format!("forwarding: {e}")),
    };
    call.upstream_ms = forwarded.elapsed().as_secs_f64() * 1000.0;
    if guard.is_some() {
        let ok = status == 200;
        let factor = if op == "TransactWriteItems" { 2.0 } else { 1.0 };
        for ((table, key), before) in touched.iter().zip(&before) {
            let after = get_item(s, &parts.headers, table, key).await;
            let Some(shape) = shape(s, &parts.headers, table).await else {
                continue;
            };
            let attempted = attempted_item(&op, &json, key);
            let (t, i) = write_units(&shape, before.as_ref(), after.as_ref(), attempted.as_ref(), ok);
            call.table_wcu += t * factor;
            call.index_wcu += i * factor;
        }
    }
    drop(guard);
    if service == "sqs" {
        // A payload is billed in 64 KiB chunks, whichever way it travels.
        call.billed_requests = call.billed_requests.max(chunks_of_64k(resp_body.len()));
    }
    if op == "ReceiveMessage" {
        call.messages = serde_json::from_slice::<Value>(&resp_body)
            .ok()
            .and_then(|v| v["Messages"].as_array().map(|m| m.len() as u64))
            .unwrap_or(0);
    }
    if measuring && service == "dynamodb" && !write {
        call.rru = read_units(&op, &json, &resp_body);
    }
    if let Ok(mut calls) = s.calls.lock() {
        calls.push(call);
    }
    let mut resp = hyper::Response::builder().status(status);
    for (k, v) in &headers {
        if k != "content-length" && k != "transfer-encoding" && k != "connection" {
            resp = resp.header(k, v);
        }
    }
    resp.body(Full::new(resp_body))
        .unwrap_or_else(|_| error(502, "bad response"))
}

fn error(status: u16, msg: &str) -> Resp {
    let mut r = hyper::Response::new(Full::new(Bytes::from(msg.to_owned())));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::BAD_GATEWAY);
    r
}

async fn forward(
    s: &State,
    upstream: &str,
    parts: &hyper::http::request::Parts,
    body: Bytes,
) -> Result<(u16, hyper::HeaderMap, Bytes), reqwest::Error> {
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let method =
        reqwest::Method::from_bytes(parts.method.as_str().as_bytes()).unwrap_or(reqwest::Method::POST);
    let mut req = s.client.request(method, format!("{upstream}{path}")).body(body);
    for (k, v) in &parts.headers {
        if k != "host" && k != "content-length" {
            req = req.header(k.as_str(), v.as_bytes());
        }
    }
    let res = req.send().await?;
    let status = res.status().as_u16();
    let mut headers = hyper::HeaderMap::new();
    for (k, v) in res.headers() {
        if let (Ok(k), Ok(v)) = (
            hyper::header::HeaderName::from_bytes(k.as_str().as_bytes()),
            hyper::header::HeaderValue::from_bytes(v.as_bytes()),
        ) {
            headers.append(k, v);
        }
    }
    Ok((status, headers, res.bytes().await?))
}

/// A DynamoDB JSON-protocol call of our own, straight to the emulator (not counted).
async fn dynamo(s: &State, headers: &hyper::HeaderMap, op: &str, body: &Value) -> Option<Value> {
    let mut req = s
        .client
        .post(&s.dynamodb_upstream)
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amz-target", format!("DynamoDB_20120810.{op}"))
        .body(body.to_string());
    // dynalite, like DynamoDB, wants a signature's date beside it (it checks no more).
    for name in ["authorization", "x-amz-date"] {
        if let Some(v) = headers.get(name) {
            req = req.header(name, v.as_bytes());
        }
    }
    let res = req.send().await.ok()?;
    if !res.status().is_success() {
        return None;
    }
    res.json().await.ok()
}

async fn get_item(s: &State, headers: &hyper::HeaderMap, table: &str, key: &Value) -> Option<Value> {
    dynamo(
        s,
        headers,
        "GetItem",
        &json!({"TableName": table, "Key": key, "ConsistentRead": true}),
    )
    .await?
    .get("Item")
    .cloned()
}

async fn shape(s: &State, headers: &hyper::HeaderMap, table: &str) -> Option<Arc<TableShape>> {
    if let Some(t) = s.shapes.lock().ok()?.get(table) {
        return Some(t.clone());
    }
    let d = dynamo(s, headers, "DescribeTable", &json!({"TableName": table})).await?;
    let t = &d["Table"];
    let names = |ks: &Value| -> Vec<String> {
        ks.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|k| k["AttributeName"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let indexes = t["GlobalSecondaryIndexes"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|g| Index {
                    keys: names(&g["KeySchema"]),
                    projected: match g["Projection"]["ProjectionType"].as_str() {
                        Some("KEYS_ONLY") => Some(Vec::new()),
                        Some("INCLUDE") => Some(
                            g["Projection"]["NonKeyAttributes"]
                                .as_array()
                                .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
                                .unwrap_or_default(),
                        ),
                        _ => None,
                    },
                })
                .collect()
        })
        .unwrap_or_default();
    let shape = Arc::new(TableShape {
        keys: names(&t["KeySchema"]),
        indexes,
    });
    s.shapes.lock().ok()?.insert(table.to_owned(), shape.clone());
    Some(shape)
}

/// New deliveries' items carry their event's id and when their first attempt started;
/// so do the entries of a page, added by an UpdateItem.
fn note_attempts(s: &State, service: &str, op: &str, body: &Value) {
    if service == "dynamodb" && op == "UpdateItem" {
        return note_page(s, body);
    }
    if service != "dynamodb" || !matches!(op, "BatchWriteItem" | "PutItem") {
        return;
    }
    let mut items: Vec<&Value> = Vec::new();
    if op == "PutItem" {
        items.push(&body["Item"]);
    } else if let Some(m) = body["RequestItems"].as_object() {
        for reqs in m.values() {
            for r in reqs.as_array().into_iter().flatten() {
                if let Some(p) = r.get("PutRequest") {
                    items.push(&p["Item"]);
                }
            }
        }
    }
    let Ok(mut first) = s.first_attempts.lock() else {
        return;
    };
    for item in items {
        // A new delivery's item holds its first attempt and names its event.
        let started = item["first_attempt"]["M"]["started_at"]["N"]
            .as_str()
            .and_then(|n| n.parse().ok());
        if let (Some(started), Some(event)) = (started, item["event_id"]["S"].as_str()) {
            first.entry(event.to_owned()).or_insert(started);
        }
    }
}

/// A page's entries (`shared/src/adapters/dynamo/pages.rs`): each value of the update
/// that reads as one.
fn note_page(s: &State, body: &Value) {
    let Some(sk) = body["Key"]["sk"]["S"].as_str() else {
        return;
    };
    let Some(values) = body["ExpressionAttributeValues"].as_object() else {
        return;
    };
    let Ok(mut first) = s.first_attempts.lock() else {
        return;
    };
    for v in values.values() {
        if let Some((event, started)) = v["S"]
            .as_str()
            .and_then(|entry| hookline::adapters::dynamo::first_attempt_in_page(sk, entry))
        {
            first.entry(event).or_insert(started);
        }
    }
}
