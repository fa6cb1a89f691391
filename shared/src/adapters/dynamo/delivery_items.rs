//! A delivery as an item (with its first attempt inside it), a later attempt as an
//! item of its own, and the conditions that keep concurrent writers from regressing
//! a delivery.

use super::keys::{
    attempt_sk, attempts_pk, delivery_id_of, delivery_pk, delivery_sk, endpoint_of_delivery, open_pk_of,
};
use super::reader::{Reader, put_tenant};
use super::{DynamoStore, Item, n, s};
use crate::delivery::{Attempt, AttemptOutcome, Delivery, DeliveryStatus, TransportError};
use crate::event::EventType;
use crate::ids::EventId;
use crate::ports::PortResult;
use crate::timestamp::Timestamp;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

impl DynamoStore {
    pub(super) fn delivery_item(&self, d: &Delivery) -> Item {
        let mut item = HashMap::from([
            ("pk".into(), s(delivery_pk(&d.endpoint_id))),
            ("sk".into(), s(delivery_sk(&d.id))),
            ("event_id".into(), s(d.event_id.as_str())),
            ("event_type".into(), s(d.event_type.as_str())),
            ("status".into(), s(d.status.as_str())),
            ("attempts".into(), n(d.attempts)),
            ("max_attempts".into(), n(d.max_attempts)),
            ("created_at".into(), n(d.created_at.unix_millis())),
            ("updated_at".into(), n(d.updated_at.unix_millis())),
            ("expires_at".into(), self.expires_at(d.updated_at)),
        ]);
        if let Some(t) = d.next_attempt_at {
            item.insert("next_attempt_at".into(), n(t.unix_millis()));
            if d.status.is_open() {
                item.insert("open_pk".into(), s(open_pk_of(&d.id)));
                item.insert("due_at".into(), n(t.unix_millis()));
            }
        }
        if let Some(c) = d.last_status_code {
            item.insert("last_status_code".into(), n(c));
        }
        if let Some(e) = &d.last_error {
            item.insert("last_error".into(), s(e));
        }
        if let Some(r) = &d.failure_reason {
            item.insert("failure_reason".into(), s(r));
        }
        if let Some(w) = &d.wake {
            item.insert("wake".into(), s(w));
        }
        if let Some(place) = &d.order {
            item.insert("lane".into(), s(serde_json::to_string(place).unwrap_or_default()));
        }
        put_tenant(&mut item, &d.tenant_id);
        item
    }

    /// A delivery's item with its first attempt in it, if it made one.
    pub(super) fn delivery_item_with(&self, d: &Delivery, first: Option<&Attempt>) -> Item {
        let mut item = self.delivery_item(d);
        if let Some(a) = first {
            item.insert(FIRST_ATTEMPT.into(), AttributeValue::M(attempt_fields(a)));
        }
        item
    }

    pub(super) fn attempt_item(&self, d: &Delivery, a: &Attempt) -> Item {
        let mut item = attempt_fields(a);
        item.extend([
            ("pk".into(), s(attempts_pk(&d.id))),
            ("sk".into(), s(attempt_sk(a.number))),
            ("expires_at".into(), self.expires_at(a.started_at)),
        ]);
        item
    }

    /// The UpdateItem that makes the stored delivery `d`: every attribute of its item
    /// but the keys, with the optional ones it lacks removed. The first attempt, kept
    /// in the item since it was written, stays as it is.
    pub(super) fn delivery_update(&self, d: &Delivery) -> Update {
        let item = self.delivery_item(d);
        let mut u = Update::default();
        let mut sets = Vec::new();
        for (i, (k, v)) in item.iter().filter(|(k, _)| *k != "pk" && *k != "sk").enumerate() {
            sets.push(format!("#u{i} = :u{i}"));
            u.names.insert(format!("#u{i}"), k.clone());
            u.values.insert(format!(":u{i}"), v.clone());
        }
        let mut removes = Vec::new();
        for (i, k) in OPTIONAL_DELIVERY_ATTRIBUTES
            .iter()
            .filter(|k| !item.contains_key(**k))
            .enumerate()
        {
            removes.push(format!("#r{i}"));
            u.names.insert(format!("#r{i}"), (*k).to_owned());
        }
        u.expression = format!("SET {}", sets.join(", "));
        if !removes.is_empty() {
            u.expression.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        u
    }
}

/// An update expression with its names and values.
#[derive(Default)]
pub(super) struct Update {
    pub(super) expression: String,
    pub(super) names: HashMap<String, String>,
    pub(super) values: HashMap<String, AttributeValue>,
}

/// What a delivery's item may lack; `lease_until` goes with every full update, which
/// ends the attempt that held it.
const OPTIONAL_DELIVERY_ATTRIBUTES: [&str; 8] = [
    "next_attempt_at",
    "open_pk",
    "due_at",
    "last_status_code",
    "last_error",
    "failure_reason",
    "wake",
    "lease_until",
];

/// The delivery item's map that holds its first attempt: recorded with the delivery in
/// one write, instead of an item of its own.
pub(super) const FIRST_ATTEMPT: &str = "first_attempt";

/// An attempt's attributes, in its own item or in its delivery's.
pub(super) fn attempt_fields(a: &Attempt) -> Item {
    let mut item = HashMap::from([
        ("number".into(), n(a.number)),
        ("started_at".into(), n(a.started_at.unix_millis())),
        ("duration_ms".into(), n(a.duration_ms)),
    ]);
    match &a.outcome {
        AttemptOutcome::Response {
            status,
            body,
            retry_after_seconds,
        } => {
            item.insert("status_code".into(), n(status));
            item.insert("response_body".into(), s(body));
            if let Some(ra) = retry_after_seconds {
                item.insert("retry_after_seconds".into(), n(ra));
            }
        }
        AttemptOutcome::Error { error, message } => {
            let kind = serde_json::to_value(error)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_else(|| "other".into());
            item.insert("error_kind".into(), s(kind));
            item.insert("error".into(), s(message));
        }
    }
    item
}

/// The first attempt a delivery's item holds, if it holds one.
pub(super) fn first_attempt(item: &Item) -> PortResult<Vec<Attempt>> {
    match item.get(FIRST_ATTEMPT) {
        Some(AttributeValue::M(m)) => Ok(vec![attempt_from_item(m)?]),
        _ => Ok(Vec::new()),
    }
}

/// A delivery from its item (or its entry in the `open` index, which holds the keys).
pub(super) fn delivery_from_item(item: &Item) -> PortResult<Delivery> {
    let r = Reader(item);
    Ok(Delivery {
        id: delivery_id_of(item)?,
        tenant_id: r.tenant()?,
        event_id: r.parse("event_id", EventId::parse)?,
        endpoint_id: endpoint_of_delivery(item)?,
        event_type: r.parse("event_type", EventType::parse)?,
        status: r.parse("status", |s| DeliveryStatus::parse(s).ok_or("unknown status"))?,
        attempts: r.num("attempts")?,
        max_attempts: r.num("max_attempts")?,
        next_attempt_at: r.opt_num("next_attempt_at").map(Timestamp::from_unix_millis),
        last_status_code: r.opt_num("last_status_code"),
        last_error: r.opt_str("last_error").map(str::to_owned),
        failure_reason: r.opt_str("failure_reason").map(str::to_owned),
        wake: r.opt_str("wake").map(str::to_owned),
        // Not in the `open` index's projection: a delivery read from it has none, and
        // the full update of it leaves the stored one as it is.
        order: r.opt_str("lane").and_then(|l| serde_json::from_str(l).ok()),
        created_at: Timestamp::from_unix_millis(r.num("created_at")?),
        updated_at: Timestamp::from_unix_millis(r.num("updated_at")?),
    })
}

pub(super) fn attempt_from_item(item: &Item) -> PortResult<Attempt> {
    let r = Reader(item);
    let outcome = match r.opt_num::<u16>("status_code") {
        Some(status) => AttemptOutcome::Response {
            status,
            body: r.opt_str("response_body").unwrap_or_default().to_owned(),
            retry_after_seconds: r.opt_num("retry_after_seconds"),
        },
        None => AttemptOutcome::Error {
            error: r
                .opt_str("error_kind")
                .and_then(|k| serde_json::from_value(serde_json::Value::from(k)).ok())
                .unwrap_or(TransportError::Other),
            message: r.opt_str("error").unwrap_or_default().to_owned(),
        },
    };
    Ok(Attempt {
        number: r.num("number")?,
        started_at: Timestamp::from_unix_millis(r.num("started_at")?),
        duration_ms: r.num("duration_ms")?,
        outcome,
    })
}

/// The condition "the delivery is still open and as it was read": same attempt count
/// and wake token. Uses `#st` for `status`.
pub(super) fn as_seen(seen: &Delivery) -> (String, HashMap<String, AttributeValue>) {
    let mut values = HashMap::from([
        (":n".to_owned(), n(seen.attempts)),
        (":pending".to_owned(), s("pending")),
        (":retrying".to_owned(), s("retrying")),
    ]);
    let wake = match &seen.wake {
        Some(w) => {
            values.insert(":wake".into(), s(w));
            "wake = :wake"
        }
        None => "attribute_not_exists(wake)",
    };
    (
        format!("attempts = :n AND {wake} AND #st IN (:pending, :retrying)"),
        values,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::EndpointId;
    use crate::retry::RetryPolicy;
    use std::time::Duration;

    const T0: i64 = 1_795_935_600_000;

    fn store() -> DynamoStore {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .build();
        DynamoStore::new(
            aws_sdk_dynamodb::Client::from_conf(config),
            "t",
            Duration::from_secs(86_400),
        )
    }

    fn delivery() -> Delivery {
        Delivery::new(
            EventId::parse("evt_1").unwrap(),
            EndpointId::generate(),
            EventType::parse("agent.run.completed").unwrap(),
            3,
            Timestamp::from_unix_millis(T0),
        )
    }

    fn failed_with(status: u16) -> (Delivery, Attempt) {
        let mut d = delivery();
        let outcome = AttemptOutcome::Response {
            status,
            body: "busy".into(),
            retry_after_seconds: Some(30),
        };
        let verdict = RetryPolicy::with_max_attempts(3).judge(1, &outcome, 0.5);
        d.apply(&outcome, &verdict, Timestamp::from_unix_millis(T0 + 40));
        let a = Attempt {
            number: 1,
            started_at: Timestamp::from_unix_millis(T0),
            duration_ms: 40,
            outcome,
        };
        (d, a)
    }

    #[test]
    fn an_open_delivery_reads_back_as_written_and_is_in_the_open_index() {
        let (d, _) = failed_with(503);
        let item = store().delivery_item(&d);
        assert_eq!(item["open_pk"], s(open_pk_of(&d.id)));
        assert_eq!(item["due_at"], n(d.next_attempt_at.unwrap().unix_millis()));
        assert_eq!(item["expires_at"], n(T0 / 1000 + 86_400));
        assert_eq!(delivery_from_item(&item).unwrap(), d);
    }

    #[test]
    fn a_delivered_delivery_is_not_in_the_open_index() {
        let mut d = delivery();
        let ok = AttemptOutcome::Response {
            status: 204,
            body: String::new(),
            retry_after_seconds: None,
        };
        d.apply(
            &ok,
            &crate::retry::Verdict::Delivered,
            Timestamp::from_unix_millis(T0),
        );
        let item = store().delivery_item(&d);
        for absent in ["open_pk", "due_at", "next_attempt_at", "wake", "last_error"] {
            assert!(!item.contains_key(absent), "{absent}");
        }
        assert_eq!(delivery_from_item(&item).unwrap(), d);
    }

    #[test]
    fn attempts_read_back_as_written_whether_answered_or_not() {
        let (d, answered) = failed_with(429);
        let item = store().attempt_item(&d, &answered);
        assert_eq!(item["pk"], s(attempts_pk(&d.id)));
        assert_eq!(item["sk"], s("00001"));
        assert_eq!(attempt_from_item(&item).unwrap(), answered);
        let unanswered = Attempt {
            number: 2,
            started_at: Timestamp::from_unix_millis(T0 + 60_000),
            duration_ms: 5_000,
            outcome: AttemptOutcome::Error {
                error: TransportError::Timeout,
                message: "no response within 5 s".into(),
            },
        };
        assert_eq!(
            attempt_from_item(&attempt_fields(&unanswered)).unwrap(),
            unanswered
        );
    }

    #[test]
    fn the_first_attempt_is_read_from_its_deliverys_item() {
        let (d, a) = failed_with(500);
        let mut item = store().delivery_item(&d);
        assert!(first_attempt(&item).unwrap().is_empty());
        item.insert(FIRST_ATTEMPT.into(), AttributeValue::M(attempt_fields(&a)));
        assert_eq!(first_attempt(&item).unwrap(), vec![a]);
    }

    #[test]
    fn an_update_sets_every_attribute_but_the_keys_and_removes_what_the_delivery_lacks() {
        let (d, _) = failed_with(503);
        let u = store().delivery_update(&d);
        let set: Vec<&String> = u.names.values().collect();
        assert!(!set.iter().any(|k| *k == "pk" || *k == "sk"));
        assert!(u.values.values().any(|v| *v == s(open_pk_of(&d.id))));
        assert!(u.expression.starts_with("SET "));
        // Open, so it keeps its index keys; never answered with an error, so no reason.
        let removed = u.expression.split(" REMOVE ").nth(1).unwrap_or_default();
        let removed: Vec<&str> = removed
            .split(", ")
            .filter_map(|p| u.names.get(p).map(String::as_str))
            .collect();
        assert_eq!(removed, vec!["failure_reason", "lease_until"]);
    }

    #[test]
    fn the_as_seen_condition_pins_the_attempt_count_the_wake_token_and_openness() {
        let (d, _) = failed_with(503);
        let (cond, values) = as_seen(&d);
        assert_eq!(
            cond,
            "attempts = :n AND wake = :wake AND #st IN (:pending, :retrying)"
        );
        assert_eq!(values[":n"], n(1));
        assert_eq!(values[":wake"], s(d.wake.clone().unwrap()));
        let (cond, _) = as_seen(&delivery());
        assert!(cond.contains("attribute_not_exists(wake)"), "{cond}");
    }
}
