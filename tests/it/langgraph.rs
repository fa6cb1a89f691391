//! LangGraph Platform run webhooks, from the body `langgraph dev` posts to the
//! endpoints' receivers.

use crate::support::*;

const RUN_SUCCESS: &str = include_str!("../../functions/ingest/fixtures/langgraph/run-webhook-success.json");

#[tokio::test]
async fn a_platform_run_webhook_reaches_subscribers_once_without_its_token() {
    // GIVEN an endpoint for agent invocations and one for node events only
    let h = Harness::new().await;
    let rx = Receiver::start().await;
    h.register("runs", &rx.url("/runs"), &["agent_invocation_*"])
        .await;
    h.register("nodes", &rx.url("/nodes"), &["node_*"]).await;
    let mut run: serde_json::Value = serde_json::from_str(RUN_SUCCESS).unwrap();
    let hook = format!("https://hookline.example/v1/langgraph/runs?token={INGEST_KEY}");
    run["kwargs"]["webhook"] = serde_json::json!(hook);
    let body = run.to_string();

    // WHEN the Platform posts the ended run, with the key in the URL, twice (a retry)
    let uri = format!("/v1/langgraph/runs?token={INGEST_KEY}");
    for _ in 0..2 {
        let r = h.call_ingest("POST", &uri, None, Some(&body)).await;
        assert_eq!(r.status, 202, "{}", r.json);
    }
    h.pump().await;

    // THEN the run subscriber gets one agent_invocation_success, without the token
    let got = rx.received("/runs");
    assert_eq!(got.len(), 1, "a retried run webhook is delivered once");
    let event: serde_json::Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(event["event_type"], "agent_invocation_success");
    assert_eq!(
        event["id"],
        format!("lg:{}:success", run["run_id"].as_str().unwrap())
    );
    assert_eq!(event["data"]["thread_id"], run["thread_id"]);
    assert_eq!(
        event["data"]["kwargs"]["webhook"],
        "https://hookline.example/v1/langgraph/runs?token=REDACTED"
    );
    assert_eq!(event["data"]["redacted"], serde_json::json!(["/kwargs/webhook"]));
    assert!(!String::from_utf8_lossy(&got[0].body).contains(INGEST_KEY));
    assert!(rx.received("/nodes").is_empty());
}

#[tokio::test]
async fn a_two_mib_run_arrives_whole_where_the_limit_allows_and_by_its_data_url_elsewhere() {
    use sha2::{Digest, Sha256};
    // GIVEN an endpoint taking bodies up to 4 MiB, and one with the default (256 KiB)
    let h = Harness::new().await;
    let rx = Receiver::start().await;
    let body = serde_json::json!({"name": "archive", "url": rx.url("/whole"),
        "event_types": ["agent_invocation_*"], "max_body_bytes": 4 << 20});
    let r = h
        .call_admin("POST", "/v1/endpoints", Some(ADMIN_KEY), Some(&body.to_string()))
        .await;
    assert_eq!(r.status, 201, "{}", r.json);
    assert_eq!(r.json["max_body_bytes"], 4 << 20);
    let whole_secret = r.json["secret"].as_str().unwrap().to_owned();
    let (_, thin_secret) = h
        .register("dashboard", &rx.url("/thin"), &["agent_invocation_*"])
        .await;

    // WHEN the Platform posts a run whose state is 2 MiB (quotes, accents, numbers)
    let mut run: serde_json::Value = serde_json::from_str(RUN_SUCCESS).unwrap();
    let message = "l'état \"final\" ✓ ".repeat(80);
    run["values"] = serde_json::json!({
        "messages": (0..1_400).map(|i| serde_json::json!({"n": i, "x": 0.1 + i as f64, "text": message})).collect::<Vec<_>>(),
    });
    let sent = run.to_string();
    assert!(sent.len() > 2 << 20, "{}", sent.len());
    let uri = format!("/v1/langgraph/runs?token={INGEST_KEY}");
    let r = h.call_ingest("POST", &uri, None, Some(&sent)).await;
    assert_eq!(r.status, 202, "{}", r.json);
    h.pump().await;

    // THEN the first endpoint gets the whole event, signed, its state as sent
    let whole = rx.received("/whole");
    assert_eq!(whole.len(), 1);
    whole[0].verify_standard(&whole_secret).expect("signed");
    assert!(whole[0].body.len() > 2 << 20);
    assert_eq!(whole[0].json()["data"]["values"], run["values"]);

    // AND the other a thin event: it fetches data_url, and the bytes are what it says
    let thin = rx.received("/thin");
    assert_eq!(thin.len(), 1);
    thin[0].verify_standard(&thin_secret).expect("signed");
    let event = thin[0].json();
    assert!(thin[0].body.len() < 4096, "{}", thin[0].body.len());
    assert!(event.get("data").is_none(), "{event}");
    let url = event["data_url"].as_str().expect("a data_url");
    let fetched = reqwest::get(url)
        .await
        .expect("fetched")
        .error_for_status()
        .expect("200");
    let bytes = fetched.bytes().await.unwrap();
    assert_eq!(bytes.len() as u64, event["data_size"].as_u64().unwrap());
    assert_eq!(hex::encode(Sha256::digest(&bytes)), event["data_sha256"]);
    let data: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(data["values"], run["values"]);

    // AND the operator's view of the event shows its data whole
    let id = event["id"].as_str().unwrap();
    let r = h
        .call_admin("GET", &format!("/v1/events/{id}"), Some(ADMIN_KEY), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["event"]["data"]["values"], run["values"]);
    assert_eq!(r.json["event"]["data_size"], event["data_size"]);
    assert!(r.json["event"].get("data_ref").is_none());
}
