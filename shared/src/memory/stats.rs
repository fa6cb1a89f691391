//! Statistics and rate-limit buckets in memory.

use super::MemoryStore;
use crate::ids::EndpointId;
use crate::ports::{PortResult, RateLimiter, StatsStore};
use crate::stats::HourStats;
use crate::timestamp::Timestamp;
use async_trait::async_trait;
use std::time::Duration;

#[async_trait]
impl StatsStore for MemoryStore {
    async fn add_stats(&self, rows: &[(EndpointId, String, HourStats)]) -> PortResult<()> {
        self.check()?;
        let mut all = self.stats.lock().unwrap();
        for (ep, hour, st) in rows {
            all.entry((ep.clone(), hour.clone())).or_default().merge(st);
        }
        Ok(())
    }

    async fn read_stats(&self, endpoint: &EndpointId, from: &str, to: &str) -> PortResult<Vec<HourStats>> {
        self.check()?;
        Ok(self
            .stats
            .lock()
            .unwrap()
            .iter()
            .filter(|((e, h), _)| e == endpoint && h.as_str() >= from && h.as_str() <= to)
            .map(|(_, s)| s.clone())
            .collect())
    }
}

#[async_trait]
impl RateLimiter for MemoryStore {
    async fn take(
        &self,
        endpoint: &EndpointId,
        per_second: u32,
        now: Timestamp,
    ) -> PortResult<Option<Duration>> {
        self.refuse("take")?;
        self.check()?;
        let mut buckets = self.buckets.lock().unwrap();
        match crate::ratelimit::take(buckets.get(endpoint).copied(), per_second, now) {
            Ok(b) => {
                buckets.insert(endpoint.clone(), b);
                Ok(None)
            }
            Err(wait) => Ok(Some(wait)),
        }
    }
}
