//! Events in the table. The claim is an event's one write on its way to its first
//! attempts: its body (deflated when that is smaller), its targets (the ids of the
//! deliveries it is to make) and the fan-out lease, in one conditional PutItem.

use super::keys::{BODY_SK, EVENT_SK, event_pk};
use super::reader::Reader;
use super::{DynamoStore, Item, conditional, n, s};
use crate::adapters::classify;
use crate::event::Event;
use crate::event::EventKey;
use crate::event_conflict::Conflict;
use crate::ids::{DeliveryId, EndpointId};
use crate::ports::{EventLookup, EventStore, FanoutClaim, PortError, PortResult, StoredEvent};
use crate::timestamp::Timestamp;
use async_trait::async_trait;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

const READ: &str = "read stored event";

/// Event bodies above this size are stored deflated when that makes them smaller: a
/// write unit is 1 KB, and agents' JSON (ids, keys, prose) packs to about half.
const PACK_ABOVE: usize = 256;

/// An item may hold 400 KB; this leaves room for what is not counted exactly.
const ITEM_LIMIT: usize = 400 * 1024 - 2048;

/// The attribute an event's body is stored in, and its value: `body` as text, or
/// `body_z` as raw deflate when that is smaller.
fn packed_body(json: &str) -> (&'static str, AttributeValue) {
    if json.len() > PACK_ABOVE {
        let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::new(6));
        if std::io::Write::write_all(&mut z, json.as_bytes()).is_ok()
            && let Ok(packed) = z.finish()
            && packed.len() < json.len()
        {
            return ("body_z", AttributeValue::B(Blob::new(packed)));
        }
    }
    ("body", s(json))
}

/// The event in an item that holds its body, packed or not.
fn body_from_item(item: &Item) -> PortResult<Event> {
    if let Some(AttributeValue::B(packed)) = item.get("body_z") {
        let mut json = String::new();
        std::io::Read::read_to_string(&mut flate2::read::DeflateDecoder::new(packed.as_ref()), &mut json)
            .map_err(|e| {
                PortError::permanent(READ, format!("`body_z` does not inflate: {e}")).caused_by(e)
            })?;
        return serde_json::from_str(&json)
            .map_err(|e| PortError::permanent(READ, format!("`body_z` is invalid: {e}")).caused_by(e));
    }
    Reader(item).parse("body", |b| serde_json::from_str::<Event>(b))
}

/// An event's targets as stored. Ids made together share their UUID, kept once beside
/// the endpoints (36 bytes a target instead of 70); other ids are kept whole.
fn targets_attributes(targets: &[DeliveryId]) -> Vec<(&'static str, AttributeValue)> {
    let parts: Option<Vec<(&str, EndpointId)>> = targets.iter().map(DeliveryId::parts).collect();
    match parts {
        Some(parts) if parts.windows(2).all(|w| w[0].0 == w[1].0) => {
            let mut out = vec![(
                "targets",
                AttributeValue::L(parts.iter().map(|(_, ep)| s(ep.as_str())).collect()),
            )];
            if let Some((uuid, _)) = parts.first() {
                out.push(("target_uuid", s(*uuid)));
            }
            out
        }
        _ => vec![(
            "target_ids",
            AttributeValue::L(targets.iter().map(|t| s(t.as_str())).collect()),
        )],
    }
}

fn strings<'a>(item: &'a Item, k: &str) -> PortResult<Option<Vec<&'a str>>> {
    match item.get(k) {
        None => Ok(None),
        Some(AttributeValue::L(l)) => l
            .iter()
            .map(|v| match v {
                AttributeValue::S(x) => Ok(x.as_str()),
                _ => Err(PortError::permanent(READ, format!("`{k}` holds a non-string"))),
            })
            .collect::<PortResult<Vec<_>>>()
            .map(Some),
        Some(_) => Err(PortError::permanent(READ, format!("`{k}` is not a list"))),
    }
}

fn targets_from_item(item: &Item) -> PortResult<Vec<DeliveryId>> {
    let bad =
        |e: crate::ids::IdError| PortError::permanent(READ, format!("a target is invalid: {e}")).caused_by(e);
    if let Some(ids) = strings(item, "target_ids")? {
        return ids
            .into_iter()
            .map(|id| DeliveryId::parse(id).map_err(bad))
            .collect();
    }
    let endpoints =
        strings(item, "targets")?.ok_or_else(|| PortError::permanent(READ, "it lacks its targets"))?;
    let uuid = Reader(item).opt_str("target_uuid").unwrap_or_default();
    endpoints
        .into_iter()
        .map(|ep| Ok(DeliveryId::from_parts(uuid, &EndpointId::parse(ep).map_err(bad)?)))
        .collect()
}

/// An item's size as DynamoDB limits and bills it: its attributes' names and values
/// (numbers taken at their text's length, which is never less).
pub(super) fn item_size(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + value_size(v)).sum()
}

fn value_size(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::S(x) | AttributeValue::N(x) => x.len(),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::L(l) => 3 + l.iter().map(|x| 1 + value_size(x)).sum::<usize>(),
        AttributeValue::M(m) => 3 + m.iter().map(|(k, x)| 1 + k.len() + value_size(x)).sum::<usize>(),
        AttributeValue::Ss(l) | AttributeValue::Ns(l) => l.iter().map(String::len).sum(),
        _ => 1,
    }
}

#[async_trait]
impl EventStore for DynamoStore {
    async fn claim_fanout(
        &self,
        event: &Event,
        envelope: &str,
        targets: &[DeliveryId],
        now: Timestamp,
        lease: Duration,
    ) -> PortResult<FanoutClaim> {
        let key = event.key();
        let pk = event_pk(&key);
        let lease_until = now.saturating_add(lease).unix_millis();
        let mut item: Item = HashMap::from([
            ("pk".into(), s(&pk)),
            ("sk".into(), s(EVENT_SK)),
            ("lease_until".into(), n(lease_until)),
            ("expires_at".into(), self.expires_at(now)),
        ]);
        item.extend(
            targets_attributes(targets)
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v)),
        );
        let (body_attr, body) = packed_body(envelope);
        let mut apart = None;
        if item_size(&item) + body_attr.len() + value_size(&body) <= ITEM_LIMIT {
            item.insert(body_attr.into(), body);
        } else {
            item.insert("body_at".into(), s(BODY_SK));
            apart = Some((body_attr, body));
        }
        // Written first, and only once: the claim that names it finds it there, and the
        // first body sent under an id stays the one. A copy of an event already claimed
        // writes nothing (a failed conditional write still costs its units).
        if let Some((body_attr, body)) = apart
            && self.event_item(&key, Some(&["pk"])).await?.is_none()
        {
            let body_item = HashMap::from([
                ("pk".to_owned(), s(&pk)),
                ("sk".to_owned(), s(BODY_SK)),
                (body_attr.to_owned(), body),
                ("expires_at".to_owned(), self.expires_at(now)),
            ]);
            self.put_new(body_item, "PutItem event body").await?;
        }
        if self.put_new(item, "PutItem event").await? {
            return Ok(FanoutClaim::Fresh);
        }
        let Some(item) = self.event_item(&key, None).await? else {
            // Expired by TTL between the two calls: the id is free again; let SQS retry.
            return Err(PortError::retryable(
                "PutItem event",
                "the event vanished while it was claimed",
            ));
        };
        let stored = self.stored_event(&item).await?;
        if let Some(c) = Conflict::between(&stored.event, event) {
            return Ok(FanoutClaim::Conflict(c));
        }
        let recorded = self.recorded(&stored.targets).await?;
        if stored.fanned_out(&recorded) {
            return Ok(FanoutClaim::Done);
        }
        let held_until: i64 = Reader(&item).opt_num("lease_until").unwrap_or(0);
        if held_until > now.unix_millis() {
            return Ok(FanoutClaim::Busy {
                until: Timestamp::from_unix_millis(held_until),
            });
        }
        let take = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(&pk))
            .key("sk", s(EVENT_SK))
            .update_expression("SET lease_until = :new")
            .condition_expression("lease_until = :old")
            .expression_attribute_values(":new", n(lease_until))
            .expression_attribute_values(":old", n(held_until))
            .send()
            .await;
        match take {
            Ok(_) => Ok(FanoutClaim::Resumed {
                stored: Box::new(stored.event),
                targets: stored.targets,
                recorded,
            }),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Ok(FanoutClaim::Busy {
                    until: Timestamp::from_unix_millis(lease_until),
                })
            }
            Err(e) => Err(classify("UpdateItem event claim", e)),
        }
    }

    async fn release_fanout(&self, key: &EventKey) -> PortResult<()> {
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(event_pk(key)))
            .key("sk", s(EVENT_SK))
            .update_expression("SET lease_until = :zero")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":zero", n(0))
            .send()
            .await;
        conditional(res.map(|_| ()), "UpdateItem event release").map(|_| ())
    }

    async fn get_event(&self, key: &EventKey) -> PortResult<Option<StoredEvent>> {
        match self.event_item(key, None).await? {
            Some(item) => self.stored_event(&item).await.map(Some),
            None => Ok(None),
        }
    }
}

impl DynamoStore {
    /// An event's item, or only the attributes named (by `#a`, `#b`, …).
    async fn event_item(&self, key: &EventKey, only: Option<&[&str]>) -> PortResult<Option<Item>> {
        let mut get = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(event_pk(key)))
            .key("sk", s(EVENT_SK))
            .consistent_read(true);
        if let Some(names) = only {
            let placeholders: Vec<String> = (0..names.len()).map(|i| format!("#a{i}")).collect();
            get = get.projection_expression(placeholders.join(", "));
            for (p, name) in placeholders.iter().zip(names) {
                get = get.expression_attribute_names(p, *name);
            }
        }
        let out = get.send().await.map_err(|e| classify("GetItem event", e))?;
        Ok(out.item().cloned())
    }

    /// An event's targets alone (not its body): `None` when it is not stored.
    pub(super) async fn event_targets(&self, key: &EventKey) -> PortResult<Option<Vec<DeliveryId>>> {
        let item = self
            .event_item(key, Some(&["targets", "target_uuid", "target_ids"]))
            .await?;
        item.as_ref().map(targets_from_item).transpose()
    }

    /// The event an item stores, with its targets.
    async fn stored_event(&self, item: &Item) -> PortResult<StoredEvent> {
        let targets = targets_from_item(item)?;
        let event = self.stored_body(item).await?;
        Ok(StoredEvent { event, targets })
    }

    /// The event an item stores, its body read from its own item when it has one.
    async fn stored_body(&self, item: &Item) -> PortResult<Event> {
        match Reader(item).opt_str("body_at") {
            None => body_from_item(item),
            Some(sk) => {
                let out = self
                    .client
                    .get_item()
                    .table_name(&self.table)
                    .set_key(Some(HashMap::from([
                        ("pk".to_owned(), item.get("pk").cloned().unwrap_or_else(|| s(""))),
                        ("sk".to_owned(), s(sk)),
                    ])))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(|e| classify("GetItem event body", e))?;
                // Expired by TTL a moment before its event: the event is going too.
                let body = out.item().ok_or_else(|| {
                    PortError::retryable("GetItem event body", "the event's body item is missing")
                })?;
                body_from_item(body)
            }
        }
    }

    /// Which of these deliveries are recorded, as items or in pages.
    pub(super) async fn recorded(&self, ids: &[DeliveryId]) -> PortResult<HashSet<DeliveryId>> {
        Ok(self.locate(ids).await?.into_keys().collect())
    }
}

#[async_trait]
impl EventLookup for DynamoStore {
    /// One strongly consistent BatchGetItem per 100 ids, of the bodies alone.
    async fn stored_events(&self, wanted: &[EventKey]) -> PortResult<Vec<Event>> {
        // BatchGetItem refuses a key asked for twice.
        let unique: HashSet<&EventKey> = wanted.iter().collect();
        let keys = unique
            .into_iter()
            .map(|k| HashMap::from([("pk".to_owned(), s(event_pk(k))), ("sk".to_owned(), s(EVENT_SK))]))
            .collect();
        let items = self
            .batch_get(
                keys,
                Some("pk, body, body_z, body_at"),
                "BatchGetItem stored events",
            )
            .await?;
        // A body kept in an item of its own is read the same way, all at once.
        let apart: Vec<Item> = items
            .iter()
            .filter_map(|item| {
                let sk = Reader(item).opt_str("body_at")?;
                Some(HashMap::from([
                    ("pk".to_owned(), item.get("pk")?.clone()),
                    ("sk".to_owned(), s(sk)),
                ]))
            })
            .collect();
        let bodies: HashMap<String, Item> = if apart.is_empty() {
            HashMap::new()
        } else {
            self.batch_get(apart, None, "BatchGetItem stored event bodies")
                .await?
                .into_iter()
                .filter_map(|b| Some((Reader(&b).opt_str("pk")?.to_owned(), b)))
                .collect()
        };
        items
            .iter()
            .filter_map(|item| match Reader(item).opt_str("body_at") {
                None => Some(body_from_item(item)),
                // Expired by TTL a moment before its event: the event is going too.
                Some(_) => bodies.get(Reader(item).opt_str("pk")?).map(body_from_item),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_made_together_are_stored_as_one_uuid_and_their_endpoints() {
        let eps = [EndpointId::generate(), EndpointId::generate()];
        let ids = DeliveryId::for_targets(Timestamp::from_unix_millis(1_795_950_000_000), &eps);
        let item: Item = targets_attributes(&ids)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        assert!(item.contains_key("target_uuid") && !item.contains_key("target_ids"));
        assert_eq!(targets_from_item(&item).unwrap(), ids);
        let mixed = [ids[0].clone(), DeliveryId::parse("dlv_custom").unwrap()];
        let item: Item = targets_attributes(&mixed)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        assert_eq!(targets_from_item(&item).unwrap(), mixed, "kept whole");
    }

    #[test]
    fn a_body_is_packed_only_when_that_is_smaller_and_reads_back_either_way() {
        let event = |data: serde_json::Value| Event {
            id: crate::ids::EventId::parse("evt_1").unwrap(),
            tenant_id: Default::default(),
            event_type: crate::event::EventType::parse("a.b").unwrap(),
            data,
            timestamp: Timestamp::from_unix_millis(0),
            source: "test".into(),
            version: crate::event::ENVELOPE_VERSION.into(),
            expires_at: None,
            collapse_key: None,
            data_ref: None,
            order: None,
        };
        let prose = event(serde_json::json!({"text": "the parcel left the hub on Tuesday; ".repeat(30)}));
        let (attr, value) = packed_body(&prose.envelope_json());
        assert_eq!(attr, "body_z");
        assert!(value_size(&value) < prose.envelope_json().len() / 2);
        assert_eq!(
            body_from_item(&HashMap::from([(attr.to_owned(), value)])).unwrap(),
            prose
        );
        let small = event(serde_json::json!({}));
        let (attr, value) = packed_body(&small.envelope_json());
        assert_eq!(attr, "body");
        assert_eq!(
            body_from_item(&HashMap::from([(attr.to_owned(), value)])).unwrap(),
            small
        );
    }
}
