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
