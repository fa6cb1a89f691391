//! An endpoint as an item: every field, the secrets included (the table is encrypted
//! at rest and only Hookline's functions may read it).

use super::keys::ENDPOINT_PK;
use super::reader::{Reader, put_tenant};
use super::{Item, n, s};
use crate::endpoint::{Endpoint, EndpointStatus, EventTypeFilter};
use crate::ids::EndpointId;
use crate::ports::{PortError, PortResult};
use crate::signing::EndpointSecret;
use crate::timestamp::Timestamp;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

const READ: &str = "read stored endpoint";

pub(super) fn endpoint_to_item(e: &Endpoint) -> Item {
    let mut item = HashMap::from([
        ("pk".into(), s(ENDPOINT_PK)),
        ("sk".into(), s(e.id.as_str())),
        ("name".into(), s(&e.name)),
        ("url".into(), s(&e.url)),
        (
            "event_types".into(),
            AttributeValue::L(e.event_types.iter().map(|f| s(f.to_string())).collect()),
        ),
        (
            "headers".into(),
            AttributeValue::M(e.headers.iter().map(|(k, v)| (k.clone(), s(v))).collect()),
        ),
        ("timeout_seconds".into(), n(e.timeout_seconds)),
        ("max_attempts".into(), n(e.max_attempts)),
        (
            "status".into(),
            s(match e.status {
                EndpointStatus::Active => "active",
                EndpointStatus::Disabled => "disabled",
            }),
        ),
        ("secret".into(), s(e.secret.expose())),
        ("created_at".into(), n(e.created_at.unix_millis())),
        ("updated_at".into(), n(e.updated_at.unix_millis())),
    ]);
    if let Some(r) = &e.disabled_reason {
        item.insert("disabled_reason".into(), s(r));
    }
    if let Some(waits) = &e.retry_schedule {
        item.insert(
            "retry_schedule".into(),
            AttributeValue::L(waits.iter().map(|w| n(w.as_secs())).collect()),
        );
    }
    if let Some(t) = e.failing_since {
        item.insert("failing_since".into(), n(t.unix_millis()));
    }
    if let Some(r) = e.rate_limit_per_second {
        item.insert("rate_limit_per_second".into(), n(r));
    }
    if let Some(t) = e.slow_since {
        item.insert("slow_since".into(), n(t.unix_millis()));
    }
    if let Some(b) = e.max_body_bytes {
        item.insert("max_body_bytes".into(), n(b));
    }
    if e.ordering != crate::ordering::OrderingMode::None {
        item.insert("ordering".into(), s(e.ordering.as_str()));
    }
    if !e.previous_secrets.is_empty() {
        let list = e
            .previous_secrets
            .iter()
            .map(|(secret, until)| {
                AttributeValue::M(HashMap::from([
                    ("secret".to_owned(), s(secret.expose())),
                    ("until".to_owned(), n(until.unix_millis())),
                ]))
            })
            .collect();
        item.insert("previous_secrets".into(), AttributeValue::L(list));
    }
    item.insert("version".into(), n(e.version));
    put_tenant(&mut item, &e.tenant_id);
    item
}

/// An endpoint item's `event_types`.
pub(super) fn event_types_of(item: &Item) -> PortResult<Vec<EventTypeFilter>> {
    Ok(match item.get("event_types") {
        Some(AttributeValue::L(l)) => l
            .iter()
            .map(|v| match v {
                AttributeValue::S(f) => EventTypeFilter::parse(f)
                    .map_err(|e| PortError::permanent(READ, e.to_string()).caused_by(e)),
                _ => Err(PortError::permanent(
                    READ,
                    "an `event_types` entry is not a string",
                )),
            })
            .collect::<PortResult<Vec<_>>>()?,
        _ => Vec::new(),
    })
}

pub(super) fn endpoint_from_item(item: &Item) -> PortResult<Endpoint> {
    let r = Reader(item);
    let event_types = event_types_of(item)?;
    let headers = match item.get("headers") {
        Some(AttributeValue::M(m)) => m
            .iter()
            .filter_map(|(k, v)| match v {
                AttributeValue::S(v) => Some((k.clone(), v.clone())),
                _ => None,
            })
            .collect(),
        _ => BTreeMap::new(),
    };
    Ok(Endpoint {
        id: r.parse("sk", EndpointId::parse)?,
        tenant_id: r.tenant()?,
        name: r.str("name")?.to_owned(),
        url: r.str("url")?.to_owned(),
        event_types,
        headers,
        timeout_seconds: r.num("timeout_seconds")?,
        max_attempts: r.num("max_attempts")?,
        status: match r.str("status")? {
            "disabled" => EndpointStatus::Disabled,
            _ => EndpointStatus::Active,
        },
        disabled_reason: r.opt_str("disabled_reason").map(str::to_owned),
        retry_schedule: match item.get("retry_schedule") {
            Some(AttributeValue::L(l)) => Some(
                l.iter()
                    .filter_map(|v| match v {
                        AttributeValue::N(x) => x.parse().ok().map(Duration::from_secs),
                        _ => None,
                    })
                    .collect(),
            ),
            _ => None,
        },
        failing_since: r.opt_num("failing_since").map(Timestamp::from_unix_millis),
        rate_limit_per_second: r.opt_num("rate_limit_per_second"),
        slow_since: r.opt_num("slow_since").map(Timestamp::from_unix_millis),
        max_body_bytes: r.opt_num("max_body_bytes"),
        ordering: r
            .opt_str("ordering")
            .and_then(crate::ordering::OrderingMode::parse)
            .unwrap_or_default(),
        secret: r.parse("secret", EndpointSecret::parse)?,
        previous_secrets: match item.get("previous_secrets") {
            Some(AttributeValue::L(l)) => l
                .iter()
                .filter_map(|v| match v {
                    AttributeValue::M(m) => {
                        let r = Reader(m);
                        let secret = r.parse("secret", EndpointSecret::parse).ok()?;
                        Some((secret, Timestamp::from_unix_millis(r.opt_num("until")?)))
                    }
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        },
        version: r.opt_num("version").unwrap_or(0),
        created_at: Timestamp::from_unix_millis(r.num("created_at")?),
        updated_at: Timestamp::from_unix_millis(r.num("updated_at")?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint() -> Endpoint {
        let now = Timestamp::from_unix_millis(1_795_935_600_000);
        let mut e = Endpoint::new(
            "crm".into(),
            "https://crm.example.com/hook".into(),
            vec![EventTypeFilter::parse("agent.*").unwrap()],
            now,
        );
        e.headers = BTreeMap::from([("x-tenant".to_owned(), "acme".to_owned())]);
        e
    }

    fn same(a: &Endpoint, b: &Endpoint) {
        // Endpoint holds a secret, so it has no PartialEq: compare what is stored.
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        assert_eq!(a.secret.expose(), b.secret.expose());
        let prev = |e: &Endpoint| -> Vec<(String, Timestamp)> {
            e.previous_secrets
                .iter()
                .map(|(s, t)| (s.expose().to_owned(), *t))
                .collect()
        };
        assert_eq!(prev(a), prev(b));
    }

    #[test]
    fn an_endpoint_with_only_its_defaults_reads_back_as_written() {
        let e = endpoint();
        let item = endpoint_to_item(&e);
        assert_eq!(item["pk"], s(ENDPOINT_PK));
        assert_eq!(item["sk"], s(e.id.as_str()));
        for optional in [
            "disabled_reason",
            "retry_schedule",
            "failing_since",
            "rate_limit_per_second",
            "previous_secrets",
        ] {
            assert!(
                !item.contains_key(optional),
                "{optional} is written only when set"
            );
        }
        same(&endpoint_from_item(&item).unwrap(), &e);
    }

    #[test]
    fn every_optional_field_reads_back_as_written() {
        let mut e = endpoint();
        let now = e.created_at;
        e.status = EndpointStatus::Disabled;
        e.disabled_reason = Some("the endpoint answered 410 Gone".into());
        e.set_retry_schedule(Some(vec![Duration::from_secs(1), Duration::from_secs(60)]));
        e.failing_since = Some(now);
        e.rate_limit_per_second = Some(5);
        e.slow_since = Some(now);
        e.rotate_secret(EndpointSecret::generate(), Duration::from_secs(3600), now);
        e.version = 7;
        same(&endpoint_from_item(&endpoint_to_item(&e)).unwrap(), &e);
    }

    #[test]
    fn an_item_written_before_versions_reads_as_version_0() {
        let e = endpoint();
        let mut item = endpoint_to_item(&e);
        item.remove("version");
        assert_eq!(endpoint_from_item(&item).unwrap().version, 0);
    }

    #[test]
    fn a_corrupt_endpoint_item_is_a_permanent_error_not_a_default() {
        let mut item = endpoint_to_item(&endpoint());
        item.insert("event_types".into(), AttributeValue::L(vec![n(1)]));
        assert!(endpoint_from_item(&item).unwrap_err().is_permanent());
        let mut item = endpoint_to_item(&endpoint());
        item.insert("secret".into(), s("not a secret"));
        let e = endpoint_from_item(&item).unwrap_err();
        assert!(e.to_string().contains("`secret` is invalid"), "{e}");
        assert!(
            !e.to_string().contains("not a secret"),
            "the stored value is not shown: {e}"
        );
    }
}
