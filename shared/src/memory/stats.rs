//! Statistics, rate-limit buckets and dead letters in memory.

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

    async fn read_stats(
        &self,
        endpoint: &EndpointId,
        from: &str,
        to: &str,
    ) -> PortResult<Vec<(String, HourStats)>> {
        self.check()?;
        Ok(self
            .stats
            .lock()
            .unwrap()
            .iter()
            .filter(|((e, h), _)| e == endpoint && h.as_str() >= from && h.as_str() <= to)
            .map(|((_, h), s)| (h.clone(), s.clone()))
            .collect())
    }
}

#[async_trait]
impl RateLimiter for MemoryStore {
    async fn take(
        &self,
        bucket: crate::ratelimit::RateBucket<'_>,
        per_second: u32,
        tokens: u32,
        now: Timestamp,
    ) -> PortResult<Option<Duration>> {
        self.refuse("take")?;
        self.check()?;
        if let crate::ratelimit::RateBucket::TenantIngest(_) = bucket {
            let (second, rest) = crate::ratelimit::window(now);
            let mut windows = self.windows.lock().unwrap();
            let taken = windows.entry((bucket.name(), second)).or_default();
            if *taken >= per_second {
                return Ok(Some(rest));
            }
            *taken += tokens.max(1);
            return Ok(None);
        }
        let mut buckets = self.buckets.lock().unwrap();
        let name = bucket.name();
        match crate::ratelimit::take_n(buckets.get(&name).copied(), per_second, tokens, now) {
            Ok(b) => {
                buckets.insert(name, b);
                Ok(None)
            }
            Err(wait) => Ok(Some(wait)),
        }
    }
}

#[async_trait]
impl crate::ports::DeadLetterStore for MemoryStore {
    async fn record_dead_letter(&self, letter: &crate::dead_letter::DeadLetter) -> PortResult<()> {
        self.check()?;
        self.refuse("record_dead_letter")?;
        self.dead_letters.lock().unwrap().push(letter.clone());
        Ok(())
    }

    async fn list_dead_letters(
        &self,
        limit: u32,
        cursor: Option<&str>,
    ) -> PortResult<crate::ports::Page<crate::dead_letter::DeadLetter>> {
        self.check()?;
        let all = self.dead_letters.lock().unwrap();
        let skip: usize = match cursor {
            None => 0,
            Some(c) => c
                .parse()
                .map_err(|_| crate::ports::PortError::permanent("memory store", "bad cursor"))?,
        };
        let items: Vec<_> = all
            .iter()
            .rev()
            .skip(skip)
            .take(limit as usize)
            .cloned()
            .collect();
        let next = skip + items.len();
        let next_cursor = (next < all.len()).then(|| next.to_string());
        Ok(crate::ports::Page { items, next_cursor })
    }
}
