//! The tenant portal's links: one exchange each, for a session that sees and changes
//! its tenant's endpoints and deliveries only.

use crate::support::*;
use hookline::tenant_key::{TenantKey, TenantScope};
use serde_json::{Value, json};

async fn admin(h: &Harness, method: &str, path: &str, body: Option<Value>) -> Reply {
    let body = body.map(|b| b.to_string());
    h.call_admin(method, path, Some(ADMIN_KEY), body.as_deref()).await
}

/// A tenant with a manage key and one endpoint: the endpoint's id.
async fn tenant_with_endpoint(h: &Harness, id: &str) -> String {
    let r = admin(h, "POST", "/v1/tenants", Some(json!({"id": id, "name": id}))).await;
    assert_eq!(r.status, 201, "{}", r.json);
    let key = admin(
        h,
        "POST",
        &format!("/v1/tenants/{id}/keys"),
        Some(json!({"scope": "manage"})),
    )
    .await;
    let key = key.json["key"].as_str().unwrap().to_owned();
    let body =
        json!({"name": id, "url": format!("http://127.0.0.1:9/{id}"), "event_types": ["*"]}).to_string();
    let r = h
        .call_admin("POST", "/v1/endpoints", Some(&key), Some(&body))
        .await;
    assert_eq!(r.status, 201, "{}", r.json);
    r.json["id"].as_str().unwrap().to_owned()
}

async fn exchange(h: &Harness, token: &str) -> Reply {
    h.call_admin("POST", "/v1/portal/sessions", Some(token), None)
        .await
}

#[tokio::test]
async fn a_portal_link_opens_one_session_that_sees_and_changes_its_tenant_only() {
    // GIVEN two tenants with an endpoint each, and a portal link for a
    let h = Harness::new().await;
    let mine = tenant_with_endpoint(&h, "a").await;
    let theirs = tenant_with_endpoint(&h, "b").await;
    let r = admin(
        &h,
        "POST",
        "/v1/tenants/a/portal-links",
        Some(json!({"expires_in": 600})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.json);
    let path = r.json["path"].as_str().unwrap();
    let token = path
        .strip_prefix("/console#token=")
        .expect("the token is in the fragment");
    assert!(token.starts_with("hk_a."));

    // WHEN the link's token is used as a key THEN it opens a session and nothing else
    assert_eq!(
        h.call_admin("GET", "/v1/endpoints", Some(token), None)
            .await
            .status,
        403
    );
    let r = exchange(&h, token).await;
    assert_eq!(
        (r.status, r.json["scope"].as_str()),
        (201, Some("portal")),
        "{}",
        r.json
    );
    let session = r.json["key"].as_str().unwrap().to_owned();
    // AND only once
    assert_eq!(exchange(&h, token).await.status, 401);

    // AND the session sees its tenant's endpoints, and changes them
    let listed = h.call_admin("GET", "/v1/endpoints", Some(&session), None).await;
    let ids: Vec<&str> = listed.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["id"].as_str())
        .collect();
    assert_eq!(ids, [mine.as_str()]);
    let patch = json!({"version": 1, "name": "renamed in the portal"}).to_string();
    let r = h
        .call_admin(
            "PATCH",
            &format!("/v1/endpoints/{mine}"),
            Some(&session),
            Some(&patch),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    // AND not another tenant's, nor sends events, nor reaches the operator's routes
    let r = h
        .call_admin("GET", &format!("/v1/endpoints/{theirs}"), Some(&session), None)
        .await;
    assert_eq!(r.status, 404);
    let event = json!({"event_type": "a.b", "data": {}}).to_string();
    let r = h
        .call_ingest("POST", "/v1/events", Some(&session), Some(&event))
        .await;
    assert_eq!(r.status, 403, "{}", r.json);
    assert_eq!(
        h.call_admin("GET", "/v1/tenants/a/keys", Some(&session), None)
            .await
            .status,
        403
    );
    assert_eq!(
        h.call_admin("POST", "/v1/tenants/a/portal-links", Some(&session), Some("{}"))
            .await
            .status,
        403
    );
}

#[tokio::test]
async fn an_expired_or_tampered_link_is_refused_and_other_keys_cannot_open_a_session() {
    let h = Harness::new().await;
    tenant_with_endpoint(&h, "a").await;
    // An expired link, stored as a link made an hour ago for ten minutes.
    let tenant = hookline::TenantId::parse("a").unwrap();
    let made = hookline::Timestamp::now().minus(std::time::Duration::from_secs(3600));
    let (record, expired) = TenantKey::issue(
        &tenant,
        TenantScope::PortalLink,
        None,
        Some(made.saturating_add(std::time::Duration::from_secs(600))),
        made,
    );
    hookline::ports::TenantStore::create_key(&h.store(), &record)
        .await
        .unwrap();
    assert_eq!(exchange(&h, &expired).await.status, 401);

    let r = admin(&h, "POST", "/v1/tenants/a/portal-links", None).await;
    let token = r.json["path"]
        .as_str()
        .unwrap()
        .strip_prefix("/console#token=")
        .unwrap()
        .to_owned();
    let mut tampered = token.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(exchange(&h, &tampered).await.status, 401);
    // The untampered one still opens (a failed try does not spend it).
    assert_eq!(exchange(&h, &token).await.status, 201);
    assert_eq!(exchange(&h, ADMIN_KEY).await.status, 403);

    // A link is for a named tenant, for at most a week.
    assert_eq!(
        admin(&h, "POST", "/v1/tenants/default/portal-links", None)
            .await
            .status,
        409
    );
    let r = admin(
        &h,
        "POST",
        "/v1/tenants/a/portal-links",
        Some(json!({"expires_in": 604_801})),
    )
    .await;
    assert_eq!(
        (r.status, r.json["errors"][0]["pointer"].as_str()),
        (422, Some("/expires_in"))
    );
    assert_eq!(
        admin(&h, "POST", "/v1/tenants/nope/portal-links", None)
            .await
            .status,
        404
    );
}
