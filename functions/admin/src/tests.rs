//! The admin handler with an in-memory store, fed API Gateway fixture requests.

use super::*;
use hookline::memory::{ManualClock, MemoryQueue, MemoryStore, ScriptedProbe, ScriptedSender};
use hookline::{EndpointId, Timestamp};
use lambda_http::{Body, Request};
use serde_json::Value;
use serde_json::json;
use std::sync::atomic::Ordering;
use std::time::Duration;

const LIST_FIXTURE: &str = include_str!("../fixtures/apigw-list-endpoints.json");
const ADMIN: &str = "fixture-admin-key";
const INGEST: &str = "fixture-ingest-key";

type Subject = Admin<MemoryStore, MemoryQueue, ScriptedSender, ScriptedProbe, ManualClock>;

fn subject() -> Subject {
    Admin {
        keys: ApiKeys::new(INGEST, ADMIN),
        store: MemoryStore::default(),
        queue: MemoryQueue::default(),
        sender: ScriptedSender::default(),
        probe: ScriptedProbe::default(),
        data: std::sync::Arc::new(hookline::memory::MemoryData::default()),
        clock: ManualClock::at(Timestamp::from_unix_millis(1_795_935_600_000)),
        ssrf: SsrfPolicy::parse_allowed("127.0.0.0/8").unwrap(),
        retention: Duration::from_secs(30 * 86_400),
        limits: Default::default(),
        disable_after: Duration::from_secs(5 * 86_400),
    }
}

fn call(method: &str, path: &str, body: Option<Value>) -> Request {
    http::Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {ADMIN}"))
        .body(body.map_or(Body::Empty, |b| Body::from(b.to_string())))
        .unwrap()
}

async fn send(admin: &Subject, req: Request) -> (u16, Value) {
    let res = admin.handle(req).await;
    let body = if res.body().as_ref().is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(res.body().as_ref()).unwrap()
    };
    (res.status().as_u16(), body)
}

async fn create(admin: &Subject, name: &str) -> Value {
    let (status, body) = send(
        admin,
        call(
            "POST",
            "/v1/endpoints",
            Some(json!({"name": name, "url": "http://127.0.0.1:8088/hook"})),
        ),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body
}

#[tokio::test]
async fn a_created_endpoint_is_shown_with_its_secret_once_then_without() {
    let admin = subject();
    let created = create(&admin, "crm").await;
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(created["created_at"], "2026-11-29T07:00:00Z");
    let id = created["id"].as_str().unwrap();
    let (status, got) = send(&admin, call("GET", &format!("/v1/endpoints/{id}"), None)).await;
    assert_eq!(status, 200);
    assert_eq!(got["name"], "crm");
    assert!(got.get("secret").is_none());
}

#[tokio::test]
async fn an_api_gateway_list_request_pages_by_its_query_string() {
    let admin = subject();
    create(&admin, "first").await;
    create(&admin, "second").await;
    let req = lambda_http::request::from_str(LIST_FIXTURE).expect("the API Gateway fixture parses");
    let (status, page) = send(&admin, req).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    assert_eq!(page["data"][0]["name"], "first");
    assert!(page["next_cursor"].is_string());
}

#[tokio::test]
async fn unknown_ids_malformed_ids_and_bad_queries_are_clear() {
    let admin = subject();
    let missing = EndpointId::generate();
    assert_eq!(
        send(&admin, call("GET", &format!("/v1/endpoints/{missing}"), None))
            .await
            .0,
        404
    );
    assert_eq!(
        send(&admin, call("GET", "/v1/endpoints/not-an-id", None)).await.0,
        404
    );
    let (status, body) = send(&admin, call("GET", "/v1/endpoints?limit=0&colour=red", None)).await;
    assert_eq!(status, 422);
    assert_eq!(body["errors"][0]["pointer"], "?limit");
    assert_eq!(body["errors"][1]["pointer"], "?colour");
    assert_eq!(send(&admin, call("PATCH", "/v1/endpoints", None)).await.0, 405);
}

#[tokio::test]
async fn a_store_outage_is_a_503() {
    let admin = subject();
    admin.store.unavailable.store(true, Ordering::SeqCst);
    let (status, body) = send(&admin, call("GET", "/v1/endpoints", None)).await;
    assert_eq!(status, 503);
    assert_eq!(body["type"], "urn:hookline:problem:unavailable");
}

#[tokio::test]
async fn health_needs_no_key() {
    let admin = subject();
    let req = http::Request::builder().uri("/health").body(Body::Empty).unwrap();
    let (status, body) = send(&admin, req).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
}

#[tokio::test]
async fn a_body_that_is_not_utf8_is_a_400_not_a_crash() {
    let admin = subject();
    let req = http::Request::builder()
        .method("POST")
        .uri("/v1/endpoints")
        .header("authorization", format!("Bearer {ADMIN}"))
        .header("content-type", "application/json")
        .body(Body::Binary(vec![0xff, 0xfe, b'{']))
        .unwrap();
    let (status, body) = send(&admin, req).await;
    assert_eq!(status, 400);
    assert_eq!(body["type"], "urn:hookline:problem:invalid-json");
}

#[tokio::test]
async fn a_diagnosis_asks_the_probe_and_says_what_it_found() {
    // GIVEN an endpoint whose host the network does not know
    let admin = subject();
    let id = create(&admin, "crm").await["id"].as_str().unwrap().to_owned();
    admin
        .probe
        .hosts
        .lock()
        .unwrap()
        .insert("127.0.0.1".into(), Err("no such host (test)".into()));
    // WHEN it is diagnosed THEN the probe's answer is in the report and its advice
    let (status, body) = send(&admin, call("GET", &format!("/v1/endpoints/{id}/diagnose"), None)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["dns"]["resolved"], false);
    assert_eq!(body["dns"]["error"], "no such host (test)");
    assert_eq!(body["reachability"], json!({"checked": false}));
    assert!(
        body["advice"][0].as_str().unwrap().contains("does not resolve"),
        "{body}"
    );
}

#[tokio::test]
async fn a_large_events_view_shows_its_data_whole_or_says_it_is_no_longer_stored() {
    use hookline::ports::{Clock, DataStore, EventStore};
    // GIVEN a large event, checked in and stored as delivery stores it
    let data = std::sync::Arc::new(hookline::memory::MemoryData::default());
    let mut admin = subject();
    admin.data = data.clone();
    let mut errors = Vec::new();
    let sent =
        json!({"id": "evt_large", "event_type": "run.completed", "data": {"values": "v".repeat(100_000)}});
    let mut event = hookline::event_input::parse_event(&sent, "", admin.clock.now(), &mut errors).unwrap();
    let bytes = hookline::claim_check::check_in(&mut event).expect("checked in");
    let r = event.data_ref.clone().unwrap();
    data.put_data(&r.key, bytes).await.unwrap();
    admin
        .store
        .claim_fanout(
            &event,
            &event.envelope_json(),
            &[],
            admin.clock.now(),
            Duration::from_secs(30),
        )
        .await
        .unwrap();

    // THEN its view holds the data as sent, with its size and digest
    let (status, body) = send(&admin, call("GET", "/v1/events/evt_large", None)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["event"]["data"], sent["data"]);
    assert_eq!(body["event"]["data_size"], json!(r.size));
    assert_eq!(body["event"]["data_sha256"], json!(r.sha256));
    assert!(body["event"].get("data_ref").is_none() && body["event"].get("data_expired").is_none());

    // AND once the data's retention has ended, the view says so
    data.objects.lock().unwrap().clear();
    let (status, body) = send(&admin, call("GET", "/v1/events/evt_large", None)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            body["event"]["data"].clone(),
            body["event"]["data_expired"].clone()
        ),
        (Value::Null, json!(true))
    );
}
