//! The registry's version: one item that every change to the endpoints moves, after
//! the change is written. The delivery function reads it once per batch (one strongly
//! consistent GetItem) and reloads its cached endpoints only when it moved, so an
//! endpoint created, changed or disabled before an event's 202 is honoured by that
//! event's fan-out, without a full reload per batch.

use super::keys::{REGISTRY_PK, REGISTRY_SK};
use super::reader::Reader;
use super::{DynamoStore, n, s};
use crate::adapters::classify;
use crate::ports::{PortError, PortResult};
use std::time::Duration;

impl DynamoStore {
    /// Moves the version after a change was written. The change is made, so a failure
    /// is not the caller's: it is tried three times, then logged; until the version
    /// moves, the delivery function sees the change within its cache's time
    /// (`HOOKLINE_ENDPOINT_CACHE_SECONDS`).
    pub(super) async fn bump_registry(&self) {
        let mut backoff = Duration::from_millis(25);
        let mut last: Option<PortError> = None;
        for _ in 0..3 {
            let res = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(REGISTRY_PK))
                .key("sk", s(REGISTRY_SK))
                .update_expression("ADD version :one")
                .expression_attribute_values(":one", n(1))
                .send()
                .await;
            match res {
                Ok(_) => return,
                Err(e) => last = Some(classify("UpdateItem registry version", e)),
            }
            tokio::time::sleep(backoff).await;
            backoff *= 4;
        }
        if let Some(e) = last {
            tracing::error!(error = %e, "the registry version did not move; delivery sees the change within its cache time");
        }
    }

    pub(super) async fn read_registry_version(&self) -> PortResult<u64> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(REGISTRY_PK))
            .key("sk", s(REGISTRY_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("GetItem registry version", e))?;
        Ok(out.item().and_then(|i| Reader(i).opt_num("version")).unwrap_or(0))
    }
}
