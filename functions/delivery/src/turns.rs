//! Turns in ordered lanes (`hookline::ordering`): a delivery to an ordered endpoint
//! asks for its turn before it is attempted, parks when its predecessor has not ended,
//! and at its own end moves the lane on and wakes the delivery parked behind it.

use crate::Deliverer;
use crate::batch::Disposition;
use hookline::delivery::{Delivery, DeliveryStatus};
use hookline::endpoint::Endpoint;
use hookline::event::{Event, EventKey};
use hookline::ids::EndpointId;
use hookline::message::QueueMessage;
use hookline::ordering::{GAP, LanePlace, Turn, Waiting, waiting};
use hookline::ports::{Clock, DeliveryStore, EventStore, LaneStore, PortResult, Queue, TurnEnded, Waiter};
use hookline::timestamp::Timestamp;

/// What a delivery that asked for its turn does.
#[derive(Debug)]
pub(crate) enum Asked {
    /// Goes now.
    Go,
    /// Waits, parked until `until` (or until its predecessor ends and wakes it).
    Park { until: Timestamp },
}

impl<S, H, Q: Queue, C: Clock> Deliverer<S, H, Q, C>
where
    S: LaneStore + DeliveryStore + EventStore,
{
    /// Asks for `d`'s turn (it has a place), deciding what a wait that has lasted too
    /// long means: a gap is skipped; a head that ended without moving the lane moves
    /// it. Marks `d` when its predecessor was not delivered.
    pub(crate) async fn ask_turn(&self, event: &Event, ep: &Endpoint, d: &mut Delivery) -> PortResult<Asked> {
        let Some(mut place) = d.order.clone() else {
            return Ok(Asked::Go);
        };
        let key = event.key();
        for _ in 0..4 {
            let now = self.clock.now();
            match self.store.claim_turn(&ep.id, &place, &key, now).await? {
                Turn::Go { previous_failed } => {
                    place.previous_failed |= previous_failed;
                    d.order = Some(place);
                    return Ok(Asked::Go);
                }
                // Skipped before it came: it goes as it is, out of the lane.
                Turn::Passed => return Ok(Asked::Go),
                Turn::Wait(lane) => match waiting(&lane, place.position, now) {
                    Waiting::Park { until } => return Ok(Asked::Park { until }),
                    Waiting::SkipGap => {
                        tracing::warn!(endpoint_id = %ep.id, from = lane.next, to = place.position, "an ordered lane skips positions that never came");
                        self.store.skip_to(&ep.id, &place, lane.next, now).await?;
                    }
                    Waiting::AskHead(head) => match self.store.get_delivery(&head, &ep.id).await? {
                        Some(h) if h.status.is_open() => {
                            return Ok(Asked::Park {
                                until: now.saturating_add(GAP),
                            });
                        }
                        // It ended by a way that did not move the lane (or is gone): the
                        // lane moves on now, waking whoever waits next (unless that is
                        // this delivery, which asks again).
                        ended => {
                            let at = LanePlace {
                                position: lane.next,
                                ..place.clone()
                            };
                            let failed = ended.is_none_or(|h| h.status != DeliveryStatus::Delivered);
                            self.move_on(&ep.id, at, failed, Some(&key)).await?;
                        }
                    },
                },
            }
        }
        Ok(Asked::Park {
            until: self.clock.now().saturating_add(GAP),
        })
    }

    /// Names a parked delivery in its lane (after it is written, so that its wake finds
    /// it). Should the lane have reached it meanwhile, its attempt is queued now.
    pub(crate) async fn park(&self, event: &Event, d: &Delivery) {
        let Some(place) = &d.order else { return };
        let now = self.clock.now();
        match self.store.park(&d.endpoint_id, place, &event.key(), now).await {
            Ok(true) => {}
            Ok(false) => self.wake(&event.key(), &d.endpoint_id).await,
            Err(e) => {
                tracing::warn!(error = %e, delivery_id = %d.id, "could not park in the lane; the sweeper brings it back");
            }
        }
    }

    /// A parked delivery waits again, until `until`: its stored next attempt moves so
    /// that the sweeper brings it back then (if its predecessor has not woken it).
    pub(crate) async fn park_again(&self, event: &Event, seen: &Delivery, until: Timestamp) -> Disposition {
        let mut parked = seen.clone();
        parked.next_attempt_at = Some(until);
        match self.store.replace_delivery(seen, &parked).await {
            Ok(true) => {
                self.park(event, &parked).await;
                Disposition::Done
            }
            // Changed meanwhile: whoever changed it carries it on.
            Ok(false) => Disposition::Done,
            // Its message stays, and asks again when SQS brings it back.
            Err(e) => Disposition::Redeliver(e),
        }
    }

    /// After `d` ended (delivered, failed, expired, superseded): its lane moves on, past
    /// any delivery that ended ahead of its turn, and the one parked next is woken.
    pub(crate) async fn turn_ended(&self, d: &Delivery) {
        let Some(place) = d.order.clone() else { return };
        let failed = d.status != DeliveryStatus::Delivered;
        if let Err(e) = self.move_on(&d.endpoint_id, place, failed, None).await {
            tracing::warn!(error = %e, delivery_id = %d.id, "could not move the ordered lane on; the next delivery's wait ends it");
        }
    }

    /// Ends the turn at `place` and those ended ahead of theirs after it, then wakes the
    /// delivery waiting next, unless it is `asking`'s (which is asking already).
    async fn move_on(
        &self,
        endpoint: &EndpointId,
        mut place: LanePlace,
        mut failed: bool,
        asking: Option<&EventKey>,
    ) -> PortResult<()> {
        // Bounded: what is left waits for the sweeper to bring its delivery back.
        for _ in 0..100 {
            match self
                .store
                .end_turn(endpoint, &place, failed, self.clock.now())
                .await?
            {
                TurnEnded::Moved(Some(Waiter::Event(next))) => {
                    if asking != Some(&next) {
                        self.wake(&next, endpoint).await;
                    }
                    return Ok(());
                }
                TurnEnded::Moved(Some(Waiter::Ended { failed: f })) => {
                    place.position += 1;
                    failed = f;
                }
                TurnEnded::Moved(None) | TurnEnded::Kept | TurnEnded::Behind => return Ok(()),
            }
        }
        Ok(())
    }

    /// Queues the attempt of the parked delivery of `event` to `endpoint`.
    async fn wake(&self, event: &EventKey, endpoint: &EndpointId) {
        let woken = async {
            let Some(d) = self.store.get_delivery(event, endpoint).await? else {
                return Ok(());
            };
            let Some(stored) = self.store.get_event(event).await? else {
                return Ok(());
            };
            if let Some(m) = QueueMessage::next_attempt(stored.event, &d).filter(|_| d.status.is_open()) {
                self.queue.send(&m).await?;
            }
            PortResult::Ok(())
        };
        if let Err(e) = woken.await {
            tracing::warn!(error = %e, event_id = %event.id, "could not wake the next delivery in its lane; the sweeper brings it back");
        }
    }
}

/// The body for `d`: marked `previous_failed` when the event before it in its lane was
/// not delivered.
pub(crate) fn marked(d: &Delivery, body: bytes::Bytes) -> bytes::Bytes {
    if d.order.as_ref().is_some_and(|p| p.previous_failed) {
        hookline::ordering::mark_previous_failed(&body)
    } else {
        body
    }
}
