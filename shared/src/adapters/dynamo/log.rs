//! The delivery log: each endpoint's partition is its log, newest last; the whole log
//! merges the endpoints' (the live ones' and the deleted ones' still kept), a bounded
//! read of each per page, with a cursor that resumes below the page.

use super::delivery_items::delivery_from_item;
use super::endpoints::BAD_CURSOR;
use super::keys::{delivery_pk, delivery_sk};
use super::pages::{batch_floor, entries_of, is_page};
use super::reader::Reader;
use super::{DynamoStore, Item, s};
use crate::adapters::classify;
use crate::delivery::Delivery;
use crate::ids::{DeliveryId, EndpointId};
use crate::ports::{DeliveryQuery, Page, PortError, PortResult};
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::{StreamExt, stream};
use std::collections::HashSet;

impl DynamoStore {
    /// One page of the delivery log, newest first: each endpoint's log read down to a
    /// page, then merged.
    pub(super) async fn log_page(&self, q: &DeliveryQuery) -> PortResult<Page<Delivery>> {
        let below = q.cursor.as_deref().map(decode_log_cursor).transpose()?;
        let window = LogWindow::new(q, below);
        if window.from > window.to {
            // A window that ends before it starts (`until` older than the retention, or a
            // cursor below it): nothing to read.
            return Ok(Page {
                items: Vec::new(),
                next_cursor: None,
            });
        }
        let endpoints = match &q.endpoint {
            Some(ep) => vec![ep.clone()],
            None => self.log_endpoints(q.tenant.as_ref()).await?,
        };
        // Each endpoint's log, newest first, at most a page of it; a few at a time.
        let reads: Vec<_> = endpoints.iter().map(|ep| self.read_log(ep, q, &window)).collect();
        let logs: Vec<EndpointLog> = stream::iter(reads)
            .buffer_unordered(LOG_READS_AT_ONCE)
            .collect::<Vec<PortResult<EndpointLog>>>()
            .await
            .into_iter()
            .collect::<PortResult<_>>()?;
        Ok(merge_logs(logs, q.limit as usize))
    }

    /// One endpoint's log within the window, newest first: up to a page of matching
    /// deliveries, reading at most `LOG_QUERIES_PER_ENDPOINT` query pages. Filtered
    /// here, not by the query, which bills what it reads either way: a delivery moved
    /// from its page to an item of its own must hide its entry even when the item does
    /// not match, and the item comes first, just above its page.
    async fn read_log(&self, ep: &EndpointId, q: &DeliveryQuery, w: &LogWindow) -> PortResult<EndpointLog> {
        let mut reading = Reading {
            q,
            w,
            seen: HashSet::new(),
            log: EndpointLog::default(),
        };
        let mut start: Option<Item> = None;
        for _ in 0..LOG_QUERIES_PER_ENDPOINT {
            let out = self
                .log_query(ep, &w.from, &w.to)
                .limit(i32::try_from(q.limit + 1).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| classify("Query delivery log", e))?;
            for item in out.items() {
                reading.take(item)?;
            }
            match out.last_evaluated_key().filter(|k| !k.is_empty()) {
                Some(k) if reading.log.items.len() < q.limit as usize => start = Some(k.clone()),
                Some(k) => {
                    self.stop_at(ep, &mut reading, k.clone()).await?;
                    return Ok(reading.log);
                }
                None => return Ok(reading.log),
            }
        }
        // Read as much as one request may: the rest is below where it stopped.
        if let Some(k) = start {
            self.stop_at(ep, &mut reading, k).await?;
        }
        Ok(reading.log)
    }

    /// Ends a read that stopped at `last`. Below an item of a batch (a delivery's own,
    /// or a page) the batch's other items and pages may lie unread, and the entries of
    /// its pages sort above them (some above `last`): those are read too, down to the
    /// batch's floor, so that what is read is complete down to it. A batch is one
    /// delivery invocation's events: up to 100 (10 records of up to 10 events).
    async fn stop_at(&self, ep: &EndpointId, reading: &mut Reading<'_>, last: Item) -> PortResult<()> {
        let sk = Reader(&last).str("sk")?.to_owned();
        let Some(page) = batch_floor(&sk) else {
            reading.log.looked_down_to = Some(sk);
            return Ok(());
        };
        let from = page.clone().max(reading.w.from.clone());
        let mut start = Some(last);
        while let Some(k) = start.take() {
            let out = self
                .log_query(ep, &from, &reading.w.to)
                .set_exclusive_start_key(Some(k))
                .send()
                .await
                .map_err(|e| classify("Query delivery log", e))?;
            for item in out.items() {
                reading.take(item)?;
            }
            start = out.last_evaluated_key().filter(|k| !k.is_empty()).cloned();
        }
        reading.log.looked_down_to = Some(page);
        Ok(())
    }

    /// An endpoint's log between two sort keys, newest first.
    fn log_query(&self, ep: &EndpointId, from: &str, to: &str) -> QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
            .expression_attribute_values(":pk", s(delivery_pk(ep)))
            .expression_attribute_values(":from", s(from))
            .expression_attribute_values(":to", s(to))
            .scan_index_forward(false)
    }
}

/// One endpoint's log as it is read, item by item, newest first.
struct Reading<'a> {
    q: &'a DeliveryQuery,
    w: &'a LogWindow,
    /// The deliveries read so far. An item of its own comes before its batch's pages
    /// (it sorts above them), so its entry, stale, is skipped; so is an entry a second
    /// page holds (two workers wrote it).
    seen: HashSet<DeliveryId>,
    log: EndpointLog,
}

impl Reading<'_> {
    fn take(&mut self, item: &Item) -> PortResult<()> {
        if is_page(item) {
            let mut entries: Vec<(String, Delivery)> = entries_of(item)?
                .into_iter()
                .filter(|(d, _)| self.seen.insert(d.id.clone()))
                .map(|(d, _)| (delivery_sk(&d.id), d))
                .filter(|(sk, d)| self.w.holds(sk) && matches(self.q, d))
                .collect();
            entries.sort_by(|a, b| b.0.cmp(&a.0));
            self.log.items.extend(entries);
            return Ok(());
        }
        let sk = Reader(item).str("sk")?;
        let d = delivery_from_item(item)?;
        self.seen.insert(d.id.clone());
        if self.w.holds(sk) && matches(self.q, &d) {
            self.log.items.push((sk.to_owned(), d));
        }
        Ok(())
    }
}

/// Whether a delivery matches the query's filters (its window aside). An endpoint's
/// log is its tenant's; this holds even for an endpoint named by a caller of another
/// tenant.
fn matches(q: &DeliveryQuery, d: &Delivery) -> bool {
    q.status.is_none_or(|st| d.status == st)
        && q.event_type.as_ref().is_none_or(|t| d.event_type == *t)
        && q.tenant.as_ref().is_none_or(|t| d.tenant_id == *t)
}

/// One page of the whole log reads this many endpoints' logs at once.
const LOG_READS_AT_ONCE: usize = 16;
/// And at most this many query pages of each (a filter that matches little would
/// otherwise read an endpoint's whole log): the cursor goes on from where it stopped.
const LOG_QUERIES_PER_ENDPOINT: usize = 8;

/// The sort-key range a log page reads: from `since` to `until`, or to the cursor.
struct LogWindow {
    from: String,
    to: String,
    /// The cursor: the sort key below which this page starts (itself excluded).
    below: Option<String>,
}

impl LogWindow {
    /// Whether a delivery's sort key is in the window (the cursor's own excluded).
    fn holds(&self, sk: &str) -> bool {
        self.from.as_str() <= sk && sk <= self.to.as_str() && self.below.as_deref() != Some(sk)
    }

    fn new(q: &DeliveryQuery, below: Option<String>) -> Self {
        let from = format!("{:016}", q.since.unix_millis().max(0));
        // `~` sorts after every id, so `until` itself is included.
        let until = format!("{:016}~", q.until.unix_millis().max(0));
        let to = match &below {
            Some(c) if *c < until => c.clone(),
            _ => until,
        };
        Self { from, to, below }
    }
}

/// What a page read of one endpoint's log: its matching deliveries, newest first, and,
/// when it did not read all of the window, the sort key it read down to.
#[derive(Default)]
struct EndpointLog {
    items: Vec<(String, Delivery)>,
    looked_down_to: Option<String>,
}

/// Merges endpoints' logs into one page, newest first. Only what lies above every
/// unfinished log's stopping point is complete; the cursor resumes below the page.
fn merge_logs(logs: Vec<EndpointLog>, limit: usize) -> Page<Delivery> {
    let floor = logs.iter().filter_map(|l| l.looked_down_to.clone()).max();
    let mut items: Vec<(String, Delivery)> = logs
        .into_iter()
        .flat_map(|l| l.items)
        .filter(|(sk, _)| floor.as_ref().is_none_or(|f| sk >= f))
        .collect();
    items.sort_by(|a, b| b.0.cmp(&a.0));
    let more = items.len() > limit || floor.is_some();
    items.truncate(limit);
    let next_cursor = match (more, items.last(), floor) {
        (false, _, _) => None,
        (true, Some((sk, _)), _) => Some(URL_SAFE_NO_PAD.encode(sk)),
        (true, None, floor) => floor.map(|f| URL_SAFE_NO_PAD.encode(f)),
    };
    Page {
        items: items.into_iter().map(|(_, d)| d).collect(),
        next_cursor,
    }
}

/// A log cursor: the sort key of the last delivery a page gave (or of where it
/// stopped reading), base64url.
fn decode_log_cursor(c: &str) -> PortResult<String> {
    let bad = || PortError::permanent("Query delivery log", BAD_CURSOR);
    let sk = URL_SAFE_NO_PAD
        .decode(c)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(bad)?;
    let (millis, id) = sk.split_once('#').ok_or_else(bad)?;
    // A delivery's sort key, or a batch's floor (where a read stopped).
    let id = id.strip_suffix('#').unwrap_or(id);
    if millis.len() != 16 || !millis.bytes().all(|b| b.is_ascii_digit()) || DeliveryId::parse(id).is_err() {
        return Err(bad());
    }
    Ok(sk)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventType;
    use crate::ids::EventId;
    use crate::timestamp::Timestamp;

    fn query(since: i64, until: i64) -> DeliveryQuery {
        DeliveryQuery {
            tenant: None,
            endpoint: None,
            status: None,
            event_type: None,
            since: Timestamp::from_unix_millis(since),
            until: Timestamp::from_unix_millis(until),
            limit: 2,
            cursor: None,
        }
    }

    fn delivery_at(ms: i64) -> (String, Delivery) {
        let d = Delivery::new(
            EventId::parse("evt_1").unwrap(),
            EndpointId::generate(),
            EventType::parse("a.b").unwrap(),
            1,
            Timestamp::from_unix_millis(ms),
        );
        (super::super::keys::delivery_sk(&d.id), d)
    }

    #[test]
    fn a_window_reads_from_since_to_until_included_or_to_the_cursor() {
        let w = LogWindow::new(&query(5, 10), None);
        assert_eq!(
            (w.from.as_str(), w.to.as_str()),
            ("0000000000000005", "0000000000000010~")
        );
        let below = "0000000000000007#dlv_x".to_owned();
        let w = LogWindow::new(&query(5, 10), Some(below.clone()));
        assert_eq!(w.to, below);
        // A cursor above `until` does not widen the window.
        let w = LogWindow::new(&query(5, 10), Some("0000000000000011#dlv_x".into()));
        assert_eq!(w.to, "0000000000000010~");
    }

    #[test]
    fn merged_logs_are_newest_first_and_a_full_page_has_a_cursor_below_it() {
        let (a, b, c) = (delivery_at(1), delivery_at(2), delivery_at(3));
        let logs = vec![
            EndpointLog {
                items: vec![c.clone(), a.clone()],
                looked_down_to: None,
            },
            EndpointLog {
                items: vec![b.clone()],
                looked_down_to: None,
            },
        ];
        let page = merge_logs(logs, 2);
        assert_eq!(page.items, vec![c.1, b.1.clone()]);
        let cursor = page.next_cursor.expect("one more");
        assert_eq!(decode_log_cursor(&cursor).unwrap(), b.0);
    }

    #[test]
    fn what_lies_below_an_unfinished_log_waits_for_the_next_page() {
        let (a, b) = (delivery_at(1), delivery_at(3));
        let logs = vec![
            EndpointLog {
                items: vec![a.clone()],
                looked_down_to: None,
            },
            // This log stopped reading at 2: what is below 2 elsewhere may not be complete.
            EndpointLog {
                items: vec![b.clone()],
                looked_down_to: Some(format!("{:016}", 2)),
            },
        ];
        let page = merge_logs(logs, 10);
        assert_eq!(page.items, vec![b.1]);
        assert_eq!(decode_log_cursor(&page.next_cursor.unwrap()).unwrap(), b.0);
        let empty = merge_logs(
            vec![EndpointLog {
                items: vec![],
                looked_down_to: Some(a.0.clone()),
            }],
            10,
        );
        assert!(empty.items.is_empty());
        assert_eq!(decode_log_cursor(&empty.next_cursor.unwrap()).unwrap(), a.0);
    }

    #[test]
    fn a_cursor_this_api_did_not_give_out_is_refused() {
        for bad in [
            "",
            "!!",
            &URL_SAFE_NO_PAD.encode("12#dlv_x"),
            &URL_SAFE_NO_PAD.encode("000000000000000x#dlv_x"),
        ] {
            assert!(decode_log_cursor(bad).unwrap_err().is_permanent(), "{bad}");
        }
    }
}
