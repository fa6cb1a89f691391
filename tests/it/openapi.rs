//! The OpenAPI document, the API Gateway routes in template.yaml and the handlers'
//! routes are the same set.

use crate::support::*;
use std::collections::BTreeSet;
use std::path::Path;

fn yaml(rel: &str) -> serde_norway::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    serde_norway::from_str(&std::fs::read_to_string(&path).expect("file reads")).expect("YAML parses")
}

/// (METHOD, path) for every operation the document lists.
fn documented() -> BTreeSet<(String, String)> {
    let doc = yaml("../infra/openapi.yaml");
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_mapping().expect("paths") {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_some() {
                ops.insert((method.to_uppercase(), path.as_str().unwrap().to_owned()));
            }
        }
    }
    ops
}

/// Paths the HTTP API routes to a function in template.yaml.
fn deployed_paths() -> BTreeSet<String> {
    let doc = yaml("../template.yaml");
    let mut paths = BTreeSet::new();
    for (_, res) in doc["Resources"].as_mapping().expect("resources") {
        let Some(events) = res
            .get("Properties")
            .and_then(|p| p.get("Events"))
            .and_then(|e| e.as_mapping())
        else {
            continue;
        };
        for (_, ev) in events {
            if ev["Type"].as_str() == Some("HttpApi") {
                paths.insert(ev["Properties"]["Path"].as_str().unwrap().to_owned());
            }
        }
    }
    paths
}

#[test]
fn the_document_and_the_template_route_the_same_paths() {
    let documented: BTreeSet<String> = documented().into_iter().map(|(_, p)| p).collect();
    assert_eq!(documented, deployed_paths());
}

#[tokio::test]
async fn every_documented_operation_is_served() {
    let h = Harness::new().await;
    for (method, path) in documented() {
        let concrete = path
            .replace("{id}", "dlv_0000")
            .replace("/endpoints/dlv_0000", "/endpoints/ep_0000");
        let body = if method == "GET" || method == "DELETE" {
            None
        } else {
            Some("{}")
        };
        let r = if path.starts_with("/v1/events") && !path.contains("{id}") {
            h.call_ingest(&method, &concrete, Some(ADMIN_KEY), body).await
        } else if path == "/openapi.yaml" {
            let res = h.admin.handle(request(&method, &concrete, None, None)).await;
            assert_eq!(res.status(), 200);
            assert!(
                std::str::from_utf8(res.body().as_ref())
                    .unwrap()
                    .starts_with("openapi: 3.1.0")
            );
            continue;
        } else {
            h.call_admin(&method, &concrete, Some(ADMIN_KEY), body).await
        };
        let no_route = r.status == 404
            && r.json["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with("no route"));
        assert!(
            !no_route && r.status != 405,
            "{method} {path} is documented but not served: {} {}",
            r.status,
            r.json
        );
    }
}
