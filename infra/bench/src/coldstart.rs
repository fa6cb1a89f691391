//! Cold start: each function's release binary is started against a minimal fake Lambda
//! Runtime API on 127.0.0.1, as Lambda starts a `provided.al2023` function. Measured:
//! from exec to its first `GET /2018-06-01/runtime/invocation/next` (the init: config,
//! clients, keys), and the first invocation (from handing it the event to its response,
//! with the first AWS calls, against the local emulator). The baseline is a hello-world
//! `lambda_runtime` binary built with the same profile.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

#[derive(Default)]
struct Seen {
    first_next: Option<Instant>,
    response: Option<Instant>,
    error: Option<String>,
    served: bool,
}

struct FakeRuntime {
    port: u16,
    seen: Arc<Mutex<Seen>>,
    done: Arc<Notify>,
}

impl FakeRuntime {
    /// Serves one invocation of `event`; later `next` calls wait forever, as Lambda's do
    /// between invocations.
    async fn start(event: Value) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let done = Arc::new(Notify::new());
        let (s, d) = (seen.clone(), done.clone());
        let body = Bytes::from(event.to_string());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (s, d, body) = (s.clone(), d.clone(), body.clone());
                tokio::spawn(async move {
                    let service =
                        hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                            let (s, d, body) = (s.clone(), d.clone(), body.clone());
                            async move {
                                let path = req.uri().path().to_owned();
                                let get = req.method() == hyper::Method::GET;
                                let payload = req
                                    .into_body()
                                    .collect()
                                    .await
                                    .map(|b| b.to_bytes())
                                    .unwrap_or_default();
                                let now = Instant::now();
                                if get && path.ends_with("/invocation/next") {
                                    let first = {
                                        let mut seen = s.lock().unwrap_or_else(|e| e.into_inner());
                                        seen.first_next.get_or_insert(now);
                                        !std::mem::replace(&mut seen.served, true)
                                    };
                                    if !first {
                                        std::future::pending::<()>().await;
                                    }
                                    let deadline = std::time::SystemTime::now()
                                        .duration_since(std::time::UNIX_EPOCH)
                                        .map_or(0, |d| d.as_millis() + 60_000);
                                    let res = hyper::Response::builder()
                                        .header("lambda-runtime-aws-request-id", "bench-request-1")
                                        .header("lambda-runtime-deadline-ms", deadline.to_string())
                                        .header(
                                            "lambda-runtime-invoked-function-arn",
                                            "arn:aws:lambda:us-east-1:123456789012:function:bench",
                                        )
                                        .header(
                                            "lambda-runtime-trace-id",
                                            "Root=1-00000000-000000000000000000000000",
                                        )
                                        .body(Full::new(body))
                                        .unwrap_or_default();
                                    return Ok::<_, std::convert::Infallible>(res);
                                }
                                {
                                    let mut seen = s.lock().unwrap_or_else(|e| e.into_inner());
                                    if path.ends_with("/response") {
                                        seen.response.get_or_insert(now);
                                    } else {
                                        seen.error = Some(String::from_utf8_lossy(&payload).into_owned());
                                    }
                                }
                                d.notify_one();
                                Ok(hyper::Response::builder()
                                    .status(202)
                                    .body(Full::new(Bytes::new()))
                                    .unwrap_or_default())
                            }
                        });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self { port, seen, done })
    }
}

pub struct Sample {
    pub init: Duration,
    pub first_invocation: Duration,
}

/// Starts `binary` once against a fresh fake runtime and measures it.
pub async fn measure_once(binary: &Path, event: &Value, env: &[(String, String)]) -> Result<Sample, String> {
    let rt = FakeRuntime::start(event.clone())
        .await
        .map_err(|e| e.to_string())?;
    let mut cmd = Command::new(binary);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{}", rt.port))
        .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/bench")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "bench")
        .env("AWS_SECRET_ACCESS_KEY", "bench")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let mut child = cmd.spawn().map_err(|e| format!("{}: {e}", binary.display()))?;
    let finished = tokio::time::timeout(Duration::from_secs(30), rt.done.notified()).await;
    // Stop what we started, by its pid.
    let _ = child.kill();
    let _ = child.wait();
    let seen = rt.seen.lock().unwrap_or_else(|e| e.into_inner());
    if finished.is_err() {
        return Err(format!("{} did not answer within 30 s", binary.display()));
    }
    if let Some(e) = &seen.error {
        return Err(format!("{} reported an error: {e}", binary.display()));
    }
    match (seen.first_next, seen.response) {
        (Some(next), Some(resp)) => Ok(Sample {
            init: next - started,
            first_invocation: resp - next,
        }),
        _ => Err(format!("{} never asked for an invocation", binary.display())),
    }
}

pub fn release_binary(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join(name)))
        .unwrap_or_else(|| PathBuf::from(format!("target/release/{name}")))
}

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn summary(init: &mut [Duration], first: &mut [Duration]) -> Value {
    init.sort();
    first.sort();
    json!({
        "init_ms": {"p50": ms(percentile(init, 0.5)), "p95": ms(percentile(init, 0.95))},
        "first_invocation_ms": {"p50": ms(percentile(first, 0.5)), "p95": ms(percentile(first, 0.95))},
    })
}
