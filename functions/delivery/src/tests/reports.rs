//! Hookline's own events: made from what the store holds when a report names it, never
//! from what a queue message says.

use super::*;

/// A batch holding every report queued so far, one record each.
fn reports_batch(d: &Subject) -> SqsEvent {
    let mut batch = fixture();
    let template = batch.records.remove(0);
    let reports = d
        .queue
        .sent()
        .into_iter()
        .filter(|m| matches!(m, QueueMessage::ReportV1 { .. }));
    for (i, m) in reports.enumerate() {
        let mut r = template.clone();
        r.body = Some(m.to_body());
        r.message_id = Some(format!("report-{i}"));
        batch.records.push(r);
    }
    batch
}

fn bodies_to(d: &Subject, url: &str) -> Vec<serde_json::Value> {
    d.sender
        .requests()
        .into_iter()
        .filter(|r| r.url == url)
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

#[tokio::test]
async fn a_report_becomes_hooklines_event_made_from_the_store() {
    // GIVEN an endpoint that answers 410 Gone, and an operator's subscribed to `hookline.*`
    let gone = endpoint("gone", &["*"]);
    let ops = endpoint("ops", &["hookline.*"]);
    let d = subject(&[&gone, &ops]).await;
    d.sender.answer(&gone.url, [response(410)]);
    d.handle(fixture()).await;
    // WHEN the reports that queued are handled
    assert!(d.handle(reports_batch(&d)).await.batch_item_failures.is_empty());
    // THEN the operator gets both events, with what the store holds
    let mut got = bodies_to(&d, &ops.url);
    got.sort_by_key(|b| b["event_type"].as_str().unwrap_or_default().to_owned());
    let types: Vec<&str> = got.iter().filter_map(|b| b["event_type"].as_str()).collect();
    assert_eq!(
        types,
        ["hookline.delivery.exhausted", "hookline.endpoint.disabled"]
    );
    assert_eq!(got[0]["data"]["reason"], "the endpoint answered 410 Gone");
    assert_eq!(got[0]["data"]["event_id"], FIXTURE_EVENT_ID);
    assert_eq!(got[1]["data"]["endpoint_id"], gone.id.as_str());
    assert_eq!(got[1]["data"]["reason"], "the endpoint answered 410 Gone");
    // AND the same reports again are the same events, delivered once
    d.handle(reports_batch(&d)).await;
    assert_eq!(bodies_to(&d, &ops.url).len(), 2);
}

#[tokio::test]
async fn a_report_of_what_the_store_does_not_hold_sends_nothing() {
    // GIVEN an active endpoint and a delivery that succeeded
    let fine = endpoint("fine", &["*"]);
    let ops = endpoint("ops", &["hookline.*"]);
    let d = subject(&[&fine, &ops]).await;
    d.handle(fixture()).await;
    let delivered = delivery_of(&d, &fine).await;
    // WHEN reports claim that it failed and that the endpoint is disabled
    let mut batch = fixture();
    let template = batch.records.remove(0);
    for (i, report) in [
        hookline::ops::Report::DeliveryExhausted {
            delivery_id: delivered.id.clone(),
        },
        hookline::ops::Report::EndpointDisabled {
            endpoint_id: fine.id.clone(),
        },
    ]
    .into_iter()
    .enumerate()
    {
        let mut r = template.clone();
        r.body = Some(QueueMessage::ReportV1 { report }.to_body());
        r.message_id = Some(format!("forged-report-{i}"));
        batch.records.push(r);
    }
    // THEN they are acknowledged and nothing is sent
    assert!(d.handle(batch).await.batch_item_failures.is_empty());
    assert!(bodies_to(&d, &ops.url).is_empty());
}

#[tokio::test]
async fn an_event_message_with_a_reserved_type_is_kept_as_a_dead_letter_not_delivered() {
    // GIVEN an operator's endpoint subscribed to `hookline.*`
    let ops = endpoint("ops", &["hookline.*", "*"]);
    let d = subject(&[&ops]).await;
    // WHEN an event message arrives that claims to be Hookline's own, in any case
    let mut batch = fixture();
    let template = batch.records.remove(0);
    for (i, t) in ["hookline.endpoint.disabled", "HookLine.delivery.exhausted"]
        .iter()
        .enumerate()
    {
        let Some(Work::Event(mut e)) = parse(&template).pop() else {
            panic!("an event")
        };
        e.id = EventId::parse(&format!("forged_{i}")).unwrap();
        e.event_type = hookline::EventType::parse(t).unwrap();
        let mut r = template.clone();
        r.body = Some(QueueMessage::EventV1 { event: e }.to_body());
        r.message_id = Some(format!("forged-{i}"));
        batch.records.push(r);
    }
    // THEN nothing is sent, and each is kept where the operator sees it
    assert!(d.handle(batch).await.batch_item_failures.is_empty());
    assert!(d.sender.requests().is_empty());
    let kept = d.store.dead_letters.lock().unwrap().clone();
    assert_eq!(kept.len(), 2);
    assert!(kept.iter().all(|k| k.reason.starts_with("forged: ")), "{kept:?}");
}

#[tokio::test]
async fn an_event_message_the_version_before_reports_queued_is_read_as_its_report() {
    // GIVEN a delivery that failed, and its operational event queued the old way (an
    // event message), as a rollout may find it on the queue
    let gone = endpoint("gone", &["*"]);
    let ops = endpoint("ops", &["hookline.*"]);
    let d = subject(&[&gone, &ops]).await;
    d.sender.answer(&gone.url, [response(410)]);
    d.handle(fixture()).await;
    let failed = delivery_of(&d, &gone).await;
    let old = hookline::Event {
        id: EventId::parse(&format!("hookline.delivery.exhausted:{}", failed.id)).unwrap(),
        tenant_id: Default::default(),
        event_type: hookline::EventType::parse("hookline.delivery.exhausted").unwrap(),
        data: serde_json::json!({"made": "by the version before"}),
        timestamp: d.clock.now(),
        source: "hookline".into(),
        version: "1".into(),
        expires_at: None,
        collapse_key: None,
        data_ref: None,
        order: None,
    };
    let mut batch = fixture();
    batch.records[0].body = Some(QueueMessage::EventV1 { event: old }.to_body());
    // WHEN it is handled
    assert!(d.handle(batch).await.batch_item_failures.is_empty());
    // THEN the operator gets the event the store makes, not a dead letter
    let got = bodies_to(&d, &ops.url);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["data"]["reason"], "the endpoint answered 410 Gone");
    assert!(d.store.dead_letters.lock().unwrap().is_empty());
}
