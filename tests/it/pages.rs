//! Pages on DynamoDB: a batch's deliveries to one endpoint that ended at their first
//! attempt are one item, and each is still found by its id, by its event and in the
//! log, once, whatever the cursor; one that must change moves to an item of its own.

use crate::support::*;
use aws_sdk_dynamodb::types::AttributeValue;
use hookline::adapters::dynamo::DynamoStore;
use hookline::delivery::{Attempt, AttemptOutcome, Delivery};
use hookline::event::EventType;
use hookline::id_batch::DeliveryIdBatch;
use hookline::ids::{DeliveryId, EndpointId, EventId, TenantId};
use hookline::ports::{DeliveryQuery, DeliveryStore};
use hookline::retry::RetryPolicy;
use hookline::timestamp::Timestamp;
use serde_json::{Value, json};
use std::collections::HashMap;

/// Every item of an endpoint's log partition, as stored.
async fn log_items(h: &Harness, ep: &str) -> Vec<HashMap<String, AttributeValue>> {
    let out = h
        .dynamo
        .query()
        .table_name(h.stack.table("Table"))
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(format!("EP#{ep}")))
        .consistent_read(true)
        .send()
        .await
        .expect("query the log partition");
    out.items().to_vec()
}

/// How many entries a page item holds.
fn entries(item: &HashMap<String, AttributeValue>) -> usize {
    item.keys().filter(|k| k.len() == 5 && k.starts_with('d')).count()
}

fn field<'a>(items: &'a [Value], key: &str) -> Vec<&'a str> {
    items.iter().map(|d| d[key].as_str().unwrap()).collect()
}

#[tokio::test]
async fn a_batch_to_one_endpoint_is_one_page_and_each_delivery_is_found_by_id_by_event_and_in_the_log() {
    // GIVEN an endpoint that answers and one that fails, and twelve events in one batch
    let h = Harness::new().await;
    let rx = Receiver::start().await;
    rx.answer("/down", 500, "");
    let (up, _) = h.register("up", &rx.url("/up"), &["*"]).await;
    let (down, _) = h.register("down", &rx.url("/down"), &["agent.*"]).await;
    let events: Vec<Value> = (0..12)
        .map(|i| {
            let t = if i % 3 == 0 { "tool.x" } else { "agent.x" };
            json!({"id": format!("pg-{i:02}"), "event_type": t, "data": {"i": i}})
        })
        .collect();

    // WHEN they are delivered
    h.send_batch(&events).await;
    h.pump().await;
    assert_eq!(rx.received("/up").len(), 12);

    // THEN the answering endpoint's log is pages alone, fewer items than deliveries,
    // and the failing one's retrying deliveries are items of their own
    let items = log_items(&h, &up).await;
    assert!(items.iter().all(|i| i.contains_key("page")), "{items:?}");
    assert!(items.len() < 12, "{} pages", items.len());
    assert_eq!(items.iter().map(entries).sum::<usize>(), 12);
    let items = log_items(&h, &down).await;
    assert_eq!(items.len(), 8);
    assert!(items.iter().all(|i| !i.contains_key("page")));

    // Each found by its id, with its attempt, and by its event
    let log = h
        .read_all(&format!("/v1/deliveries?endpoint_id={up}"), 5, 10)
        .await;
    let mut listed = field(&log, "event_id");
    assert_eq!(listed.len(), 12, "{listed:?}");
    let ids = field(&log, "id");
    let mut newest_first = ids.clone();
    newest_first.sort_by(|a, b| b.cmp(a));
    assert_eq!(ids, newest_first);
    for id in &ids {
        let d = h
            .call_admin("GET", &format!("/v1/deliveries/{id}"), Some(ADMIN_KEY), None)
            .await;
        assert_eq!(d.status, 200, "{}", d.json);
        assert_eq!(d.json["status"], "delivered");
        assert_eq!(d.json["attempts"].as_array().unwrap().len(), 1, "{}", d.json);
    }
    let e = h
        .call_admin("GET", "/v1/events/pg-01", Some(ADMIN_KEY), None)
        .await;
    let statuses: Vec<(&str, &str)> = e.json["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["endpoint_id"].as_str().unwrap(), d["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        [(up.as_str(), "delivered"), (down.as_str(), "retrying")]
    );

    // And the filters hold for entries as for items
    listed.sort_unstable();
    let want: Vec<String> = (0..12).map(|i| format!("pg-{i:02}")).collect();
    assert_eq!(listed, want);
    let delivered = h.read_all("/v1/deliveries?status=delivered", 5, 10).await;
    assert_eq!(delivered.len(), 12);
    let retrying = h.read_all("/v1/deliveries?status=retrying", 5, 10).await;
    assert_eq!(retrying.len(), 8);
    let tools = h.read_all("/v1/deliveries?event_type=tool.x", 3, 10).await;
    assert_eq!(field(&tools, "event_id"), ["pg-09", "pg-06", "pg-03", "pg-00"]);

    // A copy of an event kept in a page is not sent again
    h.send_batch(&events[..1]).await;
    h.pump().await;
    assert_eq!(rx.received("/up").len(), 12);
}

#[tokio::test]
async fn a_paged_delivery_an_operator_retries_moves_to_an_item_of_its_own_and_is_listed_once() {
    // GIVEN an event delivered alone (an item: alone, an entry costs what an item
    // does) and two delivered together (a page)
    let h = Harness::new().await;
    let rx = Receiver::start().await;
    let (up, _) = h.register("up", &rx.url("/up"), &["*"]).await;
    h.send_batch(&[json!({"id": "pg-alone", "event_type": "agent.x", "data": {}})])
        .await;
    h.pump().await;
    let items = log_items(&h, &up).await;
    assert_eq!(items.len(), 1);
    assert!(!items[0].contains_key("page"));
    h.send_batch(&[
        json!({"id": "pg-retry", "event_type": "agent.x", "data": {}}),
        json!({"id": "pg-stay", "event_type": "agent.x", "data": {}}),
    ])
    .await;
    h.pump().await;
    let items = log_items(&h, &up).await;
    assert_eq!(
        (
            items.len(),
            items
                .iter()
                .filter(|i| i.contains_key("page"))
                .map(entries)
                .sum::<usize>()
        ),
        (2, 2)
    );
    let e = h
        .call_admin("GET", "/v1/events/pg-retry", Some(ADMIN_KEY), None)
        .await;
    let id = e.json["deliveries"][0]["id"].as_str().unwrap().to_owned();

    // WHEN an operator retries one of the two
    let path = format!("/v1/deliveries/{id}/retry");
    let retry = || h.call_admin("POST", &path, Some(ADMIN_KEY), None);
    let r = retry().await;
    assert_eq!((r.status, r.json["status"].as_str()), (202, Some("retrying")));

    // THEN it is an item of its own, listed once, as it is now, before and after
    assert_eq!(
        log_items(&h, &up).await.len(),
        3,
        "its page, its own item, the other"
    );
    let listed = |status: &'static str| {
        let h = &h;
        async move {
            h.read_all(&format!("/v1/deliveries?status={status}"), 1, 5)
                .await
                .len()
        }
    };
    assert_eq!((listed("retrying").await, listed("delivered").await), (1, 2));
    h.pump().await;
    assert_eq!((listed("retrying").await, listed("delivered").await), (0, 3));
    let d = h
        .call_admin("GET", &format!("/v1/deliveries/{id}"), Some(ADMIN_KEY), None)
        .await;
    assert_eq!(d.json["attempt_count"], 2, "{}", d.json);
    assert_eq!(d.json["attempts"].as_array().unwrap().len(), 2);
    assert_eq!(rx.received("/up").len(), 4);
    // A second retry goes as any item's does
    let r = retry().await;
    assert_eq!(r.status, 202, "{}", r.json);
    h.pump().await;
    assert_eq!(rx.received("/up").len(), 5);
}

/// A delivery of `batch`'s next slot to `ep`: delivered at its first attempt when
/// `delivered`, else retrying.
fn made(batch: &DeliveryIdBatch, ep: &EndpointId, i: u32, delivered: bool) -> (Delivery, Attempt) {
    let now = Timestamp::now();
    let mut d = Delivery::new(
        EventId::parse(&format!("ev-{i}")).unwrap(),
        ep.clone(),
        EventType::parse("agent.x").unwrap(),
        5,
        now,
    );
    d.id = batch.for_targets([ep]).remove(0);
    let outcome = AttemptOutcome::Response {
        status: if delivered { 200 } else { 503 },
        body: String::new(),
        retry_after_seconds: None,
    };
    let verdict = RetryPolicy::with_max_attempts(5).judge(1, &outcome, 0.5);
    d.apply(&outcome, &verdict, now);
    let a = Attempt {
        number: 1,
        started_at: now,
        duration_ms: 3,
        outcome,
    };
    (d, a)
}

/// What `record_attempts` takes: each delivery with its first attempt.
fn records(made: &[(Delivery, Attempt)]) -> Vec<(&Delivery, Option<&Attempt>)> {
    made.iter().map(|(d, a)| (d, Some(a))).collect()
}

/// An endpoint's whole log through the store, `limit` at a time by its cursor: the
/// deliveries' ids, newest first.
async fn read_log(store: &DynamoStore, ep: &EndpointId, limit: u32) -> Vec<DeliveryId> {
    let mut got = Vec::new();
    let mut cursor = None;
    for _ in 0..20 {
        let page = store
            .list_deliveries(&DeliveryQuery {
                tenant: None,
                endpoint: Some(ep.clone()),
                status: None,
                event_type: None,
                since: Timestamp::from_unix_millis(0),
                until: Timestamp::now(),
                limit,
                cursor: cursor.take(),
            })
            .await
            .unwrap();
        got.extend(page.items.into_iter().map(|d| d.id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    got
}

#[tokio::test]
async fn a_page_written_in_two_steps_keeps_both_and_a_read_cut_inside_its_batch_misses_nothing() {
    // GIVEN one batch's seven deliveries to an endpoint, every other one still
    // retrying, recorded in two steps (as a fan-out cut short and resumed is)
    let h = Harness::new().await;
    let store = h.store();
    let ep = EndpointId::generate();
    let batch = DeliveryIdBatch::new(Timestamp::now());
    let made: Vec<(Delivery, Attempt)> = (0..7).map(|i| made(&batch, &ep, i, i % 2 == 0)).collect();
    let records = records(&made);
    store.record_attempts(&records[..3]).await.unwrap();
    store.record_attempts(&records[3..]).await.unwrap();

    // THEN each step wrote a page of its delivered ones (a write never rebills
    // another's page), and the three retrying are items
    let items = log_items(&h, ep.as_str()).await;
    let pages: Vec<usize> = items
        .iter()
        .filter(|i| i.contains_key("page"))
        .map(entries)
        .collect();
    assert_eq!((pages, items.len()), (vec![2, 2], 5));
    for (d, a) in &made {
        let (found, attempts) = store.find_delivery(&d.id).await.unwrap().expect("found");
        assert_eq!((&found, attempts.as_slice()), (d, std::slice::from_ref(a)));
    }
    // And the log, read a few at a time, gives each once, newest first, whichever
    // item a read stops at
    let mut want: Vec<DeliveryId> = made.iter().map(|(d, _)| d.id.clone()).collect();
    want.sort_by(|a, b| b.cmp(a));
    for limit in 1..=4 {
        assert_eq!(read_log(&store, &ep, limit).await, want, "{limit} at a time");
    }
}

#[tokio::test]
async fn a_named_tenants_page_is_its_own_and_no_other_tenant_lists_it() {
    // GIVEN two deliveries of tenant acme's, delivered together
    let h = Harness::new().await;
    let store = h.store();
    let ep = EndpointId::generate();
    let acme = TenantId::parse("acme").unwrap();
    let batch = DeliveryIdBatch::new(Timestamp::now());
    let made: Vec<(Delivery, Attempt)> = (0..2)
        .map(|i| {
            let (mut d, a) = made(&batch, &ep, i, true);
            d.tenant_id = acme.clone();
            (d, a)
        })
        .collect();
    let records = records(&made);
    store.record_attempts(&records).await.unwrap();
    let items = log_items(&h, ep.as_str()).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["tenant_id"], AttributeValue::S("acme".into()));

    // THEN acme's log lists both, as acme's; the default tenant's lists neither
    let listed = |tenant: TenantId| {
        let store = &store;
        let ep = ep.clone();
        async move {
            store
                .list_deliveries(&DeliveryQuery {
                    tenant: Some(tenant),
                    endpoint: Some(ep),
                    status: None,
                    event_type: None,
                    since: Timestamp::from_unix_millis(0),
                    until: Timestamp::now(),
                    limit: 10,
                    cursor: None,
                })
                .await
                .unwrap()
                .items
        }
    };
    let theirs = listed(acme.clone()).await;
    assert_eq!(theirs.len(), 2);
    assert!(theirs.iter().all(|d| d.tenant_id == acme));
    assert!(listed(TenantId::default()).await.is_empty());
    let (found, _) = store.find_delivery(&made[0].0.id).await.unwrap().unwrap();
    assert_eq!(found.tenant_id, acme);
}

#[tokio::test]
async fn deliveries_two_workers_wrote_to_two_pages_are_listed_once() {
    // GIVEN a batch's three deliveries written by one worker, and two of them written
    // again by another that resumed their fan-out meanwhile (so into a page of its own)
    let h = Harness::new().await;
    let store = h.store();
    let ep = EndpointId::generate();
    let batch = DeliveryIdBatch::new(Timestamp::now());
    let made: Vec<(Delivery, Attempt)> = (0..3).map(|i| made(&batch, &ep, i, true)).collect();
    let records = records(&made);
    store.record_attempts(&records).await.unwrap();
    store.record_attempts(&records[1..]).await.unwrap();
    let pages: Vec<usize> = log_items(&h, ep.as_str()).await.iter().map(entries).collect();
    assert_eq!(pages, vec![3, 2]);

    // THEN the log gives each once, a few at a time or all at once
    let mut want: Vec<DeliveryId> = made.iter().map(|(d, _)| d.id.clone()).collect();
    want.sort_by(|a, b| b.cmp(a));
    for limit in [1, 2, 10] {
        assert_eq!(read_log(&store, &ep, limit).await, want, "{limit} at a time");
    }
    for (d, _) in &made {
        assert!(store.find_delivery(&d.id).await.unwrap().is_some());
    }
}
