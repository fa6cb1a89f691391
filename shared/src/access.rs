//! A request's key, as whoever sent it (`tenancy::Principal`): one of the operator's
//! keys, compared in constant time, or a tenant key (`hk_…`), read by the record it
//! names with one strongly consistent read, so that a revoked key is refused at once.

use crate::api::presented_key;
use crate::auth::ApiKeys;
use crate::ids::TenantId;
use crate::ports::TenantStore;
use crate::problem::{FieldProblem, Problem};
use crate::tenancy::{Need, Principal};
use crate::tenant_key::PresentedKey;
use crate::tenant_limits::TenantLimits;
use crate::timestamp::Timestamp;
use http::HeaderMap;

/// Who sent the request, by its `Authorization: Bearer` or `x-api-key` key.
pub async fn authenticate<T: TenantStore + ?Sized>(
    keys: &ApiKeys,
    tenants: &T,
    headers: &HeaderMap,
    now: Timestamp,
) -> Result<Principal, Problem> {
    let key = presented_key(headers).ok_or_else(Problem::unauthorized)?;
    principal_of(keys, tenants, &key, now).await
}

/// Who sent a key that came some other way (a `token` in the URL).
pub async fn principal_of<T: TenantStore + ?Sized>(
    keys: &ApiKeys,
    tenants: &T,
    key: &str,
    now: Timestamp,
) -> Result<Principal, Problem> {
    if let Some(scope) = keys.scope_of(key) {
        return Ok(Principal::Operator(scope));
    }
    let presented = PresentedKey::parse(key).ok_or_else(Problem::unauthorized)?;
    let record = tenants
        .get_key(&presented.tenant, &presented.key_id)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "could not read a tenant key");
            Problem::unavailable()
        })?
        .ok_or_else(Problem::unauthorized)?;
    if !record.admits(&presented, now) {
        return Err(Problem::unauthorized());
    }
    Ok(Principal::Tenant {
        tenant: record.tenant_id,
        scope: record.scope,
    })
}

/// The principal, if its key's scope covers `need`; a 403 that says what is needed if not.
pub fn require(who: &Principal, need: Need) -> Result<(), Problem> {
    who.allows(need).map_err(Problem::forbidden)
}

/// Why a request cannot act for the tenant it names.
#[derive(Debug)]
pub enum TenantRefused {
    /// No such tenant, as far as this key may know (another's is none of its business).
    Unknown(TenantId),
    /// A tenant key whose tenant is gone (issued while it was being deleted): it acts
    /// for nothing, a 401 like a revoked key.
    Orphaned,
    /// The store could not say.
    Unavailable(Problem),
}

impl TenantRefused {
    /// The field problem at `pointer` (`/tenant_id`, `?tenant_id`), or the store's 503.
    pub fn at(self, pointer: &str) -> Result<FieldProblem, Problem> {
        match self {
            Self::Unknown(t) => Ok(FieldProblem::new(pointer, format!("there is no tenant `{t}`"))),
            Self::Orphaned => Err(Problem::unauthorized()),
            Self::Unavailable(p) => Err(p),
        }
    }

    /// As a whole request's problem: a 422 naming the field.
    pub fn problem(self, pointer: &str) -> Problem {
        match self.at(pointer) {
            Ok(f) => Problem::validation("the tenant is not one this key may act for", vec![f]),
            Err(p) => p,
        }
    }
}

/// The tenant a request acts for, with its own limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Acting {
    pub tenant: TenantId,
    pub limits: TenantLimits,
}

/// The tenant a request acts for (`Principal::acting_for`), if it exists: `default`
/// always does; any other is read (one strongly consistent read), which also refuses a
/// key left over from a tenant deleted while the key was being revoked.
pub async fn acting_tenant<T: TenantStore + ?Sized>(
    who: &Principal,
    tenants: &T,
    named: Option<TenantId>,
) -> Result<Acting, TenantRefused> {
    let tenant = who.acting_for(named).map_err(TenantRefused::Unknown)?;
    if tenant.is_default() {
        return Ok(Acting {
            tenant,
            limits: TenantLimits::default(),
        });
    }
    match tenants.get_tenant(&tenant).await {
        Ok(Some(t)) => Ok(Acting {
            tenant,
            limits: t.limits,
        }),
        Ok(None) if matches!(who, Principal::Tenant { .. }) => Err(TenantRefused::Orphaned),
        Ok(None) => Err(TenantRefused::Unknown(tenant)),
        Err(e) => {
            tracing::error!(error = %e, "could not read a tenant");
            Err(TenantRefused::Unavailable(Problem::unavailable()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Scope;
    use crate::memory::MemoryStore;
    use crate::tenant_key::{TenantKey, TenantScope};
    use std::time::Duration;

    fn headers(key: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("authorization", format!("Bearer {key}").parse().unwrap());
        h
    }

    #[tokio::test]
    async fn operator_keys_and_live_tenant_keys_are_known_and_anything_else_is_a_401() {
        let keys = ApiKeys::new("ik", "ak");
        let store = MemoryStore::default();
        let now = Timestamp::from_unix_millis(1_795_935_600_000);
        let tenant = TenantId::parse("acme").unwrap();
        let soon = now.saturating_add(Duration::from_secs(60));
        let (record, key) = TenantKey::issue(&tenant, TenantScope::Read, None, Some(soon), now);
        store.create_key(&record).await.unwrap();

        let who = authenticate(&keys, &store, &headers("ak"), now).await.unwrap();
        assert_eq!(who, Principal::Operator(Scope::Admin));
        let who = authenticate(&keys, &store, &headers(&key), now).await.unwrap();
        assert_eq!(
            who,
            Principal::Tenant {
                tenant: tenant.clone(),
                scope: TenantScope::Read
            }
        );
        assert_eq!(require(&who, Need::Manage).unwrap_err().status, 403);
        // Expired, revoked, or never issued: the same 401.
        assert_eq!(
            authenticate(&keys, &store, &headers(&key), soon)
                .await
                .unwrap_err()
                .status,
            401
        );
        store.delete_key(&tenant, &record.id).await.unwrap();
        assert_eq!(
            authenticate(&keys, &store, &headers(&key), now)
                .await
                .unwrap_err()
                .status,
            401
        );
        for other in ["nope", "hk_acme.key_1.x", ""] {
            assert_eq!(
                authenticate(&keys, &store, &headers(other), now)
                    .await
                    .unwrap_err()
                    .status,
                401
            );
        }
    }
}
