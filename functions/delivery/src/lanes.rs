//! Which queue a delivery's next attempt goes on: the fast lane's (the delivery queue)
//! or the slow lane's, by its endpoint's lane (`hookline::lane`), when the slow lane is
//! configured; without it every attempt is inline, as on a stack with one queue.

use crate::Deliverer;
use crate::invocation::Invocation;
use aws_lambda_events::event::sqs::SqsMessage;
use hookline::endpoint::Endpoint;
use hookline::lane::{self, Lane};
use hookline::ports::{Clock, EndpointStore};
use std::time::Duration;

/// The slow lane: its queue, and the ARN its records arrive with.
pub struct SlowLane<Q> {
    pub queue: Q,
    pub arn: String,
}

impl<S, H, Q, C> Deliverer<S, H, Q, C> {
    /// The lane a record came in on.
    pub(crate) fn lane_of(&self, record: &SqsMessage) -> Lane {
        match (&self.slow_lane, record.event_source_arn.as_deref()) {
            (Some(slow), Some(arn)) if slow.arn == arn => Lane::Slow,
            _ => Lane::Fast,
        }
    }

    /// The queue of a lane.
    pub(crate) fn queue_of(&self, lane: Lane) -> &Q {
        match (&self.slow_lane, lane) {
            (Some(slow), Lane::Slow) => &slow.queue,
            _ => &self.queue,
        }
    }

    /// The lane an endpoint's attempts go to: its own, when there is a slow lane.
    pub(crate) fn lane_for(&self, ep: &Endpoint) -> Lane {
        match self.slow_lane {
            Some(_) => Lane::of(ep),
            None => Lane::Fast,
        }
    }

    /// How long an attempt made in `here` may be waited for before it is handed to the
    /// slow lane; `None`: for as long as the endpoint's timeout.
    pub(crate) fn inline_wait(&self, here: Lane, ep: &Endpoint) -> Option<Duration> {
        match (&self.slow_lane, here) {
            (Some(_), Lane::Fast) => lane::inline_wait(ep, self.settings.inline_deadline),
            _ => None,
        }
    }
}

impl<S: EndpointStore, H, Q, C: Clock> Deliverer<S, H, Q, C> {
    /// Moves an endpoint to `to`, once per invocation however many of its deliveries
    /// ask; the store moves the registry's version, so every delivery function routes
    /// by the new lane from its next batch.
    pub(crate) async fn move_lane(&self, ep: &Endpoint, to: Lane, inv: &Invocation) {
        if Lane::of(ep) == to || !inv.first_move(&ep.id) {
            return;
        }
        match self
            .store
            .set_lane(&ep.id, lane::slow_since(to, self.clock.now()))
            .await
        {
            Ok(true) => {
                tracing::warn!(endpoint_id = %ep.id, lane = to.as_str(), "endpoint moved to another lane")
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, endpoint_id = %ep.id, "could not move the endpoint's lane"),
        }
    }
}
