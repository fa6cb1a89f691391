//! Sending a delivery again: an operator's retry or recovery (whatever its state), or
//! the sweeper's re-drive of an open delivery whose next attempt went missing. Either
//! way the delivery gets a new wake token, on condition that it is still as it was
//! read, and then the message that carries the token. If that send fails, the delivery
//! is open and due, and the sweeper re-drives it.

use crate::delivery::{Delivery, new_wake};
use crate::event::{Event, EventKey};
use crate::message::QueueMessage;
use crate::ports::{DeliveryStore, EventStore, PortResult, Queue};
use crate::timestamp::Timestamp;
use std::collections::HashMap;

/// How a delivery is opened again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reopen {
    /// An operator asks: one more attempt now, whatever the state.
    Retry,
    /// The sweeper: an overdue open delivery that no worker holds.
    Redrive,
}

/// A delivery opened again, and whether its message went.
#[derive(Debug)]
pub struct Replayed {
    pub delivery: Delivery,
    pub queued: PortResult<()>,
}

/// Opens `seen` again and queues its next attempt. `None` when it changed since it was
/// read (or, for a re-drive, a worker holds it): nothing was done.
pub async fn replay<S, Q>(
    store: &S,
    queue: &Q,
    event: &Event,
    seen: &Delivery,
    how: Reopen,
    now: Timestamp,
) -> PortResult<Option<Replayed>>
where
    S: DeliveryStore + ?Sized,
    Q: Queue + ?Sized,
{
    let mut again = seen.clone();
    let reopened = match how {
        Reopen::Retry => {
            again.retry_now(now);
            store.replace_delivery(seen, &again).await?
        }
        Reopen::Redrive => {
            let wake = new_wake();
            let done = store.redrive(seen, &wake, now).await?;
            again.wake = Some(wake);
            done
        }
    };
    if !reopened {
        return Ok(None);
    }
    // Both ways give it a wake token, so there is always a message to send.
    let queued = match QueueMessage::next_attempt(event.clone(), &again) {
        Some(message) => queue.send(&message).await,
        None => Ok(()),
    };
    Ok(Some(Replayed {
        delivery: again,
        queued,
    }))
}

/// Events read once each, for replaying many of their deliveries; `None` for one no
/// longer stored (past its retention).
#[derive(Debug, Default)]
pub struct EventsRead(HashMap<EventKey, Option<Event>>);

impl EventsRead {
    pub async fn get<S: EventStore + ?Sized>(
        &mut self,
        store: &S,
        id: &EventKey,
    ) -> PortResult<Option<&Event>> {
        if !self.0.contains_key(id) {
            let stored = store.get_event(id).await?.map(|s| s.event);
            self.0.insert(id.clone(), stored);
        }
        Ok(self.0.get(id).and_then(Option::as_ref))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::DeliveryStatus;
    use crate::event::EventType;
    use crate::ids::{EndpointId, EventId};
    use crate::memory::{MemoryQueue, MemoryStore};
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    const T0: i64 = 1_795_935_600_000;

    fn event() -> Event {
        Event {
            id: EventId::parse("evt_replay").unwrap(),
            tenant_id: Default::default(),
            event_type: EventType::parse("agent.run.completed").unwrap(),
            data: serde_json::json!({}),
            timestamp: Timestamp::from_unix_millis(T0),
            source: "api".into(),
            version: "1".into(),
            expires_at: None,
            collapse_key: None,
            data_ref: None,
            order: None,
        }
    }

    /// A stored event and its one delivery, failed.
    async fn failed(store: &MemoryStore) -> Delivery {
        let e = event();
        let now = Timestamp::from_unix_millis(T0);
        let mut d = Delivery::new(e.id.clone(), EndpointId::generate(), e.event_type.clone(), 3, now);
        store
            .claim_fanout(
                &e,
                &e.envelope_json(),
                &[d.id.clone()],
                now,
                Duration::from_secs(1),
            )
            .await
            .unwrap();
        d.fail("all 3 attempts failed", now);
        store.record_attempts(&[(&d, None)]).await.unwrap();
        d
    }

    #[tokio::test]
    async fn a_retry_opens_the_delivery_under_a_new_token_and_queues_the_message_that_carries_it() {
        let (store, queue) = (MemoryStore::default(), MemoryQueue::default());
        let seen = failed(&store).await;
        let now = Timestamp::from_unix_millis(T0 + 1000);
        let r = replay(&store, &queue, &event(), &seen, Reopen::Retry, now)
            .await
            .unwrap()
            .expect("replayed");
        assert!(r.queued.is_ok());
        assert_eq!(r.delivery.status, DeliveryStatus::Retrying);
        let wake = r.delivery.wake.clone().expect("a token");
        assert_eq!(
            queue.sent(),
            vec![QueueMessage::next_attempt(event(), &r.delivery).unwrap()]
        );
        let stored = store
            .get_delivery(&seen.event_key(), &seen.endpoint_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.wake.as_deref(), Some(wake.as_str()));
        // Replaying from the same (now stale) read does nothing.
        assert!(
            replay(&store, &queue, &event(), &seen, Reopen::Retry, now)
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(queue.sent().len(), 1);
    }

    #[tokio::test]
    async fn a_message_that_could_not_be_queued_leaves_the_delivery_open_for_the_sweeper() {
        let (store, queue) = (MemoryStore::default(), MemoryQueue::default());
        let seen = failed(&store).await;
        queue.unavailable.store(true, Ordering::SeqCst);
        let now = Timestamp::from_unix_millis(T0 + 1000);
        let r = replay(&store, &queue, &event(), &seen, Reopen::Retry, now)
            .await
            .unwrap()
            .expect("reopened");
        assert!(r.queued.unwrap_err().is_retryable());
        let stored = store
            .get_delivery(&seen.event_key(), &seen.endpoint_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (stored.status, stored.next_attempt_at),
            (DeliveryStatus::Retrying, Some(now))
        );
    }

    #[tokio::test]
    async fn events_are_read_once_and_a_missing_one_is_none() {
        let store = MemoryStore::default();
        failed(&store).await;
        let mut read = EventsRead::default();
        assert_eq!(read.get(&store, &event().key()).await.unwrap(), Some(&event()));
        store.unavailable.store(true, Ordering::SeqCst);
        assert!(
            read.get(&store, &event().key()).await.unwrap().is_some(),
            "from memory"
        );
        assert!(
            read.get(
                &store,
                &EventKey::new(Default::default(), EventId::parse("evt_gone").unwrap())
            )
            .await
            .is_err()
        );
        store.unavailable.store(false, Ordering::SeqCst);
        assert_eq!(
            read.get(
                &store,
                &EventKey::new(Default::default(), EventId::parse("evt_gone").unwrap())
            )
            .await
            .unwrap(),
            None
        );
    }
}
