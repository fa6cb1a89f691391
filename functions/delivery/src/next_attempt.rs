//! An attempt message: it wakes one delivery for its next try, if its wake token is
//! still the delivery's. How the next wait is carried (a delayed message, or parked in
//! the table for the sweeper) is `hookline::hop`'s rule.

use crate::Deliverer;
use crate::batch::Disposition;
use crate::invocation::Invocation;
use crate::turns::Asked;
use hookline::delivery::{Delivery, DeliveryStatus};
use hookline::endpoint::usable;
use hookline::event::Event;
use hookline::give_up::close;
use hookline::hop::{self, Hop};
use hookline::ids::EndpointId;
use hookline::lane::{Lane, after_slow_attempt};
use hookline::message::QueueMessage;
use hookline::ports::{
    Clock, CollapseStore, DeliveryStore, EndpointStore, EventStore, LaneStore, PortError, Queue, RateLimiter,
    WebhookSender,
};
use hookline::ratelimit;
use hookline::retry::Verdict;
use hookline::store_failure::{OnFailure, Step, on_failure};
use std::time::Duration;

impl<S, H: WebhookSender, Q: Queue, C: Clock> Deliverer<S, H, Q, C>
where
    S: EndpointStore + DeliveryStore + RateLimiter + CollapseStore + LaneStore + EventStore,
{
    pub(crate) async fn next_attempt(
        &self,
        event: &Event,
        endpoint_id: &EndpointId,
        wake: &str,
        receives: u32,
        here: Lane,
        inv: &Invocation,
    ) -> Disposition {
        let mut seen = match self.store.get_delivery(&event.key(), endpoint_id).await {
            // Permanent or not, a delivery that cannot be read cannot be failed either:
            // the message stays (and the sweeper settles it from the DLQ).
            Err(e) => return Disposition::Redeliver(e),
            Ok(Some(d)) if d.status.is_open() && d.wake.as_deref() == Some(wake) => d,
            Ok(_) => {
                tracing::info!("stale attempt message: the delivery moved on without it");
                return Disposition::Done;
            }
        };
        let now = self.clock.now();
        // A first attempt in an ordered lane is due when its turn comes, whatever time
        // its parking named (a rate limit's wait is taken again below).
        let ordered_first = seen.order.is_some() && seen.attempts == 0;
        if let Some(early) = hop::too_early(seen.next_attempt_at, now).filter(|_| !ordered_first) {
            return Disposition::Sleep(early);
        }
        match self.unsent_end(event, endpoint_id, false, now).await {
            Ok(None) => {}
            Ok(Some((status, reason))) => return self.end_as(&seen, status, &reason, inv).await,
            Err(e) => return self.after_failure(&seen, e, Step::Collapse, inv).await,
        }
        let limits = self.settings.hop_limits();
        let ep = match inv.endpoint(&self.endpoints, &self.store, endpoint_id).await {
            Err(e) => return self.after_failure(&seen, e, Step::ReadEndpoint, inv).await,
            Ok(found) => match usable(found, false) {
                Ok(ep) => ep,
                Err(reason) => return self.end(&seen, &reason, inv).await,
            },
        };
        // Its turn in its ordered lane, asked before its first attempt (a retry has it).
        if ordered_first {
            match self.ask_turn(event, &ep, &mut seen).await {
                Ok(Asked::Go) => {}
                Ok(Asked::Park { until }) => return self.park_again(event, &seen, until).await,
                Err(e) => return self.after_failure(&seen, e, Step::Lane, inv).await,
            }
        }
        // An endpoint in the slow lane is attempted there: the message moves, token and all.
        let lane = self.lane_for(&ep);
        if lane != here && lane == Lane::Slow {
            return self.forward(event, &seen, lane, Duration::ZERO, inv).await;
        }
        match ratelimit::turn(&self.store, &ep, now).await {
            Err(e) => return self.after_failure(&seen, e, Step::RateLimit, inv).await,
            Ok(None) => {}
            Ok(Some(wait)) => match hop::waiting_turn(wait, receives, limits) {
                Hop::Hide(wait) => return Disposition::Sleep(wait),
                // Received often already: a fresh message, same token, waits instead.
                Hop::Send => return self.forward(event, &seen, here, wait, inv).await,
            },
        }
        let travelling = bytes::Bytes::from(event.envelope_json());
        let body = match self
            .body_for(event, &travelling, &ep, &crate::bodies::Whole::new())
            .await
        {
            Ok(body) => crate::turns::marked(&seen, body),
            Err(e) => return self.after_failure(&seen, e, Step::ReadData, inv).await,
        };
        match self.store.claim_attempt(&seen, now, self.settings.lease).await {
            Err(e) => return self.after_failure(&seen, e, Step::ClaimAttempt, inv).await,
            // Another worker holds it, and its own message carries the delivery on.
            Ok(false) => return Disposition::Done,
            Ok(true) => {}
        }
        let deadline = self.inline_wait(here, &ep);
        let (updated, attempt, verdict) = match self.attempt(event, &body, &ep, &seen, inv, deadline).await {
            Some(made) => made,
            // Not answered by the inline deadline: given up, the lease released, and the
            // attempt handed to the slow lane under the same token.
            None => {
                tracing::warn!(endpoint_id = %ep.id, "no answer by the inline deadline; handed to the slow lane");
                if let Err(e) = self.store.release_attempt(&seen).await {
                    tracing::warn!(error = %e, "could not release the attempt's lease; it lapses");
                }
                self.move_lane(&ep, Lane::Slow, inv).await;
                return self.forward(event, &seen, Lane::Slow, Duration::ZERO, inv).await;
            }
        };
        // An answer in the slow lane within the deadline brings the endpoint back.
        let lane = match (
            here,
            after_slow_attempt(
                Duration::from_millis(attempt.duration_ms),
                self.settings.inline_deadline,
            ),
        ) {
            (Lane::Slow, Some(back)) if self.slow_lane.is_some() => {
                self.move_lane(&ep, back, inv).await;
                back
            }
            _ => lane,
        };
        match self.store.record_attempt(&seen, &updated, &attempt).await {
            // The POST was made but cannot be recorded: for good, the delivery fails with
            // that reason (its failure needs no lease); for now, SQS brings the message
            // back once this worker's lease has lapsed, and the attempt is made again.
            Err(e) => return self.after_failure(&seen, e, Step::RecordAttempt, inv).await,
            Ok(false) => {
                tracing::warn!("the delivery changed while this attempt was made; its record is dropped");
                return Disposition::Done;
            }
            Ok(true) => {}
        }
        self.after_attempt(&ep, &updated, &attempt, &verdict, inv).await;
        if !updated.status.is_open() {
            self.turn_ended(&updated).await;
        }
        // A retry goes in a delayed message; a parked one (a longer wait) has none, and
        // this message is let go either way.
        if matches!(verdict, Verdict::RetryIn(_)) && !updated.is_parked() {
            self.schedule_in(lane, event, &updated).await;
        }
        Disposition::Done
    }

    /// Sends the message that will make the delivery's next attempt, on `lane`'s
    /// queue. If sending fails the delivery stays due, and the sweeper re-drives it.
    pub(crate) async fn schedule_in(&self, lane: Lane, event: &Event, d: &Delivery) {
        let (Some(at), Some(message)) = (d.next_attempt_at, QueueMessage::next_attempt(event.clone(), d))
        else {
            return;
        };
        let wait = hop::delay_until(at, self.clock.now(), self.settings.hop_limits());
        if let Err(e) = self.queue_of(lane).send_after(&message, wait).await {
            tracing::warn!(error = %e, endpoint_id = %d.endpoint_id, "could not queue the next attempt; the sweeper will re-drive it");
        }
    }

    /// This attempt's message again, same token, on `lane`'s queue after `wait`; then
    /// this one is done.
    async fn forward(
        &self,
        event: &Event,
        seen: &Delivery,
        lane: Lane,
        wait: Duration,
        inv: &Invocation,
    ) -> Disposition {
        let Some(message) = QueueMessage::next_attempt(event.clone(), seen) else {
            return Disposition::Done;
        };
        match self.queue_of(lane).send_after(&message, wait).await {
            Ok(()) => Disposition::Done,
            Err(e) => self.after_failure(seen, e, Step::QueueAttempt, inv).await,
        }
    }

    /// A store or queue call failed at `step`: a retryable failure leaves the message;
    /// a permanent one fails the delivery at once (`hookline::store_failure`).
    async fn after_failure(
        &self,
        seen: &Delivery,
        e: PortError,
        step: Step,
        inv: &Invocation,
    ) -> Disposition {
        match on_failure(&e, step) {
            OnFailure::Redeliver => Disposition::Redeliver(e),
            OnFailure::GiveUp(reason) => {
                tracing::error!(error = %e, delivery_id = %seen.id, "a permanent failure ends the delivery");
                self.end(seen, reason, inv).await
            }
        }
    }

    /// Fails an open delivery that can go no further, and reports it.
    async fn end(&self, seen: &Delivery, reason: &str, inv: &Invocation) -> Disposition {
        self.end_as(seen, DeliveryStatus::Failed, reason, inv).await
    }

    /// Ends an open delivery as `status` (failed, expired, superseded) and counts it.
    async fn end_as(
        &self,
        seen: &Delivery,
        status: DeliveryStatus,
        reason: &str,
        inv: &Invocation,
    ) -> Disposition {
        let now = self.clock.now();
        match close(&self.store, seen, status, reason, now).await {
            Err(e) => Disposition::Redeliver(e),
            Ok(Some(ended)) => {
                inv.ended(&ended, now);
                self.turn_ended(&ended).await;
                Disposition::Done
            }
            Ok(None) => Disposition::Done,
        }
    }
}
