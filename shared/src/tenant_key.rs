//! Tenant keys: `hk_<tenant id>.<key id>.<secret>`. The key names its record (tenant
//! and key id), so checking one is one read by key; the record holds only the SHA-256
//! of the secret (32 random bytes: a fast hash is enough, nothing to guess from), and
//! the comparison takes the same time however close a guess is.

use crate::api::{object, opt_str, refuse_unknown_fields};
use crate::ids::{TenantId, TenantKeyId};
use crate::names::check_name;
use crate::problem::FieldProblem;
use crate::timestamp::Timestamp;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const KEY_PREFIX: &str = "hk_";
/// A tenant holds at most this many keys at once.
pub const MAX_KEYS_PER_TENANT: usize = 100;
const SECRET_BYTES: usize = 32;
const FIELDS: &[&str] = &["scope", "name", "expires_at"];

/// What a tenant key may do, within its tenant only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TenantScope {
    /// Send events.
    Ingest,
    /// Read the tenant's endpoints, deliveries, events and stats.
    Read,
    /// Read, change endpoints and deliveries, and send events.
    Manage,
    /// A portal session (`portal`): read, and change endpoints and deliveries; no events.
    Portal,
    /// A portal link's token: good for one exchange for a portal session, nothing else.
    PortalLink,
}

impl TenantScope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ingest => "ingest",
            Self::Read => "read",
            Self::Manage => "manage",
            Self::Portal => "portal",
            Self::PortalLink => "portal_link",
        }
    }

    /// A scope as stored.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "ingest" => Self::Ingest,
            "read" => Self::Read,
            "manage" => Self::Manage,
            "portal" => Self::Portal,
            "portal_link" => Self::PortalLink,
            _ => return None,
        })
    }

    /// A scope an operator may ask a key for (the portal's are made by its links).
    pub fn parse_issuable(s: &str) -> Option<Self> {
        Self::parse(s).filter(|sc| matches!(sc, Self::Ingest | Self::Read | Self::Manage))
    }
}

/// A key's record: everything but the secret.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct TenantKey {
    pub id: TenantKeyId,
    pub tenant_id: TenantId,
    pub scope: TenantScope,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    pub created_at: Timestamp,
    /// SHA-256 of the secret, hex.
    #[serde(skip)]
    pub secret_hash: String,
}

impl std::fmt::Debug for TenantKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantKey")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("scope", &self.scope)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl TenantKey {
    /// A new key for `tenant`: its record, and the key itself, shown once.
    pub fn issue(
        tenant: &TenantId,
        scope: TenantScope,
        name: Option<String>,
        expires_at: Option<Timestamp>,
        now: Timestamp,
    ) -> (Self, String) {
        let mut secret = [0u8; SECRET_BYTES];
        // The OS random source failing is not something to carry on from.
        getrandom::fill(&mut secret).expect("the OS random source is available");
        let secret = URL_SAFE_NO_PAD.encode(secret);
        let id = TenantKeyId::generate_at(now);
        let key = format!("{KEY_PREFIX}{tenant}.{id}.{secret}");
        let record = Self {
            id,
            tenant_id: tenant.clone(),
            scope,
            name,
            expires_at,
            created_at: now,
            secret_hash: hash(&secret),
        };
        (record, key)
    }

    /// Whether it has not expired by `now`.
    pub fn is_live(&self, now: Timestamp) -> bool {
        self.expires_at.is_none_or(|at| now < at)
    }

    /// Whether `presented` is this key and it has not expired.
    pub fn admits(&self, presented: &PresentedKey, now: Timestamp) -> bool {
        let same = hash(&presented.secret)
            .as_bytes()
            .ct_eq(self.secret_hash.as_bytes());
        bool::from(same)
            && presented.tenant == self.tenant_id
            && presented.key_id == self.id
            && self.is_live(now)
    }
}

fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A key as sent, split into the record it names and its secret.
#[derive(Clone, PartialEq, Eq)]
pub struct PresentedKey {
    pub tenant: TenantId,
    pub key_id: TenantKeyId,
    secret: String,
}

impl std::fmt::Debug for PresentedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PresentedKey({}.{}.****)", self.tenant, self.key_id)
    }
}

impl PresentedKey {
    /// The parts of a tenant key; `None` for anything else (an operator key, say).
    pub fn parse(key: &str) -> Option<Self> {
        let rest = key.strip_prefix(KEY_PREFIX)?;
        let mut parts = rest.split('.');
        let (tenant, key_id, secret) = (parts.next()?, parts.next()?, parts.next()?);
        // Issued secrets are base64url: anything else cannot be one.
        let base64url = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
        if parts.next().is_some() || secret.is_empty() || secret.len() > 64 || !secret.bytes().all(base64url)
        {
            return None;
        }
        Some(Self {
            tenant: TenantId::parse(tenant).ok()?,
            key_id: TenantKeyId::parse(key_id).ok()?,
            secret: secret.to_owned(),
        })
    }
}

/// What `POST /v1/tenants/{id}/keys` asks for.
#[derive(Debug, PartialEq, Eq)]
pub struct NewKey {
    pub scope: TenantScope,
    pub name: Option<String>,
    pub expires_at: Option<Timestamp>,
}

pub fn parse_new_key(v: &Value, now: Timestamp) -> Result<NewKey, Vec<FieldProblem>> {
    let mut errors = Vec::new();
    let Some(obj) = object(v, "", &mut errors) else {
        return Err(errors);
    };
    refuse_unknown_fields(obj, FIELDS, "", &mut errors);
    let scope = match opt_str(obj, "scope", "", &mut errors) {
        Some(s) => TenantScope::parse(s).or_else(|| {
            errors.push(FieldProblem::new(
                "/scope",
                "must be `ingest`, `read` or `manage`",
            ));
            None
        }),
        None => {
            if obj.get("scope").is_none_or(Value::is_null) {
                errors.push(FieldProblem::new(
                    "/scope",
                    "is required: `ingest`, `read` or `manage`",
                ));
            }
            None
        }
    };
    let name = opt_str(obj, "name", "", &mut errors).and_then(|n| match check_name(n, 200) {
        Ok(()) => Some(n.to_owned()),
        Err(e) => {
            errors.push(FieldProblem::new("/name", e.to_string()));
            None
        }
    });
    let expires_at =
        opt_str(obj, "expires_at", "", &mut errors).and_then(|s| match Timestamp::parse_rfc3339(s) {
            Ok(at) if at > now => Some(at),
            Ok(_) => {
                errors.push(FieldProblem::new("/expires_at", "must be in the future"));
                None
            }
            Err(_) => {
                errors.push(FieldProblem::new("/expires_at", "must be an RFC 3339 time"));
                None
            }
        });
    match scope {
        Some(scope) if errors.is_empty() => Ok(NewKey {
            scope,
            name,
            expires_at,
        }),
        _ => Err(errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> Timestamp {
        Timestamp::from_unix_millis(1_795_935_600_000)
    }

    #[test]
    fn an_issued_key_names_its_record_and_admits_only_itself() {
        let tenant = TenantId::parse("cus_42").unwrap();
        let (record, key) = TenantKey::issue(&tenant, TenantScope::Read, None, None, now());
        assert!(key.starts_with("hk_cus_42.key_"));
        assert!(!record.secret_hash.contains(&key[key.rfind('.').unwrap() + 1..]));
        let presented = PresentedKey::parse(&key).unwrap();
        assert_eq!((&presented.tenant, &presented.key_id), (&tenant, &record.id));
        assert!(record.admits(&presented, now()));
        let mut wrong = key.clone();
        wrong.pop();
        wrong.push(if key.ends_with('A') { 'B' } else { 'A' });
        assert!(!record.admits(&PresentedKey::parse(&wrong).unwrap(), now()));
        assert!(!format!("{presented:?}").contains(&key[key.rfind('.').unwrap() + 1..]));
    }

    #[test]
    fn an_expired_key_admits_nothing() {
        let tenant = TenantId::parse("t").unwrap();
        let later = now().saturating_add(std::time::Duration::from_secs(60));
        let (record, key) = TenantKey::issue(&tenant, TenantScope::Ingest, None, Some(later), now());
        let presented = PresentedKey::parse(&key).unwrap();
        assert!(record.admits(&presented, now()));
        assert!(!record.admits(&presented, later));
    }

    #[test]
    fn only_the_three_part_shape_is_a_tenant_key() {
        for not in [
            "hk_",
            "hk_a.b",
            "hk_a.key_1.s.x",
            "ak_live",
            "hk_a b.key_1.s",
            "hk_a.ep_1.s",
            "hk_a.key_1.",
            "hk_a.key_1.s t",
            "hk_a.key_1.s\u{e9}",
        ] {
            assert!(PresentedKey::parse(not).is_none(), "{not}");
        }
    }

    #[test]
    fn a_new_key_needs_a_scope_and_a_future_expiry() {
        let k = parse_new_key(&json!({"scope": "manage", "name": "ci"}), now()).unwrap();
        assert_eq!((k.scope, k.name.as_deref()), (TenantScope::Manage, Some("ci")));
        let errors = parse_new_key(
            &json!({"scope": "admin", "expires_at": "2000-01-01T00:00:00Z", "x": 1}),
            now(),
        )
        .unwrap_err();
        let mut ptrs: Vec<_> = errors.iter().map(|e| e.pointer.as_str()).collect();
        ptrs.sort_unstable();
        assert_eq!(ptrs, ["/expires_at", "/scope", "/x"]);
        assert_eq!(parse_new_key(&json!({}), now()).unwrap_err()[0].pointer, "/scope");
    }
}
