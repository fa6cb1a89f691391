//! Whether a delivery ends unsent instead of its next attempt: its event expired
//! (`hookline::expiry`), or a newer event under its collapse key came to the same
//! endpoint (`hookline::collapse`).

use crate::Deliverer;
use hookline::collapse;
use hookline::delivery::DeliveryStatus;
use hookline::event::Event;
use hookline::expiry;
use hookline::ids::EndpointId;
use hookline::ports::{CollapseStore, PortResult};
use hookline::timestamp::Timestamp;

impl<S: CollapseStore, H, Q, C> Deliverer<S, H, Q, C> {
    /// How and why the delivery of `event` to `endpoint` ends unsent, if it does.
    /// `fan_out`: the event's first sight, where its rank is raised as the key's newest;
    /// a later attempt only reads the newest.
    pub(crate) async fn unsent_end(
        &self,
        event: &Event,
        endpoint: &EndpointId,
        fan_out: bool,
        now: Timestamp,
    ) -> PortResult<Option<(DeliveryStatus, String)>> {
        if let Some(at) = expiry::expired_at(event, now) {
            return Ok(Some((DeliveryStatus::Expired, expiry::reason(at))));
        }
        let Some(key) = &event.collapse_key else {
            return Ok(None);
        };
        let own = collapse::rank(event);
        let newest = if fan_out {
            Some(self.store.raise_newest(endpoint, key, &own, now).await?)
        } else {
            self.store.newest(endpoint, key).await?
        };
        Ok(newest
            .filter(|n| collapse::is_superseded(&own, Some(n)))
            .map(|n| (DeliveryStatus::Superseded, collapse::reason(key, &n))))
    }
}
