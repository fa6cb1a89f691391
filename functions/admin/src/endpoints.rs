//! The endpoint registry: create, list, get, change (from the version read), delete.

use crate::boundary::tenant_filter;
use crate::problems::{cursor_problem, no_endpoint, stale, store_problem, with_etag};
use crate::query::Query;
use crate::{Admin, HttpResult, MAX_BODY_BYTES};
use hookline::access::{self, Acting};
use hookline::api;
use hookline::endpoint::{Endpoint, EndpointView};
use hookline::endpoint_input::{apply_patch, parse_new_endpoint};
use hookline::ids::EndpointId;
use hookline::ports::{Clock, EndpointStore, TenantStore};
use hookline::problem::{FieldProblem, Problem};
use hookline::tenancy::Principal;
use hookline::tenant::take_tenant_field;
use lambda_http::Request;
use serde_json::json;

impl<S: EndpointStore, Q, H, P, C> Admin<S, Q, H, P, C> {
    /// The endpoint, or the API's 404.
    pub(crate) async fn existing(&self, id: &EndpointId) -> Result<Endpoint, Problem> {
        self.store
            .get_endpoint(id)
            .await
            .map_err(store_problem)?
            .ok_or_else(|| no_endpoint(id.as_str()))
    }
}

impl<S: EndpointStore + TenantStore, Q, H, P, C: Clock> Admin<S, Q, H, P, C> {
    pub(crate) async fn create(&self, req: &Request, who: &Principal) -> HttpResult {
        let mut value = api::json_body(req.headers(), req.body().as_ref(), MAX_BODY_BYTES)?;
        let named = take_tenant_field(&mut value)
            .map_err(|f| Problem::validation("the endpoint is not valid", vec![f]))?;
        let mut endpoint = parse_new_endpoint(&value, &self.ssrf, self.clock.now())
            .map_err(|errors| Problem::validation("the endpoint is not valid", errors))?;
        let acting = access::acting_tenant(who, &self.store, named)
            .await
            .map_err(|r| r.problem("/tenant_id"))?;
        endpoint.tenant_id = acting.tenant.clone();
        self.room_for_an_endpoint(&acting).await?;
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
        tracing::info!(endpoint_id = %endpoint.id, tenant_id = %endpoint.tenant_id, "endpoint created");
        let view = EndpointView::from(&endpoint).showing_header_values();
        let mut body = serde_json::to_value(view).unwrap_or_default();
        // The only time the secret is shown.
        body["secret"] = json!(endpoint.secret.expose());
        let mut res = api::json(201, &body);
        if let Ok(loc) = format!("/v1/endpoints/{}", endpoint.id).parse() {
            res.headers_mut().insert(http::header::LOCATION, loc);
        }
        Ok(res)
    }

    /// Whether the tenant may hold one more endpoint. A quota, not a rate: what frees
    /// room is deleting one, not waiting, so it is a 409 rather than a 429.
    async fn room_for_an_endpoint(&self, acting: &Acting) -> Result<(), Problem> {
        let Some(max) = self
            .limits
            .max_endpoints(acting.tenant.is_default(), &acting.limits)
        else {
            return Ok(());
        };
        let all = self.store.all_endpoints().await.map_err(store_problem)?;
        let held = all.iter().filter(|e| e.tenant_id == acting.tenant).count();
        if held >= max as usize {
            return Err(Problem::conflict(format!(
                "the tenant `{}` holds {held} endpoints, its limit; delete one, or raise its `limits.max_endpoints`",
                acting.tenant
            )));
        }
        Ok(())
    }

    pub(crate) async fn list(&self, req: &Request, who: &Principal) -> HttpResult {
        let mut q = Query::new(req.uri());
        let tenant = tenant_filter(&mut q, who)?;
        let limit = q.limit();
        let cursor = q.take("cursor");
        q.finish()?;
        let page = self
            .store
            .list_endpoints(tenant.as_ref(), limit, cursor.as_deref())
            .await
            .map_err(|e| cursor_problem(e, &cursor))?;
        let data: Vec<EndpointView> = page.items.iter().map(EndpointView::from).collect();
        Ok(api::json(
            200,
            &json!({"data": data, "next_cursor": page.next_cursor}),
        ))
    }

    pub(crate) async fn get(&self, id: &EndpointId) -> HttpResult {
        match self.store.get_endpoint(id).await.map_err(store_problem)? {
            Some(e) => Ok(with_etag(api::json(200, &EndpointView::from(&e)), &e)),
            None => Err(no_endpoint(id.as_str())),
        }
    }

    /// A partial update, made only against the version the caller read (`If-Match`
    /// with the endpoint's ETag, or `version` in the body), so two operators cannot
    /// silently overwrite each other.
    pub(crate) async fn patch(&self, id: &EndpointId, req: &Request) -> HttpResult {
        let mut value = api::json_body(req.headers(), req.body().as_ref(), MAX_BODY_BYTES)?;
        let named = take_tenant_field(&mut value)
            .map_err(|f| Problem::validation("the endpoint is not valid", vec![f]))?;
        let from_header = req
            .headers()
            .get(http::header::IF_MATCH)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().trim_start_matches("W/").trim_matches('"').parse::<u64>());
        let from_body = value.get("version").map(|v| v.as_u64().ok_or(()));
        let read_version = match (from_header, from_body) {
            (Some(Ok(v)), _) | (None, Some(Ok(v))) => v,
            (Some(Err(_)), _) => {
                return Err(Problem::bad_request("If-Match must be an ETag this API gave out"));
            }
            (None, Some(Err(()))) => {
                return Err(Problem::validation(
                    "the endpoint is not valid",
                    vec![FieldProblem::new(
                        "/version",
                        "must be the endpoint's version, a whole number",
                    )],
                ));
            }
            (None, None) => {
                return Err(Problem::precondition_required(
                    "send the version you read: `If-Match` with the endpoint's ETag, or `version` in the body",
                ));
            }
        };
        let mut e = self.existing(id).await?;
        if named.as_ref().is_some_and(|t| t != &e.tenant_id) {
            return Err(Problem::validation(
                "the endpoint is not valid",
                vec![FieldProblem::new(
                    "/tenant_id",
                    "an endpoint stays in its tenant; create one in the other tenant instead",
                )],
            ));
        }
        if e.version != read_version {
            return Err(stale(&e));
        }
        let url_before = e.url.clone();
        apply_patch(&mut e, &value, &self.ssrf, self.clock.now())
            .map_err(|errors| Problem::validation("the endpoint is not valid", errors))?;
        if e.url != url_before
            && let Err(err) = self.ssrf.resolve_destination(&e.url).await
        {
            return Err(Problem::validation(
                "the endpoint is not valid",
                vec![FieldProblem::new("/url", format!("the URL {err}"))],
            ));
        }
        e.version = read_version + 1;
        if !self
            .store
            .update_endpoint(&e, read_version)
            .await
            .map_err(store_problem)?
        {
            let now = self.existing(id).await?;
            return Err(stale(&now));
        }
        tracing::info!(endpoint_id = %id, version = e.version, "endpoint updated");
        let mut view = EndpointView::from(&e);
        if value.get("headers").is_some_and(|h| !h.is_null()) {
            // The answer that set them shows them; every read after masks them.
            view = view.showing_header_values();
        }
        Ok(with_etag(api::json(200, &view), &e))
    }

    pub(crate) async fn delete(&self, id: &EndpointId) -> HttpResult {
        let e = self.existing(id).await?;
        if self.store.delete_endpoint(&e).await.map_err(store_problem)? {
            tracing::info!(endpoint_id = %id, "endpoint deleted");
            Ok(api::empty(204))
        } else {
            Err(no_endpoint(id.as_str()))
        }
    }
}
