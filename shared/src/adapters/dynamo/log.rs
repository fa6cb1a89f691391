//! The delivery log: each endpoint's partition is its log, newest last; the whole log
//! merges the endpoints' (the live ones' and the deleted ones' still kept), a bounded
//! read of each per page, with a cursor that resumes below the page.

use super::delivery_items::delivery_from_item;
use super::endpoints::BAD_CURSOR;
use super::keys::delivery_pk;
use super::reader::Reader;
use super::{DynamoStore, Item, s};
use crate::adapters::classify;
use crate::delivery::Delivery;
use crate::ids::{DeliveryId, EndpointId};
use crate::ports::{DeliveryQuery, Page, PortError, PortResult};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::{StreamExt, stream};

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
    /// deliveries, reading at most `LOG_QUERIES_PER_ENDPOINT` query pages.
    async fn read_log(&self, ep: &EndpointId, q: &DeliveryQuery, w: &LogWindow) -> PortResult<EndpointLog> {
        let mut log = EndpointLog::default();
        let mut start: Option<Item> = None;
        for _ in 0..LOG_QUERIES_PER_ENDPOINT {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
                .expression_attribute_values(":pk", s(delivery_pk(ep)))
                .expression_attribute_values(":from", s(&w.from))
                .expression_attribute_values(":to", s(&w.to))
                .scan_index_forward(false)
                .limit(i32::try_from(q.limit + 1).unwrap_or(i32::MAX));
            let mut filters = Vec::new();
            if let Some(st) = q.status {
                filters.push("#st = :st");
                query = query
                    .expression_attribute_names("#st", "status")
                    .expression_attribute_values(":st", s(st.as_str()));
            }
            if let Some(t) = &q.event_type {
                filters.push("event_type = :et");
                query = query.expression_attribute_values(":et", s(t.as_str()));
            }
            // An endpoint's log is its tenant's; this holds even for an endpoint named
            // by a caller of another tenant.
            match &q.tenant {
                Some(t) if t.is_default() => filters.push("attribute_not_exists(tenant_id)"),
                Some(t) => {
                    filters.push("tenant_id = :tn");
                    query = query.expression_attribute_values(":tn", s(t.as_str()));
                }
                None => {}
            }
            if !filters.is_empty() {
                query = query.filter_expression(filters.join(" AND "));
            }
            let out = query
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| classify("Query delivery log", e))?;
            for item in out.items() {
                let sk = Reader(item).str("sk")?;
                // The cursor's own item was on the page before.
                if w.below.as_deref() == Some(sk) {
                    continue;
                }
                log.items.push((sk.to_owned(), delivery_from_item(item)?));
            }
            let more = out.last_evaluated_key().filter(|k| !k.is_empty());
            match more {
                Some(k) if log.items.len() < q.limit as usize => start = Some(k.clone()),
                Some(k) => {
                    log.looked_down_to = Reader(k).opt_str("sk").map(str::to_owned);
                    return Ok(log);
                }
                None => return Ok(log),
            }
        }
        // Read as much as one request may: the rest is below where it stopped.
        log.looked_down_to = start
            .as_ref()
            .and_then(|k| Reader(k).opt_str("sk"))
            .map(str::to_owned);
        Ok(log)
    }
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
