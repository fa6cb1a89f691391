//! Pages: a batch's deliveries to one endpoint that ended at their first attempt
//! (delivered, or failed for good), kept in one item per write instead of one item
//! each. A write unit is 1 KB and every item costs at least one, so a webhook delivered
//! at once costs its share of a page (its entry, about 80 bytes) instead of a unit.
//!
//! A page lives in its endpoint's log: `pk` `EP#<ep>`, `sk` `<ms>#dlv_<batch>#<slot>`,
//! where `ms` and `batch` (28 hex digits) are those its deliveries' ids share
//! (`crate::id_batch`) and `slot` is the first of theirs it holds. Each write of a
//! batch's deliveries makes pages of its own, so a write never rereads or rebills
//! another's (an update is billed at the item's whole size). The pages of a batch sort
//! together just below its deliveries' own items (`#` sorts before every hex digit); a
//! delivery's are found from its id, by one query. Each delivery is an attribute
//! `d<slot>` (its id's last four hex digits) holding its entry
//! (`super::page_entries`); a page is marked `page`.
//!
//! A page's entries are only added. Two writes meet in one page only when two workers
//! write the same batch's deliveries at once (a fan-out resumed while the first worker
//! was still writing); the update merges them, and a reader lists an entry found in two
//! pages once. A delivery that must change after (an operator's retry) moves to an
//! item of its own, which from then on is the delivery: every reader takes the
//! delivery's own item over its entry.

use super::delivery_items::delivery_from_item;
use super::keys::{delivery_id_of, delivery_key, delivery_pk, endpoint_of_delivery};
use super::page_entries::{decode, encode};
use super::reader::{Reader, TENANT_ATTRIBUTE};
use super::{DynamoStore, Item, n, query_all, s};
use crate::adapters::classify;
use crate::delivery::{Attempt, Delivery};
use crate::id_batch::batch_parts;
use crate::ids::DeliveryId;
use crate::ports::{PortError, PortResult};
use futures::{StreamExt, TryStreamExt, stream};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Marks a page among its endpoint's log items.
pub(super) const PAGE: &str = "page";

/// A page's entries stop at this many bytes (an item holds 400 KB) or this many entries
/// (an update expression holds 4 KB); the rest go to another page. A write holds at
/// most 25 events' deliveries (`WRITE_TOGETHER` in the delivery function).
const PAGE_BYTES: usize = 256 * 1024;
const PAGE_ENTRIES: usize = 150;
/// Pages written, or batches' pages read, at once.
const AT_ONCE: usize = 8;

/// Where a delivery made in a batch is kept when it is kept in a page.
pub(super) struct PagePlace {
    /// Its endpoint's log.
    pub(super) pk: String,
    /// What every page of its batch's sort key starts with: `<ms>#dlv_<batch>#`.
    pub(super) prefix: String,
    /// Its slot in its batch (four hex digits).
    slot: String,
}

impl PagePlace {
    /// Its entry's attribute in the page that holds it.
    pub(super) fn name(&self) -> String {
        format!("d{}", self.slot)
    }
}

pub(super) fn page_place(id: &DeliveryId) -> Option<PagePlace> {
    let (batch, slot, ep) = batch_parts(id)?;
    let ms = id.made_at_millis()?;
    Some(PagePlace {
        pk: delivery_pk(&ep),
        prefix: format!("{:016}#{}{batch}#", ms.max(0), DeliveryId::PREFIX),
        slot: slot.to_owned(),
    })
}

/// Whether a delivery is kept in a page: ended (no worker writes it again) at its first
/// attempt or before (a page holds no later attempt), not in an ordered lane (whose
/// turns read and write it), and its id made here.
pub(super) fn pageable(d: &Delivery) -> bool {
    !d.status.is_open()
        && d.attempts <= 1
        && d.order.is_none()
        && d.wake.is_none()
        && page_place(&d.id).is_some()
}

pub(super) fn is_page(item: &Item) -> bool {
    item.contains_key(PAGE)
}

/// A page's sort key read back: its prefix (`<ms>#dlv_<batch>#`) and its batch.
fn page_sk_parts(sk: &str) -> Option<(&str, &str)> {
    let (ms, rest) = sk.split_once('#')?;
    let (batch, _first_slot) = rest.strip_prefix(DeliveryId::PREFIX)?.split_once('#')?;
    let prefix_len = ms.len() + 1 + DeliveryId::PREFIX.len() + batch.len() + 1;
    Some((&sk[..prefix_len], batch))
}

/// For a log item's sort key (a delivery's own item or a page), the sort key below
/// which nothing of its batch lies: its pages' common prefix.
pub(super) fn batch_floor(sk: &str) -> Option<String> {
    if let Some((prefix, _)) = page_sk_parts(sk) {
        return Some(prefix.to_owned());
    }
    let (_, id) = sk.split_once('#')?;
    page_place(&DeliveryId::parse(id).ok()?).map(|p| p.prefix)
}

/// Every delivery a page holds, with its first attempt.
pub(super) fn entries_of(page: &Item) -> PortResult<Vec<(Delivery, Option<Attempt>)>> {
    let mut out = Vec::new();
    for name in page.keys() {
        if let Some(entry) = entry_of(page, name)? {
            out.push(entry);
        }
    }
    Ok(out)
}

/// The delivery a page's attribute `name` holds, if it is an entry (`d<slot>`).
fn entry_of(page: &Item, name: &str) -> PortResult<Option<(Delivery, Option<Attempt>)>> {
    let (Some(slot), Some(json)) = (name.strip_prefix('d'), Reader(page).opt_str(name)) else {
        return Ok(None);
    };
    if slot.len() != 4 {
        return Ok(None);
    }
    let (_, batch) = page_sk_parts(Reader(page).str("sk")?)
        .ok_or_else(|| PortError::permanent("read stored page", "invalid `sk`"))?;
    let ep = endpoint_of_delivery(page)?;
    let id = DeliveryId::from_parts(&format!("{batch}{slot}"), &ep);
    decode(json, id, ep, Reader(page).tenant()?).map(Some)
}

/// Where a delivery is kept.
pub(super) enum Located {
    /// Its own item (read for its attempts).
    Own(Item),
    /// Its entry in a page, with its first attempt: it has no other.
    Paged(Box<(Delivery, Option<Attempt>)>),
}

impl Located {
    pub(super) fn delivery(&self) -> PortResult<Delivery> {
        match self {
            Self::Own(item) => delivery_from_item(item),
            Self::Paged(paged) => Ok(paged.0.clone()),
        }
    }
}

/// A delivery to keep in a page: where, its record, and its entry.
struct Entry<'a> {
    place: PagePlace,
    record: (&'a Delivery, Option<&'a Attempt>),
    json: String,
}

/// A batch's entries to one endpoint, in slot order, cut into what one page holds.
fn chunks(entries: Vec<Entry<'_>>) -> Vec<Vec<Entry<'_>>> {
    let mut out: Vec<Vec<Entry<'_>>> = Vec::new();
    let mut bytes = 0;
    for e in entries {
        match out.last_mut() {
            Some(page) if page.len() < PAGE_ENTRIES && bytes + e.json.len() <= PAGE_BYTES => {
                bytes += e.json.len();
                page.push(e);
            }
            _ => {
                bytes = e.json.len();
                out.push(vec![e]);
            }
        }
    }
    out
}

/// One page's write: its key, its tenant, when it expires, its entries by name.
struct PageWrite {
    pk: String,
    sk: String,
    tenant: crate::ids::TenantId,
    updated_at: crate::timestamp::Timestamp,
    entries: Vec<(String, String)>,
}

impl PageWrite {
    /// The page of these entries (at least one, of one batch and endpoint, in slot
    /// order), named after the first one's slot.
    fn of(chunk: Vec<Entry<'_>>) -> Self {
        let first = &chunk[0];
        let mut page = Self {
            pk: first.place.pk.clone(),
            sk: format!("{}{}", first.place.prefix, first.place.slot),
            tenant: first.record.0.tenant_id.clone(),
            updated_at: first.record.0.updated_at,
            entries: Vec::with_capacity(chunk.len()),
        };
        for e in chunk {
            page.updated_at = page.updated_at.max(e.record.0.updated_at);
            page.entries.push((e.place.name(), e.json));
        }
        page
    }
}

impl DynamoStore {
    /// Writes what can be kept in pages there, one UpdateItem a page, and answers the
    /// rest. An update, not a put: should two workers write the same delivery (a
    /// fan-out resumed while the first was still writing), neither page loses another
    /// delivery's entry.
    pub(super) async fn write_pages<'a>(
        &self,
        records: &[(&'a Delivery, Option<&'a Attempt>)],
    ) -> PortResult<Vec<(&'a Delivery, Option<&'a Attempt>)>> {
        // Each batch's deliveries to each endpoint, in slot order.
        let mut batches: BTreeMap<(String, String), Vec<Entry<'a>>> = BTreeMap::new();
        let mut rest = Vec::new();
        for &(d, a) in records {
            match page_place(&d.id).filter(|_| pageable(d)) {
                Some(place) => batches
                    .entry((place.pk.clone(), place.prefix.clone()))
                    .or_default()
                    .push(Entry {
                        json: encode(d, a),
                        place,
                        record: (d, a),
                    }),
                None => rest.push((d, a)),
            }
        }
        let mut pages: Vec<PageWrite> = Vec::new();
        for (_, mut entries) in batches {
            entries.sort_by(|a, b| a.place.slot.cmp(&b.place.slot));
            for chunk in chunks(entries) {
                // Alone, an entry costs what an item of its own does; an item is
                // written with the others, 25 to a request, where a page takes one.
                if let [one] = chunk.as_slice() {
                    rest.push(one.record);
                    continue;
                }
                pages.push(PageWrite::of(chunk));
            }
        }
        let writes: Vec<_> = pages.into_iter().map(|p| self.write_page(p)).collect();
        stream::iter(writes)
            .buffer_unordered(AT_ONCE)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(rest)
    }

    /// One page's UpdateItem. Its `expires_at` is its newest entry's: should two writes
    /// meet in a page (above), the one that lands last sets it, at most a fan-out's
    /// lease apart from the other's.
    async fn write_page(&self, page: PageWrite) -> PortResult<()> {
        let mut sets = vec!["#page = :page".to_owned(), "#exp = :exp".to_owned()];
        let mut names = HashMap::from([
            ("#page".to_owned(), PAGE.to_owned()),
            ("#exp".to_owned(), "expires_at".to_owned()),
        ]);
        let mut values = HashMap::from([
            (":page".to_owned(), n(1)),
            (":exp".to_owned(), self.expires_at(page.updated_at)),
        ]);
        if !page.tenant.is_default() {
            sets.push("#tn = :tn".into());
            names.insert("#tn".into(), TENANT_ATTRIBUTE.into());
            values.insert(":tn".into(), s(page.tenant.as_str()));
        }
        for (i, (name, json)) in page.entries.into_iter().enumerate() {
            sets.push(format!("#e{i} = :e{i}"));
            names.insert(format!("#e{i}"), name);
            values.insert(format!(":e{i}"), s(json));
        }
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(page.pk))
            .key("sk", s(page.sk))
            .update_expression(format!("SET {}", sets.join(", ")))
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .send()
            .await
            .map_err(|e| classify("UpdateItem delivery page", e))?;
        Ok(())
    }

    /// Where each of these deliveries is kept (those not stored are absent): their own
    /// items, read together, and for those without one their batches' pages, one query
    /// a batch and endpoint.
    pub(super) async fn locate(&self, ids: &[DeliveryId]) -> PortResult<HashMap<DeliveryId, Located>> {
        let unique: BTreeSet<&DeliveryId> = ids.iter().collect();
        let keys = unique.iter().filter_map(|id| delivery_key(id)).collect();
        let mut found = HashMap::new();
        for item in self.batch_get(keys, None, "BatchGetItem deliveries").await? {
            found.insert(delivery_id_of(&item)?, Located::Own(item));
        }
        let places: Vec<(&DeliveryId, PagePlace)> = unique
            .into_iter()
            .filter(|id| !found.contains_key(*id))
            .filter_map(|id| Some((id, page_place(id)?)))
            .collect();
        let batches: Vec<(String, String)> = places
            .iter()
            .map(|(_, p)| (p.pk.clone(), p.prefix.clone()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        // Built up front: a closure inside the stream would hide their `Send`-ness
        // (rust-lang/rust#102211).
        let reads: Vec<_> = batches
            .iter()
            .map(|(pk, prefix)| self.batch_pages(pk, prefix))
            .collect();
        // In order, to pair each with its batch.
        let read: Vec<Vec<Item>> = stream::iter(reads).buffered(AT_ONCE).try_collect().await?;
        let pages: HashMap<(String, String), Vec<Item>> = batches.into_iter().zip(read).collect();
        for (id, place) in places {
            let Some(pages) = pages.get(&(place.pk.clone(), place.prefix.clone())) else {
                continue;
            };
            let name = place.name();
            for page in pages {
                if let Some((d, first)) = entry_of(page, &name)? {
                    found.insert(id.clone(), Located::Paged(Box::new((d, first))));
                    break;
                }
            }
        }
        Ok(found)
    }

    /// A batch's pages in an endpoint's log.
    async fn batch_pages(&self, pk: &str, prefix: &str) -> PortResult<Vec<Item>> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":prefix", s(prefix))
            .consistent_read(true);
        query_all(query, "Query delivery pages").await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventType;
    use crate::id_batch::DeliveryIdBatch;
    use crate::ids::{EndpointId, EventId};
    use crate::timestamp::Timestamp;

    fn delivery(id: DeliveryId, ep: &EndpointId) -> Delivery {
        let mut d = Delivery::new(
            EventId::parse("evt_1").unwrap(),
            ep.clone(),
            EventType::parse("a.b").unwrap(),
            3,
            Timestamp::from_unix_millis(1_795_935_600_000),
        );
        d.id = id;
        d
    }

    #[test]
    fn a_batchs_pages_sort_together_just_below_its_deliveries_and_each_has_an_entry_of_its_own() {
        let ep = EndpointId::generate();
        let batch = DeliveryIdBatch::new(Timestamp::from_unix_millis(1_795_935_600_000));
        let (a, b) = (
            batch.for_targets([&ep]).remove(0),
            batch.for_targets([&ep]).remove(0),
        );
        let (pa, pb) = (page_place(&a).unwrap(), page_place(&b).unwrap());
        assert_eq!(
            (&pa.pk, &pa.prefix),
            (&pb.pk, &pb.prefix),
            "one batch, one endpoint"
        );
        assert_eq!((pa.name().as_str(), pb.name().as_str()), ("d0000", "d0001"));
        // Pages written from either slot sort below both deliveries, above the prefix.
        let pages = [format!("{}0000", pa.prefix), format!("{}0001", pa.prefix)];
        for id in [&a, &b] {
            let own = super::super::keys::delivery_sk(id);
            for page in &pages {
                assert!(pa.prefix < *page && *page < own, "{page} below {own}");
                assert_eq!(batch_floor(page).as_ref(), Some(&pa.prefix));
            }
            assert_eq!(batch_floor(&own).as_ref(), Some(&pa.prefix));
        }
        let other_ep = EndpointId::generate();
        let other = page_place(&batch.for_targets([&other_ep]).remove(0)).unwrap();
        assert_ne!(other.pk, pa.pk, "another endpoint's log");
        assert!(page_place(&DeliveryId::parse("dlv_custom").unwrap()).is_none());
    }

    #[test]
    fn only_a_delivery_that_ended_outside_any_lane_is_kept_in_a_page() {
        let ep = EndpointId::generate();
        let id = || DeliveryId::generate_for(Timestamp::from_unix_millis(1_795_935_600_000), &ep);
        let pending = delivery(id(), &ep);
        assert!(!pageable(&pending), "open");
        let mut ended = delivery(id(), &ep);
        ended.fail("gone", Timestamp::from_unix_millis(1_795_935_600_001));
        assert!(pageable(&ended));
        let mut custom = ended.clone();
        custom.id = DeliveryId::parse("dlv_custom").unwrap();
        assert!(!pageable(&custom), "an id that names no page");
        let mut ordered = ended.clone();
        ordered.order = Some(crate::ordering::LanePlace {
            key: "run-1".into(),
            mode: crate::ordering::OrderingMode::Run,
            position: 1,
            previous_failed: false,
        });
        assert!(!pageable(&ordered), "its lane's turns read and write it");
    }
}
