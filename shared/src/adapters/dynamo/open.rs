//! The sparse `open` index: open deliveries by when their next attempt is due, which
//! the sweeper reads (never a scan). A delivery that succeeds at once never enters it.

use super::delivery_items::delivery_from_item;
use super::keys::{OPEN_INDEX, OPEN_PK};
use super::reader::Reader;
use super::{DynamoStore, Item, n, s};
use crate::adapters::classify;
use crate::ports::{DueDelivery, OpenDeliveries, PortResult};
use crate::timestamp::Timestamp;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::Select;

impl DynamoStore {
    /// A query of the open index, most overdue first: every open delivery, or those
    /// due by `before`.
    fn open_query(&self, before: Option<Timestamp>) -> QueryFluentBuilder {
        let q = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(OPEN_INDEX)
            .expression_attribute_values(":open", s(OPEN_PK));
        match before {
            None => q.key_condition_expression("open_pk = :open"),
            Some(t) => q
                .key_condition_expression("open_pk = :open AND due_at <= :before")
                .expression_attribute_values(":before", n(t.unix_millis())),
        }
    }

    /// Open deliveries due by `before`, most overdue first, with their lease state.
    pub(super) async fn open_due_by(&self, before: Timestamp, limit: u32) -> PortResult<Vec<DueDelivery>> {
        let out = self
            .open_query(Some(before))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| classify("Query open index", e))?;
        out.items()
            .iter()
            .map(|item| {
                Ok(DueDelivery {
                    delivery: delivery_from_item(item)?,
                    leased_until: Reader(item)
                        .opt_num("lease_until")
                        .map(Timestamp::from_unix_millis),
                })
            })
            .collect()
    }

    /// Counts open deliveries, looking at no more than `limit`, and finds the most
    /// overdue one's due time.
    pub(super) async fn open_count(&self, limit: u32) -> PortResult<OpenDeliveries> {
        let oldest = self
            .open_query(None)
            .limit(1)
            .send()
            .await
            .map_err(|e| classify("Query oldest open delivery", e))?;
        let oldest_due_at = oldest
            .items()
            .first()
            .and_then(|i| Reader(i).opt_num::<i64>("due_at"))
            .map(Timestamp::from_unix_millis);
        let mut open: u32 = 0;
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .open_query(None)
                .select(Select::Count)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| classify("Query open deliveries", e))?;
            open = open.saturating_add(u32::try_from(out.count()).unwrap_or(0));
            match out.last_evaluated_key() {
                Some(k) if !k.is_empty() && open < limit => start = Some(k.clone()),
                _ => {
                    return Ok(OpenDeliveries {
                        open: open.min(limit),
                        oldest_due_at,
                    });
                }
            }
        }
    }
}
