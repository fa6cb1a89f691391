//! Tenants: the customers one Hookline serves. Every endpoint, event, delivery and
//! counter belongs to one; an event fans out to its own tenant's endpoints only. What
//! names no tenant belongs to the built-in `default`, which is never stored.

use crate::api::{object, opt_str, pointer, refuse_unknown_fields, req_str};
use crate::ids::TenantId;
use crate::names::check_name;
use crate::problem::FieldProblem;
use crate::tenant_limits::{TenantLimits, parse_limits};
use crate::timestamp::Timestamp;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

pub const MAX_NAME_LEN: usize = 200;
pub const MAX_METADATA_ENTRIES: usize = 16;
pub const MAX_METADATA_KEY_LEN: usize = 64;
pub const MAX_METADATA_VALUE_LEN: usize = 512;
pub const NEW_FIELDS: &[&str] = &["id", "name", "metadata", "limits"];
pub const PATCH_FIELDS: &[&str] = &["name", "metadata", "limits"];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub metadata: BTreeMap<String, String>,
    /// Its own limits, over the service's defaults.
    pub limits: TenantLimits,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A tenant as the API shows it; the built-in `default` has no times.
#[derive(Debug, Serialize)]
pub struct TenantView<'a> {
    pub id: &'a TenantId,
    pub name: &'a str,
    pub metadata: &'a BTreeMap<String, String>,
    /// Its own limits only; what it has none of is the service's default.
    pub limits: TenantLimits,
    pub built_in: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl<'a> From<&'a Tenant> for TenantView<'a> {
    fn from(t: &'a Tenant) -> Self {
        Self {
            id: &t.id,
            name: &t.name,
            metadata: &t.metadata,
            limits: t.limits,
            built_in: false,
            created_at: Some(t.created_at),
            updated_at: Some(t.updated_at),
        }
    }
}

/// The built-in tenant's view.
pub fn default_view(id: &TenantId) -> TenantView<'_> {
    static EMPTY: BTreeMap<String, String> = BTreeMap::new();
    TenantView {
        id,
        name: TenantId::DEFAULT,
        metadata: &EMPTY,
        limits: TenantLimits::default(),
        built_in: true,
        created_at: None,
        updated_at: None,
    }
}

/// A tenant id field (`key` of the object at `at`), if the object names one; a bad one
/// is a field problem.
pub fn tenant_field(
    obj: &Map<String, Value>,
    key: &str,
    at: &str,
    errors: &mut Vec<FieldProblem>,
) -> Option<TenantId> {
    let raw = opt_str(obj, key, at, errors)?;
    TenantId::parse(raw)
        .map_err(|e| errors.push(FieldProblem::new(pointer(at, key), e.to_string())))
        .ok()
}

/// Takes `tenant_id` out of a body object, for the routes that read the rest as before:
/// `Ok(None)` when it names none.
pub fn take_tenant_field(v: &mut Value) -> Result<Option<TenantId>, FieldProblem> {
    let Some(raw) = v.as_object_mut().and_then(|o| o.remove("tenant_id")) else {
        return Ok(None);
    };
    match raw {
        Value::Null => Ok(None),
        Value::String(s) => TenantId::parse(&s)
            .map(Some)
            .map_err(|e| FieldProblem::new("/tenant_id", e.to_string())),
        _ => Err(FieldProblem::new("/tenant_id", "must be a string")),
    }
}

fn metadata(v: &Value, errors: &mut Vec<FieldProblem>) -> Option<BTreeMap<String, String>> {
    let obj = object(v, "/metadata", errors)?;
    if obj.len() > MAX_METADATA_ENTRIES {
        errors.push(FieldProblem::new(
            "/metadata",
            format!("may hold at most {MAX_METADATA_ENTRIES} entries"),
        ));
        return None;
    }
    let mut out = BTreeMap::new();
    for (k, v) in obj {
        let at = pointer("/metadata", k);
        if let Err(e) = check_name(k, MAX_METADATA_KEY_LEN) {
            errors.push(FieldProblem::new(&at, format!("its key {e}")));
            continue;
        }
        match v.as_str() {
            Some(s) if s.chars().count() <= MAX_METADATA_VALUE_LEN && !s.chars().any(char::is_control) => {
                out.insert(k.clone(), s.to_owned());
            }
            Some(_) => errors.push(FieldProblem::new(
                &at,
                format!("must be at most {MAX_METADATA_VALUE_LEN} characters, with no control characters"),
            )),
            None => errors.push(FieldProblem::new(&at, "must be a string")),
        }
    }
    Some(out)
}

fn name(obj: &Map<String, Value>, required: bool, errors: &mut Vec<FieldProblem>) -> Option<String> {
    let s = if required {
        req_str(obj, "name", "", errors)
    } else {
        opt_str(obj, "name", "", errors)
    }?;
    match check_name(s, MAX_NAME_LEN) {
        Ok(()) => Some(s.to_owned()),
        Err(e) => {
            errors.push(FieldProblem::new("/name", e.to_string()));
            None
        }
    }
}

/// A new tenant from `POST /v1/tenants`: its own id, or a generated one.
pub fn parse_new_tenant(v: &Value, now: Timestamp) -> Result<Tenant, Vec<FieldProblem>> {
    let mut errors = Vec::new();
    let Some(obj) = object(v, "", &mut errors) else {
        return Err(errors);
    };
    refuse_unknown_fields(obj, NEW_FIELDS, "", &mut errors);
    let id = match obj.get("id") {
        None | Some(Value::Null) => Some(TenantId::generate()),
        Some(_) => tenant_field(obj, "id", "", &mut errors),
    };
    let name = name(obj, true, &mut errors);
    let metadata = match obj.get("metadata") {
        None | Some(Value::Null) => Some(BTreeMap::new()),
        Some(m) => metadata(m, &mut errors),
    };
    let limits = match obj.get("limits") {
        None | Some(Value::Null) => TenantLimits::default(),
        Some(l) => parse_limits(l, TenantLimits::default(), &mut errors),
    };
    match (id, name, metadata) {
        (Some(id), Some(name), Some(metadata)) if errors.is_empty() => Ok(Tenant {
            id,
            name,
            metadata,
            limits,
            created_at: now,
            updated_at: now,
        }),
        _ => Err(errors),
    }
}

/// Applies `PATCH /v1/tenants/{id}`: a new name, or metadata that replaces the old.
pub fn apply_tenant_patch(t: &mut Tenant, v: &Value, now: Timestamp) -> Result<(), Vec<FieldProblem>> {
    let mut errors = Vec::new();
    let Some(obj) = object(v, "", &mut errors) else {
        return Err(errors);
    };
    refuse_unknown_fields(obj, PATCH_FIELDS, "", &mut errors);
    let name = name(obj, false, &mut errors);
    let metadata = match obj.get("metadata") {
        None | Some(Value::Null) => None,
        Some(m) => metadata(m, &mut errors),
    };
    let limits = match obj.get("limits") {
        None => t.limits,
        Some(Value::Null) => TenantLimits::default(),
        Some(l) => parse_limits(l, t.limits, &mut errors),
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    t.limits = limits;
    if let Some(n) = name {
        t.name = n;
    }
    if let Some(m) = metadata {
        t.metadata = m;
    }
    t.updated_at = now;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> Timestamp {
        Timestamp::from_unix_millis(1_795_935_600_000)
    }

    #[test]
    fn a_tenant_takes_the_callers_id_or_gets_one() {
        let t = parse_new_tenant(
            &json!({"id": "cus_42", "name": "Acme", "metadata": {"plan": "pro"}}),
            now(),
        )
        .unwrap();
        assert_eq!((t.id.as_str(), t.name.as_str()), ("cus_42", "Acme"));
        assert_eq!(t.metadata["plan"], "pro");
        let made = parse_new_tenant(&json!({"name": "Beta"}), now()).unwrap();
        assert!(made.id.as_str().starts_with("tnt_"));
    }

    #[test]
    fn every_bad_field_is_named_with_its_pointer() {
        let errors = parse_new_tenant(
            &json!({"id": "a.b", "name": "", "metadata": {"k": 1, "ok": "x\ny"}, "plan": "x"}),
            now(),
        )
        .unwrap_err();
        let mut ptrs: Vec<_> = errors.iter().map(|e| e.pointer.as_str()).collect();
        ptrs.sort_unstable();
        assert_eq!(ptrs, ["/id", "/metadata/k", "/metadata/ok", "/name", "/plan"]);
        let many: Map<String, Value> = (0..17).map(|i| (format!("k{i}"), json!("v"))).collect();
        let errors = parse_new_tenant(&json!({"name": "x", "metadata": many}), now()).unwrap_err();
        assert_eq!(errors[0].pointer, "/metadata");
    }

    #[test]
    fn a_patch_changes_what_it_names_and_replaces_the_metadata() {
        let mut t = parse_new_tenant(&json!({"name": "Acme", "metadata": {"a": "1"}}), now()).unwrap();
        apply_tenant_patch(&mut t, &json!({"metadata": {"b": "2"}}), now()).unwrap();
        assert_eq!((t.name.as_str(), t.metadata.len()), ("Acme", 1));
        assert_eq!(t.metadata["b"], "2");
        let errors = apply_tenant_patch(&mut t, &json!({"id": "x"}), now()).unwrap_err();
        assert_eq!(errors[0].pointer, "/id");
    }

    #[test]
    fn the_default_tenant_is_shown_as_built_in() {
        let id = TenantId::default();
        let v = serde_json::to_value(default_view(&id)).unwrap();
        assert_eq!(
            v,
            json!({"id": "default", "name": "default", "metadata": {}, "limits": {}, "built_in": true})
        );
    }
}
