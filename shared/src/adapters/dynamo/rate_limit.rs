//! Rate limits. An endpoint's bucket (`RATE#<ep_…>`, `BUCKET`): read, take tokens
//! (`crate::ratelimit`), write on the condition that nobody took any meanwhile (one
//! delivery worker at a time paces an endpoint). A tenant's ingest (`TRATE#<tenant>`,
//! `W#<second>`): one atomic add per request to the second's window, as every ingest
//! instance takes from it at once.

use super::keys::BUCKET_SK;
use super::reader::Reader;
use super::{DynamoStore, conditional, n, s};
use crate::adapters::classify;
use crate::ports::{PortResult, RateLimiter};
use crate::ratelimit::{Bucket, RateBucket, take_n, window};
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
        if let RateBucket::TenantIngest(_) = bucket {
            return self.take_in_window(&bucket.name(), per_second, tokens, now).await;
        }
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

impl DynamoStore {
    /// Counts `count` in the current second's window (`ratelimit::window`) with one atomic
    /// UpdateItem, if the window held fewer than `limit`; how long until the next
    /// window if it did not.
    async fn take_in_window(
        &self,
        pk: &str,
        limit: u32,
        count: u32,
        now: Timestamp,
    ) -> PortResult<Option<Duration>> {
        let (second, rest) = window(now);
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(format!("W#{second}")))
            .update_expression("ADD taken :n SET expires_at = :ttl")
            .condition_expression("attribute_not_exists(taken) OR taken < :limit")
            .expression_attribute_values(":n", n(count.max(1)))
            .expression_attribute_values(":limit", n(limit))
            .expression_attribute_values(":ttl", n(second + 60))
            .send()
            .await;
        match conditional(res.map(|_| ()), "UpdateItem rate window")? {
            true => Ok(None),
            false => Ok(Some(rest)),
        }
    }
}
