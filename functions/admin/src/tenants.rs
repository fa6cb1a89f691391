//! Tenants: create, list, get, change, delete. Deleting one disables its endpoints
//! (which ends its deliveries: a disabled endpoint's attempts end `failed`) and revokes
//! its keys; its log ages out with the retention like any other.

use crate::problems::{cursor_problem, no_tenant, store_problem};
use crate::query::Query;
use crate::{Admin, HttpResult, MAX_BODY_BYTES, MAX_PAGE};
use hookline::api;
use hookline::endpoint::EndpointStatus;
use hookline::ids::TenantId;
use hookline::ports::{Clock, EndpointStore, TenantStore};
use hookline::problem::Problem;
use hookline::tenant::{Tenant, TenantView, apply_tenant_patch, default_view, parse_new_tenant};
use lambda_http::Request;
use serde_json::json;

/// Why a deleted tenant's endpoints are disabled.
pub const TENANT_DELETED: &str = "its tenant was deleted";

fn built_in(what: &str) -> Problem {
    Problem::conflict(format!(
        "`default` is the built-in tenant of everything that names none; it cannot be {what}"
    ))
}

impl<S: TenantStore + EndpointStore, Q, H, P, C: Clock> Admin<S, Q, H, P, C> {
    pub(crate) async fn tenant(&self, id: &TenantId) -> Result<Tenant, Problem> {
        self.store
            .get_tenant(id)
            .await
            .map_err(store_problem)?
            .ok_or_else(|| no_tenant(id.as_str()))
    }

    pub(crate) async fn create_tenant(&self, req: &Request) -> HttpResult {
        let value = api::json_body(req.headers(), req.body().as_ref(), MAX_BODY_BYTES)?;
        let tenant = parse_new_tenant(&value, self.clock.now())
            .map_err(|errors| Problem::validation("the tenant is not valid", errors))?;
        if tenant.id.is_default() {
            return Err(built_in("created"));
        }
        if !self.store.create_tenant(&tenant).await.map_err(store_problem)? {
            return Err(Problem::conflict(format!(
                "the tenant `{}` exists already",
                tenant.id
            )));
        }
        tracing::info!(tenant_id = %tenant.id, "tenant created");
        let mut res = api::json(201, &TenantView::from(&tenant));
        if let Ok(loc) = format!("/v1/tenants/{}", tenant.id).parse() {
            res.headers_mut().insert(http::header::LOCATION, loc);
        }
        Ok(res)
    }

    pub(crate) async fn list_tenants(&self, req: &Request) -> HttpResult {
        let mut q = Query::new(req.uri());
        let limit = q.limit().min(MAX_PAGE);
        let cursor = q.take("cursor");
        q.finish()?;
        let page = self
            .store
            .list_tenants(limit, cursor.as_deref())
            .await
            .map_err(|e| cursor_problem(e, &cursor))?;
        let data: Vec<TenantView> = page.items.iter().map(TenantView::from).collect();
        Ok(api::json(
            200,
            &json!({"data": data, "next_cursor": page.next_cursor}),
        ))
    }

    pub(crate) async fn get_tenant(&self, id: &TenantId) -> HttpResult {
        if id.is_default() {
            return Ok(api::json(200, &default_view(id)));
        }
        let tenant = self.tenant(id).await?;
        Ok(api::json(200, &TenantView::from(&tenant)))
    }

    pub(crate) async fn patch_tenant(&self, id: &TenantId, req: &Request) -> HttpResult {
        let value = api::json_body(req.headers(), req.body().as_ref(), MAX_BODY_BYTES)?;
        if id.is_default() {
            return Err(built_in("changed"));
        }
        let mut tenant = self.tenant(id).await?;
        apply_tenant_patch(&mut tenant, &value, self.clock.now())
            .map_err(|errors| Problem::validation("the tenant is not valid", errors))?;
        if !self.store.update_tenant(&tenant).await.map_err(store_problem)? {
            return Err(no_tenant(id.as_str()));
        }
        tracing::info!(tenant_id = %id, "tenant updated");
        Ok(api::json(200, &TenantView::from(&tenant)))
    }

    /// Its keys go first, so that nothing acts for it once the call returns; then its
    /// endpoints are disabled, then the tenant itself goes. A call cut short is
    /// finished by calling again: each step is skipped where it is done.
    pub(crate) async fn delete_tenant(&self, id: &TenantId) -> HttpResult {
        if id.is_default() {
            return Err(built_in("deleted"));
        }
        self.tenant(id).await?;
        for key in self.store.list_keys(id).await.map_err(store_problem)? {
            self.store.delete_key(id, &key.id).await.map_err(store_problem)?;
        }
        let now = self.clock.now();
        let mut cursor: Option<String> = None;
        loop {
            let page = self
                .store
                .list_endpoints(Some(id), MAX_PAGE, cursor.as_deref())
                .await
                .map_err(store_problem)?;
            for e in page.items.iter().filter(|e| e.status == EndpointStatus::Active) {
                self.store
                    .disable_endpoint(&e.id, TENANT_DELETED, now, None)
                    .await
                    .map_err(store_problem)?;
            }
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        if !self.store.delete_tenant(id).await.map_err(store_problem)? {
            return Err(no_tenant(id.as_str()));
        }
        tracing::info!(tenant_id = %id, "tenant deleted");
        Ok(api::empty(204))
    }
}
