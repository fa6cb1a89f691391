//! A tenant's keys: issued (the key shown once, only its hash kept), listed without
//! their values, revoked at once.

use crate::problems::store_problem;
use crate::{Admin, HttpResult, MAX_BODY_BYTES};
use hookline::api;
use hookline::ids::{TenantId, TenantKeyId};
use hookline::ports::{Clock, EndpointStore, TenantStore};
use hookline::problem::Problem;
use hookline::tenant_key::{TenantKey, parse_new_key};
use lambda_http::Request;
use serde_json::json;

fn no_key(id: &str) -> Problem {
    Problem::not_found(format!("there is no key `{id}`"))
}

impl<S: TenantStore + EndpointStore, Q, H, P, C: Clock> Admin<S, Q, H, P, C> {
    pub(crate) async fn create_key(&self, tenant: &TenantId, req: &Request) -> HttpResult {
        let value = api::json_body(req.headers(), req.body().as_ref(), MAX_BODY_BYTES)?;
        let now = self.clock.now();
        let new = parse_new_key(&value, now)
            .map_err(|errors| Problem::validation("the key is not valid", errors))?;
        if tenant.is_default() {
            return Err(Problem::conflict(
                "the built-in `default` tenant has no keys of its own; the operator's keys act for it",
            ));
        }
        self.tenant(tenant).await?;
        self.room_for_a_key(tenant).await?;
        let (record, key) = TenantKey::issue(tenant, new.scope, new.name, new.expires_at, now);
        self.store.create_key(&record).await.map_err(store_problem)?;
        tracing::info!(tenant_id = %tenant, key_id = %record.id, scope = record.scope.as_str(), "tenant key issued");
        let mut body = serde_json::to_value(&record).unwrap_or_default();
        // The only time the key is shown.
        body["key"] = json!(key);
        Ok(api::json(201, &body))
    }

    pub(crate) async fn list_keys(&self, tenant: &TenantId) -> HttpResult {
        if !tenant.is_default() {
            self.tenant(tenant).await?;
        }
        let keys = self.store.list_keys(tenant).await.map_err(store_problem)?;
        Ok(api::json(200, &json!({"data": keys})))
    }

    pub(crate) async fn revoke_key(&self, tenant: &TenantId, raw: &str) -> HttpResult {
        let id = TenantKeyId::parse(raw).map_err(|_| no_key(raw))?;
        if !self.store.delete_key(tenant, &id).await.map_err(store_problem)? {
            return Err(no_key(raw));
        }
        tracing::info!(tenant_id = %tenant, key_id = %id, "tenant key revoked");
        Ok(api::empty(204))
    }
}
