//! The endpoint registry: one partition of endpoints, sorted by id; a deleted one
//! leaves a tombstone naming the delivery log that is still kept.

use super::endpoint_items::{endpoint_from_item, endpoint_to_item};
use super::keys::{ENDPOINT_PK, GONE_PK};
use super::reader::{Reader, TENANT_ATTRIBUTE};
use super::{DynamoStore, conditional, cursor, n, query_all, s};
use crate::adapters::classify;
use crate::endpoint::Endpoint;
use crate::ids::{EndpointId, TenantId};
use crate::ports::{EndpointStore, Page, PortResult};
use crate::timestamp::Timestamp;
use async_trait::async_trait;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use std::time::Duration;

pub(super) use super::cursor::BAD_CURSOR;

impl DynamoStore {
    /// An UpdateItem on one endpoint's item; the caller adds the expressions.
    fn update_endpoint_item(&self, id: &EndpointId) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(ENDPOINT_PK))
            .key("sk", s(id.as_str()))
    }

    /// One tenant's endpoints, a page of them. A filtered query's page and its last key
    /// would be the partition's, naming other tenants' endpoints, so the partition is
    /// read whole (as `all_endpoints` reads it: a few thousand items at most) and paged
    /// by the ids returned.
    async fn list_tenant_endpoints(
        &self,
        tenant: &TenantId,
        limit: u32,
        cursor: Option<&str>,
    ) -> PortResult<Page<Endpoint>> {
        let after = cursor
            .map(|c| cursor::decode(c, EndpointId::parse, "Query endpoints"))
            .transpose()?;
        let mut mine: Vec<Endpoint> = self
            .all_endpoints()
            .await?
            .into_iter()
            .filter(|e| &e.tenant_id == tenant && after.as_ref().is_none_or(|a| &e.id > a))
            .collect();
        mine.sort_by(|a, b| a.id.cmp(&b.id));
        let more = mine.len() > limit as usize;
        mine.truncate(limit as usize);
        let next_cursor = more
            .then(|| mine.last().map(|e| cursor::encode(e.id.as_str())))
            .flatten();
        Ok(Page {
            items: mine,
            next_cursor,
        })
    }

    /// Every endpoint whose log may hold deliveries, of one tenant or all: the live ones
    /// and the deleted ones whose tombstones have not expired (keys and tenants only).
    pub(super) async fn log_endpoints(&self, tenant: Option<&TenantId>) -> PortResult<Vec<EndpointId>> {
        let mut ids = Vec::new();
        for pk in [ENDPOINT_PK, GONE_PK] {
            let query = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(pk))
                .projection_expression("sk, tenant_id");
            for item in query_all(query, "Query log endpoints").await? {
                let r = Reader(&item);
                if tenant.is_none_or(|t| r.tenant().is_ok_and(|of| &of == t)) {
                    ids.push(r.parse("sk", EndpointId::parse)?);
                }
            }
        }
        ids.sort();
        ids.dedup();
        Ok(ids)
    }
}

#[async_trait]
impl EndpointStore for DynamoStore {
    async fn create_endpoint(&self, endpoint: &Endpoint) -> PortResult<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(endpoint_to_item(endpoint)))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(|e| classify("PutItem endpoint", e))?;
        self.bump_registry().await;
        Ok(())
    }

    async fn get_endpoint(&self, id: &EndpointId) -> PortResult<Option<Endpoint>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(ENDPOINT_PK))
            .key("sk", s(id.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("GetItem endpoint", e))?;
        out.item().map(endpoint_from_item).transpose()
    }

    async fn list_endpoints(
        &self,
        tenant: Option<&TenantId>,
        limit: u32,
        cursor: Option<&str>,
    ) -> PortResult<Page<Endpoint>> {
        if let Some(t) = tenant {
            return self.list_tenant_endpoints(t, limit, cursor).await;
        }
        self.partition_page(
            ENDPOINT_PK,
            limit,
            cursor
                .map(|c| {
                    cursor::decode(
                        c,
                        |sk| EndpointId::parse(sk).map(|_| sk.to_owned()),
                        "Query endpoints",
                    )
                })
                .transpose()?,
            None,
            endpoint_from_item,
            "Query endpoints",
        )
        .await
    }

    async fn delete_endpoint(&self, endpoint: &Endpoint) -> PortResult<bool> {
        let id = &endpoint.id;
        // Its deliveries stay for the retention period, in the whole log too: the
        // tombstone names the partition to read them from. It outlives them by a week (a
        // delivery failed after the delete expires later). It is written before the
        // delete, not with it in a transaction (which DynamoDB bills twice, and which the
        // local stack's fast emulator lacks): should the delete then fail, the endpoint
        // is both live and tombstoned for a while, which the log reads as one
        // (`log_endpoints` merges the two lists), and the caller's retry deletes it.
        let now = Timestamp::now();
        let mut tombstone = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(GONE_PK))
            .item("sk", s(id.as_str()))
            .item("deleted_at", n(now.unix_millis()))
            .item(
                "expires_at",
                self.expires_at(now.saturating_add(Duration::from_secs(7 * 86_400))),
            );
        if !endpoint.tenant_id.is_default() {
            tombstone = tombstone.item(TENANT_ATTRIBUTE, s(endpoint.tenant_id.as_str()));
        }
        tombstone
            .send()
            .await
            .map_err(|e| classify("PutItem endpoint tombstone", e))?;
        let res = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(ENDPOINT_PK))
            .key("sk", s(id.as_str()))
            .condition_expression("attribute_exists(pk)")
            .send()
            .await;
        // `false`: already gone (a concurrent delete); its tombstone stands either way.
        let deleted = conditional(res.map(|_| ()), "DeleteItem endpoint")?;
        if deleted {
            self.bump_registry().await;
        }
        Ok(deleted)
    }

    async fn update_endpoint(&self, endpoint: &Endpoint, read_version: u64) -> PortResult<bool> {
        let req = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(endpoint_to_item(endpoint)));
        let req = if read_version == 0 {
            req.condition_expression("attribute_exists(pk) AND attribute_not_exists(version)")
        } else {
            req.condition_expression("version = :v")
                .expression_attribute_values(":v", n(read_version))
        };
        let written = conditional(req.send().await.map(|_| ()), "PutItem endpoint update")?;
        if written {
            self.bump_registry().await;
        }
        Ok(written)
    }

    async fn all_endpoints(&self) -> PortResult<Vec<Endpoint>> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(ENDPOINT_PK))
            .consistent_read(true);
        let items = query_all(query, "Query endpoints").await?;
        items.iter().map(endpoint_from_item).collect()
    }

    async fn note_failure(&self, id: &EndpointId, now: Timestamp) -> PortResult<Timestamp> {
        let out = self
            .update_endpoint_item(id)
            .update_expression("SET failing_since = if_not_exists(failing_since, :now)")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":now", n(now.unix_millis()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await;
        match out {
            Ok(out) => Ok(out
                .attributes()
                .and_then(|a| Reader(a).opt_num("failing_since"))
                .map_or(now, Timestamp::from_unix_millis)),
            // Deleted meanwhile: nothing to track.
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(now),
            Err(e) => Err(classify("UpdateItem endpoint failing", e)),
        }
    }

    async fn set_lane(&self, id: &EndpointId, slow_since: Option<Timestamp>) -> PortResult<bool> {
        let req = self.update_endpoint_item(id);
        let req = match slow_since {
            Some(t) => req
                .update_expression("SET slow_since = :t")
                .condition_expression("attribute_exists(pk) AND attribute_not_exists(slow_since)")
                .expression_attribute_values(":t", n(t.unix_millis())),
            None => req
                .update_expression("REMOVE slow_since")
                .condition_expression("attribute_exists(slow_since)"),
        };
        let moved = conditional(req.send().await.map(|_| ()), "UpdateItem endpoint lane")?;
        // A lane is routing: every delivery function must see the move by its next batch.
        if moved {
            self.bump_registry().await;
        }
        Ok(moved)
    }

    async fn note_success(&self, id: &EndpointId) -> PortResult<()> {
        let res = self
            .update_endpoint_item(id)
            .update_expression("REMOVE failing_since")
            .condition_expression("attribute_exists(failing_since)")
            .send()
            .await;
        conditional(res.map(|_| ()), "UpdateItem endpoint healthy").map(|_| ())
    }

    async fn disable_endpoint(
        &self,
        id: &EndpointId,
        reason: &str,
        now: Timestamp,
        failing_before: Option<Timestamp>,
    ) -> PortResult<bool> {
        let mut req = self
            .update_endpoint_item(id)
            // A status change is an edit: it moves the version, so an operator's update
            // made from an older read cannot silently undo it.
            .update_expression(
                "SET #st = :disabled, disabled_reason = :reason, updated_at = :now, version = if_not_exists(version, :zero) + :one",
            )
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":disabled", s("disabled"))
            .expression_attribute_values(":active", s("active"))
            .expression_attribute_values(":reason", s(reason))
            .expression_attribute_values(":now", n(now.unix_millis()));
        req = match failing_before {
            Some(t) => req
                .condition_expression("#st = :active AND failing_since <= :cutoff")
                .expression_attribute_values(":cutoff", n(t.unix_millis())),
            None => req.condition_expression("#st = :active"),
        };
        let disabled = conditional(req.send().await.map(|_| ()), "UpdateItem endpoint disable")?;
        if disabled {
            self.bump_registry().await;
        }
        Ok(disabled)
    }

    async fn registry_version(&self) -> PortResult<u64> {
        self.read_registry_version().await
    }
}
