//! Which tenants get a metric of their own. A CloudWatch metric is billed per
//! combination of dimension values, so the `Tenant` dimension takes a bounded set of
//! values: `default`, each tenant the operator names in `HOOKLINE_METRIC_TENANTS` (at
//! most `MAX_NAMED`), and `(other)` for every other tenant. Per-tenant figures for all
//! tenants are in the API's statistics (`GET /v1/stats?tenant_id=`), not in CloudWatch.

use crate::ids::TenantId;
use std::collections::BTreeSet;

/// The most tenants with a metric of their own.
pub const MAX_NAMED: usize = 20;
/// The `Tenant` value of every tenant not named: not a tenant id (those hold no
/// parentheses), so no tenant can be taken for the rest.
pub const OTHER: &str = "(other)";

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetricTenants(BTreeSet<TenantId>);

impl MetricTenants {
    /// From a comma-separated list of tenant ids: at most `MAX_NAMED`, each valid.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut named = BTreeSet::new();
        for raw in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let t = TenantId::parse(raw).map_err(|e| format!("`{raw}` is not a tenant id: {e}"))?;
            named.insert(t);
        }
        if named.len() > MAX_NAMED {
            return Err(format!(
                "names {} tenants; at most {MAX_NAMED} get a metric of their own",
                named.len()
            ));
        }
        Ok(Self(named))
    }

    /// The `Tenant` dimension's value for a tenant's attempts.
    pub fn label<'a>(&self, tenant: &'a TenantId) -> &'a str {
        if tenant.is_default() || self.0.contains(tenant) {
            tenant.as_str()
        } else {
            OTHER
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_default_and_named_tenants_get_their_own_value_and_the_rest_are_other() {
        let m = MetricTenants::parse("acme, beta").unwrap();
        let t = |s: &str| TenantId::parse(s).unwrap();
        assert_eq!(m.label(&t("acme")), "acme");
        assert_eq!(m.label(&TenantId::default()), "default");
        assert_eq!(m.label(&t("cus_9")), OTHER);
        assert!(MetricTenants::parse("a.b").is_err());
        let many: Vec<String> = (0..=MAX_NAMED).map(|i| format!("t{i}")).collect();
        assert!(MetricTenants::parse(&many.join(",")).is_err());
        assert_eq!(MetricTenants::parse("").unwrap(), MetricTenants::default());
    }
}
