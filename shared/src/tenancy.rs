//! Who may act on which tenant. The operator's keys act on every tenant; a tenant key
//! on its own only, where anything of another tenant does not exist: a 404, never a
//! 403, so that ids do not tell whether they are taken.

use crate::auth::Scope;
use crate::ids::TenantId;
use crate::tenant_key::TenantScope;

/// Whoever sent a request, by its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    /// The operator's ingest or admin key.
    Operator(Scope),
    /// A tenant's key.
    Tenant { tenant: TenantId, scope: TenantScope },
}

/// What a route needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Send events.
    Ingest,
    /// Read a tenant's things.
    Read,
    /// Change a tenant's endpoints and deliveries.
    Manage,
    /// The operator's own routes: tenants, keys, dead letters.
    Operator,
    /// Exchanging a portal link for a portal session: a link's token, nothing else.
    PortalSession,
}

impl Principal {
    /// Whether the key's scope covers `need`; the refusal's words when it does not.
    pub fn allows(&self, need: Need) -> Result<(), &'static str> {
        let ok = match self {
            Self::Operator(_) if need == Need::PortalSession => false,
            Self::Operator(Scope::Admin) => true,
            Self::Operator(Scope::Ingest) => need == Need::Ingest,
            Self::Tenant { scope, .. } => match scope {
                TenantScope::Manage => matches!(need, Need::Ingest | Need::Read | Need::Manage),
                TenantScope::Portal => matches!(need, Need::Read | Need::Manage),
                TenantScope::Read => need == Need::Read,
                TenantScope::Ingest => need == Need::Ingest,
                TenantScope::PortalLink => need == Need::PortalSession,
            },
        };
        if ok {
            return Ok(());
        }
        Err(match (self, need) {
            (_, Need::PortalSession) => "this route takes a portal link's token",
            (
                Self::Tenant {
                    scope: TenantScope::PortalLink,
                    ..
                },
                _,
            ) => "a portal link's token opens a portal session (`POST /v1/portal/sessions`) and nothing else",
            (_, Need::Operator) => "this route needs the operator's admin key",
            (_, Need::Ingest) => "this route needs an ingest key",
            (Self::Operator(_), _) => "this route needs an admin key; the key sent is an ingest key",
            (_, Need::Read) => "this route needs a tenant key with the `read` or `manage` scope",
            (_, Need::Manage) => "this route needs a tenant key with the `manage` scope",
        })
    }

    /// Whether things of `tenant` exist for this key.
    pub fn sees(&self, tenant: &TenantId) -> bool {
        match self {
            Self::Operator(_) => true,
            Self::Tenant { tenant: own, .. } => own == tenant,
        }
    }

    /// The tenant a listing is confined to, from its `tenant_id` filter: the operator's
    /// is what it asks for (`None`: every tenant), a tenant key's is its own. `Err` when
    /// a tenant key names another tenant, which for it does not exist.
    pub fn listing(&self, asked: Option<TenantId>) -> Result<Option<TenantId>, TenantId> {
        match (self, asked) {
            (Self::Operator(_), asked) => Ok(asked),
            (Self::Tenant { tenant, .. }, None) => Ok(Some(tenant.clone())),
            (Self::Tenant { tenant, .. }, Some(t)) if &t == tenant => Ok(Some(t)),
            (Self::Tenant { .. }, Some(t)) => Err(t),
        }
    }

    /// The tenant that what this key creates or names belongs to: the one it names, or
    /// when it names none, the key's own (the operator's: `default`). `Err` when a tenant
    /// key names another tenant.
    pub fn acting_for(&self, named: Option<TenantId>) -> Result<TenantId, TenantId> {
        match (self, named) {
            (Self::Operator(_), named) => Ok(named.unwrap_or_default()),
            (Self::Tenant { tenant, .. }, None) => Ok(tenant.clone()),
            (Self::Tenant { tenant, .. }, Some(t)) if &t == tenant => Ok(t),
            (Self::Tenant { .. }, Some(t)) => Err(t),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(scope: TenantScope) -> Principal {
        Principal::Tenant {
            tenant: TenantId::parse("a").unwrap(),
            scope,
        }
    }

    #[test]
    fn each_scope_reaches_what_it_names_and_no_tenant_key_reaches_the_operators_routes() {
        use Need::*;
        let table = [
            (Principal::Operator(Scope::Admin), [true, true, true, true, false]),
            (
                Principal::Operator(Scope::Ingest),
                [true, false, false, false, false],
            ),
            (tenant(TenantScope::Manage), [true, true, true, false, false]),
            (tenant(TenantScope::Portal), [false, true, true, false, false]),
            (tenant(TenantScope::Read), [false, true, false, false, false]),
            (tenant(TenantScope::Ingest), [true, false, false, false, false]),
            (
                tenant(TenantScope::PortalLink),
                [false, false, false, false, true],
            ),
        ];
        for (who, expected) in table {
            for (need, ok) in [Ingest, Read, Manage, Operator, PortalSession]
                .into_iter()
                .zip(expected)
            {
                assert_eq!(who.allows(need).is_ok(), ok, "{who:?} {need:?}");
            }
        }
    }

    #[test]
    fn a_tenant_key_sees_its_own_tenant_only_and_the_operator_sees_all() {
        let (a, b) = (TenantId::parse("a").unwrap(), TenantId::parse("b").unwrap());
        let key = tenant(TenantScope::Manage);
        assert!(key.sees(&a) && !key.sees(&b));
        assert_eq!(key.listing(None), Ok(Some(a.clone())));
        assert_eq!(key.listing(Some(b.clone())), Err(b.clone()));
        assert_eq!(key.acting_for(None), Ok(a.clone()));
        assert_eq!(key.acting_for(Some(b.clone())), Err(b.clone()));
        let op = Principal::Operator(Scope::Admin);
        assert!(op.sees(&b));
        assert_eq!(op.listing(None), Ok(None));
        assert_eq!(op.acting_for(None), Ok(TenantId::default()));
        assert_eq!(op.acting_for(Some(b.clone())), Ok(b));
    }
}
