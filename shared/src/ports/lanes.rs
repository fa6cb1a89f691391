//! The ordered lanes' port (`crate::ordering`).

use super::PortResult;
use crate::event::EventKey;
use crate::ids::{EndpointId, TenantId};
use crate::ordering::{LanePlace, OrderingMode, Turn, TurnEnded};
use crate::timestamp::Timestamp;
use async_trait::async_trait;

/// Ordered lanes (`crate::ordering`): positions taken at ingest, turns at delivery.
#[async_trait]
pub trait LaneStore: Send + Sync {
    /// The active endpoints ordered by run or thread: their tenants, modes and event
    /// types only (never their secrets).
    async fn ordered_endpoints(&self) -> PortResult<Vec<crate::ordering::OrderedEndpoint>>;
    /// Takes `n` positions of the tenant's (mode, key) sequence: the first of them.
    async fn take_positions(
        &self,
        tenant: &TenantId,
        mode: OrderingMode,
        key: &str,
        n: u64,
        now: Timestamp,
    ) -> PortResult<u64>;
    /// Asks for `place`'s turn in `endpoint`'s lane; `event` is then its head.
    async fn claim_turn(
        &self,
        endpoint: &EndpointId,
        place: &LanePlace,
        event: &EventKey,
        now: Timestamp,
    ) -> PortResult<Turn>;
    /// Names `event` as waiting at its position; `false` (nothing written) when the
    /// lane has reached or passed it.
    async fn park(
        &self,
        endpoint: &EndpointId,
        place: &LanePlace,
        event: &EventKey,
        now: Timestamp,
    ) -> PortResult<bool>;
    /// The delivery at `place` ended (`failed`: not delivered).
    async fn end_turn(
        &self,
        endpoint: &EndpointId,
        place: &LanePlace,
        failed: bool,
        now: Timestamp,
    ) -> PortResult<TurnEnded>;
    /// Moves the lane from `from` to `place`'s position, the positions between counted
    /// as failed; `false` when it is no longer at `from`.
    async fn skip_to(
        &self,
        endpoint: &EndpointId,
        place: &LanePlace,
        from: u64,
        now: Timestamp,
    ) -> PortResult<bool>;
}
