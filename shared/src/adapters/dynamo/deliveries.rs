//! Deliveries in their endpoints' logs: written in batches at fan-out (those ended at
//! once in pages, `super::pages`), then changed only by conditional writes on the
//! state a worker read (attempt count, wake token, lease), so that duplicates and
//! redeliveries never regress one.

use super::delivery_items::{as_seen, attempt_from_item, delivery_from_item, first_attempt};
use super::keys::{attempts_pk, delivery_pk, delivery_sk};
use super::pages::{Located, pageable};
use super::{DynamoStore, Item, WRITE_BATCH, conditional, n, query_all, s, unbuilt, until_processed};
use crate::adapters::classify;
use crate::delivery::{Attempt, Delivery};
use crate::event::EventKey;
use crate::ids::{DeliveryId, EndpointId};
use crate::ports::{DeliveryQuery, DeliveryStore, DueDelivery, OpenDeliveries, Page, PortResult};
use crate::timestamp::Timestamp;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use std::collections::HashMap;
use std::time::Duration;

#[async_trait]
impl DeliveryStore for DynamoStore {
    async fn record_attempts(&self, records: &[(&Delivery, Option<&Attempt>)]) -> PortResult<()> {
        // Those ended at once go to their endpoints' pages; the others are items.
        let rest = self.write_pages(records).await?;
        let mut requests: Vec<WriteRequest> = Vec::with_capacity(rest.len());
        for (d, a) in rest {
            let put = PutRequest::builder()
                .set_item(Some(self.delivery_item_with(d, a)))
                .build()
                .map_err(|e| unbuilt("BatchWriteItem deliveries", e))?;
            requests.push(WriteRequest::builder().put_request(put).build());
        }
        let (client, table) = (&self.client, &self.table);
        for chunk in requests.chunks(WRITE_BATCH) {
            until_processed(
                chunk.to_vec(),
                "BatchWriteItem deliveries",
                |pending| async move {
                    let out = client
                        .batch_write_item()
                        .request_items(table, pending)
                        .send()
                        .await
                        .map_err(|e| classify("BatchWriteItem deliveries", e))?;
                    let left = out
                        .unprocessed_items()
                        .and_then(|u| u.get(table))
                        .cloned()
                        .unwrap_or_default();
                    Ok((left, Vec::new()))
                },
            )
            .await?;
        }
        Ok(())
    }

    async fn deliveries_for_event(&self, key: &EventKey) -> PortResult<Vec<(Delivery, Vec<Attempt>)>> {
        let Some(targets) = self.event_targets(key).await? else {
            return Ok(Vec::new());
        };
        let mut found = self.locate(&targets).await?;
        // In the order the claim named them.
        let mut out = Vec::with_capacity(found.len());
        for target in &targets {
            if let Some(at) = found.remove(target) {
                out.push(self.with_attempts(at).await?);
            }
        }
        Ok(out)
    }

    async fn get_delivery(&self, event: &EventKey, endpoint: &EndpointId) -> PortResult<Option<Delivery>> {
        let Some(targets) = self.event_targets(event).await? else {
            return Ok(None);
        };
        let Some(id) = targets
            .iter()
            .find(|t| t.endpoint_id().as_ref() == Some(endpoint))
        else {
            return Ok(None);
        };
        self.locate(std::slice::from_ref(id))
            .await?
            .remove(id)
            .map(|at| at.delivery())
            .transpose()
    }

    async fn claim_attempt(&self, seen: &Delivery, now: Timestamp, lease: Duration) -> PortResult<bool> {
        let values = [(":until", n(now.saturating_add(lease).unix_millis()))];
        self.update_unleased(
            seen,
            now,
            "SET lease_until = :until",
            values,
            "UpdateItem delivery claim",
        )
        .await
    }

    async fn record_attempt(
        &self,
        seen: &Delivery,
        updated: &Delivery,
        attempt: &Attempt,
    ) -> PortResult<bool> {
        // The attempt first, then the delivery on condition. Not a transaction, which
        // would cost twice the writes: a crash between the two leaves an attempt the
        // delivery does not count yet, and the retry that follows overwrites it with
        // the same number, so the log and the count agree again.
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(self.attempt_item(updated, attempt)))
            .send()
            .await
            .map_err(|e| classify("PutItem attempt", e))?;
        self.put_as_seen(seen, updated, "UpdateItem delivery").await
    }

    async fn redrive(&self, seen: &Delivery, wake: &str, now: Timestamp) -> PortResult<bool> {
        let update = "SET wake = :new, due_at = :now, redriven_at = :now ADD redriven :one";
        let values = [(":new", s(wake)), (":one", n(1))];
        self.update_unleased(seen, now, update, values, "UpdateItem delivery redrive")
            .await
    }

    async fn release_attempt(&self, seen: &Delivery) -> PortResult<bool> {
        let (cond, values) = as_seen(seen);
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(delivery_pk(&seen.endpoint_id)))
            .key("sk", s(delivery_sk(&seen.id)))
            .update_expression("REMOVE lease_until")
            .condition_expression(cond)
            .expression_attribute_names("#st", "status")
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        conditional(res.map(|_| ()), "UpdateItem delivery release")
    }

    async fn fail_delivery(&self, seen: &Delivery, failed: &Delivery) -> PortResult<bool> {
        self.put_as_seen(seen, failed, "UpdateItem delivery failed").await
    }

    async fn due_deliveries(&self, before: Timestamp, limit: u32) -> PortResult<Vec<DueDelivery>> {
        self.open_due_by(before, limit).await
    }

    async fn find_delivery(&self, id: &DeliveryId) -> PortResult<Option<(Delivery, Vec<Attempt>)>> {
        match self.locate(std::slice::from_ref(id)).await?.remove(id) {
            Some(at) => self.with_attempts(at).await.map(Some),
            None => Ok(None),
        }
    }

    async fn list_deliveries(&self, q: &DeliveryQuery) -> PortResult<Page<Delivery>> {
        self.log_page(q).await
    }

    async fn replace_delivery(&self, seen: &Delivery, updated: &Delivery) -> PortResult<bool> {
        let mut values = HashMap::from([
            (":n".to_owned(), n(seen.attempts)),
            (":st".to_owned(), s(seen.status.as_str())),
        ]);
        let wake = match &seen.wake {
            Some(w) => {
                values.insert(":wake".into(), s(w));
                "wake = :wake"
            }
            None => "attribute_not_exists(wake)",
        };
        let replaced = self
            .update_as(
                updated,
                format!("attempts = :n AND #st = :st AND {wake}"),
                values,
                "UpdateItem delivery replace",
            )
            .await?;
        if replaced || !pageable(seen) {
            return Ok(replaced);
        }
        // Kept in a page, which is never rewritten: it moves to an item of its own,
        // which from then on is the delivery.
        let Some(Located::Paged(paged)) = self
            .locate(std::slice::from_ref(&seen.id))
            .await?
            .remove(&seen.id)
        else {
            return Ok(false);
        };
        let (stored, first) = *paged;
        if (stored.attempts, stored.status, &stored.wake) != (seen.attempts, seen.status, &seen.wake) {
            return Ok(false);
        }
        self.put_new(
            self.delivery_item_with(updated, first.as_ref()),
            "PutItem delivery from its page",
        )
        .await
    }

    async fn count_open(&self, limit: u32) -> PortResult<OpenDeliveries> {
        self.open_count(limit).await
    }
}

impl DynamoStore {
    /// Writes `updated` over a delivery that is still open and as `seen`.
    async fn put_as_seen(&self, seen: &Delivery, updated: &Delivery, what: &'static str) -> PortResult<bool> {
        let (cond, values) = as_seen(seen);
        self.update_as(updated, cond, values, what).await
    }

    /// Makes the stored delivery `updated` if `cond` (which uses `#st` for `status`) holds.
    async fn update_as(
        &self,
        updated: &Delivery,
        cond: String,
        values: HashMap<String, AttributeValue>,
        what: &'static str,
    ) -> PortResult<bool> {
        let mut u = self.delivery_update(updated);
        u.names.insert("#st".into(), "status".into());
        u.values.extend(values);
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(delivery_pk(&updated.endpoint_id)))
            .key("sk", s(delivery_sk(&updated.id)))
            .update_expression(u.expression)
            .condition_expression(cond)
            .set_expression_attribute_names(Some(u.names))
            .set_expression_attribute_values(Some(u.values))
            .send()
            .await;
        conditional(res.map(|_| ()), what)
    }

    /// Updates a delivery that is still as `seen` and that no worker holds at `now`.
    async fn update_unleased<const N: usize>(
        &self,
        seen: &Delivery,
        now: Timestamp,
        update: &str,
        extra: [(&str, AttributeValue); N],
        what: &'static str,
    ) -> PortResult<bool> {
        let (cond, mut values) = as_seen(seen);
        values.insert(":now".into(), n(now.unix_millis()));
        values.extend(extra.into_iter().map(|(k, v)| (k.to_owned(), v)));
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(delivery_pk(&seen.endpoint_id)))
            .key("sk", s(delivery_sk(&seen.id)))
            .update_expression(update)
            .condition_expression(format!(
                "{cond} AND (attribute_not_exists(lease_until) OR lease_until < :now)"
            ))
            .expression_attribute_names("#st", "status")
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        conditional(res.map(|_| ()), what)
    }

    /// A delivery's attempts: the first, from its item, then any others from theirs.
    async fn attempts_of(&self, d: &Delivery, item: &Item) -> PortResult<Vec<Attempt>> {
        let mut attempts = first_attempt(item)?;
        if d.attempts as usize > attempts.len() {
            let query = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(attempts_pk(&d.id)))
                .consistent_read(true);
            for item in query_all(query, "Query attempts").await? {
                let a = attempt_from_item(&item)?;
                // A crash between an attempt's write and its delivery's leaves an attempt
                // that the retry after it writes again under its number.
                attempts.retain(|b| b.number != a.number);
                attempts.push(a);
            }
            attempts.sort_by_key(|a| a.number);
        }
        Ok(attempts)
    }

    /// A delivery where it is kept, with its attempts.
    async fn with_attempts(&self, at: Located) -> PortResult<(Delivery, Vec<Attempt>)> {
        match at {
            Located::Own(item) => {
                let d = delivery_from_item(&item)?;
                let attempts = self.attempts_of(&d, &item).await?;
                Ok((d, attempts))
            }
            Located::Paged(paged) => {
                let (d, first) = *paged;
                Ok((d, first.into_iter().collect()))
            }
        }
    }
}
