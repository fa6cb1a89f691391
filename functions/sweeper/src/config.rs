//! The sweeper's configuration, from the environment.

use hookline::config::{ConfigError, Env};
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct SweepSettings {
    /// How overdue work must be before the sweeper takes it for lost (a parked
    /// delivery is queued as soon as it is due).
    pub grace: Duration,
    /// The most due deliveries one sweep queues: parked ones woken and lost ones
    /// re-driven, the most overdue first. Every minute, so this bounds how many parked
    /// retries a minute go on time.
    pub batch: u32,
    /// The fan-out lease, as the delivery function uses it.
    pub lease: Duration,
    /// The most DLQ messages one sweep drains.
    pub dlq_max: u32,
    /// Open deliveries are counted up to this.
    pub count_limit: u32,
}

impl Default for SweepSettings {
    fn default() -> Self {
        Self {
            grace: Duration::from_secs(300),
            batch: 2_000,
            lease: Duration::from_secs(180),
            dlq_max: 100,
            count_limit: 10_000,
        }
    }
}

#[derive(Debug)]
pub struct Config {
    pub table: String,
    pub queue_url: String,
    pub dlq_url: String,
    pub settings: SweepSettings,
}

impl Config {
    pub fn from_env(mut env: Env) -> Result<Self, ConfigError> {
        let table = env.required("HOOKLINE_TABLE");
        let queue_url = env.required("HOOKLINE_QUEUE_URL");
        let dlq_url = env.required("HOOKLINE_DLQ_URL");
        let d = SweepSettings::default();
        let mut secs = |name: &str, default: Duration, max: u64| {
            Duration::from_secs(
                env.parsed_with(name, default.as_secs(), |s| match s.parse::<u64>() {
                    Ok(n) if (1..=max).contains(&n) => Ok(n),
                    _ => Err(format!("must be whole seconds from 1 to {max}")),
                }),
            )
        };
        let grace = secs("HOOKLINE_SWEEP_GRACE_SECONDS", d.grace, 86_400);
        let lease = secs("HOOKLINE_LEASE_SECONDS", d.lease, 900);
        let batch = env.parsed_with("HOOKLINE_SWEEP_BATCH", d.batch, |s| match s.parse() {
            Ok(n) if (1..=10_000).contains(&n) => Ok(n),
            _ => Err("must be from 1 to 10000".into()),
        });
        env.finish()?;
        Ok(Self {
            table,
            queue_url,
            dlq_url,
            settings: SweepSettings {
                grace,
                batch,
                lease,
                ..d
            },
        })
    }
}
