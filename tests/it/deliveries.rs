//! The delivery log on DynamoDB (each endpoint's partition, merged for the whole log): listing with filters and cursors, one
//! delivery with its attempts, an event with its deliveries, and retry.

use crate::support::*;
use serde_json::{Value, json};

async fn send(h: &Harness, id: &str, event_type: &str) {
    let body = json!({"id": id, "event_type": event_type, "data": {}}).to_string();
    let r = h
        .call_ingest("POST", "/v1/events", Some(INGEST_KEY), Some(&body))
        .await;
    assert_eq!(r.status, 202, "{}", r.json);
}

fn ids(page: &Value) -> Vec<String> {
    event_ids(page["data"].as_array().unwrap())
}

fn event_ids(deliveries: &[Value]) -> Vec<String> {
    deliveries
        .iter()
        .map(|d| d["event_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_delivery_log_lists_newest_first_with_filters_and_cursors() {
    // GIVEN three events to a healthy endpoint and a failing one
    let h = Harness::new().await;
    let rx = Receiver::start().await;
    rx.answer("/down", 500, "");
    let (up, _) = h.register("up", &rx.url("/up"), &["*"]).await;
    let (down, _) = h.register("down", &rx.url("/down"), &["agent.*"]).await;
    for (id, t) in [("e1", "agent.a"), ("e2", "tool.b"), ("e3", "agent.c")] {
        send(&h, id, t).await;
        h.pump().await;
    }

    // One endpoint's log, newest first
    let r = h
        .call_admin(
            "GET",
            &format!("/v1/deliveries?endpoint_id={up}"),
            Some(ADMIN_KEY),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(ids(&r.json), ["e3", "e2", "e1"]);
    assert_eq!(r.json["data"][0]["status"], "delivered");

    // Filtered by status and by event type
    let r = h
        .call_admin("GET", "/v1/deliveries?status=retrying", Some(ADMIN_KEY), None)
        .await;
    assert_eq!(ids(&r.json), ["e3", "e1"]);
    assert!(
        r.json["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["endpoint_id"] == down.as_str())
    );
    let r = h
        .call_admin("GET", "/v1/deliveries?event_type=tool.b", Some(ADMIN_KEY), None)
        .await;
    assert_eq!(ids(&r.json), ["e2"]);

    // The whole log, two at a time
    let seen = event_ids(&h.read_all("/v1/deliveries", 2, 5).await);
    assert_eq!(seen.len(), 5, "{seen:?}");
    assert_eq!(seen.first().map(String::as_str), Some("e3"));

    // Bad input is named
    let r = h
        .call_admin(
            "GET",
            "/v1/deliveries?status=lost&since=yesterday&colour=red",
            Some(ADMIN_KEY),
            None,
        )
        .await;
    assert_eq!(r.status, 422);
    let ptrs: Vec<&str> = r.json["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    assert_eq!(ptrs, ["?status", "?since", "?colour"]);
    let r = h
        .call_admin("GET", "/v1/deliveries?cursor=bm9wZQ", Some(ADMIN_KEY), None)
        .await;
    assert_eq!(r.status, 422, "{}", r.json);
}

#[tokio::test]
async fn a_delivery_shows_every_attempt_and_an_event_its_deliveries() {
    let h = Harness::new().await;
    let rx = Receiver::start().await;
    rx.answer("/down", 503, "maintenance");
    h.register("down", &rx.url("/down"), &["*"]).await;
    send(&h, "evt-view", "agent.run.failed").await;
    h.pump().await;

    let event = h
        .call_admin("GET", "/v1/events/evt-view", Some(ADMIN_KEY), None)
        .await;
    assert_eq!(event.status, 200, "{}", event.json);
    assert_eq!(event.json["event"]["event_type"], "agent.run.failed");
    assert_eq!(event.json["fanned_out"], true);
    let delivery_id = event.json["deliveries"][0]["id"].as_str().unwrap().to_owned();

    let d = h
        .call_admin(
            "GET",
            &format!("/v1/deliveries/{delivery_id}"),
            Some(ADMIN_KEY),
            None,
        )
        .await;
    assert_eq!(d.status, 200, "{}", d.json);
    assert_eq!(d.json["status"], "retrying");
    assert_eq!(d.json["attempt_count"], 1);
    let attempt = &d.json["attempts"][0];
    assert_eq!(
        (attempt["number"].as_u64(), attempt["status"].as_u64()),
        (Some(1), Some(503))
    );
    assert_eq!(attempt["body"], "maintenance");

    for path in [
        "/v1/events/nope",
        "/v1/deliveries/dlv_0192",
        "/v1/deliveries/not-an-id",
    ] {
        assert_eq!(
            h.call_admin("GET", path, Some(ADMIN_KEY), None).await.status,
            404,
            "{path}"
        );
    }
}

#[tokio::test]
async fn a_failed_delivery_is_sent_again_on_request() {
    // GIVEN a delivery that failed its only attempt
    let h = Harness::new().await;
    let rx = Receiver::start().await;
    rx.answer("/once", 500, "");
    let body = json!({"name": "once", "url": rx.url("/once"), "max_attempts": 1}).to_string();
    assert_eq!(
        h.call_admin("POST", "/v1/endpoints", Some(ADMIN_KEY), Some(&body))
            .await
            .status,
        201
    );
    send(&h, "evt-retry", "agent.x").await;
    h.pump().await;
    let event = h
        .call_admin("GET", "/v1/events/evt-retry", Some(ADMIN_KEY), None)
        .await;
    assert_eq!(event.json["deliveries"][0]["status"], "failed");
    let id = event.json["deliveries"][0]["id"].as_str().unwrap().to_owned();

    // WHEN the receiver is fixed and an operator asks for a retry
    rx.answer("/once", 200, "ok");
    let r = h
        .call_admin(
            "POST",
            &format!("/v1/deliveries/{id}/retry"),
            Some(ADMIN_KEY),
            None,
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.json);
    assert_eq!(r.json["status"], "retrying");
    h.pump().await;

    // THEN it is delivered on a second attempt, with the same webhook-id
    let d = h
        .call_admin("GET", &format!("/v1/deliveries/{id}"), Some(ADMIN_KEY), None)
        .await;
    assert_eq!(
        (d.json["status"].as_str(), d.json["attempt_count"].as_u64()),
        (Some("delivered"), Some(2))
    );
    let got = rx.received("/once");
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|r| r.header("webhook-id") == "evt-retry"));
}

#[tokio::test]
async fn stats_come_from_hourly_counters_kept_as_deliveries_happen() {
    let h = Harness::new().await;
    let rx = Receiver::start().await;
    rx.answer("/down", 500, "");
    let (up, _) = h.register("up", &rx.url("/up"), &["*"]).await;
    let body = json!({"name": "down", "url": rx.url("/down"), "max_attempts": 1}).to_string();
    assert_eq!(
        h.call_admin("POST", "/v1/endpoints", Some(ADMIN_KEY), Some(&body))
            .await
            .status,
        201
    );
    for i in 0..3 {
        send(&h, &format!("st-{i}"), "agent.x").await;
    }
    h.pump().await;

    let all = h
        .call_admin("GET", "/v1/stats?hours=1", Some(ADMIN_KEY), None)
        .await;
    assert_eq!(all.status, 200, "{}", all.json);
    let t = &all.json["totals"];
    assert_eq!(
        (
            t["attempts"].as_u64(),
            t["delivered"].as_u64(),
            t["failed"].as_u64()
        ),
        (Some(6), Some(3), Some(3))
    );
    assert_eq!(t["success_rate"], 0.5);
    assert_eq!(all.json["endpoints"].as_array().unwrap().len(), 2);

    let one = h
        .call_admin("GET", &format!("/v1/endpoints/{up}/stats"), Some(ADMIN_KEY), None)
        .await;
    assert_eq!(one.json["stats"]["success_rate"], 1.0, "{}", one.json);
    assert!(one.json["stats"]["mean_response_ms"].is_u64());
    assert!(one.json["stats"]["p95_response_ms"].is_u64());
    assert!(one.json["stats"]["p50_response_ms"].is_u64());

    // By hour (the console's charts): every hour of the range, oldest first, this one last.
    let series = h
        .call_admin("GET", "/v1/stats?hours=3&by=hour", Some(ADMIN_KEY), None)
        .await;
    assert_eq!(series.status, 200, "{}", series.json);
    let hours = series.json["series"].as_array().expect("a series");
    assert_eq!(hours.len(), 3);
    assert!(
        hours
            .windows(2)
            .all(|w| w[0]["hour"].as_str() < w[1]["hour"].as_str())
    );
    let attempts: Vec<_> = hours.iter().map(|e| e["stats"]["attempts"].as_u64()).collect();
    // The counters are kept per hour of the attempt; a run across the hour splits them.
    assert_eq!(attempts.iter().flatten().sum::<u64>(), 6, "{}", series.json);
    assert_eq!(attempts[0], Some(0));
    assert_eq!(
        h.call_admin("GET", "/v1/stats?by=day", Some(ADMIN_KEY), None)
            .await
            .status,
        422
    );
    assert_eq!(
        h.call_admin("GET", "/v1/stats?hours=0", Some(ADMIN_KEY), None)
            .await
            .status,
        422
    );
}

#[tokio::test]
async fn the_whole_log_merges_every_endpoints_log_a_deleted_ones_too_newest_first() {
    // GIVEN three endpoints that each took some of six events, one of them deleted since
    let h = Harness::new().await;
    let rx = Receiver::start().await;
    let mut eps = Vec::new();
    for name in ["a", "b", "c"] {
        let (id, _) = h
            .register(name, &rx.url(&format!("/{name}")), &[&format!("{name}.*")])
            .await;
        eps.push(id);
    }
    for (id, t) in [
        ("m1", "a.x"),
        ("m2", "c.x"),
        ("m3", "b.x"),
        ("m4", "c.y"),
        ("m5", "a.y"),
        ("m6", "b.y"),
    ] {
        send(&h, id, t).await;
        h.pump().await;
    }
    let gone = &eps[2];
    let r = h
        .call_admin("DELETE", &format!("/v1/endpoints/{gone}"), Some(ADMIN_KEY), None)
        .await;
    assert_eq!(r.status, 204, "{}", r.json);

    // WHEN the whole log is read two at a time
    let seen = event_ids(&h.read_all("/v1/deliveries", 2, 10).await);

    // THEN every delivery comes once, newest first, the deleted endpoint's among them,
    // and one of those is still found by its id
    assert_eq!(seen, ["m6", "m5", "m4", "m3", "m2", "m1"]);
    let r = h
        .call_admin("GET", "/v1/deliveries?event_type=c.y", Some(ADMIN_KEY), None)
        .await;
    let id = r.json["data"][0]["id"].as_str().unwrap().to_owned();
    let r = h
        .call_admin("GET", &format!("/v1/deliveries/{id}"), Some(ADMIN_KEY), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["endpoint_id"], gone.as_str());
}

#[tokio::test]
async fn a_filter_that_matches_little_pages_on_from_where_the_read_stopped() {
    use hookline::delivery::{Delivery, DeliveryStatus};
    use hookline::ports::{DeliveryQuery, DeliveryStore};
    // GIVEN an endpoint with forty delivered deliveries above its one failed one
    let h = Harness::new().await;
    let rx = Receiver::start().await;
    let (ep, _) = h.register("busy", &rx.url("/busy"), &["*"]).await;
    let ep = hookline::EndpointId::parse(&ep).unwrap();
    let t0 = hookline::Timestamp::now().minus(std::time::Duration::from_secs(60));
    let mut records = Vec::new();
    for i in 0..41 {
        let at = t0.saturating_add(std::time::Duration::from_millis(i));
        let event = hookline::EventId::parse(&format!("busy-{i:02}")).unwrap();
        let mut d = Delivery::new(
            event,
            ep.clone(),
            hookline::event::EventType::parse("a.b").unwrap(),
            3,
            at,
        );
        if i == 0 {
            d.fail("test", at);
        } else {
            d.status = DeliveryStatus::Delivered;
            d.next_attempt_at = None;
        }
        records.push(d);
    }
    let writes: Vec<_> = records.iter().map(|d| (d, None)).collect();
    h.store().record_attempts(&writes).await.unwrap();

    // WHEN the failed ones are asked for one at a time
    let mut query = DeliveryQuery {
        tenant: None,
        endpoint: None,
        status: Some(DeliveryStatus::Failed),
        event_type: None,
        since: t0.minus(std::time::Duration::from_secs(1)),
        until: hookline::Timestamp::now(),
        limit: 1,
        cursor: None,
    };
    let (mut found, mut pages) = (Vec::new(), 0);
    loop {
        let page = h.store().list_deliveries(&query).await.unwrap();
        pages += 1;
        found.extend(page.items.into_iter().map(|d| d.event_id.to_string()));
        match page.next_cursor {
            Some(c) => query.cursor = Some(c),
            None => break,
        }
        assert!(pages < 20, "the walk must end");
    }

    // THEN a page stops after a bounded read, and the next goes on from there to find it
    assert_eq!(found, ["busy-00"]);
    assert!(pages > 1, "one page read all 41 items: {pages}");
}

#[tokio::test]
async fn a_window_that_ends_before_it_starts_is_an_empty_page() {
    // GIVEN a delivery today; WHEN the log is asked for what is older than the retention
    let h = Harness::new().await;
    let rx = Receiver::start().await;
    h.register("up", &rx.url("/up"), &["*"]).await;
    send(&h, "today", "agent.a").await;
    h.pump().await;
    let r = h
        .call_admin(
            "GET",
            "/v1/deliveries?until=2001-01-01T00:00:00Z",
            Some(ADMIN_KEY),
            None,
        )
        .await;
    // THEN the answer is an empty last page, not an error
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["data"], json!([]));
    assert_eq!(r.json["next_cursor"], Value::Null);
}
