//! Tenants: one Hookline for many customers. Each tenant's events reach its own
//! endpoints only, and a tenant key acts on its own tenant only: anything of another's
//! is not there (404), on every route.

use crate::support::*;
use hookline::message::QueueMessage;
use hookline::tenant_key::{TenantKey, TenantScope};
use serde_json::{Value, json};

const RUN_SUCCESS: &str = include_str!("../../functions/ingest/fixtures/langgraph/run-webhook-success.json");

async fn admin(h: &Harness, method: &str, path: &str, body: Option<Value>) -> Reply {
    let body = body.map(|b| b.to_string());
    h.call_admin(method, path, Some(ADMIN_KEY), body.as_deref()).await
}

async fn tenant(h: &Harness, id: &str) {
    let r = admin(
        h,
        "POST",
        "/v1/tenants",
        Some(json!({"id": id, "name": id.to_uppercase()})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.json);
}

/// A new key of the tenant's, in `scope`: the key itself.
async fn key(h: &Harness, tenant: &str, scope: &str) -> String {
    let path = format!("/v1/tenants/{tenant}/keys");
    let r = admin(h, "POST", &path, Some(json!({"scope": scope}))).await;
    assert_eq!(r.status, 201, "{}", r.json);
    assert_eq!(r.json["scope"], scope);
    r.json["key"].as_str().unwrap().to_owned()
}

/// An endpoint registered with a tenant's manage key: its id.
async fn endpoint(h: &Harness, key: &str, url: &str) -> String {
    let body = json!({"name": "crm", "url": url, "event_types": ["agent.*"]}).to_string();
    let r = h
        .call_admin("POST", "/v1/endpoints", Some(key), Some(&body))
        .await;
    assert_eq!(r.status, 201, "{}", r.json);
    r.json["id"].as_str().unwrap().to_owned()
}

async fn send(h: &Harness, key: &str, body: Value) -> Reply {
    h.call_ingest("POST", "/v1/events", Some(key), Some(&body.to_string()))
        .await
}

/// Two tenants, each with a manage key and an endpoint for `agent.*` on `rx`.
struct Two {
    a_key: String,
    b_key: String,
    a_ep: String,
    b_ep: String,
}

async fn two_tenants(h: &Harness, rx: &Receiver) -> Two {
    tenant(h, "a").await;
    tenant(h, "b").await;
    let (a_key, b_key) = (key(h, "a", "manage").await, key(h, "b", "manage").await);
    let a_ep = endpoint(h, &a_key, &rx.url("/a")).await;
    let b_ep = endpoint(h, &b_key, &rx.url("/b")).await;
    Two {
        a_key,
        b_key,
        a_ep,
        b_ep,
    }
}

/// Two tenants, and b's event `b-evt` delivered to b's endpoint: the delivery's id.
async fn two_tenants_and_a_delivery_of_bs(h: &Harness, rx: &Receiver) -> (Two, String) {
    let t = two_tenants(h, rx).await;
    let r = send(
        h,
        &t.b_key,
        json!({"id": "b-evt", "event_type": "agent.x", "data": {}}),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.json);
    h.pump().await;
    let log = admin(h, "GET", "/v1/deliveries?tenant_id=b", None).await;
    let delivery = log.json["data"][0]["id"].as_str().unwrap().to_owned();
    (t, delivery)
}

/// A key's record written as it stands; then the key, on an admin and an ingest route,
/// is a 401 on both.
async fn stored_and_refused(h: &Harness, record: &TenantKey, key: &str) {
    hookline::ports::TenantStore::create_key(&h.store(), record)
        .await
        .unwrap();
    let r = h.call_admin("GET", "/v1/endpoints", Some(key), None).await;
    assert_eq!(r.status, 401, "{}", r.json);
    let r = send(h, key, json!({"event_type": "a.b", "data": {}})).await;
    assert_eq!(r.status, 401, "{}", r.json);
}

#[tokio::test]
async fn each_tenants_events_reach_only_its_own_endpoints_and_the_same_id_is_two_events() {
    // GIVEN tenants a and b, each with an endpoint for the same event type
    let h = Harness::new().await;
    let rx = Receiver::start().await;
    let t = two_tenants(&h, &rx).await;
    // AND an endpoint of the default tenant for it too
    h.register("default", &rx.url("/default"), &["agent.*"]).await;

    // WHEN each tenant sends an event under the same id, with its own key
    for (key, run) in [(&t.a_key, "a-run"), (&t.b_key, "b-run")] {
        let r = send(
            &h,
            key,
            json!({"id": "run-1", "event_type": "agent.run.completed", "data": {"run": run}}),
        )
        .await;
        assert_eq!(r.status, 202, "{}", r.json);
    }
    h.pump().await;

    // THEN each endpoint gets its own tenant's event once, and no other
    for (path, tenant, run) in [("/a", "a", "a-run"), ("/b", "b", "b-run")] {
        let got = rx.received(path);
        assert_eq!(got.len(), 1, "{path}");
        let body = got[0].json();
        assert_eq!(
            (body["id"].as_str(), body["data"]["run"].as_str()),
            (Some("run-1"), Some(run))
        );
        assert_eq!(body["tenant_id"], tenant);
    }
    // AND the default tenant's endpoint got neither
    assert!(rx.received("/default").is_empty());

    // AND each tenant sees its own event under that id, with its one delivery
    for (key, ep) in [(&t.a_key, &t.a_ep), (&t.b_key, &t.b_ep)] {
        let r = h.call_admin("GET", "/v1/events/run-1", Some(key), None).await;
        assert_eq!(r.status, 200, "{}", r.json);
        let deliveries = r.json["deliveries"].as_array().unwrap();
        assert_eq!(deliveries.len(), 1);
        assert_eq!(deliveries[0]["endpoint_id"].as_str(), Some(ep.as_str()));
    }
    // AND the operator names the tenant to see it; the default tenant has no such event
    let r = admin(&h, "GET", "/v1/events/run-1?tenant_id=b", None).await;
    assert_eq!(r.json["event"]["data"]["run"], "b-run");
    assert_eq!(admin(&h, "GET", "/v1/events/run-1", None).await.status, 404);
}

#[tokio::test]
async fn a_tenant_key_gets_404_for_another_tenants_endpoint_delivery_event_and_stats() {
    // GIVEN two tenants, and a delivery of b's
    let h = Harness::new().await;
    let rx = Receiver::start().await;
    let (t, b_delivery) = two_tenants_and_a_delivery_of_bs(&h, &rx).await;

    // WHEN a's key asks for b's things THEN none is there
    for path in [
        format!("/v1/endpoints/{}", t.b_ep),
        format!("/v1/endpoints/{}/stats", t.b_ep),
        format!("/v1/deliveries/{b_delivery}"),
        "/v1/events/b-evt".to_owned(),
        "/v1/events/b-evt?tenant_id=b".to_owned(),
        "/v1/tenants/b".to_owned(),
        "/v1/deliveries?tenant_id=b".to_owned(),
        "/v1/endpoints?tenant_id=b".to_owned(),
        "/v1/stats?tenant_id=b".to_owned(),
    ] {
        let r = h.call_admin("GET", &path, Some(&t.a_key), None).await;
        assert_eq!(r.status, 404, "{path}: {}", r.json);
        assert!(
            !r.json.to_string().contains(&rx.url("/b")),
            "{path} tells of b's endpoint"
        );
    }
    // AND it cannot make an endpoint in b
    let body = json!({"name": "x", "url": rx.url("/x"), "event_types": ["*"], "tenant_id": "b"}).to_string();
    let r = h
        .call_admin("POST", "/v1/endpoints", Some(&t.a_key), Some(&body))
        .await;
    assert_eq!(r.status, 422, "{}", r.json);
    assert_eq!(r.json["errors"][0]["pointer"], "/tenant_id");
    // AND its own listings hold only its own
    let mine = h.call_admin("GET", "/v1/endpoints", Some(&t.a_key), None).await;
    let ids: Vec<&str> = mine.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["id"].as_str())
        .collect();
    assert_eq!(ids, [t.a_ep.as_str()]);
    let log = h.call_admin("GET", "/v1/deliveries", Some(&t.a_key), None).await;
    assert_eq!(log.json["data"], json!([]));
    // AND the operator sees both
    let all = admin(&h, "GET", "/v1/endpoints", None).await;
    assert_eq!(all.json["data"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn every_admin_route_answers_a_tenant_key_that_names_another_tenants_id_as_not_there() {
    // GIVEN two tenants, and something of b's behind every kind of id
    let h = Harness::new().await;
    let rx = Receiver::start().await;
    let (t, b_delivery) = two_tenants_and_a_delivery_of_bs(&h, &rx).await;
    let b_keys = admin(&h, "GET", "/v1/tenants/b/keys", None).await;
    let b_key_id = b_keys.json["data"][0]["id"].as_str().unwrap().to_owned();

    // WHEN a's manage key calls every documented admin route with b's ids
    let mut walked = 0;
    for (method, path) in crate::openapi::documented() {
        if matches!(path.as_str(), "/health" | "/openapi.yaml")
            || path.starts_with("/console")
            || path.starts_with("/v1/events/batch")
            || path == "/v1/langgraph/runs"
            || (path == "/v1/events" && method == "POST")
        {
            continue;
        }
        let foreign = path
            .replace("/endpoints/{id}", &format!("/endpoints/{}", t.b_ep))
            .replace("/deliveries/{id}", &format!("/deliveries/{b_delivery}"))
            .replace("/events/{id}", "/events/b-evt")
            .replace("/tenants/{id}", "/tenants/b")
            .replace("{key_id}", &b_key_id);
        // A route without an id is asked for b's by its filter (or its body).
        let foreign = if foreign.contains('{')
            || foreign.contains("/b")
            || foreign.contains("b-evt")
            || foreign.contains(&t.b_ep)
            || foreign.contains(&b_delivery)
        {
            foreign
        } else if method == "GET" {
            format!("{foreign}?tenant_id=b")
        } else {
            foreign
        };
        let body = (method != "GET" && method != "DELETE").then(|| json!({"tenant_id": "b"}).to_string());
        let r = h
            .call_admin(&method, &foreign, Some(&t.a_key), body.as_deref())
            .await;
        walked += 1;
        // THEN nothing of b's is shown or changed: a 404 where the route is the
        // tenant's, a 403 where it is the operator's alone (whatever the id), and a
        // 422 for a body that names b
        // The operator's routes, and the portal's exchange, which takes a link's token.
        let operator_only = path.starts_with("/v1/dead-letters")
            || path == "/v1/portal/sessions"
            || (path.starts_with("/v1/tenants") && !(method == "GET" && path == "/v1/tenants/{id}"));
        let expected = if operator_only {
            403
        } else if path == "/v1/endpoints" && method == "POST" {
            422
        } else {
            404
        };
        assert_eq!(r.status, expected, "{method} {foreign}: {}", r.json);
        assert!(
            !r.json.to_string().contains(&rx.url("/b")),
            "{method} {foreign} tells of b's endpoint"
        );
    }
    assert!(walked >= 20, "walked {walked} routes");
    // AND b's things are as they were
    let ep = admin(&h, "GET", &format!("/v1/endpoints/{}", t.b_ep), None).await;
    assert_eq!(
        (ep.json["status"].as_str(), ep.json["version"].as_u64()),
        (Some("active"), Some(1))
    );
    assert_eq!(
        admin(&h, "GET", "/v1/tenants/b/keys", None).await.json["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn a_revoked_key_is_refused_at_once_and_an_expired_one_too() {
    let h = Harness::new().await;
    tenant(&h, "a").await;
    let k = key(&h, "a", "read").await;
    assert_eq!(
        h.call_admin("GET", "/v1/endpoints", Some(&k), None).await.status,
        200
    );
    // The list shows the key without its value.
    let keys = admin(&h, "GET", "/v1/tenants/a/keys", None).await;
    assert!(keys.json["data"][0].get("key").is_none());
    assert!(!keys.json.to_string().contains(&k[k.rfind('.').unwrap() + 1..]));
    let id = keys.json["data"][0]["id"].as_str().unwrap();

    // WHEN it is revoked THEN the next request with it is a 401
    let r = admin(&h, "DELETE", &format!("/v1/tenants/a/keys/{id}"), None).await;
    assert_eq!(r.status, 204, "{}", r.json);
    assert_eq!(
        h.call_admin("GET", "/v1/endpoints", Some(&k), None).await.status,
        401
    );
    assert_eq!(
        admin(&h, "DELETE", &format!("/v1/tenants/a/keys/{id}"), None)
            .await
            .status,
        404
    );

    // AND a key whose time is up is a 401 too, as stored
    let tenant_id = hookline::TenantId::parse("a").unwrap();
    let past = hookline::Timestamp::now().minus(std::time::Duration::from_secs(3600));
    let (record, expired) = TenantKey::issue(
        &tenant_id,
        TenantScope::Manage,
        None,
        Some(past),
        past.minus(std::time::Duration::from_secs(60)),
    );
    stored_and_refused(&h, &record, &expired).await;
}

#[tokio::test]
async fn each_scope_does_what_it_names_and_no_tenant_key_reaches_the_operators_routes() {
    let h = Harness::new().await;
    let rx = Receiver::start().await;
    tenant(&h, "a").await;
    let (ingest, read, manage) = (
        key(&h, "a", "ingest").await,
        key(&h, "a", "read").await,
        key(&h, "a", "manage").await,
    );
    let new = json!({"name": "x", "url": rx.url("/x"), "event_types": ["*"]}).to_string();
    let event = json!({"event_type": "agent.x", "data": {}});
    assert_eq!(send(&h, &ingest, event.clone()).await.status, 202);
    assert_eq!(
        h.call_admin("GET", "/v1/endpoints", Some(&ingest), None)
            .await
            .status,
        403
    );
    assert_eq!(
        h.call_admin("GET", "/v1/endpoints", Some(&read), None)
            .await
            .status,
        200
    );
    assert_eq!(
        h.call_admin("POST", "/v1/endpoints", Some(&read), Some(&new))
            .await
            .status,
        403
    );
    assert_eq!(send(&h, &read, event.clone()).await.status, 403);
    assert_eq!(
        h.call_admin("POST", "/v1/endpoints", Some(&manage), Some(&new))
            .await
            .status,
        201
    );
    assert_eq!(send(&h, &manage, event).await.status, 202);
    assert_eq!(
        h.call_admin("GET", "/v1/tenants/a", Some(&read), None)
            .await
            .status,
        200
    );
    for (method, path) in [
        ("GET", "/v1/tenants"),
        ("GET", "/v1/dead-letters"),
        ("GET", "/v1/tenants/a/keys"),
        ("DELETE", "/v1/tenants/a"),
    ] {
        assert_eq!(
            h.call_admin(method, path, Some(&manage), None).await.status,
            403,
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn the_operator_names_a_tenant_and_one_that_does_not_exist_is_refused_with_its_field() {
    let h = Harness::new().await;
    tenant(&h, "a").await;
    let r = h
        .call_ingest(
            "POST",
            "/v1/events",
            Some(INGEST_KEY),
            Some(&json!({"event_type": "a.b", "data": {}, "tenant_id": "nope"}).to_string()),
        )
        .await;
    assert_eq!(
        (r.status, r.json["errors"][0]["pointer"].as_str()),
        (422, Some("/tenant_id")),
        "{}",
        r.json
    );
    let batch = json!({"events": [
        {"event_type": "a.b", "data": {}, "tenant_id": "a"},
        {"event_type": "a.b", "data": {}, "tenant_id": "nope"},
        {"event_type": "a.b", "data": {}},
    ]});
    let r = h
        .call_ingest(
            "POST",
            "/v1/events/batch",
            Some(INGEST_KEY),
            Some(&batch.to_string()),
        )
        .await;
    assert_eq!(
        (r.status, r.json["accepted"].as_u64()),
        (202, Some(2)),
        "{}",
        r.json
    );
    assert_eq!(
        r.json["results"][1]["errors"][0]["pointer"],
        "/events/1/tenant_id"
    );
    let r = admin(
        &h,
        "POST",
        "/v1/endpoints",
        Some(json!({"name": "x", "url": "http://127.0.0.1:9/x", "event_types": ["*"], "tenant_id": "nope"})),
    )
    .await;
    assert_eq!(
        (r.status, r.json["errors"][0]["pointer"].as_str()),
        (422, Some("/tenant_id")),
        "{}",
        r.json
    );
}

#[tokio::test]
async fn a_tenant_is_created_read_changed_listed_and_deleted_and_default_is_built_in() {
    let h = Harness::new().await;
    let rx = Receiver::start().await;
    let r = admin(
        &h,
        "POST",
        "/v1/tenants",
        Some(json!({"id": "cus_42", "name": "Acme", "metadata": {"plan": "pro"}})),
    )
    .await;
    assert_eq!(
        (r.status, r.headers["location"].to_str().unwrap()),
        (201, "/v1/tenants/cus_42")
    );
    assert_eq!(
        admin(
            &h,
            "POST",
            "/v1/tenants",
            Some(json!({"id": "cus_42", "name": "again"}))
        )
        .await
        .status,
        409
    );
    assert_eq!(
        admin(
            &h,
            "POST",
            "/v1/tenants",
            Some(json!({"id": "default", "name": "x"}))
        )
        .await
        .status,
        409
    );
    let made = admin(&h, "POST", "/v1/tenants", Some(json!({"name": "Beta"}))).await;
    assert!(made.json["id"].as_str().unwrap().starts_with("tnt_"));
    let r = admin(
        &h,
        "PATCH",
        "/v1/tenants/cus_42",
        Some(json!({"name": "Acme Inc"})),
    )
    .await;
    assert_eq!(
        (
            r.status,
            r.json["name"].as_str(),
            r.json["metadata"]["plan"].as_str()
        ),
        (200, Some("Acme Inc"), Some("pro"))
    );
    let listed = h.read_all("/v1/tenants", 1, 5).await;
    assert_eq!(listed.len(), 2);
    let r = admin(&h, "GET", "/v1/tenants/default", None).await;
    assert_eq!(
        r.json,
        json!({"id": "default", "name": "default", "metadata": {}, "limits": {}, "built_in": true})
    );
    assert_eq!(admin(&h, "DELETE", "/v1/tenants/default", None).await.status, 409);

    // WHEN a tenant with an endpoint and a key is deleted
    let k = key(&h, "cus_42", "manage").await;
    let ep = endpoint(&h, &k, &rx.url("/acme")).await;
    assert_eq!(admin(&h, "DELETE", "/v1/tenants/cus_42", None).await.status, 204);
    // THEN its key is refused, its endpoint is disabled, and nothing names it any more
    assert_eq!(
        send(&h, &k, json!({"event_type": "agent.x", "data": {}}))
            .await
            .status,
        401
    );
    let e = admin(&h, "GET", &format!("/v1/endpoints/{ep}"), None).await;
    assert_eq!(
        (e.json["status"].as_str(), e.json["tenant_id"].as_str()),
        (Some("disabled"), Some("cus_42"))
    );
    assert_eq!(admin(&h, "GET", "/v1/tenants/cus_42", None).await.status, 404);
    let r = h
        .call_ingest(
            "POST",
            "/v1/events",
            Some(INGEST_KEY),
            Some(&json!({"event_type": "agent.x", "data": {}, "tenant_id": "cus_42"}).to_string()),
        )
        .await;
    assert_eq!(r.status, 422);
}

#[tokio::test]
async fn a_langgraph_deployment_with_a_tenant_key_in_its_webhook_url_sends_that_tenants_runs() {
    let h = Harness::new().await;
    let rx = Receiver::start().await;
    let t = two_tenants(&h, &rx).await;
    h.call_admin(
        "PATCH",
        &format!("/v1/endpoints/{}", t.a_ep),
        Some(&t.a_key),
        Some(&json!({"version": 1, "event_types": ["agent_invocation_*"]}).to_string()),
    )
    .await;
    let a_ingest = key(&h, "a", "ingest").await;
    let mut run: Value = serde_json::from_str(RUN_SUCCESS).unwrap();
    // The key it came with, echoed where no name says it is a secret.
    run["metadata"]["note"] = json!(format!("sent with {a_ingest}"));
    let r = h
        .call_ingest(
            "POST",
            &format!("/v1/langgraph/runs?token={a_ingest}"),
            None,
            Some(&run.to_string()),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.json);
    h.pump().await;
    let got = rx.received("/a");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].json()["tenant_id"], "a");
    assert!(
        !String::from_utf8_lossy(&got[0].body).contains(&a_ingest),
        "the tenant key left in the event"
    );
    let note = got[0].json()["data"]["metadata"]["note"].clone();
    assert!(
        note.as_str().is_some_and(|n| n.starts_with("sent with ")),
        "{note}"
    );
    assert!(rx.received("/b").is_empty());
    // The operator's key names the tenant in the query instead.
    let r = h
        .call_ingest(
            "POST",
            "/v1/langgraph/runs?tenant_id=nope",
            Some(INGEST_KEY),
            Some(&run.to_string()),
        )
        .await;
    assert_eq!(
        (r.status, r.json["errors"][0]["pointer"].as_str()),
        (422, Some("?tenant_id"))
    );
}

#[tokio::test]
async fn a_tenant_over_its_ingest_rate_gets_a_429_with_retry_after_and_the_others_are_not_held() {
    // GIVEN a tenant that may send 2 events a second, and another with the default
    let h = Harness::new().await;
    let r = admin(
        &h,
        "POST",
        "/v1/tenants",
        Some(json!({"id": "slow", "name": "Slow", "limits": {"ingest_per_second": 2}})),
    )
    .await;
    assert_eq!(
        (r.status, r.json["limits"]["ingest_per_second"].as_u64()),
        (201, Some(2)),
        "{}",
        r.json
    );
    tenant(&h, "other").await;
    let (slow, other) = (key(&h, "slow", "ingest").await, key(&h, "other", "ingest").await);
    let event = json!({"event_type": "agent.x", "data": {}});

    // WHEN it sends a batch of 3 at once, then one at a time
    let batch = json!({"events": [event, event, event]}).to_string();
    let r = h
        .call_ingest("POST", "/v1/events/batch", Some(&slow), Some(&batch))
        .await;
    assert_eq!(
        r.status, 202,
        "a batch goes while its second has room: {}",
        r.json
    );
    let mut refused = None;
    for _ in 0..10 {
        let r = send(&h, &slow, event.clone()).await;
        if r.status != 202 {
            refused = Some(r);
            break;
        }
    }

    // THEN one is a 429 that says when to come back (the next second at the latest;
    // two seconds' worth at most can go in between)
    let r = refused.expect("a 429 within 10 events at 2 a second");
    assert_eq!(r.status, 429, "{}", r.json);
    assert_eq!(r.headers["retry-after"], "1");
    // AND the other tenant, and the operator's default tenant, send as before
    assert_eq!(send(&h, &other, event.clone()).await.status, 202);
    assert_eq!(send(&h, INGEST_KEY, event).await.status, 202);
}

#[tokio::test]
async fn a_tenant_at_its_endpoint_limit_gets_a_409_until_its_limit_is_raised() {
    let h = Harness::new().await;
    let rx = Receiver::start().await;
    let r = admin(
        &h,
        "POST",
        "/v1/tenants",
        Some(json!({"id": "small", "name": "Small", "limits": {"max_endpoints": 1}})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.json);
    let k = key(&h, "small", "manage").await;
    endpoint(&h, &k, &rx.url("/one")).await;
    let body = json!({"name": "two", "url": rx.url("/two"), "event_types": ["*"]}).to_string();
    let r = h.call_admin("POST", "/v1/endpoints", Some(&k), Some(&body)).await;
    assert_eq!(r.status, 409, "{}", r.json);
    // The operator's endpoints in the default tenant do not count against it.
    h.register("mine", &rx.url("/mine"), &["*"]).await;
    let r = admin(
        &h,
        "PATCH",
        "/v1/tenants/small",
        Some(json!({"limits": {"max_endpoints": 2}})),
    )
    .await;
    assert_eq!(r.json["limits"]["max_endpoints"], 2);
    assert_eq!(
        h.call_admin("POST", "/v1/endpoints", Some(&k), Some(&body))
            .await
            .status,
        201
    );
}

#[tokio::test]
async fn a_named_tenants_delivery_whose_message_was_lost_is_redriven_to_its_own_endpoint() {
    // GIVEN tenant a and the default tenant, each with a failing endpoint, and an event
    // each under the same id, waiting for its second attempt, whose message is lost
    let h = Harness::with(crate::sweeper::quick()).await;
    let rx = Receiver::start().await;
    rx.answer("/a", 500, "down");
    rx.answer("/default", 500, "down");
    tenant(&h, "a").await;
    let a_key = key(&h, "a", "manage").await;
    endpoint(&h, &a_key, &rx.url("/a")).await;
    h.register("default", &rx.url("/default"), &["agent.*"]).await;
    let event = |run: &str| json!({"id": "same-1", "event_type": "agent.x", "data": {"run": run}});
    assert_eq!(send(&h, &a_key, event("a's")).await.status, 202);
    assert_eq!(send(&h, INGEST_KEY, event("default's")).await.status, 202);
    h.pump().await;
    crate::sweeper::purge(&h).await;
    rx.answer("/a", 200, "ok");
    rx.answer("/default", 200, "ok");

    // WHEN the sweeper runs once their attempts are overdue
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let report = h.sweeper().sweep().await.unwrap();
    h.pump().await;

    // THEN each is re-driven with its own tenant's event, and delivered
    assert_eq!(report.redriven, 2, "{report:?}");
    for (path, run) in [("/a", "a's"), ("/default", "default's")] {
        let got = rx.received(path);
        assert_eq!(got.len(), 2, "{path}");
        assert!(got.iter().all(|r| r.json()["data"]["run"] == run), "{path}");
    }
    let log = admin(&h, "GET", "/v1/deliveries", None).await;
    let statuses: Vec<&str> = log.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["status"].as_str())
        .collect();
    assert_eq!(statuses, ["delivered", "delivered"]);
}

#[tokio::test]
async fn a_tenant_key_pages_through_its_own_endpoints_and_learns_nothing_of_the_others() {
    let h = Harness::new().await;
    tenant(&h, "a").await;
    tenant(&h, "b").await;
    let (a, b) = (key(&h, "a", "manage").await, key(&h, "b", "manage").await);
    // Interleaved, so that the partition's order mixes the tenants.
    let mut mine = Vec::new();
    for i in 0..3 {
        mine.push(endpoint(&h, &a, &format!("http://127.0.0.1:9/a{i}")).await);
        endpoint(&h, &b, &format!("http://127.0.0.1:9/b{i}")).await;
    }
    let mut seen = Vec::new();
    let mut path = "/v1/endpoints?limit=1".to_owned();
    for _ in 0..10 {
        let r = h.call_admin("GET", &path, Some(&a), None).await;
        assert_eq!(r.status, 200, "{}", r.json);
        for e in r.json["data"].as_array().unwrap() {
            seen.push(e["id"].as_str().unwrap().to_owned());
        }
        match r.json["next_cursor"].as_str() {
            Some(c) => {
                let named = base64_decode(c);
                assert!(mine.contains(&named), "the cursor names {named}, not one of a's");
                path = format!("/v1/endpoints?limit=1&cursor={c}");
            }
            None => break,
        }
    }
    assert_eq!(seen, mine);
    // AND another tenant's endpoint as a log filter is not there either
    let theirs = admin(&h, "GET", "/v1/endpoints?tenant_id=b&limit=1", None)
        .await
        .json["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = h
        .call_admin(
            "GET",
            &format!("/v1/deliveries?endpoint_id={theirs}"),
            Some(&a),
            None,
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.json);
}

fn base64_decode(s: &str) -> String {
    use base64::Engine;
    String::from_utf8(
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn a_deleted_tenants_id_stays_taken_and_a_key_left_over_from_it_acts_for_nothing() {
    let h = Harness::new().await;
    tenant(&h, "gone").await;
    assert_eq!(admin(&h, "DELETE", "/v1/tenants/gone", None).await.status, 204);
    // Its data is kept for the retention period: a new tenant may not inherit it.
    let r = admin(
        &h,
        "POST",
        "/v1/tenants",
        Some(json!({"id": "gone", "name": "again"})),
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.json);
    assert!(admin(&h, "GET", "/v1/tenants", None).await.json["data"] == json!([]));
    // A key issued as the tenant was being deleted is refused everywhere.
    let tenant_id = hookline::TenantId::parse("gone").unwrap();
    let (record, late) = TenantKey::issue(
        &tenant_id,
        TenantScope::Manage,
        None,
        None,
        hookline::Timestamp::now(),
    );
    stored_and_refused(&h, &record, &late).await;
}

#[tokio::test]
async fn each_tenants_messages_carry_it_as_their_group_so_a_fair_queue_keeps_one_tenant_from_holding_up_the_others()
 {
    // GIVEN two tenants sending at once, one a batch, one an event
    let h = Harness::new().await;
    tenant(&h, "a").await;
    tenant(&h, "b").await;
    let (a, b) = (key(&h, "a", "ingest").await, key(&h, "b", "ingest").await);
    let batch =
        json!({"events": [{"event_type": "agent.x", "data": {}}, {"event_type": "agent.y", "data": {}}]});
    let r = h
        .call_ingest("POST", "/v1/events/batch", Some(&a), Some(&batch.to_string()))
        .await;
    assert_eq!(r.status, 202, "{}", r.json);
    assert_eq!(
        send(&h, &b, json!({"event_type": "agent.x", "data": {}}))
            .await
            .status,
        202
    );
    assert_eq!(
        send(&h, INGEST_KEY, json!({"event_type": "agent.x", "data": {}}))
            .await
            .status,
        202
    );

    // WHEN the queue's messages are read as SQS holds them
    let out = h
        .sqs
        .receive_message()
        .queue_url(h.stack.queue_url("DeliveryQueue"))
        .max_number_of_messages(10)
        .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::MessageGroupId)
        .send()
        .await
        .unwrap();

    // THEN each names its tenant as its message group, the default tenant's too
    let mut groups: Vec<String> = out
        .messages()
        .iter()
        .map(|m| {
            let group = m
                .attributes()
                .and_then(|a| a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::MessageGroupId))
                .cloned()
                .unwrap_or_default();
            let body = QueueMessage::from_body(m.body().unwrap_or_default()).unwrap();
            assert_eq!(body.tenant().map(|t| t.to_string()), Some(group.clone()));
            group
        })
        .collect();
    groups.sort();
    assert_eq!(groups, ["a", "b", "default"], "one packed message for a's batch");
}
