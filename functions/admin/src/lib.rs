//! The admin function: the operator's API, and each tenant's through its keys.
//! Tenants and their keys, endpoints (create, list, get, change, delete, rotate, test,
//! diagnose, recover), the delivery log (list, get with attempts, retry), events with
//! their deliveries, statistics, `GET /health`, `GET /openapi.yaml` and the console
//! (`/console`, static files in `console/`). `boundary`
//! keeps each tenant key to its own tenant. `router` maps a request to its handler; each concern is a
//! module of its own, the way svix-server splits its v1 handlers.

mod boundary;
pub mod console;
mod dead_letters;
mod deliveries;
mod diagnosis;
mod endpoints;
mod portal;
mod problems;
mod query;
mod recovery;
mod router;
mod secrets;
mod stats;
mod tenant_keys;
mod tenants;
mod test_event;

use hookline::auth::ApiKeys;
use hookline::config::{ConfigError, Env, KeySource, key_source, retention, ssrf_policy};
use hookline::problem::Problem;
use hookline::ssrf::SsrfPolicy;
use hookline::tenant_limits::LimitDefaults;
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
    /// Where large events' data is (S3).
    pub data_bucket: String,
    pub queue_url: String,
    pub retention: Duration,
    pub ssrf: SsrfPolicy,
    pub disable_after: Duration,
    pub limits: LimitDefaults,
}

impl Config {
    pub fn from_env(mut env: Env) -> Result<Self, ConfigError> {
        let keys = key_source(&mut env);
        let table = env.required("HOOKLINE_TABLE");
        let data_bucket = env.required("HOOKLINE_DATA_BUCKET");
        let queue_url = env.required("HOOKLINE_QUEUE_URL");
        let retention = retention(&mut env);
        let ssrf = ssrf_policy(&mut env);
        let disable_after =
            Duration::from_secs(env.parsed_or("HOOKLINE_DISABLE_AFTER_SECONDS", 5 * 86_400u64));
        let limits = LimitDefaults::from_env(&mut env);
        env.finish()?;
        Ok(Self {
            keys,
            table,
            data_bucket,
            queue_url,
            retention,
            ssrf,
            disable_after,
            limits,
        })
    }
}

pub struct Admin<S, Q, H, P, C> {
    pub keys: ApiKeys,
    pub store: S,
    pub queue: Q,
    /// Sends test events, through the same signing, SSRF and HTTP code as delivery.
    pub sender: H,
    /// Looks at the network for the diagnosis.
    pub probe: P,
    /// Where checked-in events' data is (`hookline::claim_check`): the event view
    /// shows it whole.
    pub data: std::sync::Arc<dyn hookline::ports::DataStore>,
    pub clock: C,
    pub ssrf: SsrfPolicy,
    /// How far back the delivery log reaches by default.
    pub retention: Duration,
    /// How long an endpoint may fail before it is disabled (as the delivery side has it).
    pub disable_after: Duration,
    /// How many endpoints a tenant may hold, unless it has its own limit.
    pub limits: LimitDefaults,
}

type HttpResult = Result<http::Response<String>, Problem>;

#[cfg(test)]
mod tests;
