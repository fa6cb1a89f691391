//! Bad input to the ingest API gets the right status and problem body, and nothing
//! is queued.

use crate::support::*;
use serde_json::json;

#[tokio::test]
async fn bad_requests_get_a_precise_problem_and_queue_nothing() {
    let h = Harness::new().await;
    let good = json!({"event_type": "a.b", "data": {}}).to_string();
    let big = json!({"event_type": "a.b", "data": "x".repeat(ingest_fn::MAX_EVENT_BYTES + 1)}).to_string();
    let cases: Vec<(&str, Option<&str>, String, u16, &str)> = vec![
        (
            "/v1/events",
            None,
            good.clone(),
            401,
            "urn:hookline:problem:unauthorized",
        ),
        (
            "/v1/events",
            Some("wrong-key"),
            good.clone(),
            401,
            "urn:hookline:problem:unauthorized",
        ),
        (
            "/v1/events",
            Some(INGEST_KEY),
            "{\"event_type\": ".into(),
            400,
            "urn:hookline:problem:invalid-json",
        ),
        (
            "/v1/events",
            Some(INGEST_KEY),
            json!({"data": 1}).to_string(),
            422,
            "urn:hookline:problem:validation",
        ),
        (
            "/v1/events",
            Some(INGEST_KEY),
            json!({"event_type": "a", "data": 1, "colour": "red"}).to_string(),
            422,
            "urn:hookline:problem:validation",
        ),
        (
            "/v1/events",
            Some(INGEST_KEY),
            big,
            413,
            "urn:hookline:problem:payload-too-large",
        ),
        (
            "/v1/events/batch",
            Some(INGEST_KEY),
            json!({"events": []}).to_string(),
            422,
            "urn:hookline:problem:validation",
        ),
        (
            "/v1/events/batch",
            Some(INGEST_KEY),
            json!({"events": vec![json!({"event_type": "a", "data": 1}); 101]}).to_string(),
            422,
            "urn:hookline:problem:validation",
        ),
        (
            "/v1/events/batch",
            Some(INGEST_KEY),
            json!({"events": [{"event_type": "a b", "data": 1}]}).to_string(),
            422,
            "urn:hookline:problem:validation",
        ),
    ];
    for (path, key, body, status, kind) in cases {
        let r = h.call_ingest("POST", path, key, Some(&body)).await;
        assert_eq!(r.status, status, "{path} {body:.60}: {}", r.json);
        assert_eq!(r.json["type"], kind);
        assert_eq!(r.json["status"], status);
        assert_eq!(r.headers["content-type"], "application/problem+json");
    }
    assert!(h.queue_is_empty().await, "nothing may be queued");
}

#[tokio::test]
async fn a_json_syntax_error_says_where_and_a_field_error_names_the_field() {
    let h = Harness::new().await;
    let r = h
        .call_ingest(
            "POST",
            "/v1/events",
            Some(INGEST_KEY),
            Some("{\n  \"event_type\": \"a\",\n  \"data\": }"),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.json["detail"]
            .as_str()
            .unwrap()
            .starts_with("line 3, column 11"),
        "{}",
        r.json
    );

    let r = h
        .call_ingest(
            "POST",
            "/v1/events",
            Some(INGEST_KEY),
            Some(&json!({"event_type": "a..b", "data": 1}).to_string()),
        )
        .await;
    assert_eq!(r.json["errors"][0]["pointer"], "/event_type");
    assert!(
        r.json["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("dot-separated")
    );
    assert!(h.queue_is_empty().await);
}

#[tokio::test]
async fn wrong_routes_and_methods_are_named() {
    let h = Harness::new().await;
    assert_eq!(
        h.call_ingest("GET", "/v1/events", Some(INGEST_KEY), None)
            .await
            .status,
        405
    );
    assert_eq!(
        h.call_ingest("POST", "/v1/nothing", Some(INGEST_KEY), Some("{}"))
            .await
            .status,
        404
    );
}

/// `levels` nested arrays around a number.
fn nested(levels: usize) -> serde_json::Value {
    (0..levels).fold(json!(1), |v, _| json!([v]))
}

#[tokio::test]
async fn an_event_too_deep_to_deliver_is_refused_at_the_door_and_one_at_the_limit_is_delivered() {
    // GIVEN an endpoint for every event
    let h = Harness::new().await;
    let rx = Receiver::start().await;
    h.register("all", &rx.url("/all"), &["*"]).await;

    // WHEN data nested 126 deep is sent alone, 120 deep in a batch, and a run whose input is,
    // THEN each is refused, naming the limit
    {
        let deep = json!({"event_type": "a.b", "data": nested(126)}).to_string();
        let r = h
            .call_ingest("POST", "/v1/events", Some(INGEST_KEY), Some(&deep))
            .await;
        assert_eq!(r.status, 422, "{}", r.json);
        assert_eq!(r.json["errors"][0]["pointer"], "/data");
        assert_eq!(
            r.json["errors"][0]["detail"],
            "nests 126 levels deep; at most 64 are allowed"
        );

        let batch = json!({"events": [
            {"id": "ok-1", "event_type": "a.b", "data": nested(64)},
            {"event_type": "a.b", "data": nested(120)},
        ]})
        .to_string();
        let r = h
            .call_ingest("POST", "/v1/events/batch", Some(INGEST_KEY), Some(&batch))
            .await;
        assert_eq!(r.status, 202, "{}", r.json);
        assert_eq!(
            (r.json["accepted"].as_u64(), r.json["rejected"].as_u64()),
            (Some(1), Some(1))
        );
        assert_eq!(r.json["results"][1]["errors"][0]["pointer"], "/events/1/data");

        let mut run: serde_json::Value = serde_json::from_str(RUN_SUCCESS).unwrap();
        run["kwargs"]["input"] = nested(124);
        let uri = format!("/v1/langgraph/runs?token={INGEST_KEY}");
        let r = h.call_ingest("POST", &uri, None, Some(&run.to_string())).await;
        assert_eq!(r.status, 422, "{}", r.json);
        assert_eq!(r.json["errors"][0]["pointer"], "/kwargs");
    }

    // THEN what was accepted, at the limit, arrives whole
    h.pump().await;
    let got = rx.received("/all");
    assert_eq!(got.len(), 1);
    let event: serde_json::Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(event["id"], "ok-1");
    assert_eq!(event["data"], nested(64));
}

const RUN_SUCCESS: &str = include_str!("../../functions/ingest/fixtures/langgraph/run-webhook-success.json");
