//! The sparse `open` index: open deliveries by when their next attempt is due, which
//! the sweeper reads (never a scan). A delivery that succeeds at once never enters it.

use super::delivery_items::delivery_from_item;
use super::keys::{OPEN_INDEX, open_pks};
use super::reader::{Reader, TENANT_ATTRIBUTE};
use super::{DynamoStore, Item, n, s};
use crate::adapters::classify;
use crate::ports::{DueDelivery, OpenDeliveries, PortResult};
use crate::timestamp::Timestamp;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, Select};
use std::collections::HashMap;

impl DynamoStore {
    /// A query of one key of the open index, most overdue first: every open delivery
    /// under it, or those due by `before`.
    fn open_query(&self, pk: &str, before: Option<Timestamp>) -> QueryFluentBuilder {
        let q = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(OPEN_INDEX)
            .expression_attribute_values(":open", s(pk));
        match before {
            None => q.key_condition_expression("open_pk = :open"),
            Some(t) => q
                .key_condition_expression("open_pk = :open AND due_at <= :before")
                .expression_attribute_values(":before", n(t.unix_millis())),
        }
    }

    /// Open deliveries due by `before`, most overdue first, with their lease state.
    ///
    /// The index does not project `tenant_id` (it was made before tenants, and an
    /// index's projection cannot change in place), so each delivery's tenant is read
    /// from its item in the table: one BatchGetItem of keys and tenants per hundred. One
    /// gone from the table meanwhile (expired) is left out.
    pub(super) async fn open_due_by(&self, before: Timestamp, limit: u32) -> PortResult<Vec<DueDelivery>> {
        // Every key of the index at once, each page after page (a page ends at 1 MB,
        // about a thousand deliveries) until `limit` are read or none are left; then the
        // most overdue `limit` of them all.
        let per_key =
            futures::future::try_join_all(open_pks().map(|pk| self.open_due_under(pk, before, limit)))
                .await?;
        let mut found: Vec<(i64, Item)> = per_key
            .into_iter()
            .flatten()
            .map(|item| (Reader(&item).opt_num("due_at").unwrap_or(i64::MAX), item))
            .collect();
        found.sort_by_key(|(due, _)| *due);
        found.truncate(limit as usize);
        let found: Vec<Item> = found.into_iter().map(|(_, item)| item).collect();
        let key_of = |item: &Item| -> Option<(String, String)> {
            let r = Reader(item);
            Some((r.opt_str("pk")?.to_owned(), r.opt_str("sk")?.to_owned()))
        };
        let keys: Vec<Item> = found
            .iter()
            .filter_map(|item| {
                let (pk, sk) = key_of(item)?;
                Some(HashMap::from([
                    ("pk".to_owned(), s(pk)),
                    ("sk".to_owned(), s(sk)),
                ]))
            })
            .collect();
        let tenants: HashMap<(String, String), Option<AttributeValue>> = if keys.is_empty() {
            HashMap::new()
        } else {
            self.batch_get(
                keys,
                Some("pk, sk, tenant_id"),
                "BatchGetItem due deliveries' tenants",
            )
            .await?
            .into_iter()
            .filter_map(|item| Some((key_of(&item)?, item.get(TENANT_ATTRIBUTE).cloned())))
            .collect()
        };
        let mut due = Vec::with_capacity(found.len());
        for item in &found {
            let Some(tenant) = key_of(item).and_then(|k| tenants.get(&k)) else {
                continue;
            };
            let mut item = item.clone();
            if let Some(t) = tenant {
                item.insert(TENANT_ATTRIBUTE.to_owned(), t.clone());
            }
            due.push(DueDelivery {
                delivery: delivery_from_item(&item)?,
                due_at: Reader(&item)
                    .opt_num("due_at")
                    .map_or(before, Timestamp::from_unix_millis),
                leased_until: Reader(&item)
                    .opt_num("lease_until")
                    .map(Timestamp::from_unix_millis),
            });
        }
        Ok(due)
    }

    /// One key's open deliveries due by `before`, most overdue first, up to `limit`.
    async fn open_due_under(&self, pk: String, before: Timestamp, limit: u32) -> PortResult<Vec<Item>> {
        let mut found: Vec<Item> = Vec::new();
        let mut start = None;
        loop {
            let left = limit.saturating_sub(u32::try_from(found.len()).unwrap_or(u32::MAX));
            let page = self
                .open_query(&pk, Some(before))
                .limit(i32::try_from(left).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| classify("Query open index", e))?;
            found.extend(page.items().iter().cloned());
            start = page.last_evaluated_key().cloned();
            if start.is_none() || found.len() >= limit as usize {
                return Ok(found);
            }
        }
    }

    /// Counts open deliveries, looking at no more than `limit` under each key of the
    /// index, and finds the most overdue one's due time.
    pub(super) async fn open_count(&self, limit: u32) -> PortResult<OpenDeliveries> {
        let per_key =
            futures::future::try_join_all(open_pks().map(|pk| self.open_count_under(pk, limit))).await?;
        Ok(OpenDeliveries {
            open: per_key
                .iter()
                .fold(0u32, |n, (count, _)| n.saturating_add(*count))
                .min(limit),
            oldest_due_at: per_key.iter().filter_map(|(_, oldest)| *oldest).min(),
        })
    }

    async fn open_count_under(&self, pk: String, limit: u32) -> PortResult<(u32, Option<Timestamp>)> {
        let oldest = self
            .open_query(&pk, None)
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
                .open_query(&pk, None)
                .select(Select::Count)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| classify("Query open deliveries", e))?;
            open = open.saturating_add(u32::try_from(out.count()).unwrap_or(0));
            match out.last_evaluated_key() {
                Some(k) if !k.is_empty() && open < limit => start = Some(k.clone()),
                _ => return Ok((open.min(limit), oldest_due_at)),
            }
        }
    }
}
