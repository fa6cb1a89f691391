//! Where each item lives: its partition and sort keys, and the `open` index's names.

use super::reader::Reader;
use super::{Item, s};
use crate::event::EventKey;
use crate::ids::{DeliveryId, EndpointId, TenantId};
use crate::ports::{PortError, PortResult};
use std::collections::HashMap;

/// The partition of every live endpoint, sorted by id.
pub(super) const ENDPOINT_PK: &str = "ENDPOINT";
/// The partition of deleted endpoints' tombstones, which name the logs still kept.
pub(super) const GONE_PK: &str = "ENDPOINT_GONE";
/// An event's item in its partition.
pub(super) const EVENT_SK: &str = "EVENT";
/// The item that holds a body too large to share its event's item with the targets
/// (a large event fanned out to thousands of endpoints).
pub(super) const BODY_SK: &str = "BODY";
/// The sparse index of open deliveries, keyed by `open_pk` and `due_at`.
pub const OPEN_INDEX: &str = "open";
/// The `open_pk` every open delivery carried before the index was sharded; read until
/// the last of them has closed or expired.
pub(super) const OPEN_PK: &str = "OPEN";
/// How many keys the `open` index is spread over. One key of an index takes about
/// 1,000 writes a second; an open delivery's attempts, claims and wakes each move its
/// entry, so one key would cap the whole stack's retries there.
pub(super) const OPEN_SHARDS: u32 = 16;

/// An open delivery's `open_pk`: `OPEN#<n>`, `n` fixed by its id.
pub(super) fn open_pk_of(delivery: &crate::ids::DeliveryId) -> String {
    // FNV-1a: stable across builds and platforms (std's hasher is not).
    let hash = delivery.as_str().bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{OPEN_PK}#{}", hash % u64::from(OPEN_SHARDS))
}

/// Every key of the `open` index: the shards, and the key from before them.
pub(super) fn open_pks() -> impl Iterator<Item = String> {
    (0..OPEN_SHARDS)
        .map(|n| format!("{OPEN_PK}#{n}"))
        .chain(std::iter::once(OPEN_PK.to_owned()))
}
/// The registry version's item: `REGISTRY`, `VERSION`.
pub(super) const REGISTRY_PK: &str = "REGISTRY";
pub(super) const REGISTRY_SK: &str = "VERSION";
/// The partition of dead letters, newest last.
pub(super) const DEAD_PK: &str = "DEAD";
/// A rate bucket's item in its endpoint's partition.
pub(super) const BUCKET_SK: &str = "BUCKET";

/// An event's partition: `EVT#<id>` in the default tenant (as before tenants, so the
/// events stored then are the default tenant's), `EVT#<tenant>#<id>` in another. An
/// event id holds no `#`, so the two forms never meet.
pub(super) fn event_pk(key: &EventKey) -> String {
    if key.tenant_id.is_default() {
        format!("EVT#{}", key.id)
    } else {
        format!("EVT#{}#{}", key.tenant_id, key.id)
    }
}

/// The partition of every tenant, sorted by id.
pub(super) const TENANT_PK: &str = "TENANT";

/// A tenant's keys, by key id.
pub(super) fn tenant_keys_pk(tenant: &TenantId) -> String {
    format!("TKEY#{tenant}")
}

/// An endpoint's collapse keys, each with its newest event (`crate::collapse`).
pub(super) fn newest_pk(ep: &EndpointId) -> String {
    format!("NEWEST#{ep}")
}

/// An endpoint's ordered lanes of one mode, by key (`crate::ordering`).
pub(super) fn lane_pk(ep: &EndpointId, mode: crate::ordering::OrderingMode) -> String {
    format!("LANE#{ep}#{}", mode.as_str())
}

/// A tenant's position counters of one mode, by key: ingest writes only these
/// partitions and its rate windows'.
pub(super) fn positions_pk(tenant: &TenantId, mode: crate::ordering::OrderingMode) -> String {
    format!("OSEQ#{tenant}#{}", mode.as_str())
}

/// An endpoint's delivery log.
pub(super) fn delivery_pk(ep: &EndpointId) -> String {
    format!("EP#{ep}")
}

/// Sorts an endpoint's deliveries by creation time (from the id), then id:
/// `0001795935600000#dlv_…`.
pub(super) fn delivery_sk(id: &DeliveryId) -> String {
    format!("{:016}#{id}", id.made_at_millis().unwrap_or(0).max(0))
}

/// The key of a delivery's item, for an id that names its endpoint.
pub(super) fn delivery_key(id: &DeliveryId) -> Option<Item> {
    let ep = id.endpoint_id()?;
    Some(HashMap::from([
        ("pk".to_owned(), s(delivery_pk(&ep))),
        ("sk".to_owned(), s(delivery_sk(id))),
    ]))
}

/// The endpoint whose log holds a delivery's item, from the item's `pk`.
pub(super) fn endpoint_of_delivery(item: &Item) -> PortResult<EndpointId> {
    Reader(item)
        .str("pk")?
        .strip_prefix("EP#")
        .and_then(|ep| EndpointId::parse(ep).ok())
        .ok_or_else(|| PortError::permanent("read stored delivery", "invalid `pk`"))
}

/// A delivery's id, from its item's sort key.
pub(super) fn delivery_id_of(item: &Item) -> PortResult<DeliveryId> {
    Reader(item)
        .str("sk")?
        .split_once('#')
        .and_then(|(_, id)| DeliveryId::parse(id).ok())
        .ok_or_else(|| PortError::permanent("read stored delivery", "invalid `sk`"))
}

/// The partition of a delivery's later attempts (the first is in its item).
pub(super) fn attempts_pk(id: &DeliveryId) -> String {
    format!("ATT#{id}")
}

/// An attempt's sort key: its number, so they sort in order.
pub(super) fn attempt_sk(number: u32) -> String {
    format!("{number:05}")
}

/// An endpoint's hourly counters.
pub(super) fn stats_pk(ep: &EndpointId) -> String {
    format!("STATS#{ep}")
}

/// One hour's counters, by the hour's name (`2026-12-03T14`).
pub(super) fn stats_sk(hour: &str) -> String {
    format!("H#{hour}")
}

/// Sorts dead letters by when they were recorded: `0001795935600000#dlt_…`.
pub(super) fn dead_letter_sk(id: &crate::ids::DeadLetterId) -> String {
    format!("{:016}#{id}", id.made_at_millis().unwrap_or(0).max(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timestamp::Timestamp;

    #[test]
    fn open_deliveries_spread_over_every_shard_and_each_keeps_its_own() {
        let endpoint = crate::ids::EndpointId::generate();
        let ids: Vec<crate::ids::DeliveryId> = (0..1_600)
            .map(|i| {
                crate::ids::DeliveryId::generate_for(
                    Timestamp::from_unix_millis(1_795_935_600_000 + i),
                    &endpoint,
                )
            })
            .collect();
        let mut per_shard = std::collections::HashMap::<String, u32>::new();
        for id in &ids {
            assert_eq!(open_pk_of(id), open_pk_of(id), "stable");
            *per_shard.entry(open_pk_of(id)).or_default() += 1;
        }
        assert_eq!(per_shard.len(), OPEN_SHARDS as usize);
        assert!(per_shard.keys().all(|k| open_pks().any(|pk| &pk == k)));
        // 100 each on average; none far from it.
        assert!(
            per_shard.values().all(|n| (50..=150).contains(n)),
            "{per_shard:?}"
        );
        assert_eq!(
            open_pks().count(),
            OPEN_SHARDS as usize + 1,
            "the shards and the old key"
        );
    }

    #[test]
    fn a_delivery_is_found_by_its_id_alone_and_its_log_sorts_by_creation_time() {
        let ep = EndpointId::generate();
        let earlier = DeliveryId::generate_for(Timestamp::from_unix_millis(1_795_935_600_000), &ep);
        let later = DeliveryId::generate_for(Timestamp::from_unix_millis(1_795_935_600_001), &ep);
        let key = delivery_key(&earlier).expect("the id names its endpoint");
        assert_eq!(key["pk"], s(format!("EP#{ep}")));
        assert_eq!(key["sk"], s(format!("0001795935600000#{earlier}")));
        assert!(delivery_sk(&earlier) < delivery_sk(&later));
        assert_eq!(endpoint_of_delivery(&key).unwrap(), ep);
        assert_eq!(delivery_id_of(&key).unwrap(), earlier);
    }

    #[test]
    fn an_id_that_names_no_endpoint_has_no_key_and_a_bad_key_is_a_permanent_error() {
        assert!(delivery_key(&DeliveryId::parse("dlv_custom").unwrap()).is_none());
        let bad: Item = HashMap::from([("pk".to_owned(), s("EVT#x")), ("sk".to_owned(), s("EVENT"))]);
        assert!(endpoint_of_delivery(&bad).unwrap_err().is_permanent());
        assert!(delivery_id_of(&bad).unwrap_err().is_permanent());
    }

    #[test]
    fn the_same_event_id_in_two_tenants_is_two_partitions_and_the_default_keeps_the_old_one() {
        let id = crate::ids::EventId::parse("run-1:node-3").unwrap();
        let default = event_pk(&EventKey::new(TenantId::default(), id.clone()));
        let acme = event_pk(&EventKey::new(TenantId::parse("acme").unwrap(), id));
        assert_eq!(default, "EVT#run-1:node-3");
        assert_eq!(acme, "EVT#acme#run-1:node-3");
    }

    #[test]
    fn attempts_sort_by_number() {
        assert_eq!(attempt_sk(2), "00002");
        assert!(attempt_sk(9) < attempt_sk(10));
    }
}
