//! Collapse keys: each (endpoint, key)'s newest event rank in one item (`NEWEST#<ep_…>`,
//! the key), raised on condition that it only ever grows, so two fan-outs of one key
//! at once leave the newer one there whatever their order.

use super::keys::newest_pk;
use super::reader::Reader;
use super::{DynamoStore, conditional, s};
use crate::adapters::classify;
use crate::collapse::CollapseKey;
use crate::ids::EndpointId;
use crate::ports::{CollapseStore, PortError, PortResult};
use crate::timestamp::Timestamp;
use async_trait::async_trait;

#[async_trait]
impl CollapseStore for DynamoStore {
    async fn raise_newest(
        &self,
        endpoint: &EndpointId,
        key: &CollapseKey,
        rank: &str,
        now: Timestamp,
    ) -> PortResult<String> {
        let raised = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(newest_pk(endpoint)))
            .key("sk", s(key.as_str()))
            .update_expression("SET newest = :rank, expires_at = :expires")
            .condition_expression("attribute_not_exists(newest) OR newest <= :rank")
            .expression_attribute_values(":rank", s(rank))
            .expression_attribute_values(":expires", self.expires_at(now))
            .send()
            .await
            .map(|_| ());
        if conditional(raised, "UpdateItem collapse newest")? {
            return Ok(rank.to_owned());
        }
        // A newer one is there: which, to name it.
        self.newest(endpoint, key).await?.ok_or_else(|| {
            PortError::retryable("GetItem collapse newest", "the newer rank is gone (read again)")
        })
    }

    async fn newest(&self, endpoint: &EndpointId, key: &CollapseKey) -> PortResult<Option<String>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(newest_pk(endpoint)))
            .key("sk", s(key.as_str()))
            .consistent_read(true)
            .projection_expression("newest")
            .send()
            .await
            .map_err(|e| classify("GetItem collapse newest", e))?;
        Ok(out
            .item()
            .and_then(|i| Reader(i).opt_str("newest"))
            .map(str::to_owned))
    }
}
