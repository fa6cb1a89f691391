//! The delivery function's configuration: every knob from the environment, each
//! checked, all problems reported at once.

use hookline::config::{ConfigError, Env, retention, ssrf_policy};
use hookline::hop::HopLimits;
use hookline::metric_tenants::MetricTenants;
use hookline::ports::MAX_QUEUE_DELAY;
use hookline::retry::{RetryDefaults, parse_schedule};
use hookline::ssrf::SsrfPolicy;
use std::time::Duration;

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
    /// How long the fast lane waits for an attempt (`hookline::lane`).
    pub inline_deadline: Duration,
    /// The tenants whose attempts have a `Tenant` metric value of their own.
    pub metric_tenants: MetricTenants,
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
            inline_deadline: hookline::lane::DEFAULT_INLINE_DEADLINE,
            metric_tenants: MetricTenants::default(),
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
    /// The queue's bounds on how a wait is carried.
    pub fn hop_limits(&self) -> HopLimits {
        HopLimits {
            max_delay: self.max_delay,
            max_receives: self.max_receives,
        }
    }

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
            inline_deadline: secs_in(env, "HOOKLINE_INLINE_DEADLINE_SECONDS", d.inline_deadline, 1..=30),
            metric_tenants: env.parsed_with("HOOKLINE_METRIC_TENANTS", d.metric_tenants, |s| {
                MetricTenants::parse(s)
            }),
        }
    }
}

#[derive(Debug)]
pub struct Config {
    pub table: String,
    /// Where checked-in events' data is (S3).
    pub data_bucket: String,
    pub queue_url: String,
    pub retention: Duration,
    pub ssrf: SsrfPolicy,
    pub endpoint_cache: Duration,
    /// The slow lane's queue (its URL and ARN); without it, every attempt is inline.
    pub slow_queue: Option<(String, String)>,
    pub settings: Settings,
}

impl Config {
    pub fn from_env(mut env: Env) -> Result<Self, ConfigError> {
        let table = env.required("HOOKLINE_TABLE");
        let data_bucket = env.required("HOOKLINE_DATA_BUCKET");
        let queue_url = env.required("HOOKLINE_QUEUE_URL");
        let retention = retention(&mut env);
        let ssrf = ssrf_policy(&mut env);
        let endpoint_cache = Duration::from_secs(env.parsed_or("HOOKLINE_ENDPOINT_CACHE_SECONDS", 5u64));
        let slow_queue = match (
            env.optional("HOOKLINE_SLOW_QUEUE_URL"),
            env.optional("HOOKLINE_SLOW_QUEUE_ARN"),
        ) {
            (Some(url), Some(arn)) => Some((url, arn)),
            (None, None) => None,
            _ => {
                env.problem("HOOKLINE_SLOW_QUEUE_URL and HOOKLINE_SLOW_QUEUE_ARN go together");
                None
            }
        };
        let settings = Settings::from_env(&mut env);
        env.finish()?;
        Ok(Self {
            table,
            data_bucket,
            queue_url,
            retention,
            ssrf,
            endpoint_cache,
            slow_queue,
            settings,
        })
    }
}
