//! Events whose data is checked in (`hookline::claim_check`): each endpoint gets the
//! whole event up to its `max_body_bytes`, a thin one with a `data_url` above it.

use super::*;
use hookline::claim_check::check_in;
use hookline::memory::MemoryData;
use hookline::ports::DataStore;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// The fixture's event with 300 KB of state, checked in as ingest does: the event as
/// it travels, and the envelope it had whole.
async fn large(data: &MemoryData) -> (Event, String) {
    let Some(Work::Event(mut e)) = parse(&fixture().records[0]).pop() else {
        panic!("an event")
    };
    e.data = json!({"status": "success", "values": {"messages": ["é \"x\" ".repeat(30_000)]}});
    let whole = e.envelope_json();
    let bytes = check_in(&mut e).expect("checked in");
    data.put_data(&e.data_ref.as_ref().unwrap().key, bytes)
        .await
        .unwrap();
    (e, whole)
}

fn batch(m: QueueMessage) -> SqsEvent {
    let mut b = fixture();
    b.records[0].body = Some(m.to_body());
    b
}

/// A subject whose endpoints are `roomy`, taking 1 MiB bodies whole, and `thin`, with
/// the default limit; and the store its events' data is in.
async fn roomy_and_thin() -> (Subject, Arc<MemoryData>, Endpoint, Endpoint) {
    let mut roomy = endpoint("roomy", &["*"]);
    roomy.max_body_bytes = Some(1 << 20);
    let thin = endpoint("thin", &["*"]);
    let data = Arc::new(MemoryData::default());
    let mut d = subject(&[&roomy, &thin]).await;
    d.data = data.clone();
    (d, data, roomy, thin)
}

fn sent_to(d: &Subject, ep: &Endpoint) -> Vec<bytes::Bytes> {
    d.sender
        .requests()
        .into_iter()
        .filter(|r| r.url == ep.url)
        .map(|r| r.body)
        .collect()
}

#[tokio::test]
async fn an_endpoint_gets_a_large_event_whole_up_to_its_limit_and_thin_above_it() {
    // GIVEN one endpoint taking 1 MiB bodies and one with the default 256 KiB
    let (d, data, roomy, thin) = roomy_and_thin().await;
    let (event, whole) = large(&data).await;
    assert!(
        whole.len() > 256 * 1024 && whole.len() < 1 << 20,
        "{}",
        whole.len()
    );

    // WHEN the event is fanned out
    let res = d.handle(batch(QueueMessage::event(event.clone()))).await;
    assert!(res.batch_item_failures.is_empty());

    // THEN the roomy endpoint gets the envelope as it was sent, byte for byte
    assert_eq!(sent_to(&d, &roomy), vec![bytes::Bytes::from(whole)]);
    // AND the other a thin event naming where the data is, its size and digest
    let bodies = sent_to(&d, &thin);
    let body: Value = serde_json::from_slice(&bodies[0]).unwrap();
    let r = event.data_ref.clone().unwrap();
    assert!(body.get("data").is_none(), "{body}");
    assert_eq!(body["data_size"], json!(r.size));
    assert_eq!(body["data_sha256"], json!(r.sha256));
    assert!(body["data_url"].as_str().unwrap().contains(&r.key), "{body}");
    let stored = data.objects.lock().unwrap()[&r.key].clone();
    assert_eq!(hex::encode(Sha256::digest(&stored)), r.sha256);
    // AND both are signed over what they were sent
    let req = d
        .sender
        .requests()
        .into_iter()
        .find(|q| q.url == thin.url)
        .unwrap();
    let header = |n: &str| req.headers.get(n).unwrap().to_str().unwrap().to_owned();
    verify_standard(
        &thin.secret,
        event.id.as_str(),
        &header("webhook-timestamp"),
        &header("webhook-signature"),
        &req.body,
        T0 / 1000,
        300,
    )
    .expect("the thin body is signed");
    for ep in [&roomy, &thin] {
        let got = d.store.get_delivery(&event.key(), &ep.id).await.unwrap().unwrap();
        assert_eq!(got.status, DeliveryStatus::Delivered);
    }
}

#[tokio::test]
async fn data_that_cannot_be_fetched_for_now_leaves_the_event_for_later_and_sends_to_no_one() {
    let (d, data, roomy, thin) = roomy_and_thin().await;
    let (event, _) = large(&data).await;
    data.down.store(true, Ordering::SeqCst);

    let res = d.handle(batch(QueueMessage::event(event.clone()))).await;

    assert_eq!(res.batch_item_failures.len(), 1, "the message stays");
    assert!(d.sender.requests().is_empty());
    // AND once the store is back, the copy read again delivers it
    data.down.store(false, Ordering::SeqCst);
    let res = d.handle(batch(QueueMessage::event(event.clone()))).await;
    assert!(res.batch_item_failures.is_empty());
    assert_eq!((sent_to(&d, &roomy).len(), sent_to(&d, &thin).len()), (1, 1));
}

#[tokio::test]
async fn data_no_longer_stored_fails_the_whole_delivery_and_the_thin_one_still_goes() {
    let (d, data, roomy, thin) = roomy_and_thin().await;
    let (event, _) = large(&data).await;
    data.objects.lock().unwrap().clear();

    let res = d.handle(batch(QueueMessage::event(event.clone()))).await;

    assert!(res.batch_item_failures.is_empty());
    let failed = d
        .store
        .get_delivery(&event.key(), &roomy.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(failed.status, DeliveryStatus::Failed);
    assert!(
        failed
            .failure_reason
            .as_deref()
            .unwrap()
            .contains("no longer stored"),
        "{failed:?}"
    );
    assert!(sent_to(&d, &roomy).is_empty());
    assert_eq!(sent_to(&d, &thin).len(), 1);
}

#[tokio::test]
async fn a_retry_of_a_large_event_is_sent_again_in_its_endpoints_form() {
    // GIVEN both endpoints failed the first attempt
    let (d, data, roomy, thin) = roomy_and_thin().await;
    let (event, whole) = large(&data).await;
    d.sender.answer(&roomy.url, [response(500)]);
    d.sender.answer(&thin.url, [response(500)]);
    d.handle(batch(QueueMessage::event(event.clone()))).await;

    // WHEN their retries' messages come, after the wait
    let retries = attempt_messages(&d);
    assert_eq!(retries.len(), 2);
    let bodies: Vec<String> = d.queue.sent().iter().map(QueueMessage::to_body).collect();
    assert!(
        bodies.iter().all(|b| b.starts_with(r#"{"type":"attempt.v2""#)),
        "{bodies:?}"
    );
    d.clock.advance(Duration::from_secs(3600));
    for (endpoint_id, wake, _) in retries {
        let m = QueueMessage::attempt(event.clone(), endpoint_id, wake);
        assert!(d.handle(batch(m)).await.batch_item_failures.is_empty());
    }

    // THEN each is sent as before: whole, and thin
    assert_eq!(sent_to(&d, &roomy)[1], bytes::Bytes::from(whole));
    let again: Value = serde_json::from_slice(&sent_to(&d, &thin)[1]).unwrap();
    assert!(again["data_url"].is_string() && again.get("data").is_none());
    for ep in [&roomy, &thin] {
        let got = d.store.get_delivery(&event.key(), &ep.id).await.unwrap().unwrap();
        assert_eq!((got.status, got.attempts), (DeliveryStatus::Delivered, 2));
    }
}
