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
    let mut seen = Vec::new();
    let mut path = "/v1/endpoints?limit=2".to_owned();
    for _ in 0..5 {
        let page = h.call_admin("GET", &path, Some(ADMIN_KEY), None).await;
        assert_eq!(page.status, 200, "{}", page.json);
        seen.extend(
            page.json["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["name"].as_str().unwrap().to_owned()),
        );
        match page.json["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/endpoints?limit=2&cursor={c}"),
            None => break,
        }
    }
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
