//! Fanning an event out: claim it with the deliveries it is to make (so that a copy
//! never fans out twice, and a fan-out cut short resumes with only what is left), POST
//! to every target at once, then write the deliveries with the batch's others and
//! schedule what must be tried again.

use crate::Deliverer;
use crate::batch::Disposition;
use crate::invocation::Invocation;
use crate::turns::Asked;
use aws_lambda_events::event::sqs::SqsMessage;
use futures::{StreamExt, stream};
use hookline::delivery::{Attempt, Delivery, DeliveryStatus};
use hookline::endpoint::{Endpoint, usable};
use hookline::event::Event;
use hookline::ids::{DeliveryId, EndpointId};
use hookline::lane::Lane;
use hookline::ports::{
    Clock, CollapseStore, DeadLetterStore, DeliveryStore, EndpointStore, EventStore, FanoutClaim, LaneStore,
    PortError, PortResult, Queue, RateLimiter, WebhookSender,
};
use hookline::ratelimit;
use hookline::retry::Verdict;
use hookline::store_failure::{OnFailure, Step, on_failure};
use std::sync::Arc;

/// A fan-out whose attempts are made, waiting for its deliveries to be written with
/// the batch's others: one BatchWriteItem carries up to 25 of any of its events.
#[derive(Debug)]
pub struct AttemptedFanOut {
    event: Event,
    attempted: Vec<(Arc<Endpoint>, Delivery, Attempt, Verdict)>,
    /// Pending, their first attempt made from a queue: over their endpoint's rate limit
    /// (it waits its turn), or for the slow lane (their endpoint is in it, or did not
    /// answer by the inline deadline and moves to it).
    queued: Vec<(Arc<Endpoint>, Delivery, Lane)>,
    /// Ended before an attempt: failed (their endpoint is gone since the claim, or the
    /// store refused a step for good), expired, or superseded.
    ended: Vec<Delivery>,
    /// Pending, waiting for their turn in an ordered lane (`hookline::ordering`): no
    /// message; the end of the delivery before them wakes them.
    parked: Vec<Delivery>,
}

impl AttemptedFanOut {
    pub fn records(&self) -> impl Iterator<Item = (&Delivery, Option<&Attempt>)> {
        self.attempted
            .iter()
            .map(|(_, d, a, _)| (d, Some(a)))
            .chain(self.queued.iter().map(|(_, d, _)| (d, None)))
            .chain(self.ended.iter().map(|d| (d, None)))
            .chain(self.parked.iter().map(|d| (d, None)))
    }
}

/// Where a fan-out sends, under the delivery id its claim named: an endpoint, or none
/// (with the reason its delivery fails).
enum Target {
    Send(Arc<Endpoint>, DeliveryId),
    Fail(EndpointId, DeliveryId, String),
}

impl<S, H: WebhookSender, Q: Queue, C: Clock> Deliverer<S, H, Q, C>
where
    S: EventStore + EndpointStore + DeliveryStore + RateLimiter + DeadLetterStore + CollapseStore + LaneStore,
{
    pub(crate) async fn fan_out(&self, event: &Event, record: &SqsMessage, inv: &Invocation) -> Disposition {
        let endpoints = match inv.endpoints(&self.endpoints, &self.store).await {
            Ok(eps) => eps,
            // Permanent or not, it names no delivery: the message stays (and the DLQ
            // keeps it if it never reads).
            Err(e) => return Disposition::Redeliver(e),
        };
        let now = self.clock.now();
        // Each matching endpoint's delivery gets its id now: the claim names them.
        let matching: Vec<&Arc<Endpoint>> = endpoints.iter().filter(|ep| ep.receives(event)).collect();
        let ids = inv.delivery_ids(now, matching.iter().map(|ep| &ep.id));
        // Made once: the claim stores these bytes and every endpoint is sent them.
        let envelope = event.envelope_json();
        let (event, body, targets) = match self
            .store
            .claim_fanout(event, &envelope, &ids, now, self.settings.lease)
            .await
        {
            Err(e) => match on_failure(&e, Step::StoreEvent) {
                OnFailure::Redeliver => return Disposition::Redeliver(e),
                // It can never be stored: each delivery it was to make fails now.
                OnFailure::GiveUp(reason) => {
                    tracing::error!(error = %e, targets = ids.len(), "the event cannot be stored; its deliveries fail");
                    let targets = matching
                        .iter()
                        .zip(ids)
                        .map(|(ep, id)| Target::Fail(ep.id.clone(), id, reason.into()))
                        .collect();
                    (event.clone(), bytes::Bytes::new(), targets)
                }
            },
            Ok(FanoutClaim::Done) => {
                tracing::info!("duplicate event: already fanned out");
                return Disposition::Done;
            }
            // Sent under an id another event took before it was stored: not delivered,
            // and kept where the operator sees it.
            Ok(FanoutClaim::Conflict(c)) => {
                tracing::warn!(fields = ?c.fields(), "another event holds this event's id; this copy is not delivered");
                return self
                    .keep_dead_letter(record, c.dead_letter_reason(event), &envelope)
                    .await;
            }
            Ok(FanoutClaim::Busy { until }) => {
                tracing::info!(%until, "another worker is fanning this event out; back when its lease ends");
                return Disposition::Sleep(until.since(now));
            }
            Ok(FanoutClaim::Fresh) => (
                event.clone(),
                bytes::Bytes::from(envelope),
                matching
                    .into_iter()
                    .zip(ids)
                    .map(|(ep, id)| Target::Send(ep.clone(), id))
                    .collect(),
            ),
            Ok(FanoutClaim::Resumed {
                stored,
                targets,
                recorded,
            }) => {
                tracing::info!(
                    recorded = recorded.len(),
                    targets = targets.len(),
                    "resuming a fan-out that was cut short"
                );
                let left = targets.into_iter().filter(|t| !recorded.contains(t));
                match self.resumed_targets(&endpoints, left).await {
                    // The stored copy is the one sent.
                    Ok(targets) => {
                        let body = bytes::Bytes::from(stored.envelope_json());
                        (*stored, body, targets)
                    }
                    Err(e) => return self.give_back(&stored, e).await,
                }
            }
        };
        match self.attempt_all(event, body, targets, inv).await {
            Ok(fanned) => Disposition::Record(Box::new(fanned)),
            Err((event, e)) => self.give_back(&event, e).await,
        }
    }

    /// The targets of a resumed fan-out still to go, as they stand now: one deleted or
    /// disabled since the claim, or one the store cannot read, gets a failed delivery,
    /// so that the fan-out can finish.
    async fn resumed_targets(
        &self,
        cached: &[Arc<Endpoint>],
        left: impl Iterator<Item = DeliveryId>,
    ) -> PortResult<Vec<Target>> {
        let mut out = Vec::new();
        for id in left {
            let Some(endpoint_id) = id.endpoint_id() else {
                // Not an id this version gives out: nothing can be sent under it.
                tracing::error!(delivery_id = %id, "a claimed delivery id names no endpoint; skipped");
                continue;
            };
            let ep = match cached.iter().find(|ep| ep.id == endpoint_id) {
                Some(ep) => Some(ep.clone()),
                None => match self.store.get_endpoint(&endpoint_id).await {
                    Ok(found) => found.map(Arc::new),
                    Err(e) => match on_failure(&e, Step::ReadEndpoint) {
                        OnFailure::Redeliver => return Err(e),
                        OnFailure::GiveUp(reason) => {
                            tracing::error!(error = %e, delivery_id = %id, "the endpoint cannot be read; its delivery fails");
                            out.push(Target::Fail(endpoint_id, id, reason.into()));
                            continue;
                        }
                    },
                },
            };
            out.push(match usable(ep, true) {
                Ok(ep) => Target::Send(ep, id),
                Err(reason) => Target::Fail(endpoint_id, id, reason),
            });
        }
        Ok(out)
    }

    /// Gives the fan-out lease back after a failure, so that SQS's redelivery need not
    /// wait it out; the message stays.
    async fn give_back(&self, event: &Event, e: PortError) -> Disposition {
        if let Err(release) = self.store.release_fanout(&event.key()).await {
            tracing::warn!(error = %release, "could not release the fan-out lease; it will lapse");
        }
        if e.is_permanent() {
            // Nothing narrower could take it (a write of deliveries the store refused):
            // logged loudly, and SQS's redrive policy takes the message to the DLQ once
            // its receives run out, where the sweeper turns it into failed deliveries.
            tracing::error!(error = %e, "permanent failure handling the event");
        }
        Disposition::Redeliver(e)
    }

    /// Sends to every target; the deliveries are written with the batch's others.
    async fn attempt_all(
        &self,
        event: Event,
        body: bytes::Bytes,
        targets: Vec<Target>,
        inv: &Invocation,
    ) -> Result<AttemptedFanOut, (Event, PortError)> {
        // The checked-in event's whole body, fetched once for every endpoint taking it.
        let whole = crate::bodies::Whole::new();
        // An endpoint over its rate limit, or in the slow lane, gets a pending delivery
        // whose attempt goes through a queue.
        let now = self.clock.now();
        let mut sendable = Vec::with_capacity(targets.len());
        let mut queued = Vec::new();
        let mut ended: Vec<Delivery> = Vec::new();
        let mut parked: Vec<Delivery> = Vec::new();
        let new = |id, endpoint_id, max_attempts| Delivery::under(id, &event, endpoint_id, max_attempts, now);
        // Whether each target ends unsent (expired, superseded), asked of every target at
        // once: for a collapse-keyed event each answer is a store write.
        let event_ref = &event;
        let unsent = futures::future::join_all(targets.iter().map(|t| async move {
            match t {
                Target::Send(ep, _) => self.unsent_end(event_ref, &ep.id, true, now).await,
                Target::Fail(..) => Ok(None),
            }
        }))
        .await;
        for (target, unsent) in targets.into_iter().zip(unsent) {
            let (ep, id) = match target {
                Target::Send(ep, id) => (ep, id),
                Target::Fail(endpoint_id, id, reason) => {
                    let mut d = new(id, endpoint_id, 1);
                    d.fail(&reason, now);
                    ended.push(d);
                    continue;
                }
            };
            let mut fresh = new(id, ep.id.clone(), ep.max_attempts);
            fresh.order = hookline::ordering::LanePlace::of(event.order.as_ref(), ep.ordering);
            match unsent {
                Ok(None) => {}
                Ok(Some((status, reason))) => {
                    fresh.close(status, &reason, now);
                    ended.push(fresh);
                    continue;
                }
                Err(e) => match on_failure(&e, Step::Collapse) {
                    OnFailure::Redeliver => return Err((event, e)),
                    OnFailure::GiveUp(reason) => {
                        fresh.fail(reason, now);
                        ended.push(fresh);
                        continue;
                    }
                },
            }
            match self.ask_turn(&event, &ep, &mut fresh).await {
                Ok(Asked::Go) => {}
                Ok(Asked::Park { until }) => {
                    fresh.defer(until);
                    parked.push(fresh);
                    continue;
                }
                Err(e) => match on_failure(&e, Step::Lane) {
                    OnFailure::Redeliver => return Err((event, e)),
                    OnFailure::GiveUp(_) => {
                        tracing::error!(error = %e, delivery_id = %fresh.id, "the ordered lane cannot be read; this delivery goes unordered");
                        fresh.order = None;
                    }
                },
            }
            let lane = self.lane_for(&ep);
            if lane == Lane::Slow {
                fresh.defer(now);
                queued.push((ep, fresh, lane));
                continue;
            }
            match ratelimit::turn(&self.store, &ep, now).await {
                Ok(None) => match self.body_for(&event, &body, &ep, &whole).await {
                    Ok(sent) => {
                        let sent = crate::turns::marked(&fresh, sent);
                        sendable.push((ep, fresh, sent));
                    }
                    Err(e) => match on_failure(&e, Step::ReadData) {
                        OnFailure::Redeliver => return Err((event, e)),
                        OnFailure::GiveUp(reason) => {
                            tracing::error!(error = %e, delivery_id = %fresh.id, "the event's data cannot be read; the delivery fails");
                            fresh.fail(reason, now);
                            ended.push(fresh);
                        }
                    },
                },
                Ok(Some(wait)) => {
                    fresh.defer(now.saturating_add(wait));
                    queued.push((ep, fresh, lane));
                }
                Err(e) => match on_failure(&e, Step::RateLimit) {
                    OnFailure::Redeliver => return Err((event, e)),
                    OnFailure::GiveUp(reason) => {
                        tracing::error!(error = %e, delivery_id = %fresh.id, "the rate limit cannot be read; the delivery fails");
                        let mut d = new(fresh.id, ep.id.clone(), 1);
                        d.fail(reason, now);
                        ended.push(d);
                    }
                },
            }
        }
        // The futures are built up front: a closure inside the stream would hide
        // their `Send`-ness from the compiler (rust-lang/rust#102211).
        let event_ref = &event;
        let attempts: Vec<_> = sendable
            .into_iter()
            .map(|(ep, fresh, body)| async move {
                // Not answered by the inline deadline: given up, and handed to the slow lane.
                let deadline = self.inline_wait(Lane::Fast, &ep);
                match self.attempt(event_ref, &body, &ep, &fresh, inv, deadline).await {
                    Some(made) => Ok((ep, made)),
                    None => Err((ep, fresh)),
                }
            })
            .collect();
        // Sized up front: an element is large, and growing the vector as attempts
        // finish copied them over and over.
        let mut attempted = Vec::with_capacity(attempts.len());
        {
            let mut finishing = stream::iter(attempts).buffer_unordered(self.settings.concurrency);
            while let Some(done) = finishing.next().await {
                match done {
                    Ok((ep, (updated, attempt, verdict))) => attempted.push((ep, updated, attempt, verdict)),
                    Err((ep, mut fresh)) => {
                        tracing::warn!(endpoint_id = %ep.id, delivery_id = %fresh.id, "no answer by the inline deadline; handed to the slow lane");
                        fresh.defer(self.clock.now());
                        queued.push((ep, fresh, Lane::Slow));
                    }
                }
            }
        }
        Ok(AttemptedFanOut {
            event,
            attempted,
            queued,
            ended,
            parked,
        })
    }

    /// Writes these fan-outs' deliveries together, then finishes each; if the write
    /// fails, each of their messages stays for SQS to bring back, and the copy read
    /// again sends only to the targets not recorded.
    pub(crate) async fn record(
        &self,
        fanned: Vec<(usize, Box<AttemptedFanOut>)>,
        inv: &Invocation,
    ) -> Vec<(usize, Disposition)> {
        let records: Vec<(&Delivery, Option<&Attempt>)> =
            fanned.iter().flat_map(|(_, f)| f.records()).collect();
        let written = self.store.record_attempts(&records).await;
        drop(records);
        let settled: Vec<Disposition> = match &written {
            Ok(()) => {
                futures::future::join_all(fanned.iter().map(|(_, f)| self.finish(f, inv))).await;
                fanned.iter().map(|_| Disposition::Done).collect()
            }
            Err(e) => {
                futures::future::join_all(fanned.iter().map(|(_, f)| self.give_back(&f.event, e.clone())))
                    .await
            }
        };
        fanned.iter().map(|(i, _)| *i).zip(settled).collect()
    }

    /// After its deliveries are written: the endpoints' failing streaks, the retries'
    /// messages, and what the operator hears of.
    async fn finish(&self, f: &AttemptedFanOut, inv: &Invocation) {
        let now = self.clock.now();
        for (ep, delivery, attempt, verdict) in &f.attempted {
            self.after_attempt(ep, delivery, attempt, verdict, inv).await;
            // A parked retry (a wait longer than a message's delay) is the sweeper's.
            if delivery.status == DeliveryStatus::Retrying && !delivery.is_parked() {
                self.schedule_in(Lane::Fast, &f.event, delivery).await;
            } else if !delivery.status.is_open() {
                self.turn_ended(delivery).await;
            }
        }
        for d in &f.parked {
            self.park(&f.event, d).await;
        }
        for (ep, delivery, lane) in &f.queued {
            if *lane == Lane::Slow {
                self.move_lane(ep, Lane::Slow, inv).await;
            }
            self.schedule_in(*lane, &f.event, delivery).await;
        }
        for d in &f.ended {
            if d.status == DeliveryStatus::Failed {
                tracing::warn!(event_id = %f.event.id, endpoint_id = %d.endpoint_id, reason = d.failure_reason.as_deref(), "delivery failed");
            } else {
                tracing::info!(event_id = %f.event.id, endpoint_id = %d.endpoint_id, status = d.status.as_str(), reason = d.failure_reason.as_deref(), "delivery ended unsent");
            }
            inv.ended(d, now);
            self.turn_ended(d).await;
        }
    }
}
