//! The endpoint registry on DynamoDB: create, list, get, delete; secrets shown once;
//! the SSRF policy at registration.

use crate::support::*;
use serde_json::json;

#[tokio::test]
async fn an_endpoint_is_created_listed_fetched_and_deleted_and_its_secret_shown_once() {
    let h = Harness::new().await;
    let body = json!({
        "name": "CRM", "url": "http://127.0.0.1:9/hook", "event_types": ["agent.*", "tool_failed"],
        "headers": {"X-Tenant": "acme"}, "timeout_seconds": 5, "max_attempts": 3
    })
    .to_string();
    let created = h
        .call_admin("POST", "/v1/endpoints", Some(ADMIN_KEY), Some(&body))
        .await;
    assert_eq!(created.status, 201, "{}", created.json);
    let id = created.json["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("ep_"));
    assert!(created.json["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(
        created.headers["location"],
        format!("/v1/endpoints/{id}").as_str()
    );
    assert_eq!(created.json["headers"], json!({"x-tenant": "acme"}));

    let got = h
        .call_admin("GET", &format!("/v1/endpoints/{id}"), Some(ADMIN_KEY), None)
        .await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json["event_types"], json!(["agent.*", "tool_failed"]));
    assert_eq!(
        (
            got.json["timeout_seconds"].as_u64(),
            got.json["max_attempts"].as_u64()
        ),
        (Some(5), Some(3))
    );
    assert!(
        got.json.get("secret").is_none(),
        "the secret is shown only at creation"
    );

    let listed = h.call_admin("GET", "/v1/endpoints", Some(ADMIN_KEY), None).await;
    assert_eq!(listed.json["data"].as_array().unwrap().len(), 1);
    assert!(listed.json["data"][0].get("secret").is_none());

    assert_eq!(
        h.call_admin("DELETE", &format!("/v1/endpoints/{id}"), Some(ADMIN_KEY), None)
            .await
            .status,
        204
    );
    assert_eq!(
        h.call_admin("GET", &format!("/v1/endpoints/{id}"), Some(ADMIN_KEY), None)
            .await
            .status,
        404
    );
    assert_eq!(
        h.call_admin("DELETE", &format!("/v1/endpoints/{id}"), Some(ADMIN_KEY), None)
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn endpoints_page_through_a_cursor() {
    let h = Harness::new().await;
    for i in 0..5 {
        h.register(&format!("e{i}"), "http://127.0.0.1:9/", &["*"]).await;
    }
    let seen: Vec<String> = h
        .read_all("/v1/endpoints", 2, 10)
        .await
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(seen, ["e0", "e1", "e2", "e3", "e4"]);
    let bad = h
        .call_admin("GET", "/v1/endpoints?cursor=zzz", Some(ADMIN_KEY), None)
        .await;
    assert_eq!(bad.status, 422, "{}", bad.json);
}

#[tokio::test]
async fn urls_that_reach_private_or_metadata_addresses_are_refused() {
    let h = Harness::new().await;
    for (url, needle) in [
        ("http://10.0.0.5/hook", "private"),
        ("http://169.254.169.254/latest/meta-data", "metadata"),
        ("http://[fd00:ec2::254]/", "metadata"),
        ("http://0xa9fea9fe/", "metadata"),
        ("ftp://127.0.0.1/", "http or https"),
        ("http://user:pw@127.0.0.1/", "credentials"),
    ] {
        let body = json!({"name": "x", "url": url}).to_string();
        let r = h
            .call_admin("POST", "/v1/endpoints", Some(ADMIN_KEY), Some(&body))
            .await;
        assert_eq!(r.status, 422, "{url}: {}", r.json);
        assert_eq!(r.json["errors"][0]["pointer"], "/url");
        assert!(
            r.json["errors"][0]["detail"].as_str().unwrap().contains(needle),
            "{url}: {}",
            r.json
        );
    }
}

#[tokio::test]
async fn the_admin_api_wants_an_admin_key() {
    let h = Harness::new().await;
    let r = h.call_admin("GET", "/v1/endpoints", Some(INGEST_KEY), None).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json["type"], "urn:hookline:problem:forbidden");
    assert_eq!(h.call_admin("GET", "/v1/endpoints", None, None).await.status, 401);
    assert_eq!(h.call_admin("GET", "/health", None, None).await.status, 200);
}

async fn create(h: &Harness, body: serde_json::Value) -> serde_json::Value {
    let r = h
        .call_admin("POST", "/v1/endpoints", Some(ADMIN_KEY), Some(&body.to_string()))
        .await;
    assert_eq!(r.status, 201, "{}", r.json);
    r.json
}

async fn patch(h: &Harness, id: &str, if_match: Option<&str>, body: serde_json::Value) -> Reply {
    let mut req = request(
        "PATCH",
        &format!("/v1/endpoints/{id}"),
        Some(ADMIN_KEY),
        Some(&body.to_string()),
    );
    if let Some(v) = if_match {
        req.headers_mut().insert("if-match", v.parse().unwrap());
    }
    reply(h.admin.handle(req).await)
}

#[tokio::test]
async fn a_patch_changes_only_what_it_names_and_only_from_the_version_read() {
    let h = Harness::new().await;
    let e = create(
        &h,
        json!({"name": "crm", "url": "http://127.0.0.1:9/a", "event_types": ["agent.*"]}),
    )
    .await;
    let id = e["id"].as_str().unwrap();
    let got = h
        .call_admin("GET", &format!("/v1/endpoints/{id}"), Some(ADMIN_KEY), None)
        .await;
    let etag = got.headers["etag"].to_str().unwrap().to_owned();
    assert_eq!(etag, "\"1\"");

    // Without saying which version: refused
    let r = patch(&h, id, None, json!({"name": "CRM"})).await;
    assert_eq!(r.status, 428, "{}", r.json);

    // With the ETag: applied, and only the named field changed
    let r = patch(&h, id, Some(&etag), json!({"name": "CRM", "timeout_seconds": 5})).await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(
        (r.json["name"].as_str(), r.json["timeout_seconds"].as_u64()),
        (Some("CRM"), Some(5))
    );
    assert_eq!(r.json["event_types"], json!(["agent.*"]));
    assert_eq!(r.json["version"], 2);

    // A second operator still holding version 1 cannot overwrite it
    let r = patch(&h, id, Some(&etag), json!({"name": "crm-old"})).await;
    assert_eq!(r.status, 412, "{}", r.json);
    assert!(r.json["detail"].as_str().unwrap().contains("version 2"));

    // Disable with a reason, then enable again (version in the body works too)
    let r = patch(
        &h,
        id,
        None,
        json!({"version": 2, "status": "disabled", "disabled_reason": "receiver migration"}),
    )
    .await;
    assert_eq!(
        (r.json["status"].as_str(), r.json["disabled_reason"].as_str()),
        (Some("disabled"), Some("receiver migration"))
    );
    let r = patch(&h, id, None, json!({"version": 3, "status": "active"})).await;
    assert_eq!(r.json["status"], "active");
    assert!(r.json.get("disabled_reason").is_none());

    // Bad fields are named; the secret cannot be patched, reserved headers cannot be set
    let r = patch(
        &h,
        id,
        None,
        json!({"version": 4, "secret": "whsec_x", "headers": {"webhook-id": "x"}, "url": "http://10.0.0.1/"}),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.json);
    let ptrs: Vec<&str> = r.json["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    assert_eq!(ptrs, ["/secret", "/url", "/headers"]);
}

#[tokio::test]
async fn after_a_rotation_both_secrets_sign_until_the_grace_period_ends() {
    let h = Harness::new().await;
    let rx = Receiver::start().await;
    let e = create(&h, json!({"name": "crm", "url": rx.url("/hook")})).await;
    let (id, old) = (
        e["id"].as_str().unwrap(),
        e["secret"].as_str().unwrap().to_owned(),
    );

    let r = h
        .call_admin(
            "POST",
            &format!("/v1/endpoints/{id}/rotate-secret"),
            Some(ADMIN_KEY),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    let new = r.json["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert_eq!(r.json["previous_secrets_expire_at"].as_array().unwrap().len(), 1);
    let got = h
        .call_admin("GET", &format!("/v1/endpoints/{id}"), Some(ADMIN_KEY), None)
        .await;
    assert!(got.json.get("secret").is_none());

    let body = json!({"event_type": "a", "data": 1}).to_string();
    h.call_ingest("POST", "/v1/events", Some(INGEST_KEY), Some(&body))
        .await;
    h.pump().await;
    let req = rx.received("/hook").remove(0);
    let header = req.header("webhook-signature");
    assert_eq!(header.split(' ').count(), 2, "{header}");
    for secret in [&old, &new] {
        req.verify_standard(secret)
            .expect("each secret verifies during the grace period");
    }

    // No grace: the old secret stops at once.
    let r = h
        .call_admin(
            "POST",
            &format!("/v1/endpoints/{id}/rotate-secret"),
            Some(ADMIN_KEY),
            Some(r#"{"grace_seconds": 0}"#),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(
        r.json["previous_secrets_expire_at"].as_array().map(Vec::len),
        Some(1),
        "only the first rotation's secret is left"
    );
    let bad = h
        .call_admin(
            "POST",
            &format!("/v1/endpoints/{id}/rotate-secret"),
            Some(ADMIN_KEY),
            Some(r#"{"grace_seconds": -1}"#),
        )
        .await;
    assert_eq!(bad.status, 422);
}

#[tokio::test]
async fn recover_sends_again_the_failed_deliveries_of_a_time_range() {
    let h = Harness::new().await;
    let rx = Receiver::start().await;
    rx.answer("/down", 500, "");
    let e = create(
        &h,
        json!({"name": "down", "url": rx.url("/down"), "max_attempts": 1}),
    )
    .await;
    let id = e["id"].as_str().unwrap();
    for i in 0..3 {
        let body = json!({"id": format!("rec-{i}"), "event_type": "a", "data": i}).to_string();
        h.call_ingest("POST", "/v1/events", Some(INGEST_KEY), Some(&body))
            .await;
    }
    h.pump().await;
    rx.answer("/down", 200, "ok");

    let since = hookline::Timestamp::from_unix_millis(hookline::Timestamp::now().unix_millis() - 3_600_000);
    let body = json!({"since": since.to_rfc3339()}).to_string();
    let r = h
        .call_admin(
            "POST",
            &format!("/v1/endpoints/{id}/recover"),
            Some(ADMIN_KEY),
            Some(&body),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.json);
    assert_eq!(
        (r.json["recovered"].as_u64(), r.json["more"].as_bool()),
        (Some(3), Some(false))
    );
    h.pump().await;

    let log = h
        .call_admin(
            "GET",
            &format!("/v1/deliveries?endpoint_id={id}&status=delivered"),
            Some(ADMIN_KEY),
            None,
        )
        .await;
    assert_eq!(log.json["data"].as_array().unwrap().len(), 3, "{}", log.json);
    let missing = h
        .call_admin(
            "POST",
            &format!("/v1/endpoints/{id}/recover"),
            Some(ADMIN_KEY),
            Some("{}"),
        )
        .await;
    assert_eq!(missing.status, 422);
    assert_eq!(missing.json["errors"][0]["pointer"], "/since");
}

#[tokio::test]
async fn a_test_event_is_sent_signed_at_once_and_not_recorded() {
    let h = Harness::new().await;
    let rx = Receiver::start().await;
    rx.answer("/hook", 202, "thanks");
    let e = create(&h, json!({"name": "crm", "url": rx.url("/hook")})).await;
    let id = e["id"].as_str().unwrap();

    let r = h
        .call_admin("POST", &format!("/v1/endpoints/{id}/test"), Some(ADMIN_KEY), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(
        (r.json["success"].as_bool(), r.json["status"].as_u64()),
        (Some(true), Some(202))
    );
    assert_eq!(r.json["body"], "thanks");
    assert_eq!(r.json["event"]["event_type"], "hookline.endpoint.test");
    let got = rx.received("/hook").remove(0);
    got.verify_standard(e["secret"].as_str().unwrap())
        .expect("the test event is signed like any webhook");
    let log = h
        .call_admin(
            "GET",
            &format!("/v1/deliveries?endpoint_id={id}"),
            Some(ADMIN_KEY),
            None,
        )
        .await;
    assert!(
        log.json["data"].as_array().unwrap().is_empty(),
        "a test is not a delivery"
    );

    rx.answer("/hook", 500, "nope");
    let r = h
        .call_admin(
            "POST",
            &format!("/v1/endpoints/{id}/test"),
            Some(ADMIN_KEY),
            Some(r#"{"event_type": "agent.run.completed", "data": {"x": 1}}"#),
        )
        .await;
    assert_eq!(
        (r.json["success"].as_bool(), r.json["status"].as_u64()),
        (Some(false), Some(500))
    );
}

#[tokio::test]
async fn diagnose_says_what_is_wrong_and_what_to_do() {
    let h = Harness::new().await;
    let rx = Receiver::start().await;
    let healthy = create(&h, json!({"name": "ok", "url": rx.url("/hook")})).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dead = create(
        &h,
        json!({"name": "dead", "url": format!("http://{closed}/hook")}),
    )
    .await;

    let r = h
        .call_admin(
            "GET",
            &format!("/v1/endpoints/{}/diagnose", healthy["id"].as_str().unwrap()),
            Some(ADMIN_KEY),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["dns"]["resolved"], true);
    assert_eq!(r.json["reachability"]["reachable"], true);
    assert_eq!(r.json["advice"], json!(["No problem found."]));

    let id = dead["id"].as_str().unwrap();
    let r = h
        .call_admin(
            "GET",
            &format!("/v1/endpoints/{id}/diagnose"),
            Some(ADMIN_KEY),
            None,
        )
        .await;
    assert_eq!(r.json["reachability"]["reachable"], false, "{}", r.json);
    assert!(
        r.json["advice"][0]
            .as_str()
            .unwrap()
            .contains("Nothing accepts connections"),
        "{}",
        r.json
    );

    let r = patch(
        &h,
        id,
        Some("\"1\""),
        json!({"status": "disabled", "disabled_reason": "gone away"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.json);
    let r = h
        .call_admin(
            "GET",
            &format!("/v1/endpoints/{id}/diagnose"),
            Some(ADMIN_KEY),
            None,
        )
        .await;
    let advice = r.json["advice"].as_array().unwrap();
    assert!(
        advice
            .iter()
            .any(|a| a.as_str().unwrap().contains("It is disabled (gone away)")),
        "{}",
        r.json
    );
}

#[tokio::test]
async fn a_rate_limit_is_a_token_bucket_in_dynamodb() {
    use hookline::ports::RateLimiter;
    let h = Harness::new().await;
    let e = create(
        &h,
        json!({"name": "limited", "url": "http://127.0.0.1:9/", "rate_limit_per_second": 2}),
    )
    .await;
    assert_eq!(e["rate_limit_per_second"], 2);
    let id = hookline::EndpointId::parse(e["id"].as_str().unwrap()).unwrap();
    let t0 = hookline::Timestamp::now();
    let store = h.store();
    let bucket = hookline::ratelimit::RateBucket::Endpoint(&id);
    assert_eq!(store.take(bucket, 2, 1, t0).await.unwrap(), None);
    assert_eq!(store.take(bucket, 2, 1, t0).await.unwrap(), None);
    let wait = store
        .take(bucket, 2, 1, t0)
        .await
        .unwrap()
        .expect("the bucket is empty");
    assert_eq!(wait, std::time::Duration::from_millis(500));
    let later = t0.saturating_add(std::time::Duration::from_millis(500));
    assert_eq!(store.take(bucket, 2, 1, later).await.unwrap(), None);

    let r = patch(
        &h,
        e["id"].as_str().unwrap(),
        Some("\"1\""),
        json!({"rate_limit_per_second": null}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert!(r.json.get("rate_limit_per_second").is_none());
}

#[tokio::test]
async fn a_store_failure_names_its_operation_and_keeps_the_sdk_error_as_its_source() {
    use aws_sdk_dynamodb::error::SdkError;
    use aws_sdk_dynamodb::operation::get_item::GetItemError;
    use hookline::ports::EndpointStore;
    use std::error::Error;
    // GIVEN a store pointed at a table that does not exist
    let h = Harness::new().await;
    let missing = format!("{}-missing", h.stack.table("Table"));
    let store = hookline::adapters::dynamo::DynamoStore::new(
        h.dynamo.clone(),
        missing,
        std::time::Duration::from_secs(60),
    );
    // WHEN an endpoint is read
    let e = store
        .get_endpoint(&hookline::EndpointId::generate())
        .await
        .unwrap_err();
    // THEN the error says what was done, is not worth retrying, and carries the SDK's own
    assert!(e.is_permanent(), "{e}");
    assert_eq!(e.op(), "GetItem endpoint");
    assert!(e.to_string().contains("ResourceNotFoundException"), "{e}");
    let sdk = e.source().and_then(|s| {
        s.downcast_ref::<SdkError<GetItemError, aws_sdk_dynamodb::config::http::HttpResponse>>()
    });
    assert!(sdk.is_some_and(|s| {
        s.as_service_error()
            .is_some_and(|se| se.is_resource_not_found_exception())
    }));
}
