//! Ambiguous, hostile or ignored input gets a clear 4xx problem at the door, through the
//! real handlers: duplicate keys, header names that collide, reserved event types in
//! any case, control characters, bodies a route does not take, bad time ranges, bytes
//! that are not UTF-8, and URLs the SSRF policy must refuse however they are spelled.

use crate::support::*;
use lambda_http::Body;
use serde_json::{Value, json};

fn raw(method: &str, path: &str, key: &str, body: &[u8]) -> lambda_http::Request {
    http::Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_vec()))
        .expect("request builds")
}

fn assert_problem(r: &Reply, status: u16, pointer: Option<&str>) {
    assert_eq!(r.status, status, "{}", r.json);
    assert_eq!(r.headers["content-type"], "application/problem+json");
    if let Some(p) = pointer {
        let pointers: Vec<&str> = r.json["errors"]
            .as_array()
            .map(|e| e.iter().filter_map(|x| x["pointer"].as_str()).collect())
            .unwrap_or_default();
        assert!(pointers.contains(&p), "{p} not in {}", r.json);
    }
}

async fn create(h: &Harness, body: Value) -> Reply {
    h.call_admin("POST", "/v1/endpoints", Some(ADMIN_KEY), Some(&body.to_string()))
        .await
}

#[tokio::test]
async fn a_body_that_names_a_key_twice_is_refused_wherever_the_key_is() {
    let h = Harness::new().await;
    let two_urls = br#"{"name": "a", "url": "http://127.0.0.1:9/a", "url": "http://127.0.0.1:9/b"}"#;
    let r = reply(
        h.admin
            .handle(raw("POST", "/v1/endpoints", ADMIN_KEY, two_urls))
            .await,
    );
    assert_problem(&r, 422, Some("/url"));

    let in_data = br#"{"event_type": "a.b", "data": {"run": {"status": "ok", "status": "failed"}}}"#;
    let r = reply(
        h.ingest
            .handle(raw("POST", "/v1/events", INGEST_KEY, in_data))
            .await,
    );
    assert_problem(&r, 422, Some("/data/run/status"));
}

#[tokio::test]
async fn a_body_that_is_not_utf8_is_a_400_problem_from_every_write_route() {
    let h = Harness::new().await;
    let body = b"{\"event_type\": \"a\", \"data\": \"\xff\xfe\"}";
    let r = reply(h.ingest.handle(raw("POST", "/v1/events", INGEST_KEY, body)).await);
    assert_problem(&r, 400, None);
    assert!(
        r.json["detail"].as_str().unwrap().contains("not UTF-8"),
        "{}",
        r.json
    );
    let r = reply(
        h.admin
            .handle(raw("POST", "/v1/endpoints", ADMIN_KEY, body))
            .await,
    );
    assert_problem(&r, 400, None);
}

#[tokio::test]
async fn header_names_that_collide_and_hop_by_hop_names_are_refused() {
    let h = Harness::new().await;
    let both = br#"{"name": "a", "url": "http://127.0.0.1:9/", "headers": {"X-Auth": "1", "x-auth": "2"}}"#;
    let r = reply(
        h.admin
            .handle(raw("POST", "/v1/endpoints", ADMIN_KEY, both))
            .await,
    );
    assert_problem(&r, 422, Some("/headers"));
    for name in [
        "TE",
        "Upgrade",
        "Expect",
        "Keep-Alive",
        "Proxy-Authorization",
        "Connection",
    ] {
        let r = create(
            &h,
            json!({"name": "a", "url": "http://127.0.0.1:9/", "headers": {name: "x"}}),
        )
        .await;
        assert_problem(&r, 422, Some("/headers"));
    }
}

#[tokio::test]
async fn custom_header_values_are_shown_only_by_the_answer_that_set_them() {
    let h = Harness::new().await;
    let created = create(
        &h,
        json!({"name": "a", "url": "http://127.0.0.1:9/", "headers": {"Authorization": "Bearer rcv-secret"}}),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.json);
    assert_eq!(created.json["headers"]["authorization"], "Bearer rcv-secret");
    let id = created.json["id"].as_str().unwrap();

    let got = h
        .call_admin("GET", &format!("/v1/endpoints/{id}"), Some(ADMIN_KEY), None)
        .await;
    let listed = h.call_admin("GET", "/v1/endpoints", Some(ADMIN_KEY), None).await;
    for text in [got.json.to_string(), listed.json.to_string()] {
        assert!(!text.contains("rcv-secret"), "{text}");
        assert!(text.contains(r#""authorization":"********""#), "{text}");
    }
    // A change that leaves the headers alone shows them masked; one that sets them shows them.
    let renamed = h
        .call_admin(
            "PATCH",
            &format!("/v1/endpoints/{id}"),
            Some(ADMIN_KEY),
            Some(&json!({"version": 1, "name": "b"}).to_string()),
        )
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.json);
    assert_eq!(renamed.json["headers"]["authorization"], "********");
    // Sending the mask back (a read, edited and sent whole) is refused, not stored.
    let masked_back = h
        .call_admin(
            "PATCH",
            &format!("/v1/endpoints/{id}"),
            Some(ADMIN_KEY),
            Some(&json!({"version": 2, "headers": {"authorization": "********"}}).to_string()),
        )
        .await;
    assert_problem(&masked_back, 422, Some("/headers"));
    let set = h
        .call_admin(
            "PATCH",
            &format!("/v1/endpoints/{id}"),
            Some(ADMIN_KEY),
            Some(&json!({"version": 2, "headers": {"authorization": "Bearer next"}}).to_string()),
        )
        .await;
    assert_eq!(
        set.json["headers"]["authorization"], "Bearer next",
        "{}",
        set.json
    );
    // Masked values go only where they were set for: a new URL needs them sent again.
    let moved = h
        .call_admin(
            "PATCH",
            &format!("/v1/endpoints/{id}"),
            Some(ADMIN_KEY),
            Some(&json!({"version": 3, "url": "http://127.0.0.1:10/elsewhere"}).to_string()),
        )
        .await;
    assert_problem(&moved, 422, Some("/headers"));
    let moved = h
        .call_admin(
            "PATCH",
            &format!("/v1/endpoints/{id}"),
            Some(ADMIN_KEY),
            Some(&json!({"version": 3, "url": "http://127.0.0.1:10/elsewhere", "headers": {}}).to_string()),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.json);
    assert_eq!(moved.json["headers"], json!({}));
}

#[tokio::test]
async fn the_reserved_prefix_is_refused_in_any_case_from_every_sending_route() {
    let h = Harness::new().await;
    for t in [
        "hookline.endpoint.disabled",
        "Hookline.endpoint.disabled",
        "HOOKLINE.delivery.exhausted",
    ] {
        let one = h
            .call_ingest(
                "POST",
                "/v1/events",
                Some(INGEST_KEY),
                Some(&json!({"event_type": t, "data": {}}).to_string()),
            )
            .await;
        assert_problem(&one, 422, Some("/event_type"));
        let batch = h
            .call_ingest(
                "POST",
                "/v1/events/batch",
                Some(INGEST_KEY),
                Some(&json!({"events": [{"event_type": t, "data": {}}]}).to_string()),
            )
            .await;
        assert_problem(&batch, 422, Some("/events/0/event_type"));
    }
    let (id, _) = h.register("a", "http://127.0.0.1:9/", &["*"]).await;
    let test = h
        .call_admin(
            "POST",
            &format!("/v1/endpoints/{id}/test"),
            Some(ADMIN_KEY),
            Some(&json!({"event_type": "hookline.endpoint.disabled"}).to_string()),
        )
        .await;
    assert_problem(&test, 422, Some("/event_type"));
}

#[tokio::test]
async fn names_with_control_characters_or_too_many_characters_are_refused() {
    let h = Harness::new().await;
    let nul = create(&h, json!({"name": "crm\u{0}", "url": "http://127.0.0.1:9/"})).await;
    assert_problem(&nul, 422, Some("/name"));
    let newline = create(
        &h,
        json!({"name": "crm\nFAKE LOG LINE", "url": "http://127.0.0.1:9/"}),
    )
    .await;
    assert_problem(&newline, 422, Some("/name"));
    // 128 characters of 3 bytes each is within the 128-character limit.
    let wide = create(
        &h,
        json!({"name": "語".repeat(128), "url": "http://127.0.0.1:9/"}),
    )
    .await;
    assert_eq!(wide.status, 201, "{}", wide.json);
    let wider = create(
        &h,
        json!({"name": "語".repeat(129), "url": "http://127.0.0.1:9/"}),
    )
    .await;
    assert_problem(&wider, 422, Some("/name"));
}

#[tokio::test]
async fn a_retry_with_a_body_and_a_recovery_without_a_proper_range_are_refused() {
    let h = Harness::new().await;
    let (id, _) = h.register("a", "http://127.0.0.1:9/", &["*"]).await;
    let endpoint = hookline::EndpointId::parse(&id).unwrap();
    let delivery = hookline::DeliveryId::generate_for(hookline::Timestamp::now(), &endpoint);
    let path = format!("/v1/deliveries/{delivery}/retry");
    let r = h
        .call_admin("POST", &path, Some(ADMIN_KEY), Some(r#"{"delay_seconds": 5}"#))
        .await;
    assert_problem(&r, 422, Some("/delay_seconds"));

    let recover = format!("/v1/endpoints/{id}/recover");
    let null_since = h
        .call_admin("POST", &recover, Some(ADMIN_KEY), Some(r#"{"since": null}"#))
        .await;
    assert_problem(&null_since, 422, Some("/since"));
    let backwards = h
        .call_admin(
            "POST",
            &recover,
            Some(ADMIN_KEY),
            Some(r#"{"since": "2026-12-02T00:00:00Z", "until": "2026-12-01T00:00:00Z"}"#),
        )
        .await;
    assert_problem(&backwards, 422, Some("/until"));
}

#[tokio::test]
async fn urls_the_policy_must_refuse_are_refused_at_create_and_at_patch() {
    let h = Harness::new().await;
    let (id, _) = h.register("a", "http://127.0.0.1:9/", &["*"]).await;
    for url in [
        "http://[::ffff:0:a9fe:a9fe]/",
        "http://[::ffff:0:10.0.0.1]/",
        "http://[5f00::1]/",
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://[2002:a00:1::1]/",
        "http://127.0.0.1:0/",
        "http://127.0.0.1:9/a\r\nX-Injected: 1",
    ] {
        let created = create(&h, json!({"name": "x", "url": url})).await;
        assert_problem(&created, 422, Some("/url"));
        let patched = h
            .call_admin(
                "PATCH",
                &format!("/v1/endpoints/{id}"),
                Some(ADMIN_KEY),
                Some(&json!({"version": 1, "url": url}).to_string()),
            )
            .await;
        assert_problem(&patched, 422, Some("/url"));
    }
}
