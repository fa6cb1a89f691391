//! Ending a delivery that can go no further (its endpoint is gone, its attempts are
//! spent, its message died: `failed`; its event expired: `expired`; a newer event
//! under its collapse key came: `superseded`), with the reason, on condition that it is
//! still as it was read, so that a worker that moved it on meanwhile wins.

use crate::delivery::{Delivery, DeliveryStatus};
use crate::ports::{DeliveryStore, PortResult};
use crate::timestamp::Timestamp;

/// Fails `seen` with the reason. The failed delivery when this call ended it, for the
/// caller to report (`ops::delivery_exhausted`); `None` when it had moved on.
pub async fn give_up<S: DeliveryStore + ?Sized>(
    store: &S,
    seen: &Delivery,
    reason: &str,
    now: Timestamp,
) -> PortResult<Option<Delivery>> {
    close(store, seen, DeliveryStatus::Failed, reason, now).await
}

/// Ends `seen` as `status` with the reason. The ended delivery when this call ended it;
/// `None` when it had moved on.
pub async fn close<S: DeliveryStore + ?Sized>(
    store: &S,
    seen: &Delivery,
    status: DeliveryStatus,
    reason: &str,
    now: Timestamp,
) -> PortResult<Option<Delivery>> {
    let mut ended = seen.clone();
    ended.close(status, reason, now);
    if !store.fail_delivery(seen, &ended).await? {
        return Ok(None);
    }
    if status == DeliveryStatus::Failed {
        tracing::warn!(event_id = %seen.event_id, endpoint_id = %seen.endpoint_id, reason, "delivery failed");
    } else {
        tracing::info!(event_id = %seen.event_id, endpoint_id = %seen.endpoint_id, status = status.as_str(), reason, "delivery ended");
    }
    Ok(Some(ended))
}
