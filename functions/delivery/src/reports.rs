//! Hookline's own events, made from the facts their reports name: the store is read
//! and only what it holds becomes an event (`hookline::ops`), so a queue message can
//! name a fact but never invent one.

use crate::Deliverer;
use hookline::event::Event;
use hookline::ops::{self, Report};
use hookline::ports::{DeliveryStore, EndpointStore, PortResult};

impl<S: DeliveryStore + EndpointStore, H, Q, C> Deliverer<S, H, Q, C> {
    /// The event a report stands for; `None` when the store does not say it is so.
    pub(crate) async fn resolve(&self, report: &Report) -> PortResult<Option<Event>> {
        let event = match report {
            Report::DeliveryExhausted { delivery_id } => self
                .store
                .find_delivery(delivery_id)
                .await?
                .and_then(|(d, _)| ops::exhausted_event(&d)),
            Report::EndpointDisabled { endpoint_id } => self
                .store
                .get_endpoint(endpoint_id)
                .await?
                .and_then(|e| ops::disabled_event(&e)),
        };
        if event.is_none() {
            tracing::info!(
                ?report,
                "a report of what the store does not hold; nothing to send"
            );
        }
        Ok(event)
    }
}
