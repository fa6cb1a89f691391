//! Delivery ids made in one batch (one delivery invocation's fan-outs). They share
//! their time and all but the last four hex digits of their UUID; each event's
//! deliveries take the next of 65,536 slots (those four digits). So an id names the
//! batch it was made in, and the store can keep a batch's deliveries to one endpoint
//! in one item (`adapters::dynamo::pages`) and still find each by its id alone.

use crate::ids::{DeliveryId, EndpointId};
use crate::timestamp::Timestamp;
use std::sync::atomic::{AtomicU32, Ordering};

/// Hex digits of a UUID that name the batch; the other four name the slot.
pub const BATCH_HEX: usize = 28;
const SLOTS: u32 = 1 << 16;

#[derive(Debug)]
pub struct DeliveryIdBatch {
    at: Timestamp,
    /// The first `BATCH_HEX` hex digits of a UUIDv7 made at `at`.
    batch: String,
    next: AtomicU32,
}

impl DeliveryIdBatch {
    pub fn new(at: Timestamp) -> Self {
        let uuid = DeliveryId::generate_at(at);
        let hex = &uuid.as_str()[DeliveryId::PREFIX.len()..];
        Self {
            at,
            batch: hex[..BATCH_HEX].to_owned(),
            next: AtomicU32::new(0),
        }
    }

    /// One event's deliveries' ids, one per endpoint, in the batch's next slot. Past
    /// its last slot, ids of their own UUID (`DeliveryId::for_targets`): still unique,
    /// kept apart by the store.
    pub fn for_targets<'a>(&self, endpoints: impl IntoIterator<Item = &'a EndpointId>) -> Vec<DeliveryId> {
        let slot = self.next.fetch_add(1, Ordering::Relaxed);
        if slot >= SLOTS {
            return DeliveryId::for_targets(self.at, endpoints);
        }
        let uuid = format!("{}{slot:04x}", self.batch);
        endpoints
            .into_iter()
            .map(|ep| DeliveryId::from_parts(&uuid, ep))
            .collect()
    }
}

/// The batch a delivery id was made in (the first `BATCH_HEX` digits of its UUID), its
/// slot there (the last four) and its endpoint, if it is an id made here. Every id made
/// here has them, in a batch or not (an id of its own is alone in its batch).
pub fn batch_parts(id: &DeliveryId) -> Option<(&str, &str, EndpointId)> {
    let (uuid, ep) = id.parts()?;
    Some((&uuid[..BATCH_HEX], &uuid[BATCH_HEX..], ep))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batchs_ids_share_its_time_and_batch_and_each_event_takes_a_slot_of_its_own() {
        let at = Timestamp::from_unix_millis(1_795_950_000_123);
        let (a, b) = (EndpointId::generate(), EndpointId::generate());
        let batch = DeliveryIdBatch::new(at);
        let first = batch.for_targets([&a, &b]);
        let second = batch.for_targets([&a]);
        let (batch_hex, slot, ep) = batch_parts(&first[0]).unwrap();
        assert_eq!((slot, ep), ("0000", a.clone()));
        assert_eq!(batch_parts(&first[1]).unwrap(), (batch_hex, "0000", b));
        assert_eq!(batch_parts(&second[0]).unwrap(), (batch_hex, "0001", a.clone()));
        assert_ne!(first[0], second[0], "one id per event and endpoint");
        for id in first.iter().chain(&second) {
            assert_eq!(id.made_at_millis(), Some(1_795_950_000_123));
            assert_eq!(DeliveryId::parse(id.as_str()).as_ref(), Ok(id));
        }
        let other = DeliveryIdBatch::new(at).for_targets([&a]);
        assert_ne!(batch_parts(&other[0]).unwrap().0, batch_hex, "another batch");
        assert!(batch_parts(&DeliveryId::parse("dlv_custom").unwrap()).is_none());
    }

    #[test]
    fn past_its_last_slot_a_batch_makes_ids_of_their_own() {
        let at = Timestamp::from_unix_millis(1_795_950_000_123);
        let ep = EndpointId::generate();
        let batch = DeliveryIdBatch::new(at);
        batch.next.store(SLOTS - 1, Ordering::Relaxed);
        let last = batch.for_targets([&ep]).remove(0);
        let past = batch.for_targets([&ep]).remove(0);
        assert_eq!(batch_parts(&last).unwrap().1, "ffff");
        assert_ne!(batch_parts(&past).unwrap().0, batch_parts(&last).unwrap().0);
        assert_eq!(past.made_at_millis(), Some(1_795_950_000_123));
    }
}
