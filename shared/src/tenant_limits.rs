//! Per-tenant limits: how fast a tenant may send events, and how many endpoints it may
//! hold. The service's defaults (config) apply to every named tenant unless it has its
//! own. The built-in `default` tenant, which single-tenant use acts on, has neither
//! limit unless the operator sets one, as before tenants: a limit costs a write per
//! ingest request, which the default tenant does not pay unasked.

use crate::api::{object, pointer, refuse_unknown_fields};
use crate::problem::FieldProblem;
use serde::Serialize;
use serde_json::Value;

/// The most a tenant's own limit may be set to.
pub const MAX_LIMIT: u32 = 1_000_000;
const FIELDS: &[&str] = &["ingest_per_second", "max_endpoints"];

/// A tenant's own limits, where it has them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TenantLimits {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingest_per_second: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_endpoints: Option<u32>,
}

/// The service's limits for tenants with none of their own; 0 is none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimitDefaults {
    pub tenant_ingest_per_second: u32,
    pub tenant_max_endpoints: u32,
    pub default_ingest_per_second: u32,
    pub default_max_endpoints: u32,
}

impl Default for LimitDefaults {
    fn default() -> Self {
        Self {
            tenant_ingest_per_second: 200,
            tenant_max_endpoints: 100,
            default_ingest_per_second: 0,
            default_max_endpoints: 0,
        }
    }
}

impl LimitDefaults {
    /// From `HOOKLINE_TENANT_INGEST_PER_SECOND`, `HOOKLINE_TENANT_MAX_ENDPOINTS`, and
    /// the default tenant's `HOOKLINE_DEFAULT_TENANT_INGEST_PER_SECOND` and
    /// `HOOKLINE_DEFAULT_TENANT_MAX_ENDPOINTS` (0: no limit).
    pub fn from_env(env: &mut crate::config::Env) -> Self {
        let d = Self::default();
        Self {
            tenant_ingest_per_second: env
                .parsed_or("HOOKLINE_TENANT_INGEST_PER_SECOND", d.tenant_ingest_per_second),
            tenant_max_endpoints: env.parsed_or("HOOKLINE_TENANT_MAX_ENDPOINTS", d.tenant_max_endpoints),
            default_ingest_per_second: env.parsed_or(
                "HOOKLINE_DEFAULT_TENANT_INGEST_PER_SECOND",
                d.default_ingest_per_second,
            ),
            default_max_endpoints: env
                .parsed_or("HOOKLINE_DEFAULT_TENANT_MAX_ENDPOINTS", d.default_max_endpoints),
        }
    }

    /// Events a second a tenant may send: its own limit, else the default; `None`: no limit.
    pub fn ingest_per_second(&self, is_default: bool, own: &TenantLimits) -> Option<u32> {
        let fallback = if is_default {
            self.default_ingest_per_second
        } else {
            self.tenant_ingest_per_second
        };
        Some(own.ingest_per_second.unwrap_or(fallback)).filter(|n| *n > 0)
    }

    /// Endpoints a tenant may hold; `None`: no limit.
    pub fn max_endpoints(&self, is_default: bool, own: &TenantLimits) -> Option<u32> {
        let fallback = if is_default {
            self.default_max_endpoints
        } else {
            self.tenant_max_endpoints
        };
        Some(own.max_endpoints.unwrap_or(fallback)).filter(|n| *n > 0)
    }
}

/// A tenant's `limits` from a body: each a whole number from 1 to `MAX_LIMIT`, or
/// `null` for the service's default. Unnamed ones keep `current`.
pub fn parse_limits(v: &Value, current: TenantLimits, errors: &mut Vec<FieldProblem>) -> TenantLimits {
    let Some(obj) = object(v, "/limits", errors) else {
        return current;
    };
    refuse_unknown_fields(obj, FIELDS, "/limits", errors);
    let mut out = current;
    for (key, slot) in [
        ("ingest_per_second", &mut out.ingest_per_second),
        ("max_endpoints", &mut out.max_endpoints),
    ] {
        match obj.get(key) {
            None => {}
            Some(Value::Null) => *slot = None,
            Some(n) => match n.as_u64().and_then(|n| u32::try_from(n).ok()) {
                Some(n) if (1..=MAX_LIMIT).contains(&n) => *slot = Some(n),
                _ => errors.push(FieldProblem::new(
                    pointer("/limits", key),
                    format!(
                        "must be a whole number from 1 to {MAX_LIMIT}, or null for the service's default"
                    ),
                )),
            },
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_tenants_own_limit_wins_and_the_default_tenant_has_none_unless_set() {
        let d = LimitDefaults::default();
        let none = TenantLimits::default();
        assert_eq!(d.ingest_per_second(false, &none), Some(200));
        assert_eq!(d.max_endpoints(false, &none), Some(100));
        assert_eq!(d.ingest_per_second(true, &none), None);
        assert_eq!(d.max_endpoints(true, &none), None);
        let own = TenantLimits {
            ingest_per_second: Some(5),
            max_endpoints: None,
        };
        assert_eq!(d.ingest_per_second(false, &own), Some(5));
    }

    #[test]
    fn limits_are_whole_numbers_in_range_or_null_and_unknown_ones_are_named() {
        let mut errors = Vec::new();
        let l = parse_limits(
            &json!({"ingest_per_second": 50}),
            TenantLimits::default(),
            &mut errors,
        );
        assert_eq!((l.ingest_per_second, errors.len()), (Some(50), 0));
        let l = parse_limits(&json!({"ingest_per_second": null}), l, &mut errors);
        assert_eq!(l.ingest_per_second, None);
        parse_limits(&json!({"max_endpoints": 0, "burst": 3}), l, &mut errors);
        let ptrs: Vec<_> = errors.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(ptrs, ["/limits/burst", "/limits/max_endpoints"]);
    }
}
