//! Rate-limit buckets (an endpoint's, a tenant's ingest): read, take tokens
//! (`crate::ratelimit`), write on the condition that nobody took any meanwhile. The
//! bucket's partition is its name (`RATE#<ep_…>`, `TRATE#<tenant>`).

use super::keys::BUCKET_SK;
use super::reader::Reader;
use super::{DynamoStore, conditional, n, s};
use crate::adapters::classify;
use crate::ports::{PortResult, RateLimiter};
use crate::ratelimit::{Bucket, RateBucket, take_n};
use crate::timestamp::Timestamp;
use async_trait::async_trait;
use std::time::Duration;

#[async_trait]
impl RateLimiter for DynamoStore {
    async fn take(
        &self,
        bucket: RateBucket<'_>,
        per_second: u32,
        tokens: u32,
        now: Timestamp,
    ) -> PortResult<Option<Duration>> {
        let pk = bucket.name();
        // Read, take, write on condition; a concurrent taker means read again.
        for _ in 0..5 {
            let out = self
                .client
                .get_item()
                .table_name(&self.table)
                .key("pk", s(&pk))
                .key("sk", s(BUCKET_SK))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| classify("GetItem rate bucket", e))?;
            let seen = out.item().and_then(|i| {
                let r = Reader(i);
                Some(Bucket {
                    tokens: r.opt_num("tokens")?,
                    at: Timestamp::from_unix_millis(r.opt_num("at")?),
                })
            });
            let next = match take_n(seen, per_second, tokens, now) {
                Ok(b) => b,
                Err(wait) => return Ok(Some(wait)),
            };
            let req = self
                .client
                .put_item()
                .table_name(&self.table)
                .item("pk", s(&pk))
                .item("sk", s(BUCKET_SK))
                .item("tokens", n(next.tokens))
                .item("at", n(next.at.unix_millis()))
                .item("expires_at", n(now.unix_seconds() + 86_400));
            // As read, both parts: two takers who read the same bucket after a third's
            // write would otherwise both write over it, and a token be taken twice.
            let req = match seen {
                Some(b) => req
                    .condition_expression("#at = :seen AND tokens = :tokens")
                    .expression_attribute_names("#at", "at")
                    .expression_attribute_values(":seen", n(b.at.unix_millis()))
                    .expression_attribute_values(":tokens", n(b.tokens)),
                None => req.condition_expression("attribute_not_exists(pk)"),
            };
            if conditional(req.send().await.map(|_| ()), "PutItem rate bucket")? {
                return Ok(None);
            }
        }
        // Heavily contended: wait one token's time.
        Ok(Some(Duration::from_secs_f64(1.0 / f64::from(per_second.max(1)))))
    }
}
