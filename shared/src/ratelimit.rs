//! Rate limits (an endpoint's requests, a tenant's events): a token bucket that holds
//! one second's worth, as pure arithmetic, so the store only keeps `tokens` and when
//! they were counted.

use crate::endpoint::Endpoint;
use crate::ids::{EndpointId, TenantId};
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
    take_n(bucket, per_second, 1, now)
}

/// Like `take`, for `n` at once (a batch of events): it goes if a token is there, and
/// the bucket may run into debt, which the requests after it wait out. So a batch larger
/// than a second's worth is still taken, and the rate holds over time.
pub fn take_n(bucket: Option<Bucket>, per_second: u32, n: u32, now: Timestamp) -> Result<Bucket, Duration> {
    let rate = f64::from(per_second.max(1));
    let tokens = match bucket {
        None => rate,
        Some(b) => (b.tokens + now.since(b.at).as_secs_f64() * rate).min(rate),
    };
    // A taker whose clock is behind the bucket's never moves it back (which would
    // count the refill between the two twice).
    let at = bucket.map_or(now, |b| b.at.max(now));
    if tokens >= 1.0 {
        Ok(Bucket {
            tokens: tokens - f64::from(n.max(1)),
            at,
        })
    } else {
        Err(Duration::from_secs_f64((1.0 - tokens) / rate).max(Duration::from_millis(1)))
    }
}

/// The one-second window `now` falls in (unix seconds), and how long until the next.
///
/// What many take at once (a tenant's ingest, from every ingest instance) is counted
/// per window rather than in a bucket: one atomic add, never a read and a conditional
/// write that concurrent takers would refuse one another on. A take goes if its window
/// held fewer than the limit before it (so a batch may take it past); the next second
/// starts again.
pub fn window(now: Timestamp) -> (i64, Duration) {
    let ms = now.unix_millis();
    let second = ms.div_euclid(1000);
    let rest = 1000 - ms.rem_euclid(1000);
    (second, Duration::from_millis(u64::try_from(rest).unwrap_or(1000)))
}

/// Whose bucket a token is taken from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RateBucket<'a> {
    /// An endpoint's requests (its `rate_limit_per_second`).
    Endpoint(&'a EndpointId),
    /// A tenant's events sent (`tenant_limits`), counted per `window`.
    TenantIngest(&'a TenantId),
}

impl RateBucket<'_> {
    /// A name for the bucket, unique among all buckets.
    pub fn name(&self) -> String {
        match self {
            Self::Endpoint(ep) => format!("RATE#{ep}"),
            Self::TenantIngest(t) => format!("TRATE#{t}"),
        }
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
        Some(rate) => limiter.take(RateBucket::Endpoint(&ep.id), rate, 1, now).await,
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

    #[test]
    fn a_batch_is_taken_while_a_token_is_there_and_its_debt_is_waited_out() {
        let t0 = Timestamp::from_unix_millis(0);
        // 10 a second: a batch of 25 goes at once, then nothing for 1.6 s.
        let b = take_n(None, 10, 25, t0).expect("a token is there");
        assert_eq!(b.tokens, -15.0);
        let wait = take_n(Some(b), 10, 1, t0).expect_err("in debt");
        assert_eq!(wait, Duration::from_millis(1600));
        assert!(take_n(Some(b), 10, 1, Timestamp::from_unix_millis(1600)).is_ok());
    }

    #[test]
    fn a_taker_whose_clock_is_behind_the_bucket_never_moves_it_back() {
        let later = Timestamp::from_unix_millis(1_000);
        let b = Bucket {
            tokens: 5.0,
            at: later,
        };
        let next = take_n(Some(b), 10, 1, Timestamp::from_unix_millis(900)).unwrap();
        assert_eq!((next.tokens, next.at), (4.0, later));
    }

    #[test]
    fn a_window_is_the_second_now_falls_in_and_what_is_left_of_it() {
        assert_eq!(
            window(Timestamp::from_unix_millis(12_250)),
            (12, Duration::from_millis(750))
        );
        assert_eq!(
            window(Timestamp::from_unix_millis(13_000)),
            (13, Duration::from_millis(1000))
        );
    }
}
