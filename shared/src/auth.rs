//! API keys and their scopes: an ingest key may only send events; an admin key may
//! do everything. Keys are compared in constant time.

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

#[derive(Debug, PartialEq, Eq)]
pub enum AuthError {
    /// No key, or one that matches nothing: 401.
    Unauthenticated,
    /// A valid key without the scope: 403.
    Forbidden { have: Scope, need: Scope },
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

    /// Authorises a request from its `Authorization` and `x-api-key` header values.
    pub fn authorize(
        &self,
        authorization: Option<&str>,
        x_api_key: Option<&str>,
        need: Scope,
    ) -> Result<Scope, AuthError> {
        let bearer = authorization.and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
        let key = bearer
            .or(x_api_key.map(str::trim))
            .ok_or(AuthError::Unauthenticated)?;
        let have = self.scope_of(key).ok_or(AuthError::Unauthenticated)?;
        if have >= need {
            Ok(have)
        } else {
            Err(AuthError::Forbidden { have, need })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_read_from_either_header_and_scoped() {
        let keys = ApiKeys::new("ik", "ak");
        assert_eq!(
            keys.authorize(Some("Bearer ik"), None, Scope::Ingest),
            Ok(Scope::Ingest)
        );
        assert_eq!(
            keys.authorize(Some("bearer  ak"), None, Scope::Ingest),
            Ok(Scope::Admin)
        );
        assert_eq!(keys.authorize(None, Some("ak"), Scope::Admin), Ok(Scope::Admin));
        assert_eq!(
            keys.authorize(None, Some("ik"), Scope::Admin),
            Err(AuthError::Forbidden {
                have: Scope::Ingest,
                need: Scope::Admin
            })
        );
        assert_eq!(
            keys.authorize(None, Some("nope"), Scope::Ingest),
            Err(AuthError::Unauthenticated)
        );
        assert_eq!(
            keys.authorize(Some("Basic ik"), None, Scope::Ingest),
            Err(AuthError::Unauthenticated)
        );
        assert_eq!(
            keys.authorize(None, None, Scope::Ingest),
            Err(AuthError::Unauthenticated)
        );
        assert_eq!(format!("{keys:?}"), "ApiKeys(****)");
    }
}
