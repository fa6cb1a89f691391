//! The operator's API keys and their scopes: an ingest key may only send events; an
//! admin key may do everything, for every tenant (`tenancy`). Keys are compared in
//! constant time. Tenants' own keys are `tenant_key`'s.

use subtle::ConstantTimeEq;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    Ingest,
    Admin,
}

#[derive(Clone)]
pub struct ApiKeys {
    ingest: Vec<u8>,
    admin: Vec<u8>,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKeys(****)")
    }
}

impl ApiKeys {
    pub fn new(ingest: impl Into<String>, admin: impl Into<String>) -> Self {
        Self {
            ingest: ingest.into().into_bytes(),
            admin: admin.into().into_bytes(),
        }
    }

    /// The keys themselves, for the rule that they never leave in a payload
    /// (`redaction`); never for logging.
    pub fn own_keys(&self) -> [&str; 2] {
        [
            std::str::from_utf8(&self.ingest).unwrap_or_default(),
            std::str::from_utf8(&self.admin).unwrap_or_default(),
        ]
    }

    /// The scope of a presented key, if it is one of ours.
    pub fn scope_of(&self, presented: &str) -> Option<Scope> {
        let p = presented.as_bytes();
        // Check both so the time taken does not tell which key was close.
        let admin = bool::from(p.ct_eq(&self.admin));
        let ingest = bool::from(p.ct_eq(&self.ingest));
        if admin {
            Some(Scope::Admin)
        } else if ingest {
            Some(Scope::Ingest)
        } else {
            None
        }
    }
}

/// The key sent as `Authorization: Bearer K`, else as `x-api-key: K`.
pub fn presented<'a>(authorization: Option<&'a str>, x_api_key: Option<&'a str>) -> Option<&'a str> {
    let bearer = authorization.and_then(|v| {
        let (scheme, token) = v.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    });
    bearer.or(x_api_key.map(str::trim))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_read_from_either_header_and_scoped() {
        let keys = ApiKeys::new("ik", "ak");
        assert_eq!(presented(Some("Bearer ik"), None), Some("ik"));
        assert_eq!(presented(Some("bearer  ak"), Some("x")), Some("ak"));
        assert_eq!(presented(None, Some(" ak ")), Some("ak"));
        assert_eq!(presented(Some("Basic ik"), None), None);
        assert_eq!(presented(None, None), None);
        assert_eq!(keys.scope_of("ik"), Some(Scope::Ingest));
        assert_eq!(keys.scope_of("ak"), Some(Scope::Admin));
        assert_eq!(keys.scope_of("nope"), None);
        assert_eq!(format!("{keys:?}"), "ApiKeys(****)");
    }
}
