//! The store ports on one DynamoDB table (`pk`, `sk`), laid out so that a webhook
//! delivered at its first attempt costs its event's item (one write unit) and its
//! entry in a page of its batch's deliveries to its endpoint (≈80 bytes), with no
//! index entries.
//!
//! | item                 | pk               | sk                          |
//! |----------------------|------------------|-----------------------------|
//! | endpoint             | `ENDPOINT`       | `ep_…`                      |
//! | deleted endpoint     | `ENDPOINT_GONE`  | `ep_…`                      |
//! | event                | `EVT#<id>`, `EVT#<tenant>#<id>` | `EVENT`      |
//! | page of deliveries ended at their 1st try | `EP#<ep_…>` | `<ms>#dlv_<batch>#<slot>` |
//! | other delivery (+ 1st try) | `EP#<ep_…>`  | `<created ms, 16 digits>#<dlv_…>` |
//! | later attempt        | `ATT#<dlv_…>`    | `00002`                     |
//! | large event's body   | `EVT#<id>`       | `BODY`                      |
//! | hourly counters      | `STATS#<ep_…>`   | `H#2026-12-03T14`           |
//! | rate-limit bucket    | `RATE#<ep_…>`    | `BUCKET`                    |
//! | collapse key's newest | `NEWEST#<ep_…>` | `<collapse key>`            |
//! | tenant ingest window | `TRATE#<tenant>` | `W#<unix second>`           |
//! | dead letter          | `DEAD`           | `<recorded ms>#<dlt_…>`     |
//! | registry version     | `REGISTRY`       | `VERSION`                   |
//! | tenant               | `TENANT`         | `<tenant id>`               |
//! | tenant key           | `TKEY#<tenant>`  | `key_…`                     |
//!
//! An endpoint's partition is its delivery log, newest last; the whole log merges the
//! endpoints' (live and deleted ones'). A delivery id names its endpoint and creation
//! time, so it is found by its id alone; an event's item lists its deliveries' ids (its
//! targets), so its deliveries are found from it. Open deliveries carry `open_pk =
//! "OPEN#<n>"` (one of 16 keys, by their id) and `due_at` (their next attempt): the
//! keys of the sparse `open` index,
//! from which the sweeper reads what is due (never a scan); a delivery that succeeds
//! at once never enters it. Events, deliveries, attempts and deleted endpoints carry
//! `expires_at` for TTL. Endpoints, their tombstones and deliveries of a tenant other
//! than `default` carry `tenant_id`; an item without it (all items written before
//! tenants) is the default tenant's, as is an event partition without a tenant.
//!
//! One module per port (`endpoints`, `events`, `deliveries`, `log`, `open`, `stats`,
//! `rate_limit`, `dead_letters`); `keys` says where each item lives, `pages` how a
//! batch's deliveries share an item, `reader` reads attributes back, and the `*_items`
//! and `page_entries` modules are the codecs between the domain and items.

mod collapse;
mod cursor;
mod dead_letters;
mod deliveries;
mod delivery_items;
mod endpoint_items;
mod endpoints;
mod events;
mod keys;
mod lanes;
mod log;
mod open;
mod page_entries;
mod pages;
mod rate_limit;
mod reader;
mod registry;
mod stats;
mod tenants;

use super::classify;
use crate::ports::{PortError, PortResult};
use crate::timestamp::Timestamp;
pub use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
pub use keys::OPEN_INDEX;
pub use page_entries::first_attempt_in_page;
use std::collections::HashMap;
use std::time::Duration;

/// An item as the SDK reads and writes it.
type Item = HashMap<String, AttributeValue>;

/// BatchWriteItem takes at most 25 requests.
const WRITE_BATCH: usize = 25;
/// BatchGetItem takes at most 100 keys.
const READ_BATCH: usize = 100;

#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
    retention: Duration,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>, retention: Duration) -> Self {
        Self {
            client,
            table: table.into(),
            retention,
        }
    }

    /// When an item written at `now` expires, by TTL.
    fn expires_at(&self, now: Timestamp) -> AttributeValue {
        n(now.saturating_add(self.retention).unix_seconds())
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// A request the SDK's builder refused: our bug, never worth retrying.
fn unbuilt(what: &'static str, e: aws_sdk_dynamodb::error::BuildError) -> PortError {
    PortError::permanent(what, e.to_string()).caused_by(e)
}

/// A conditional write's result: `false` when its condition did not hold.
fn conditional<E>(res: Result<(), SdkError<E>>, what: &'static str) -> PortResult<bool>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match res {
        Ok(()) => Ok(true),
        Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(false),
        Err(e) => Err(classify(what, e)),
    }
}

impl DynamoStore {
    /// Puts an item whose key is not taken yet: `false` when it is.
    async fn put_new(&self, item: Item, what: &'static str) -> PortResult<bool> {
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        conditional(res.map(|_| ()), what)
    }
}

/// Every page of a query.
async fn query_all(query: QueryFluentBuilder, what: &'static str) -> PortResult<Vec<Item>> {
    let mut items = Vec::new();
    let mut start: Option<Item> = None;
    loop {
        let out = query
            .clone()
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| classify(what, e))?;
        items.extend(out.items().iter().cloned());
        match out.last_evaluated_key() {
            Some(k) if !k.is_empty() => start = Some(k.clone()),
            _ => return Ok(items),
        }
    }
}

/// Sends a batch request, then again for what DynamoDB left unprocessed, backing off
/// from 25 ms, at most five times more; `send` answers what is left and what it read.
async fn until_processed<T, Fut>(
    mut pending: Vec<T>,
    what: &'static str,
    mut send: impl FnMut(Vec<T>) -> Fut,
) -> PortResult<Vec<Item>>
where
    Fut: std::future::Future<Output = PortResult<(Vec<T>, Vec<Item>)>>,
{
    let mut read = Vec::new();
    let mut backoff = Duration::from_millis(25);
    for round in 0.. {
        let (left, items) = send(pending).await?;
        read.extend(items);
        if left.is_empty() {
            break;
        }
        if round == 5 {
            return Err(PortError::retryable(
                what,
                format!("{} requests left unprocessed", left.len()),
            ));
        }
        pending = left;
        tokio::time::sleep(backoff).await;
        backoff *= 2;
    }
    Ok(read)
}

impl DynamoStore {
    /// Items by key, in chunks of what one BatchGetItem takes, read again for what it
    /// left unprocessed. Strongly consistent; in no particular order.
    async fn batch_get(
        &self,
        keys: Vec<Item>,
        projection: Option<&str>,
        what: &'static str,
    ) -> PortResult<Vec<Item>> {
        let (client, table) = (&self.client, &self.table);
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(READ_BATCH) {
            let read = until_processed(chunk.to_vec(), what, |pending| async move {
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(pending))
                    .consistent_read(true)
                    .set_projection_expression(projection.map(str::to_owned))
                    .build()
                    .map_err(|e| unbuilt(what, e))?;
                let res = client
                    .batch_get_item()
                    .request_items(table, request)
                    .send()
                    .await
                    .map_err(|e| classify(what, e))?;
                let items = res
                    .responses()
                    .and_then(|r| r.get(table))
                    .cloned()
                    .unwrap_or_default();
                let left = res
                    .unprocessed_keys()
                    .and_then(|u| u.get(table))
                    .map(|k| k.keys().to_vec())
                    .unwrap_or_default();
                Ok((left, items))
            })
            .await?;
            out.extend(read);
        }
        Ok(out)
    }
}
