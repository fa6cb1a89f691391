//! Endpoints' rate limits: a token bucket that holds one second's worth, as pure
//! arithmetic, so the store only keeps `tokens` and when they were counted.

use crate::endpoint::Endpoint;
use crate::ports::{PortResult, RateLimiter};
use crate::timestamp::Timestamp;
use std::time::Duration;

/// A bucket as stored: `tokens` at `at`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bucket {
    pub tokens: f64,
    pub at: Timestamp,
}

/// Refills the bucket at `per_second` up to one second's worth, then takes a token if
/// there is one. Returns the new bucket, or how long until a token is there.
pub fn take(bucket: Option<Bucket>, per_second: u32, now: Timestamp) -> Result<Bucket, Duration> {
    let rate = f64::from(per_second.max(1));
    let tokens = match bucket {
        None => rate,
        Some(b) => (b.tokens + now.since(b.at).as_secs_f64() * rate).min(rate),
    };
    if tokens >= 1.0 {
        Ok(Bucket {
            tokens: tokens - 1.0,
            at: now,
        })
    } else {
        Err(Duration::from_secs_f64((1.0 - tokens) / rate).max(Duration::from_millis(1)))
    }
}

/// Whether the endpoint's rate limit lets a request go now (`None`), or how long it
/// must wait its turn. An endpoint without a limit never waits and costs no call.
pub async fn turn<L: RateLimiter + ?Sized>(
    limiter: &L,
    ep: &Endpoint,
    now: Timestamp,
) -> PortResult<Option<Duration>> {
    match ep.rate_limit_per_second {
        None => Ok(None),
        Some(rate) => limiter.take(&ep.id, rate, now).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_a_seconds_burst_then_one_request_per_interval() {
        let t0 = Timestamp::from_unix_millis(0);
        let mut b = None;
        for _ in 0..2 {
            b = Some(take(b, 2, t0).expect("the burst"));
        }
        let wait = take(b, 2, t0).expect_err("empty");
        assert_eq!(wait, Duration::from_millis(500));
        assert!(take(b, 2, Timestamp::from_unix_millis(500)).is_ok());
    }
}
