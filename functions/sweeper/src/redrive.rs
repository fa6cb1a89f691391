//! Due deliveries: parked ones queued at their time, lost ones re-driven once they are
//! `grace` late, spent ones failed. The events are taken concurrently, each event's due
//! deliveries one after another (so that the event is read once for all of them).

use crate::{SweepReport, Sweeper};
use hookline::ops::Report;
use hookline::ports::{
    Clock, DeadLetterStore, DeadLetters, DeliveryStore, DueDelivery, EndpointStore, EventStore, PortResult,
    Queue, QueueGauge,
};
use hookline::replay::{EventsRead, Reopen, replay};
use hookline::timestamp::Timestamp;
use std::collections::HashMap;

/// Events whose due deliveries are settled at once.
const CONCURRENT_EVENTS: usize = 16;

/// What settling one event's due deliveries came to.
#[derive(Default)]
struct Settled {
    woken: u32,
    redriven: u32,
    exhausted: u32,
    in_flight_overdue: u32,
    ops: Vec<Report>,
}

impl<S, Q, D, C> Sweeper<S, Q, D, C>
where
    S: EventStore + EndpointStore + DeliveryStore + DeadLetterStore,
    Q: Queue + QueueGauge,
    D: DeadLetters + QueueGauge,
    C: Clock,
{
    pub(crate) async fn redrive_deliveries(
        &self,
        now: Timestamp,
        report: &mut SweepReport,
        ops: &mut Vec<Report>,
    ) -> PortResult<()> {
        use futures::StreamExt;
        // A parked delivery is due at its time; any other has a message on its way, and
        // is only taken for lost once it is `grace` late.
        let lost_before = now.minus(self.settings.grace);
        let mut by_event: HashMap<_, Vec<DueDelivery>> = HashMap::new();
        for due in self.store.due_deliveries(now, self.settings.batch).await? {
            if due.delivery.is_parked() || due.due_at <= lost_before {
                by_event.entry(due.delivery.event_key()).or_default().push(due);
            }
        }
        let settled: Vec<PortResult<Settled>> = futures::stream::iter(by_event.into_values())
            .map(|due| self.settle(due, now))
            .buffer_unordered(CONCURRENT_EVENTS)
            .collect()
            .await;
        let mut first_error = None;
        for s in settled {
            match s {
                Ok(s) => {
                    report.woken += s.woken;
                    report.redriven += s.redriven;
                    report.exhausted += s.exhausted;
                    report.in_flight_overdue += s.in_flight_overdue;
                    ops.extend(s.ops);
                }
                Err(e) => first_error = first_error.or(Some(e)),
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// One event's due deliveries.
    async fn settle(&self, due: Vec<DueDelivery>, now: Timestamp) -> PortResult<Settled> {
        let mut out = Settled::default();
        let mut events = EventsRead::default();
        for due in due {
            let d = due.delivery;
            let parked = d.is_parked();
            if due.leased_until.is_some_and(|t| t > now) {
                out.in_flight_overdue += 1;
                continue;
            }
            if d.attempts >= d.max_attempts {
                let reason = format!("its {} attempts were spent but it was never closed", d.attempts);
                if self.fail(&d, &reason, now, &mut out.ops).await? {
                    out.exhausted += 1;
                }
                continue;
            }
            let Some(event) = events.get(&self.store, &d.event_key()).await? else {
                if self
                    .fail(&d, "its event is no longer stored", now, &mut out.ops)
                    .await?
                {
                    out.exhausted += 1;
                }
                continue;
            };
            let Some(redriven) = replay(&self.store, &self.queue, event, &d, Reopen::Redrive, now).await?
            else {
                continue;
            };
            redriven.queued?;
            if parked {
                out.woken += 1;
            } else {
                tracing::warn!(
                    event_id = %d.event_id,
                    endpoint_id = %d.endpoint_id,
                    attempt = d.attempts + 1,
                    "re-drove an overdue delivery"
                );
                out.redriven += 1;
            }
        }
        Ok(out)
    }
}
