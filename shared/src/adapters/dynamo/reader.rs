//! Reading back what we wrote: a missing or mistyped attribute is a bug or corruption,
//! reported as a permanent error naming it.

use super::Item;
use crate::ports::{PortError, PortResult};
use aws_sdk_dynamodb::types::AttributeValue;

const READ: &str = "read stored item";

/// The attribute that names an item's tenant, when it is not `default`.
pub(super) const TENANT_ATTRIBUTE: &str = "tenant_id";

/// Names the item's tenant, unless it is the default one.
pub(super) fn put_tenant(item: &mut Item, tenant: &crate::ids::TenantId) {
    if !tenant.is_default() {
        item.insert(TENANT_ATTRIBUTE.to_owned(), AttributeValue::S(tenant.to_string()));
    }
}

pub(super) struct Reader<'a>(pub(super) &'a Item);

impl<'a> Reader<'a> {
    pub(super) fn str(&self, k: &str) -> PortResult<&'a str> {
        match self.0.get(k) {
            Some(AttributeValue::S(v)) => Ok(v),
            _ => Err(PortError::permanent(READ, format!("lacks string `{k}`"))),
        }
    }

    pub(super) fn opt_str(&self, k: &str) -> Option<&'a str> {
        match self.0.get(k) {
            Some(AttributeValue::S(v)) => Some(v),
            _ => None,
        }
    }

    pub(super) fn opt_num<T: std::str::FromStr>(&self, k: &str) -> Option<T> {
        match self.0.get(k) {
            Some(AttributeValue::N(v)) => v.parse().ok(),
            _ => None,
        }
    }

    pub(super) fn num<T: std::str::FromStr>(&self, k: &str) -> PortResult<T> {
        self.opt_num(k)
            .ok_or_else(|| PortError::permanent(READ, format!("lacks number `{k}`")))
    }

    /// The item's tenant: `tenant_id`, written only for a tenant other than `default`,
    /// so an item without it (written before tenants, or of the default tenant) is the
    /// default tenant's.
    pub(super) fn tenant(&self) -> PortResult<crate::ids::TenantId> {
        match self.0.get(TENANT_ATTRIBUTE) {
            None => Ok(crate::ids::TenantId::default()),
            Some(_) => self.parse(TENANT_ATTRIBUTE, crate::ids::TenantId::parse),
        }
    }

    pub(super) fn parse<T, E: std::fmt::Display>(
        &self,
        k: &str,
        f: impl FnOnce(&str) -> Result<T, E>,
    ) -> PortResult<T> {
        f(self.str(k)?).map_err(|e| PortError::permanent(READ, format!("`{k}` is invalid: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{n, s};
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn a_missing_or_mistyped_attribute_is_a_permanent_error_that_names_it() {
        let item: Item = HashMap::from([("name".to_owned(), s("crm")), ("count".to_owned(), n(3))]);
        let r = Reader(&item);
        assert_eq!(r.str("name").unwrap(), "crm");
        assert_eq!(r.num::<u32>("count").unwrap(), 3);
        assert_eq!(r.opt_num::<u32>("name"), None, "a string is not a number");
        let e = r.str("count").unwrap_err();
        assert!(e.is_permanent());
        assert!(e.to_string().contains("lacks string `count`"), "{e}");
        let e = r.parse("name", |v| v.parse::<u32>()).unwrap_err();
        assert!(e.to_string().contains("`name` is invalid"), "{e}");
    }
}
