//! Which handler a request goes to: the path and method, after the key's scope. The
//! admin API as a whole, so it needs every port the handlers use.

use crate::console;
use crate::problems::{no_endpoint, parse_delivery_id, parse_tenant_id};
use crate::{Admin, HttpResult, OPENAPI};
use hookline::access;
use hookline::api;
use hookline::ids::EndpointId;
use hookline::ports::{
    Clock, DeadLetterStore, DeliveryStore, EndpointStore, EventStore, NetworkProbe, Queue, StatsStore,
    TenantStore, WebhookSender,
};
use hookline::problem::Problem;
use hookline::tenancy::Need;
use http::Method;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::json;

impl<S, Q, H, P, C> Admin<S, Q, H, P, C>
where
    S: EndpointStore + DeliveryStore + EventStore + StatsStore + DeadLetterStore + TenantStore,
    Q: Queue,
    H: WebhookSender,
    P: NetworkProbe,
    C: Clock,
{
    pub async fn handle(&self, req: Request) -> Response<Body> {
        let request_id = req.lambda_context_ref().map(|c| c.request_id.clone());
        api::serve(req.method(), req.uri().path(), request_id, self.route(&req))
            .await
            .map(Body::from)
    }

    pub(crate) async fn route(&self, req: &Request) -> HttpResult {
        let path = req.uri().path().trim_end_matches('/');
        let segments: Vec<&str> = path.split('/').skip(1).collect();
        let method = req.method();
        if segments.as_slice() == ["openapi.yaml"] {
            return match *method {
                Method::GET => Ok(http::Response::builder()
                    .status(200)
                    .header(http::header::CONTENT_TYPE, "application/yaml")
                    .body(OPENAPI.to_owned())
                    .unwrap_or_default()),
                _ => Err(Problem::method_not_allowed("`/openapi.yaml` takes GET")),
            };
        }
        let file = match segments.as_slice() {
            ["console"] => Some(None),
            ["console", name] => Some(Some(*name)),
            _ => None,
        };
        if let Some(file) = file {
            let etag = req
                .headers()
                .get(http::header::IF_NONE_MATCH)
                .and_then(|v| v.to_str().ok());
            return console::serve(file, method, etag);
        }
        if segments.as_slice() == ["health"] {
            return match *method {
                Method::GET => Ok(api::json(
                    200,
                    &json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}),
                )),
                _ => Err(Problem::method_not_allowed("`/health` takes GET")),
            };
        }
        let allowed = |m: &str| Problem::method_not_allowed(format!("`{path}` takes {m}"));
        let need = match segments.as_slice() {
            ["v1", "portal", "sessions"] => Need::PortalSession,
            ["v1", "tenants", _] if method == Method::GET => Need::Read,
            ["v1", "tenants", ..] | ["v1", "dead-letters"] => Need::Operator,
            ["v1", "endpoints", ..] | ["v1", "deliveries", ..] | ["v1", "events", _] | ["v1", "stats"] => {
                if method == Method::GET {
                    Need::Read
                } else {
                    Need::Manage
                }
            }
            _ => return Err(Problem::not_found(format!("no route for `{path}`"))),
        };
        let who = access::authenticate(&self.keys, &self.store, req.headers(), self.clock.now()).await?;
        access::require(&who, need)?;
        self.guard(&segments, &who).await?;
        let who = &who;
        match (segments.as_slice(), method.clone()) {
            (["v1", "tenants"], Method::POST) => self.create_tenant(req).await,
            (["v1", "tenants"], Method::GET) => self.list_tenants(req).await,
            (["v1", "tenants"], _) => Err(allowed("GET and POST")),
            (["v1", "tenants", id], m) => {
                let id = parse_tenant_id(id)?;
                match m {
                    Method::GET => self.get_tenant(&id).await,
                    Method::PATCH => self.patch_tenant(&id, req).await,
                    Method::DELETE => self.delete_tenant(&id).await,
                    _ => Err(allowed("GET, PATCH and DELETE")),
                }
            }
            (["v1", "tenants", id, "keys"], m) => {
                let id = parse_tenant_id(id)?;
                match m {
                    Method::POST => self.create_key(&id, req).await,
                    Method::GET => self.list_keys(&id).await,
                    _ => Err(allowed("GET and POST")),
                }
            }
            (["v1", "tenants", id, "keys", key], Method::DELETE) => {
                self.revoke_key(&parse_tenant_id(id)?, key).await
            }
            (["v1", "tenants", _, "keys", _], _) => Err(allowed("DELETE")),
            (["v1", "tenants", id, "portal-links"], Method::POST) => {
                self.create_portal_link(&parse_tenant_id(id)?, req).await
            }
            (["v1", "tenants", _, "portal-links"], _) => Err(allowed("POST")),
            (["v1", "portal", "sessions"], Method::POST) => self.open_portal_session(who, req).await,
            (["v1", "portal", "sessions"], _) => Err(allowed("POST")),
            (["v1", "endpoints"], Method::POST) => self.create(req, who).await,
            (["v1", "endpoints"], Method::GET) => self.list(req, who).await,
            (["v1", "endpoints"], _) => Err(allowed("GET and POST")),
            (["v1", "endpoints", id], m) => {
                let id = EndpointId::parse(id).map_err(|_| no_endpoint(id))?;
                match m {
                    Method::GET => self.get(&id).await,
                    Method::PATCH => self.patch(&id, req).await,
                    Method::DELETE => self.delete(&id).await,
                    _ => Err(allowed("GET, PATCH and DELETE")),
                }
            }
            (["v1", "endpoints", id, "rotate-secret"], Method::POST) => {
                let id = EndpointId::parse(id).map_err(|_| no_endpoint(id))?;
                self.rotate(&id, req).await
            }
            (["v1", "endpoints", id, "recover"], Method::POST) => {
                let id = EndpointId::parse(id).map_err(|_| no_endpoint(id))?;
                self.recover(&id, req).await
            }
            (["v1", "endpoints", _, "rotate-secret" | "recover"], _) => Err(allowed("POST")),
            (["v1", "endpoints", id, "stats"], Method::GET) => {
                let id = EndpointId::parse(id).map_err(|_| no_endpoint(id))?;
                self.stats(Some(&id), req, who).await
            }
            (["v1", "endpoints", _, "stats"], _) => Err(allowed("GET")),
            (["v1", "endpoints", id, "test"], Method::POST) => {
                let id = EndpointId::parse(id).map_err(|_| no_endpoint(id))?;
                self.test(&id, req).await
            }
            (["v1", "endpoints", _, "test"], _) => Err(allowed("POST")),
            (["v1", "endpoints", id, "diagnose"], Method::GET) => {
                let id = EndpointId::parse(id).map_err(|_| no_endpoint(id))?;
                self.diagnose(&id).await
            }
            (["v1", "endpoints", _, "diagnose"], _) => Err(allowed("GET")),
            (["v1", "stats"], Method::GET) => self.stats(None, req, who).await,
            (["v1", "stats"], _) => Err(allowed("GET")),
            (["v1", "dead-letters"], Method::GET) => self.dead_letters(req).await,
            (["v1", "dead-letters"], _) => Err(allowed("GET")),
            (["v1", "deliveries"], Method::GET) => self.deliveries(req, who).await,
            (["v1", "deliveries"], _) => Err(allowed("GET")),
            (["v1", "deliveries", id], Method::GET) => self.delivery(&parse_delivery_id(id)?).await,
            (["v1", "deliveries", _], _) => Err(allowed("GET")),
            (["v1", "deliveries", id, "retry"], Method::POST) => {
                self.retry(&parse_delivery_id(id)?, req).await
            }
            (["v1", "deliveries", _, "retry"], _) => Err(allowed("POST")),
            (["v1", "events", id], Method::GET) => self.event(id, req, who).await,
            (["v1", "events", _], _) => Err(allowed("GET")),
            _ => Err(Problem::not_found(format!("no route for `{path}`"))),
        }
    }
}
