//! The tenant boundary, in one place: before any handler runs, an id in the path that
//! belongs to another tenant than a tenant key's is answered as not there (a 404, never
//! a 403, so that ids do not tell whether they are taken). The operator's keys see
//! every tenant. Listings are confined by `tenant_filter`.

use crate::Admin;
use crate::problems::{no_delivery, no_endpoint, no_tenant, store_problem};
use crate::query::Query;
use hookline::ids::{DeliveryId, EndpointId, TenantId};
use hookline::ports::{DeliveryStore, EndpointStore, TenantStore};
use hookline::problem::Problem;
use hookline::tenancy::Principal;

impl<S: EndpointStore + DeliveryStore + TenantStore, Q, H, P, C> Admin<S, Q, H, P, C> {
    pub(crate) async fn guard(&self, segments: &[&str], who: &Principal) -> Result<(), Problem> {
        let Principal::Tenant { tenant, .. } = who else {
            return Ok(());
        };
        // A key issued while its tenant was being deleted outlives the revocation of
        // its keys: it acts for no tenant.
        if self
            .store
            .get_tenant(tenant)
            .await
            .map_err(store_problem)?
            .is_none()
        {
            return Err(Problem::unauthorized());
        }
        match segments {
            ["v1", "tenants", id, ..] if *id != tenant.as_str() => Err(no_tenant(id)),
            ["v1", "endpoints", id, ..] => {
                let theirs = match EndpointId::parse(id) {
                    Ok(ep) => self.store.get_endpoint(&ep).await.map_err(store_problem)?,
                    Err(_) => None,
                };
                match theirs {
                    Some(e) if &e.tenant_id == tenant => Ok(()),
                    _ => Err(no_endpoint(id)),
                }
            }
            ["v1", "deliveries", id, ..] => {
                let theirs = match DeliveryId::parse(id) {
                    Ok(d) => self.store.find_delivery(&d).await.map_err(store_problem)?,
                    Err(_) => None,
                };
                match theirs {
                    Some((d, _)) if &d.tenant_id == tenant => Ok(()),
                    _ => Err(no_delivery(id)),
                }
            }
            _ => Ok(()),
        }
    }
}

/// The tenant a listing is confined to, from `?tenant_id=`: the operator's choice
/// (none: every tenant), a tenant key's own; another tenant, for a tenant key, is a 404.
pub(crate) fn tenant_filter(q: &mut Query, who: &Principal) -> Result<Option<TenantId>, Problem> {
    let asked = q.parse("tenant_id", |s| TenantId::parse(s).map_err(|e| e.to_string()));
    who.listing(asked).map_err(|t| no_tenant(t.as_str()))
}
