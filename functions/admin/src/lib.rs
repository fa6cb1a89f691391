//! The admin function: the endpoint registry (create, list, get, delete) and
//! `GET /health`. The rest of the operator's API comes with a later issue.

use hookline::api;
use hookline::auth::{ApiKeys, Scope};
use hookline::config::{ConfigError, Env, api_keys, retention, ssrf_policy};
use hookline::endpoint::EndpointView;
use hookline::endpoint_input::parse_new_endpoint;
use hookline::ids::EndpointId;
use hookline::ports::{Clock, EndpointStore, PortError};
use hookline::problem::{FieldProblem, Problem};
use hookline::ssrf::SsrfPolicy;
use http::Method;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::json;
use std::time::Duration;

/// Endpoint bodies are small; anything larger is a mistake.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 200;

#[derive(Debug)]
pub struct Config {
    pub keys: ApiKeys,
    pub table: String,
    pub retention: Duration,
    pub ssrf: SsrfPolicy,
}

impl Config {
    pub fn from_env(mut env: Env) -> Result<Self, ConfigError> {
        let keys = api_keys(&mut env);
        let table = env.required("HOOKLINE_TABLE");
        let retention = retention(&mut env);
        let ssrf = ssrf_policy(&mut env);
        env.finish()?;
        Ok(Self {
            keys,
            table,
            retention,
            ssrf,
        })
    }
}

pub struct Admin<S, C> {
    pub keys: ApiKeys,
    pub store: S,
    pub clock: C,
    pub ssrf: SsrfPolicy,
}

type HttpResult = Result<http::Response<String>, Problem>;

impl<S: EndpointStore, C: Clock> Admin<S, C> {
    pub async fn handle(&self, req: Request) -> Response<Body> {
        let request_id = req.lambda_context_ref().map(|c| c.request_id.clone());
        api::serve(req.method(), req.uri().path(), request_id, self.route(&req))
            .await
            .map(Body::from)
    }

    async fn route(&self, req: &Request) -> HttpResult {
        let path = req.uri().path().trim_end_matches('/');
        let segments: Vec<&str> = path.split('/').skip(1).collect();
        let method = req.method();
        match segments.as_slice() {
            ["health"] => match *method {
                Method::GET => Ok(api::json(
                    200,
                    &json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}),
                )),
                _ => Err(Problem::method_not_allowed("`/health` takes GET")),
            },
            ["v1", "endpoints"] => {
                api::authorize(&self.keys, req.headers(), Scope::Admin)?;
                match *method {
                    Method::POST => self.create(req).await,
                    Method::GET => self.list(req).await,
                    _ => Err(Problem::method_not_allowed("`/v1/endpoints` takes GET and POST")),
                }
            }
            ["v1", "endpoints", id] => {
                api::authorize(&self.keys, req.headers(), Scope::Admin)?;
                let id = EndpointId::parse(id).map_err(|_| not_found(id))?;
                match *method {
                    Method::GET => self.get(&id).await,
                    Method::DELETE => self.delete(&id).await,
                    _ => Err(Problem::method_not_allowed(
                        "`/v1/endpoints/{id}` takes GET and DELETE",
                    )),
                }
            }
            _ => Err(Problem::not_found(format!("no route for `{path}`"))),
        }
    }

    async fn create(&self, req: &Request) -> HttpResult {
        let value = api::json_body(req.headers(), req.body().as_ref(), MAX_BODY_BYTES)?;
        let endpoint = parse_new_endpoint(&value, &self.ssrf, self.clock.now())
            .map_err(|errors| Problem::validation("the endpoint is not valid", errors))?;
        // The form passed; now every address the host resolves to must pass too.
        if let Err(e) = self.ssrf.resolve_destination(&endpoint.url).await {
            return Err(Problem::validation(
                "the endpoint is not valid",
                vec![FieldProblem::new("/url", format!("the URL {e}"))],
            ));
        }
        self.store
            .create_endpoint(&endpoint)
            .await
            .map_err(store_problem)?;
        tracing::info!(endpoint_id = %endpoint.id, "endpoint created");
        let mut body = serde_json::to_value(EndpointView::from(&endpoint)).unwrap_or_default();
        // The only time the secret is shown.
        body["secret"] = json!(endpoint.secret.expose());
        let mut res = api::json(201, &body);
        if let Ok(loc) = format!("/v1/endpoints/{}", endpoint.id).parse() {
            res.headers_mut().insert(http::header::LOCATION, loc);
        }
        Ok(res)
    }

    async fn list(&self, req: &Request) -> HttpResult {
        let mut limit = DEFAULT_PAGE;
        let mut cursor = None;
        let mut errors = Vec::new();
        for (k, v) in api::query(req.uri()) {
            match k.as_str() {
                "limit" => match v.parse::<u32>() {
                    Ok(n) if (1..=MAX_PAGE).contains(&n) => limit = n,
                    _ => errors.push(FieldProblem::new(
                        "?limit",
                        format!("must be a whole number from 1 to {MAX_PAGE}"),
                    )),
                },
                "cursor" => cursor = Some(v),
                other => errors.push(FieldProblem::new(
                    format!("?{other}"),
                    "unknown query parameter; use limit and cursor",
                )),
            }
        }
        if !errors.is_empty() {
            return Err(Problem::validation("the query is not valid", errors));
        }
        let page = self
            .store
            .list_endpoints(limit, cursor.as_deref())
            .await
            .map_err(|e| match e {
                PortError::Permanent(_) if cursor.is_some() => Problem::validation(
                    "the query is not valid",
                    vec![FieldProblem::new("?cursor", "is not a cursor this API gave out")],
                ),
                e => store_problem(e),
            })?;
        let data: Vec<EndpointView> = page.items.iter().map(EndpointView::from).collect();
        Ok(api::json(
            200,
            &json!({"data": data, "next_cursor": page.next_cursor}),
        ))
    }

    async fn get(&self, id: &EndpointId) -> HttpResult {
        match self.store.get_endpoint(id).await.map_err(store_problem)? {
            Some(e) => Ok(api::json(200, &EndpointView::from(&e))),
            None => Err(not_found(id.as_str())),
        }
    }

    async fn delete(&self, id: &EndpointId) -> HttpResult {
        if self.store.delete_endpoint(id).await.map_err(store_problem)? {
            tracing::info!(endpoint_id = %id, "endpoint deleted");
            Ok(api::empty(204))
        } else {
            Err(not_found(id.as_str()))
        }
    }
}

fn not_found(id: &str) -> Problem {
    Problem::not_found(format!("there is no endpoint `{id}`"))
}

fn store_problem(e: PortError) -> Problem {
    tracing::error!(error = %e, "the store failed");
    if e.is_retryable() {
        Problem::unavailable()
    } else {
        Problem::internal()
    }
}

#[cfg(test)]
mod tests;
