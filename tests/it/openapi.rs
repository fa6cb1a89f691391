//! The OpenAPI document, the API Gateway routes in template.yaml and the handlers'
//! routes are the same set.

use crate::support::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn yaml(rel: &str) -> serde_norway::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    serde_norway::from_str(&std::fs::read_to_string(&path).expect("file reads")).expect("YAML parses")
}

/// (METHOD, path) for every operation the document lists.
pub(crate) fn documented() -> BTreeSet<(String, String)> {
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

/// Path → the function (its binary) the HTTP API routes it to in template.yaml.
fn deployed_routes() -> BTreeMap<String, String> {
    let doc = yaml("../template.yaml");
    let mut routes = BTreeMap::new();
    for (_, res) in doc["Resources"].as_mapping().expect("resources") {
        let Some(events) = res
            .get("Properties")
            .and_then(|p| p.get("Events"))
            .and_then(|e| e.as_mapping())
        else {
            continue;
        };
        let binary = res["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap_or("?");
        for (_, ev) in events {
            if ev["Type"].as_str() == Some("HttpApi") {
                let path = ev["Properties"]["Path"].as_str().unwrap().to_owned();
                routes.insert(path, binary.to_owned());
            }
        }
    }
    routes
}

/// Path → function in `cargo lambda watch`'s router (Cargo.toml), which the local stack uses.
fn local_routes() -> BTreeMap<String, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let text = std::fs::read_to_string(path).expect("Cargo.toml reads");
    let table = text
        .split("[workspace.metadata.lambda.watch.router]")
        .nth(1)
        .expect("the router table");
    table
        .lines()
        .take_while(|l| !l.trim_start().starts_with('['))
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            Some((
                k.trim().trim_matches('"').to_owned(),
                v.trim().trim_matches('"').to_owned(),
            ))
        })
        .collect()
}

#[test]
fn the_document_and_the_template_route_the_same_paths() {
    let documented: BTreeSet<String> = documented().into_iter().map(|(_, p)| p).collect();
    let deployed: BTreeSet<String> = deployed_routes().into_keys().collect();
    assert_eq!(documented, deployed);
}

#[test]
fn the_local_stack_routes_each_path_to_the_same_function_as_the_cloud() {
    assert_eq!(local_routes(), deployed_routes());
}

#[tokio::test]
async fn every_documented_operation_is_served() {
    let h = Harness::new().await;
    let routes = deployed_routes();
    for (method, path) in documented() {
        let concrete = path
            .replace("{id}", "dlv_0000")
            .replace("/endpoints/dlv_0000", "/endpoints/ep_0000")
            .replace("/tenants/dlv_0000", "/tenants/acme")
            .replace("{key_id}", "key_0000");
        let body = if method == "GET" || method == "DELETE" {
            None
        } else {
            Some("{}")
        };
        let r = if routes[&path] == "ingest" {
            h.call_ingest(&method, &concrete, Some(ADMIN_KEY), body).await
        } else if path.starts_with("/console") {
            let concrete = concrete.replace("{file}", "app.js");
            let res = h.admin.handle(request(&method, &concrete, None, None)).await;
            assert_eq!(res.status(), 200, "{concrete}");
            assert!(
                res.headers()["content-security-policy"]
                    .to_str()
                    .unwrap()
                    .starts_with("default-src 'self'")
            );
            continue;
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
