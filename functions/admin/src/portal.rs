//! The tenant portal: the operator makes a link (`POST /v1/tenants/{id}/portal-links`);
//! the console exchanges the link's token, once, for a session key
//! (`POST /v1/portal/sessions`, the token as the request's key).

use crate::problems::store_problem;
use crate::{Admin, HttpResult, MAX_BODY_BYTES};
use hookline::api;
use hookline::ids::TenantId;
use hookline::portal::{SESSION, link_path, parse_link_request};
use hookline::ports::{Clock, EndpointStore, TenantStore};
use hookline::problem::Problem;
use hookline::tenancy::Principal;
use hookline::tenant_key::{MAX_KEYS_PER_TENANT, TenantKey, TenantScope};
use lambda_http::Request;
use serde_json::json;

impl<S: TenantStore + EndpointStore, Q, H, P, C: Clock> Admin<S, Q, H, P, C> {
    /// Room for one more key: a tenant holds at most `MAX_KEYS_PER_TENANT` live ones
    /// (expired links and sessions do not count; their records go by TTL).
    pub(crate) async fn room_for_a_key(&self, tenant: &TenantId) -> Result<(), Problem> {
        let now = self.clock.now();
        let held = self.store.list_keys(tenant).await.map_err(store_problem)?;
        if held.iter().filter(|k| k.is_live(now)).count() >= MAX_KEYS_PER_TENANT {
            return Err(Problem::conflict(format!(
                "a tenant holds at most {MAX_KEYS_PER_TENANT} keys; revoke one first"
            )));
        }
        Ok(())
    }

    pub(crate) async fn create_portal_link(&self, tenant: &TenantId, req: &Request) -> HttpResult {
        let value = api::optional_json_body(req.headers(), req.body().as_ref(), MAX_BODY_BYTES)?;
        let expires_in = parse_link_request(&value)
            .map_err(|errors| Problem::validation("the portal link is not valid", errors))?;
        if tenant.is_default() {
            return Err(Problem::conflict(
                "the built-in `default` tenant has no portal; make a tenant for the customer",
            ));
        }
        self.tenant(tenant).await?;
        self.room_for_a_key(tenant).await?;
        let now = self.clock.now();
        let expires_at = now.saturating_add(expires_in);
        let (record, token) = TenantKey::issue(
            tenant,
            TenantScope::PortalLink,
            Some("portal link".into()),
            Some(expires_at),
            now,
        );
        self.store.create_key(&record).await.map_err(store_problem)?;
        tracing::info!(tenant_id = %tenant, key_id = %record.id, "portal link made");
        let path = link_path(&token);
        let mut body =
            json!({"tenant_id": tenant, "key_id": record.id, "path": path, "expires_at": expires_at});
        // The absolute link, where the request says which host it came to.
        if let Some(host) = req
            .headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
        {
            let scheme = req
                .headers()
                .get("x-forwarded-proto")
                .and_then(|p| p.to_str().ok())
                .unwrap_or("https");
            body["url"] = json!(format!("{scheme}://{host}{path}"));
        }
        Ok(api::json(201, &body))
    }

    /// A link's token for a session key: the link is spent here (a second exchange, or
    /// one after its time, is a 401, as a link never made).
    pub(crate) async fn open_portal_session(&self, who: &Principal, req: &Request) -> HttpResult {
        let value = api::optional_json_body(req.headers(), req.body().as_ref(), MAX_BODY_BYTES)?;
        let mut errors = Vec::new();
        if let Some(obj) = api::object(&value, "/", &mut errors) {
            api::refuse_unknown_fields(obj, &[], "", &mut errors);
        }
        if !errors.is_empty() {
            return Err(Problem::validation("the exchange takes no body", errors));
        }
        let Principal::Tenant { tenant, .. } = who else {
            return Err(Problem::unauthorized());
        };
        let Some(link) =
            api::presented_key(req.headers()).and_then(|k| hookline::tenant_key::PresentedKey::parse(&k))
        else {
            return Err(Problem::unauthorized());
        };
        // Spent once: of two exchanges at once, one deletes it.
        if !self
            .store
            .delete_key(tenant, &link.key_id)
            .await
            .map_err(store_problem)?
        {
            return Err(Problem::unauthorized());
        }
        let now = self.clock.now();
        let expires_at = now.saturating_add(SESSION);
        let (record, key) = TenantKey::issue(
            tenant,
            TenantScope::Portal,
            Some("portal session".into()),
            Some(expires_at),
            now,
        );
        self.store.create_key(&record).await.map_err(store_problem)?;
        tracing::info!(tenant_id = %tenant, key_id = %record.id, "portal session opened");
        Ok(api::json(
            201,
            &json!({"tenant_id": tenant, "key": key, "scope": "portal", "expires_at": expires_at}),
        ))
    }
}
