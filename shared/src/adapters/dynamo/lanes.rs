//! Ordered lanes (`crate::ordering`). A lane is one item (`LANE#<ep_…>#<mode>`, the
//! key): `next` (whose turn), `next_since`, the head's event once it took the turn,
//! `failed` (the last position not delivered), and one attribute `w<position>` per
//! delivery waiting or ended ahead of its turn. Every change is one conditional
//! UpdateItem on it, so two workers never both move a lane. A tenant's positions
//! (`OSEQ#<tenant>#<mode>`, the key): one atomic add per key per ingest request.

use super::keys::{ENDPOINT_PK, lane_pk, positions_pk};
use super::reader::Reader;
use super::{DynamoStore, Item, conditional, n, query_all, s};
use crate::adapters::classify;
use crate::event::EventKey;
use crate::ids::{EndpointId, EventId, TenantId};
use crate::ordering::{LanePlace, LaneState, OrderingMode, Turn};
use crate::ports::{LaneStore, PortError, PortResult, TurnEnded, Waiter};
use crate::timestamp::Timestamp;
use async_trait::async_trait;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::ReturnValue;

const CONDITION_FAILED: &str = "ConditionalCheckFailedException";
use std::time::Duration;

/// How long a tenant's position counter is kept after its last use (ingest keeps no
/// retention of its own): a run or thread idle longer starts again at 1.
const POSITIONS_KEPT: Duration = Duration::from_secs(30 * 86_400);

/// `<tenant>#<event id>`: neither holds a `#`.
fn event_ref(k: &EventKey) -> String {
    format!("{}#{}", k.tenant_id, k.id)
}

fn parse_ref(v: &str) -> Option<EventKey> {
    let (t, id) = v.split_once('#')?;
    Some(EventKey::new(TenantId::parse(t).ok()?, EventId::parse(id).ok()?))
}

/// A waiting attribute's value: an event's ref, or `-` / `-failed` for an end kept.
fn waiter(v: &str) -> Option<Waiter> {
    match v {
        "-" => Some(Waiter::Ended { failed: false }),
        "-failed" => Some(Waiter::Ended { failed: true }),
        other => parse_ref(other).map(Waiter::Event),
    }
}

impl DynamoStore {
    async fn lane(&self, endpoint: &EndpointId, place: &LanePlace) -> PortResult<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(lane_pk(endpoint, place.mode)))
            .key("sk", s(&place.key))
            .consistent_read(true)
            .projection_expression("#next, next_since, head, arrived")
            .expression_attribute_names("#next", "next")
            .send()
            .await
            .map_err(|e| classify("GetItem lane", e))?;
        Ok(out.item)
    }

    fn update_lane(
        &self,
        endpoint: &EndpointId,
        place: &LanePlace,
        now: Timestamp,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(lane_pk(endpoint, place.mode)))
            .key("sk", s(&place.key))
            .expression_attribute_names("#next", "next")
            .expression_attribute_values(":p", n(place.position))
            .expression_attribute_values(":now", n(now.unix_millis()))
            .expression_attribute_values(":expires", self.expires_at(now))
    }
}

#[async_trait]
impl LaneStore for DynamoStore {
    async fn ordered_endpoints(&self) -> PortResult<Vec<crate::ordering::OrderedEndpoint>> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .filter_expression("attribute_exists(ordering) AND #status = :active")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":pk", s(ENDPOINT_PK))
            .expression_attribute_values(":active", s("active"))
            .projection_expression("tenant_id, ordering, event_types");
        let mut out = Vec::new();
        for item in query_all(query, "Query ordered endpoints").await? {
            let r = Reader(&item);
            if let Some(mode) = r.opt_str("ordering").and_then(OrderingMode::parse) {
                out.push(crate::ordering::OrderedEndpoint {
                    tenant_id: r.tenant()?,
                    mode,
                    event_types: super::endpoint_items::event_types_of(&item)?,
                });
            }
        }
        Ok(out)
    }

    async fn take_positions(
        &self,
        tenant: &TenantId,
        mode: OrderingMode,
        key: &str,
        count: u64,
        now: Timestamp,
    ) -> PortResult<u64> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(positions_pk(tenant, mode)))
            .key("sk", s(key))
            .update_expression("ADD taken :n SET expires_at = :expires")
            .expression_attribute_values(":n", n(count))
            .expression_attribute_values(":expires", n(now.saturating_add(POSITIONS_KEPT).unix_seconds()))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| classify("UpdateItem positions", e))?;
        let taken: u64 = out
            .attributes()
            .and_then(|a| Reader(a).opt_num("taken"))
            .ok_or_else(|| PortError::permanent("UpdateItem positions", "no count came back"))?;
        Ok(taken - count + 1)
    }

    async fn claim_turn(
        &self,
        endpoint: &EndpointId,
        place: &LanePlace,
        event: &EventKey,
        now: Timestamp,
    ) -> PortResult<Turn> {
        let claimed = self
            .update_lane(endpoint, place, now)
            .update_expression(
                "SET #next = if_not_exists(#next, :one), next_since = if_not_exists(next_since, :now), \
                 head = :head, arrived = :p, expires_at = :expires",
            )
            .condition_expression("(attribute_not_exists(#next) AND :p = :one) OR #next = :p")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":head", s(event_ref(event)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match claimed {
            Ok(out) => {
                let failed = out.attributes().and_then(|a| Reader(a).opt_num::<u64>("failed"));
                return Ok(Turn::Go {
                    previous_failed: failed == Some(place.position - 1),
                });
            }
            Err(e) if e.code() == Some(CONDITION_FAILED) => {}
            Err(e) => return Err(classify("UpdateItem lane turn", e)),
        }
        let Some(item) = self.lane(endpoint, place).await? else {
            // No lane yet, and not the first position: wait from now.
            return Ok(Turn::Wait(LaneState {
                next: 1,
                next_since: now,
                head: None,
            }));
        };
        let r = Reader(&item);
        let next: u64 = r.num("next")?;
        if next > place.position {
            return Ok(Turn::Passed);
        }
        let head = (r.opt_num::<u64>("arrived") == Some(next))
            .then(|| r.opt_str("head").and_then(parse_ref))
            .flatten();
        Ok(Turn::Wait(LaneState {
            next,
            next_since: Timestamp::from_unix_millis(r.opt_num("next_since").unwrap_or(now.unix_millis())),
            head,
        }))
    }

    async fn park(
        &self,
        endpoint: &EndpointId,
        place: &LanePlace,
        event: &EventKey,
        now: Timestamp,
    ) -> PortResult<bool> {
        let parked = self
            .update_lane(endpoint, place, now)
            .update_expression(
                "SET #next = if_not_exists(#next, :one), next_since = if_not_exists(next_since, :now), \
                 #w = :event, expires_at = :expires",
            )
            .condition_expression("(attribute_not_exists(#next) AND :p > :one) OR #next < :p")
            .expression_attribute_names("#w", format!("w{}", place.position))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":event", s(event_ref(event)))
            .send()
            .await
            .map(|_| ());
        conditional(parked, "UpdateItem lane park")
    }

    async fn end_turn(
        &self,
        endpoint: &EndpointId,
        place: &LanePlace,
        failed: bool,
        now: Timestamp,
    ) -> PortResult<TurnEnded> {
        // Moved, kept, or behind: whichever condition holds, tried in that order (the
        // lane may move between two tries, so each is tried again once).
        for _ in 0..3 {
            let set_failed = if failed { ", failed = :p" } else { "" };
            let moved = self
                .update_lane(endpoint, place, now)
                .update_expression(format!(
                    "SET #next = :after, next_since = :now, expires_at = :expires{set_failed} REMOVE head, arrived, #w"
                ))
                .condition_expression("(attribute_not_exists(#next) AND :p = :one) OR #next = :p")
                .expression_attribute_names("#w", format!("w{}", place.position + 1))
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":after", n(place.position + 1))
                .return_values(ReturnValue::AllOld)
                .send()
                .await;
            match moved {
                Ok(out) => {
                    let next = out.attributes().and_then(|a| {
                        Reader(a)
                            .opt_str(&format!("w{}", place.position + 1))
                            .and_then(waiter)
                    });
                    return Ok(TurnEnded::Moved(next));
                }
                Err(e) if e.code() == Some(CONDITION_FAILED) => {}
                Err(e) => return Err(classify("UpdateItem lane end", e)),
            }
            let kept = self
                .update_lane(endpoint, place, now)
                .update_expression(
                    "SET #next = if_not_exists(#next, :one), next_since = if_not_exists(next_since, :now), \
                     #w = :ended, expires_at = :expires",
                )
                .condition_expression("(attribute_not_exists(#next) AND :p > :one) OR #next < :p")
                .expression_attribute_names("#w", format!("w{}", place.position))
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":ended", s(if failed { "-failed" } else { "-" }))
                .send()
                .await
                .map(|_| ());
            if conditional(kept, "UpdateItem lane keep end")? {
                return Ok(TurnEnded::Kept);
            }
            match self.lane(endpoint, place).await? {
                Some(item) if Reader(&item).num::<u64>("next")? > place.position => {
                    return Ok(TurnEnded::Behind);
                }
                _ => {}
            }
        }
        Err(PortError::retryable(
            "UpdateItem lane end",
            "the lane kept moving; try again",
        ))
    }

    async fn skip_to(
        &self,
        endpoint: &EndpointId,
        place: &LanePlace,
        from: u64,
        now: Timestamp,
    ) -> PortResult<bool> {
        if place.position <= from {
            return Ok(false);
        }
        let skipped = self
            .update_lane(endpoint, place, now)
            .update_expression(
                "SET #next = :p, next_since = :now, failed = :before, expires_at = :expires REMOVE head, arrived",
            )
            .condition_expression("#next = :from")
            .expression_attribute_values(":from", n(from))
            .expression_attribute_values(":before", n(place.position - 1))
            .send()
            .await
            .map(|_| ());
        conditional(skipped, "UpdateItem lane skip")
    }
}
