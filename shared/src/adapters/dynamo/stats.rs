//! Hourly delivery counters per endpoint: one item an hour, added to with `ADD`, so
//! the counts never need a read first and concurrent writers never lose one.

use super::keys::{stats_pk, stats_sk};
use super::reader::Reader;
use super::{DynamoStore, n, query_all, s};
use crate::adapters::classify;
use crate::ids::EndpointId;
use crate::ports::{PortResult, StatsStore};
use crate::stats::HourStats;
use crate::timestamp::Timestamp;
use async_trait::async_trait;
use std::collections::HashMap;

#[async_trait]
impl StatsStore for DynamoStore {
    async fn add_stats(&self, rows: &[(EndpointId, String, HourStats)]) -> PortResult<()> {
        for (ep, hour, st) in rows {
            let mut update = String::from(
                "SET expires_at = :ttl ADD attempts :a, attempt_failures :f, delivered :d, failed :x, latency_sum_ms :l",
            );
            // Counted only when there are some, so that the items of endpoints whose
            // events never expire or collapse stay as they were.
            let mut values = HashMap::new();
            for (name, c) in [("expired", st.expired), ("superseded", st.superseded)] {
                if c > 0 {
                    update.push_str(&format!(", {name} :{name}"));
                    values.insert(format!(":{name}"), n(c));
                }
            }
            values.extend([
                (":ttl".to_owned(), self.expires_at(Timestamp::now())),
                (":a".to_owned(), n(st.attempts)),
                (":f".to_owned(), n(st.attempt_failures)),
                (":d".to_owned(), n(st.delivered)),
                (":x".to_owned(), n(st.failed)),
                (":l".to_owned(), n(st.latency_sum_ms)),
            ]);
            for (i, c) in st.latency_buckets.iter().enumerate().filter(|(_, c)| **c > 0) {
                update.push_str(&format!(", b{i} :b{i}"));
                values.insert(format!(":b{i}"), n(c));
            }
            self.client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(stats_pk(ep)))
                .key("sk", s(stats_sk(hour)))
                .update_expression(update)
                .set_expression_attribute_values(Some(values))
                .send()
                .await
                .map_err(|e| classify("UpdateItem stats", e))?;
        }
        Ok(())
    }

    async fn read_stats(
        &self,
        endpoint: &EndpointId,
        from: &str,
        to: &str,
    ) -> PortResult<Vec<(String, HourStats)>> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
            .expression_attribute_values(":pk", s(stats_pk(endpoint)))
            .expression_attribute_values(":from", s(stats_sk(from)))
            .expression_attribute_values(":to", s(stats_sk(to)));
        Ok(query_all(query, "Query stats")
            .await?
            .iter()
            .map(|item| {
                let r = Reader(item);
                let mut st = HourStats {
                    attempts: r.opt_num("attempts").unwrap_or(0),
                    attempt_failures: r.opt_num("attempt_failures").unwrap_or(0),
                    delivered: r.opt_num("delivered").unwrap_or(0),
                    failed: r.opt_num("failed").unwrap_or(0),
                    expired: r.opt_num("expired").unwrap_or(0),
                    superseded: r.opt_num("superseded").unwrap_or(0),
                    latency_sum_ms: r.opt_num("latency_sum_ms").unwrap_or(0),
                    ..Default::default()
                };
                for (i, b) in st.latency_buckets.iter_mut().enumerate() {
                    *b = r.opt_num(&format!("b{i}")).unwrap_or(0);
                }
                let hour = r.opt_str("sk").unwrap_or_default();
                (hour.trim_start_matches("H#").to_owned(), st)
            })
            .collect())
    }
}
