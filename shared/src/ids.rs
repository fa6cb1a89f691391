//! Prefixed, time-sortable identifiers (`evt_`, `ep_`, `dlv_`, `dlt_`).
//!
//! A new id is a UUIDv7 in lowercase hex: its leading 48 bits are the creation time
//! in milliseconds, so ids sort by creation time as plain strings.

use serde::{Deserialize, Serialize};
use std::fmt;
use thiserror::Error;
use uuid::Uuid;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum IdError {
    #[error("must be 1 to {max} characters long")]
    Length { max: usize },
    #[error("may contain only letters, digits and `_ - . :`")]
    Charset,
    #[error("may contain only letters, digits, `_` and `-`")]
    TenantCharset,
    #[error("must start with `{prefix}`")]
    Prefix { prefix: &'static str },
}

fn sortable(prefix: &str) -> String {
    format!("{prefix}{}", Uuid::now_v7().simple())
}

/// A sortable id whose time is `unix_millis` (a UUIDv7: its first 48 bits).
fn sortable_at(prefix: &str, unix_millis: i64) -> String {
    let ms = u64::try_from(unix_millis).unwrap_or(0);
    let ts = uuid::Timestamp::from_unix(
        uuid::NoContext,
        ms / 1000,
        u32::try_from(ms % 1000).unwrap_or(0) * 1_000_000,
    );
    format!("{prefix}{}", Uuid::new_v7(ts).simple())
}

/// The time (unix ms) a sortable id was made at, if it is one.
fn sortable_millis(prefix: &str, id: &str) -> Option<i64> {
    let rest = id.strip_prefix(prefix)?;
    // The UUID, alone or before `_` and what the id names besides (a delivery's endpoint).
    let hex = rest.get(..32)?;
    if !(rest.len() == 32 || rest.as_bytes()[32] == b'_') || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    i64::from_str_radix(&hex[..12], 16).ok()
}

fn check_charset(s: &str, max: usize) -> Result<(), IdError> {
    if s.is_empty() || s.len() > max {
        return Err(IdError::Length { max });
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
    {
        return Err(IdError::Charset);
    }
    Ok(())
}

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $max:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A new, time-sortable id.
            pub fn generate() -> Self {
                Self(sortable(Self::PREFIX))
            }

            /// A new, time-sortable id made at `at`.
            pub fn generate_at(at: crate::Timestamp) -> Self {
                Self(sortable_at(Self::PREFIX, at.unix_millis()))
            }

            /// When a generated id was made (unix ms); `None` for other ids.
            pub fn made_at_millis(&self) -> Option<i64> {
                sortable_millis(Self::PREFIX, &self.0)
            }

            pub fn parse(s: &str) -> Result<Self, IdError> {
                check_charset(s, $max)?;
                if !s.starts_with(Self::PREFIX) || s.len() == Self::PREFIX.len() {
                    return Err(IdError::Prefix { prefix: Self::PREFIX });
                }
                Ok(Self(s.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

prefixed_id!(
    /// An endpoint's id.
    EndpointId, "ep_", 64
);
prefixed_id!(
    /// A delivery's id: one event to one endpoint. A new one names both its creation
    /// time and its endpoint (`dlv_<uuidv7>_<endpoint id without ep_>`), so that a
    /// delivery is found by its id alone, in its endpoint's log.
    DeliveryId, "dlv_", 100
);

prefixed_id!(
    /// A tenant key's id: the part of a key (`hk_…`) that names its record.
    TenantKeyId, "key_", 36
);

prefixed_id!(
    /// A dead letter's id: a queue message Hookline could not process, kept for the
    /// operator.
    DeadLetterId, "dlt_", 64
);

impl DeliveryId {
    /// A new delivery's id, made at `at`, for `endpoint`.
    pub fn generate_for(at: crate::Timestamp, endpoint: &EndpointId) -> Self {
        Self::for_targets(at, std::iter::once(endpoint)).remove(0)
    }

    /// The ids of one event's new deliveries, one per endpoint: they share their
    /// UUID (and so their time), which the event's item stores once.
    pub fn for_targets<'a>(
        at: crate::Timestamp,
        endpoints: impl IntoIterator<Item = &'a EndpointId>,
    ) -> Vec<Self> {
        let shared = sortable_at(Self::PREFIX, at.unix_millis());
        let uuid = &shared[Self::PREFIX.len()..];
        endpoints
            .into_iter()
            .map(|ep| Self::from_parts(uuid, ep))
            .collect()
    }

    /// The id made of a UUID (32 hex digits) and an endpoint.
    pub fn from_parts(uuid_hex: &str, endpoint: &EndpointId) -> Self {
        let tail = endpoint
            .as_str()
            .strip_prefix(EndpointId::PREFIX)
            .unwrap_or(endpoint.as_str());
        Self(format!("{}{uuid_hex}_{tail}", Self::PREFIX))
    }

    /// The UUID (32 hex digits) and the endpoint a delivery id names, if it is one made here.
    pub fn parts(&self) -> Option<(&str, EndpointId)> {
        self.made_at_millis()?;
        let uuid = self.0.get(Self::PREFIX.len()..Self::PREFIX.len() + 32)?;
        let tail = self.0.get(Self::PREFIX.len() + 33..)?;
        let ep = EndpointId::parse(&format!("{}{tail}", EndpointId::PREFIX)).ok()?;
        Some((uuid, ep))
    }

    /// The endpoint a delivery id names, if it is one made here.
    pub fn endpoint_id(&self) -> Option<EndpointId> {
        self.parts().map(|(_, ep)| ep)
    }
}

/// An event's id. Hookline makes `evt_…` ids, but a client may bring its own id
/// (its idempotency key), so any short id of safe characters is accepted.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EventId(String);

impl EventId {
    pub const PREFIX: &'static str = "evt_";
    pub const MAX_LEN: usize = 128;

    pub fn generate() -> Self {
        Self(sortable(Self::PREFIX))
    }

    pub fn parse(s: &str) -> Result<Self, IdError> {
        check_charset(s, Self::MAX_LEN)?;
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EventId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        Self::parse(&s)
    }
}

impl From<EventId> for String {
    fn from(id: EventId) -> String {
        id.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A tenant's id: the caller's own (their customer id) or a generated `tnt_…`. Letters,
/// digits, `_` and `-` only, so it can stand in a store key or a tenant key beside `#`
/// and `.`. `default` is the built-in tenant of everything that names none.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TenantId(String);

impl TenantId {
    pub const PREFIX: &'static str = "tnt_";
    pub const MAX_LEN: usize = 64;
    pub const DEFAULT: &'static str = "default";

    pub fn generate() -> Self {
        Self(sortable(Self::PREFIX))
    }

    pub fn parse(s: &str) -> Result<Self, IdError> {
        check_charset(s, Self::MAX_LEN)?;
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
        {
            return Err(IdError::TenantCharset);
        }
        Ok(Self(s.to_owned()))
    }

    /// The built-in tenant of whatever names none.
    pub fn default_tenant() -> Self {
        Self(Self::DEFAULT.to_owned())
    }

    pub fn is_default(&self) -> bool {
        self.0 == Self::DEFAULT
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for TenantId {
    fn default() -> Self {
        Self::default_tenant()
    }
}

impl TryFrom<String> for TenantId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        Self::parse(&s)
    }
}

impl From<TenantId> for String {
    fn from(id: TenantId) -> String {
        id.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivery_id_names_its_time_and_its_endpoint() {
        let at = crate::Timestamp::from_unix_millis(1_795_950_000_123);
        let ep = EndpointId::generate();
        let id = DeliveryId::generate_for(at, &ep);
        assert_eq!(id.made_at_millis(), Some(1_795_950_000_123));
        assert_eq!(id.endpoint_id(), Some(ep.clone()));
        assert_eq!(DeliveryId::parse(id.as_str()), Ok(id.clone()), "it reads back");
        assert_ne!(DeliveryId::generate_for(at, &ep), id, "still unique");
        let later = DeliveryId::generate_for(crate::Timestamp::from_unix_millis(1_795_950_000_124), &ep);
        assert!(id < later, "sorts by time");
        assert_eq!(DeliveryId::generate_at(at).endpoint_id(), None);
        let other = EndpointId::generate();
        let both = DeliveryId::for_targets(at, [&ep, &other]);
        let (uuid, first) = both[0].parts().unwrap();
        assert_eq!(first, ep);
        assert_eq!(
            both[1].parts().unwrap().0,
            uuid,
            "one UUID for an event's deliveries"
        );
        assert_eq!(DeliveryId::from_parts(uuid, &other), both[1]);
        assert_eq!(DeliveryId::parse("dlv_custom").unwrap().endpoint_id(), None);
    }

    #[test]
    fn an_id_made_at_a_time_tells_that_time_to_the_millisecond() {
        let at = crate::Timestamp::from_unix_millis(1_795_950_000_123);
        let id = DeliveryId::generate_at(at);
        assert!(id.as_str().starts_with("dlv_"));
        assert_eq!(id.made_at_millis(), Some(1_795_950_000_123));
        assert_ne!(DeliveryId::generate_at(at), id, "still unique");
        assert_eq!(DeliveryId::parse("dlv_custom").unwrap().made_at_millis(), None);
    }

    #[test]
    fn generated_ids_carry_their_prefix_and_sort_by_creation_time() {
        let a = EndpointId::generate();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = EndpointId::generate();
        assert!(a.as_str().starts_with("ep_"));
        assert!(a < b, "{a} should sort before {b}");
        assert_eq!(EventId::generate().as_str().len(), 4 + 32);
    }

    #[test]
    fn an_id_with_the_wrong_prefix_is_refused() {
        assert_eq!(
            EndpointId::parse("dlv_123"),
            Err(IdError::Prefix { prefix: "ep_" })
        );
        assert_eq!(EndpointId::parse("ep_"), Err(IdError::Prefix { prefix: "ep_" }));
        assert!(EndpointId::parse("ep_0192").is_ok());
    }

    #[test]
    fn tenant_ids_are_short_names_that_fit_in_keys_and_default_is_built_in() {
        for ok in ["acme", "cus_123", "A-b_9", &"x".repeat(64)] {
            assert!(TenantId::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a.b", "a:b", "a#b", "a b", "é", &"x".repeat(65)] {
            assert!(TenantId::parse(bad).is_err(), "{bad}");
        }
        assert!(TenantId::default().is_default());
        let made = TenantId::generate();
        assert!(made.as_str().starts_with("tnt_") && TenantId::parse(made.as_str()).is_ok());
        assert_eq!(
            serde_json::to_string(&TenantId::default()).unwrap(),
            "\"default\""
        );
    }

    #[test]
    fn client_event_ids_accept_safe_characters_only() {
        assert!(EventId::parse("order-42:v1.b_c").is_ok());
        assert_eq!(EventId::parse(""), Err(IdError::Length { max: 128 }));
        assert_eq!(
            EventId::parse(&"a".repeat(129)),
            Err(IdError::Length { max: 128 })
        );
        assert_eq!(EventId::parse("a/b"), Err(IdError::Charset));
        assert_eq!(EventId::parse("a b"), Err(IdError::Charset));
    }
}
