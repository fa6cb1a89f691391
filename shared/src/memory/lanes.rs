//! Ordered lanes in maps, under one lock: what the DynamoDB adapter does with
//! conditional writes on one item.

use super::MemoryStore;
use crate::event::EventKey;
use crate::ids::{EndpointId, TenantId};
use crate::ordering::{LanePlace, LaneState, OrderingMode, Turn};
use crate::ports::{LaneStore, PortResult, TurnEnded, Waiter};
use crate::timestamp::Timestamp;
use async_trait::async_trait;
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
pub(super) struct Lane {
    next: u64,
    next_since: Timestamp,
    /// The head, once its delivery took the turn.
    head: Option<EventKey>,
    /// The last position that ended not delivered.
    failed: Option<u64>,
    waiting: BTreeMap<u64, Waiter>,
}

pub(super) type LaneKey = (EndpointId, OrderingMode, String);

fn key(endpoint: &EndpointId, place: &LanePlace) -> LaneKey {
    (endpoint.clone(), place.mode, place.key.clone())
}

fn fresh(now: Timestamp) -> Lane {
    Lane {
        next: 1,
        next_since: now,
        head: None,
        failed: None,
        waiting: BTreeMap::new(),
    }
}

#[async_trait]
impl LaneStore for MemoryStore {
    async fn ordered_endpoints(&self) -> PortResult<Vec<crate::ordering::OrderedEndpoint>> {
        self.check()?;
        let endpoints = self.endpoints.lock().unwrap();
        Ok(endpoints
            .values()
            .filter(|e| {
                e.ordering != OrderingMode::None && e.status == crate::endpoint::EndpointStatus::Active
            })
            .map(|e| crate::ordering::OrderedEndpoint {
                tenant_id: e.tenant_id.clone(),
                mode: e.ordering,
                event_types: e.event_types.clone(),
            })
            .collect())
    }

    async fn take_positions(
        &self,
        tenant: &TenantId,
        mode: OrderingMode,
        key: &str,
        n: u64,
        _now: Timestamp,
    ) -> PortResult<u64> {
        self.check()?;
        self.refuse("take_positions")?;
        let mut counters = self.positions.lock().unwrap();
        let taken = counters
            .entry((tenant.clone(), mode, key.to_owned()))
            .or_insert(0);
        *taken += n;
        Ok(*taken - n + 1)
    }

    async fn claim_turn(
        &self,
        endpoint: &EndpointId,
        place: &LanePlace,
        event: &EventKey,
        now: Timestamp,
    ) -> PortResult<Turn> {
        self.check()?;
        self.refuse("claim_turn")?;
        let mut lanes = self.lanes.lock().unwrap();
        let k = key(endpoint, place);
        let lane = lanes.get(&k).cloned().unwrap_or_else(|| fresh(now));
        if lane.next > place.position {
            return Ok(Turn::Passed);
        }
        if lane.next < place.position {
            return Ok(Turn::Wait(LaneState {
                next: lane.next,
                next_since: lane.next_since,
                head: lane.head,
            }));
        }
        let previous_failed = lane.failed == Some(place.position - 1);
        lanes.insert(
            k,
            Lane {
                head: Some(event.clone()),
                ..lane
            },
        );
        Ok(Turn::Go { previous_failed })
    }

    async fn park(
        &self,
        endpoint: &EndpointId,
        place: &LanePlace,
        event: &EventKey,
        now: Timestamp,
    ) -> PortResult<bool> {
        self.check()?;
        self.refuse("park")?;
        let mut lanes = self.lanes.lock().unwrap();
        let lane = lanes.entry(key(endpoint, place)).or_insert_with(|| fresh(now));
        if lane.next >= place.position {
            return Ok(false);
        }
        lane.waiting.insert(place.position, Waiter::Event(event.clone()));
        Ok(true)
    }

    async fn end_turn(
        &self,
        endpoint: &EndpointId,
        place: &LanePlace,
        failed: bool,
        now: Timestamp,
    ) -> PortResult<TurnEnded> {
        self.check()?;
        self.refuse("end_turn")?;
        let mut lanes = self.lanes.lock().unwrap();
        let lane = lanes.entry(key(endpoint, place)).or_insert_with(|| fresh(now));
        if lane.next > place.position {
            return Ok(TurnEnded::Behind);
        }
        if lane.next < place.position {
            lane.waiting.insert(place.position, Waiter::Ended { failed });
            return Ok(TurnEnded::Kept);
        }
        lane.next = place.position + 1;
        lane.next_since = now;
        lane.head = None;
        if failed {
            lane.failed = Some(place.position);
        }
        Ok(TurnEnded::Moved(lane.waiting.remove(&lane.next)))
    }

    async fn skip_to(
        &self,
        endpoint: &EndpointId,
        place: &LanePlace,
        from: u64,
        now: Timestamp,
    ) -> PortResult<bool> {
        self.check()?;
        self.refuse("skip_to")?;
        let mut lanes = self.lanes.lock().unwrap();
        let lane = lanes.entry(key(endpoint, place)).or_insert_with(|| fresh(now));
        if lane.next != from || place.position <= from {
            return Ok(false);
        }
        lane.next = place.position;
        lane.next_since = now;
        lane.head = None;
        lane.failed = Some(place.position - 1);
        Ok(true)
    }
}
