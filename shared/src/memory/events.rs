//! Events and their fan-out claims in memory.

use super::{EventRow, MemoryStore};
use crate::event::{Event, EventKey};
use crate::event_conflict::Conflict;
use crate::ids::DeliveryId;
use crate::ports::{EventLookup, EventStore, FanoutClaim, PortError, PortResult, StoredEvent};
use crate::timestamp::Timestamp;
use async_trait::async_trait;
use std::time::Duration;

#[async_trait]
impl EventStore for MemoryStore {
    async fn claim_fanout(
        &self,
        event: &Event,
        envelope: &str,
        targets: &[DeliveryId],
        now: Timestamp,
        lease: Duration,
    ) -> PortResult<FanoutClaim> {
        self.refuse("claim_fanout")?;
        self.check()?;
        if envelope.len() > crate::event::STORE_ITEM_LIMIT {
            // As DynamoDB refuses an item over 400 KB.
            return Err(PortError::permanent(
                "PutItem event",
                "ValidationException: item size too large (test)",
            ));
        }
        // Only a copy of an event already seen asks what is recorded (one pass over
        // every delivery, which a first sight must not pay: the bench fans out 50,000).
        let key = event.key();
        let seen = self.events.lock().unwrap().contains_key(&key);
        let recorded = if seen {
            self.recorded(&key)
        } else {
            Default::default()
        };
        let mut events = self.events.lock().unwrap();
        let until = now.saturating_add(lease);
        if let Some(c) = events.get(&key).and_then(|s| Conflict::between(&s.event, event)) {
            return Ok(FanoutClaim::Conflict(c));
        }
        match events.get_mut(&key) {
            None => {
                events.insert(
                    key,
                    EventRow {
                        event: event.clone(),
                        targets: targets.to_vec(),
                        lease_until: until,
                    },
                );
                Ok(FanoutClaim::Fresh)
            }
            Some(s) if s.targets.iter().all(|t| recorded.contains(t)) => Ok(FanoutClaim::Done),
            Some(s) if s.lease_until > now => Ok(FanoutClaim::Busy { until: s.lease_until }),
            Some(s) => {
                s.lease_until = until;
                Ok(FanoutClaim::Resumed {
                    stored: Box::new(s.event.clone()),
                    targets: s.targets.clone(),
                    recorded,
                })
            }
        }
    }

    async fn release_fanout(&self, id: &EventKey) -> PortResult<()> {
        if let Some(s) = self.events.lock().unwrap().get_mut(id) {
            s.lease_until = Timestamp::from_unix_millis(0);
        }
        Ok(())
    }

    async fn get_event(&self, id: &EventKey) -> PortResult<Option<StoredEvent>> {
        self.refuse("get_event")?;
        self.check()?;
        Ok(self.events.lock().unwrap().get(id).map(|r| StoredEvent {
            event: r.event.clone(),
            targets: r.targets.clone(),
        }))
    }
}

#[async_trait]
impl EventLookup for MemoryStore {
    async fn stored_events(&self, ids: &[EventKey]) -> PortResult<Vec<Event>> {
        self.refuse("stored_events")?;
        self.check()?;
        let events = self.events.lock().unwrap();
        let unique: std::collections::BTreeSet<&EventKey> = ids.iter().collect();
        Ok(unique
            .into_iter()
            .filter_map(|id| events.get(id))
            .map(|r| r.event.clone())
            .collect())
    }
}
