//! Ending a delivery that can go no further (its endpoint is gone, its attempts are
//! spent, its message died): `failed` with the reason, on condition that it is still
//! as it was read, so that a worker that moved it on meanwhile wins.

use crate::delivery::Delivery;
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
    let mut failed = seen.clone();
    failed.fail(reason, now);
    if !store.fail_delivery(seen, &failed).await? {
        return Ok(None);
    }
    tracing::warn!(event_id = %seen.event_id, endpoint_id = %seen.endpoint_id, reason, "delivery failed");
    Ok(Some(failed))
}
