//! The store ports on one DynamoDB table (`pk`, `sk`), laid out so that a webhook
//! delivered at its first attempt costs two writes of one unit each: its event's item
//! and its delivery's item, with no index entries.
//!
//! | item                 | pk               | sk                          |
//! |----------------------|------------------|-----------------------------|
//! | endpoint             | `ENDPOINT`       | `ep_…`                      |
//! | deleted endpoint     | `ENDPOINT_GONE`  | `ep_…`                      |
//! | event                | `EVT#<id>`       | `EVENT`                     |
//! | delivery (+ 1st try) | `EP#<ep_…>`      | `<created ms, 16 digits>#<dlv_…>` |
//! | later attempt        | `ATT#<dlv_…>`    | `00002`                     |
//!
//! An endpoint's partition is its delivery log, newest last; the whole log merges the
//! endpoints' (live and deleted ones'). A delivery id names its endpoint and creation
//! time, so it is found by its id alone; an event's item lists its deliveries' ids (its
//! targets), so its deliveries are found from it. Open deliveries carry `open_pk =
//! "OPEN"` and `due_at` (their next attempt): the keys of the sparse `open` index,
//! from which the sweeper reads what is due (never a scan); a delivery that succeeds
//! at once never enters it. Events, deliveries, attempts and deleted endpoints carry
//! `expires_at` for TTL.

mod events;

use super::classify;
use crate::delivery::{Attempt, AttemptOutcome, Delivery, DeliveryStatus, TransportError};
use crate::endpoint::{Endpoint, EndpointStatus, EventTypeFilter};
use crate::event::EventType;
use crate::ids::{DeliveryId, EndpointId, EventId};
use crate::ports::{
    DeliveryQuery, DeliveryStore, DueDelivery, EndpointStore, OpenDeliveries, Page, PortError, PortResult,
};
use crate::signing::EndpointSecret;
use crate::timestamp::Timestamp;
use async_trait::async_trait;
pub use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, PutRequest, Select, WriteRequest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::{StreamExt, stream};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

type Item = HashMap<String, AttributeValue>;

const ENDPOINT_PK: &str = "ENDPOINT";
const EVENT_SK: &str = "EVENT";
const OPEN_PK: &str = "OPEN";
const GONE_PK: &str = "ENDPOINT_GONE";
pub const OPEN_INDEX: &str = "open";
/// BatchWriteItem takes at most 25 requests.
const WRITE_BATCH: usize = 25;
/// BatchGetItem takes at most 100 keys.
const READ_BATCH: usize = 100;

#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
    retention: Duration,
}

impl DynamoStore {
    /// An UpdateItem on one endpoint's item; the caller adds the expressions.
    fn update_endpoint_item(
        &self,
        id: &EndpointId,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(ENDPOINT_PK))
            .key("sk", s(id.as_str()))
    }

    pub fn new(client: Client, table: impl Into<String>, retention: Duration) -> Self {
        Self {
            client,
            table: table.into(),
            retention,
        }
    }

    fn expires_at(&self, now: Timestamp) -> AttributeValue {
        n(now.saturating_add(self.retention).unix_seconds())
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn event_pk(id: &EventId) -> String {
    format!("EVT#{id}")
}

/// An endpoint's delivery log.
fn delivery_pk(ep: &EndpointId) -> String {
    format!("EP#{ep}")
}

/// Sorts an endpoint's deliveries by creation time (from the id), then id:
/// `0001795935600000#dlv_…`.
fn delivery_sk(id: &DeliveryId) -> String {
    format!("{:016}#{id}", id.made_at_millis().unwrap_or(0).max(0))
}

/// The key of a delivery's item, for an id that names its endpoint.
fn delivery_key(id: &DeliveryId) -> Option<Item> {
    let ep = id.endpoint_id()?;
    Some(HashMap::from([
        ("pk".to_owned(), s(delivery_pk(&ep))),
        ("sk".to_owned(), s(delivery_sk(id))),
    ]))
}

fn attempts_pk(id: &DeliveryId) -> String {
    format!("ATT#{id}")
}

/// Reading back what we wrote: a missing or mistyped attribute is a bug or corruption,
/// reported as a permanent error naming it.
struct Reader<'a>(&'a Item);

impl<'a> Reader<'a> {
    fn str(&self, k: &str) -> PortResult<&'a str> {
        match self.0.get(k) {
            Some(AttributeValue::S(v)) => Ok(v),
            _ => Err(PortError::Permanent(format!("stored item lacks string `{k}`"))),
        }
    }

    fn opt_str(&self, k: &str) -> Option<&'a str> {
        match self.0.get(k) {
            Some(AttributeValue::S(v)) => Some(v),
            _ => None,
        }
    }

    fn opt_num<T: std::str::FromStr>(&self, k: &str) -> Option<T> {
        match self.0.get(k) {
            Some(AttributeValue::N(v)) => v.parse().ok(),
            _ => None,
        }
    }

    fn num<T: std::str::FromStr>(&self, k: &str) -> PortResult<T> {
        self.opt_num(k)
            .ok_or_else(|| PortError::Permanent(format!("stored item lacks number `{k}`")))
    }

    fn parse<T, E: std::fmt::Display>(&self, k: &str, f: impl FnOnce(&str) -> Result<T, E>) -> PortResult<T> {
        f(self.str(k)?).map_err(|e| PortError::Permanent(format!("stored `{k}` is invalid: {e}")))
    }
}

fn endpoint_to_item(e: &Endpoint) -> Item {
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
    item
}

fn endpoint_from_item(item: &Item) -> PortResult<Endpoint> {
    let r = Reader(item);
    let event_types = match item.get("event_types") {
        Some(AttributeValue::L(l)) => l
            .iter()
            .map(|v| match v {
                AttributeValue::S(f) => {
                    EventTypeFilter::parse(f).map_err(|e| PortError::Permanent(e.to_string()))
                }
                _ => Err(PortError::Permanent(
                    "stored event_types entry is not a string".into(),
                )),
            })
            .collect::<PortResult<Vec<_>>>()?,
        _ => Vec::new(),
    };
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

/// Every page of a query.
async fn query_all(query: QueryFluentBuilder, what: &str) -> PortResult<Vec<Item>> {
    let mut items = Vec::new();
    let mut start: Option<Item> = None;
    loop {
        let out = query
            .clone()
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| classify(what, e))?;
        items.extend(out.items().iter().cloned());
        match out.last_evaluated_key() {
            Some(k) if !k.is_empty() => start = Some(k.clone()),
            _ => return Ok(items),
        }
    }
}

impl DynamoStore {
    fn delivery_item(&self, d: &Delivery) -> Item {
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
                item.insert("open_pk".into(), s(OPEN_PK));
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
        item
    }

    fn attempt_item(&self, d: &Delivery, a: &Attempt) -> Item {
        let mut item = attempt_fields(a);
        item.extend([
            ("pk".into(), s(attempts_pk(&d.id))),
            ("sk".into(), s(format!("{:05}", a.number))),
            ("expires_at".into(), self.expires_at(a.started_at)),
        ]);
        item
    }

    /// The UpdateItem that makes the stored delivery `d`: every attribute of its item
    /// but the keys, with the optional ones it lacks removed. The first attempt, kept
    /// in the item since it was written, stays as it is.
    fn delivery_update(&self, d: &Delivery) -> Update {
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
struct Update {
    expression: String,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
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
const FIRST_ATTEMPT: &str = "first_attempt";

/// An attempt's attributes, in its own item or in its delivery's.
fn attempt_fields(a: &Attempt) -> Item {
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
fn first_attempt(item: &Item) -> PortResult<Vec<Attempt>> {
    match item.get(FIRST_ATTEMPT) {
        Some(AttributeValue::M(m)) => Ok(vec![attempt_from_item(m)?]),
        _ => Ok(Vec::new()),
    }
}

/// A delivery from its item (or its entry in the `open` index, which holds the keys).
fn delivery_from_item(item: &Item) -> PortResult<Delivery> {
    let r = Reader(item);
    let id = delivery_id_of(item)?;
    let endpoint_id = r
        .str("pk")?
        .strip_prefix("EP#")
        .and_then(|ep| EndpointId::parse(ep).ok())
        .ok_or_else(|| PortError::Permanent("stored delivery has an invalid `pk`".into()))?;
    Ok(Delivery {
        id,
        event_id: r.parse("event_id", EventId::parse)?,
        endpoint_id,
        event_type: r.parse("event_type", EventType::parse)?,
        status: r.parse("status", |s| DeliveryStatus::parse(s).ok_or("unknown status"))?,
        attempts: r.num("attempts")?,
        max_attempts: r.num("max_attempts")?,
        next_attempt_at: r.opt_num("next_attempt_at").map(Timestamp::from_unix_millis),
        last_status_code: r.opt_num("last_status_code"),
        last_error: r.opt_str("last_error").map(str::to_owned),
        failure_reason: r.opt_str("failure_reason").map(str::to_owned),
        wake: r.opt_str("wake").map(str::to_owned),
        created_at: Timestamp::from_unix_millis(r.num("created_at")?),
        updated_at: Timestamp::from_unix_millis(r.num("updated_at")?),
    })
}

fn attempt_from_item(item: &Item) -> PortResult<Attempt> {
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

#[async_trait]
impl EndpointStore for DynamoStore {
    async fn create_endpoint(&self, endpoint: &Endpoint) -> PortResult<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(endpoint_to_item(endpoint)))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("PutItem endpoint", e))
    }

    async fn get_endpoint(&self, id: &EndpointId) -> PortResult<Option<Endpoint>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(ENDPOINT_PK))
            .key("sk", s(id.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("GetItem endpoint", e))?;
        out.item().map(endpoint_from_item).transpose()
    }

    async fn list_endpoints(&self, limit: u32, cursor: Option<&str>) -> PortResult<Page<Endpoint>> {
        let start = cursor
            .map(|c| {
                URL_SAFE_NO_PAD
                    .decode(c)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .and_then(|sk| EndpointId::parse(&sk).ok())
                    .ok_or_else(|| PortError::Permanent("the cursor is not one this API gave out".into()))
            })
            .transpose()?;
        let mut q = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(ENDPOINT_PK))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX));
        if let Some(sk) = start {
            q = q
                .exclusive_start_key("pk", s(ENDPOINT_PK))
                .exclusive_start_key("sk", s(sk.as_str()));
        }
        let out = q.send().await.map_err(|e| classify("Query endpoints", e))?;
        let items = out
            .items()
            .iter()
            .map(endpoint_from_item)
            .collect::<PortResult<Vec<_>>>()?;
        let next_cursor = out.last_evaluated_key().and_then(|k| match k.get("sk") {
            Some(AttributeValue::S(sk)) => Some(URL_SAFE_NO_PAD.encode(sk)),
            _ => None,
        });
        Ok(Page { items, next_cursor })
    }

    async fn delete_endpoint(&self, id: &EndpointId) -> PortResult<bool> {
        use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
        use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};
        // Its deliveries stay for the retention period, in the whole log too: the
        // tombstone, written with the delete, names the partition to read them from. It
        // outlives them by a week (a delivery failed after the delete expires later).
        let now = Timestamp::now();
        let built = |e: aws_sdk_dynamodb::error::BuildError| PortError::Permanent(e.to_string());
        let delete = Delete::builder()
            .table_name(&self.table)
            .key("pk", s(ENDPOINT_PK))
            .key("sk", s(id.as_str()))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(built)?;
        let tombstone = Put::builder()
            .table_name(&self.table)
            .item("pk", s(GONE_PK))
            .item("sk", s(id.as_str()))
            .item("deleted_at", n(now.unix_millis()))
            .item(
                "expires_at",
                self.expires_at(now.saturating_add(Duration::from_secs(7 * 86_400))),
            )
            .build()
            .map_err(built)?;
        let res = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().delete(delete).build())
            .transact_items(TransactWriteItem::builder().put(tombstone).build())
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) => {
                // The delete's condition is the only one: it failing means no such endpoint.
                let missing = matches!(
                    e.as_service_error(),
                    Some(TransactWriteItemsError::TransactionCanceledException(t))
                        if t.cancellation_reasons().iter().any(|r| r.code() == Some("ConditionalCheckFailed"))
                );
                let canceled = matches!(
                    e.as_service_error(),
                    Some(TransactWriteItemsError::TransactionCanceledException(_))
                );
                match (missing, canceled) {
                    (true, _) => Ok(false),
                    // A conflict with a concurrent write to the endpoint, or throttling.
                    (false, true) => Err(PortError::Retryable(format!(
                        "TransactWriteItems endpoint delete: {}",
                        aws_sdk_dynamodb::error::DisplayErrorContext(&e)
                    ))),
                    (false, false) => Err(classify("TransactWriteItems endpoint delete", e)),
                }
            }
        }
    }

    async fn update_endpoint(&self, endpoint: &Endpoint, read_version: u64) -> PortResult<bool> {
        let req = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(endpoint_to_item(endpoint)));
        let req = if read_version == 0 {
            req.condition_expression("attribute_exists(pk) AND attribute_not_exists(version)")
        } else {
            req.condition_expression("version = :v")
                .expression_attribute_values(":v", n(read_version))
        };
        conditional(req.send().await.map(|_| ()), "PutItem endpoint update")
    }

    async fn all_endpoints(&self) -> PortResult<Vec<Endpoint>> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(ENDPOINT_PK));
        let items = query_all(query, "Query endpoints").await?;
        items.iter().map(endpoint_from_item).collect()
    }

    async fn note_failure(&self, id: &EndpointId, now: Timestamp) -> PortResult<Timestamp> {
        let out = self
            .update_endpoint_item(id)
            .update_expression("SET failing_since = if_not_exists(failing_since, :now)")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":now", n(now.unix_millis()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await;
        match out {
            Ok(out) => Ok(out
                .attributes()
                .and_then(|a| Reader(a).opt_num("failing_since"))
                .map_or(now, Timestamp::from_unix_millis)),
            // Deleted meanwhile: nothing to track.
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(now),
            Err(e) => Err(classify("UpdateItem endpoint failing", e)),
        }
    }

    async fn note_success(&self, id: &EndpointId) -> PortResult<()> {
        let res = self
            .update_endpoint_item(id)
            .update_expression("REMOVE failing_since")
            .condition_expression("attribute_exists(failing_since)")
            .send()
            .await;
        conditional(res.map(|_| ()), "UpdateItem endpoint healthy").map(|_| ())
    }

    async fn disable_endpoint(
        &self,
        id: &EndpointId,
        reason: &str,
        now: Timestamp,
        failing_before: Option<Timestamp>,
    ) -> PortResult<bool> {
        let mut req = self
            .update_endpoint_item(id)
            // A status change is an edit: it moves the version, so an operator's update
            // made from an older read cannot silently undo it.
            .update_expression(
                "SET #st = :disabled, disabled_reason = :reason, updated_at = :now, version = if_not_exists(version, :zero) + :one",
            )
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":disabled", s("disabled"))
            .expression_attribute_values(":active", s("active"))
            .expression_attribute_values(":reason", s(reason))
            .expression_attribute_values(":now", n(now.unix_millis()));
        req = match failing_before {
            Some(t) => req
                .condition_expression("#st = :active AND failing_since <= :cutoff")
                .expression_attribute_values(":cutoff", n(t.unix_millis())),
            None => req.condition_expression("#st = :active"),
        };
        conditional(req.send().await.map(|_| ()), "UpdateItem endpoint disable")
    }
}

impl DynamoStore {
    /// Items by key, in chunks of what one BatchGetItem takes, read again for what it
    /// left unprocessed. Strongly consistent; in no particular order.
    async fn batch_get(
        &self,
        keys: Vec<Item>,
        projection: Option<&str>,
        what: &str,
    ) -> PortResult<Vec<Item>> {
        let (client, table) = (&self.client, &self.table);
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(READ_BATCH) {
            let read = until_processed(chunk.to_vec(), what, |pending| async move {
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(pending))
                    .consistent_read(true)
                    .set_projection_expression(projection.map(str::to_owned))
                    .build()
                    .map_err(|e| PortError::Permanent(e.to_string()))?;
                let res = client
                    .batch_get_item()
                    .request_items(table, request)
                    .send()
                    .await
                    .map_err(|e| classify(what, e))?;
                let items = res
                    .responses()
                    .and_then(|r| r.get(table))
                    .cloned()
                    .unwrap_or_default();
                let left = res
                    .unprocessed_keys()
                    .and_then(|u| u.get(table))
                    .map(|k| k.keys().to_vec())
                    .unwrap_or_default();
                Ok((left, items))
            })
            .await?;
            out.extend(read);
        }
        Ok(out)
    }

    /// A delivery's attempts: the first, from its item, then any others from theirs.
    async fn attempts_of(&self, d: &Delivery, item: &Item) -> PortResult<Vec<Attempt>> {
        let mut attempts = first_attempt(item)?;
        if d.attempts as usize > attempts.len() {
            let query = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(attempts_pk(&d.id)))
                .consistent_read(true);
            for item in query_all(query, "Query attempts").await? {
                let a = attempt_from_item(&item)?;
                // A crash between an attempt's write and its delivery's leaves an attempt
                // that the retry after it writes again under its number.
                attempts.retain(|b| b.number != a.number);
                attempts.push(a);
            }
            attempts.sort_by_key(|a| a.number);
        }
        Ok(attempts)
    }

    /// One delivery's item by its id.
    async fn delivery_item_by_id(&self, id: &DeliveryId) -> PortResult<Option<Item>> {
        let Some(key) = delivery_key(id) else {
            return Ok(None);
        };
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("GetItem delivery", e))?;
        Ok(out.item().cloned())
    }
}

/// Sends a batch request, then again for what DynamoDB left unprocessed, backing off
/// from 25 ms, at most five times more; `send` answers what is left and what it read.
async fn until_processed<T, Fut>(
    mut pending: Vec<T>,
    what: &str,
    mut send: impl FnMut(Vec<T>) -> Fut,
) -> PortResult<Vec<Item>>
where
    Fut: std::future::Future<Output = PortResult<(Vec<T>, Vec<Item>)>>,
{
    let mut read = Vec::new();
    let mut backoff = Duration::from_millis(25);
    for round in 0.. {
        let (left, items) = send(pending).await?;
        read.extend(items);
        if left.is_empty() {
            break;
        }
        if round == 5 {
            return Err(PortError::Retryable(format!(
                "{what} left {} requests unprocessed",
                left.len()
            )));
        }
        pending = left;
        tokio::time::sleep(backoff).await;
        backoff *= 2;
    }
    Ok(read)
}

/// A delivery's id, from its item's sort key.
fn delivery_id_of(item: &Item) -> PortResult<DeliveryId> {
    Reader(item)
        .str("sk")?
        .split_once('#')
        .and_then(|(_, id)| DeliveryId::parse(id).ok())
        .ok_or_else(|| PortError::Permanent("stored delivery has an invalid `sk`".into()))
}

#[async_trait]
impl DeliveryStore for DynamoStore {
    async fn record_attempts(&self, records: &[(&Delivery, Option<&Attempt>)]) -> PortResult<()> {
        let mut requests: Vec<WriteRequest> = Vec::with_capacity(records.len());
        for (d, a) in records {
            let mut item = self.delivery_item(d);
            if let Some(a) = a {
                item.insert(FIRST_ATTEMPT.into(), AttributeValue::M(attempt_fields(a)));
            }
            let put = PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map_err(|e| PortError::Permanent(e.to_string()))?;
            requests.push(WriteRequest::builder().put_request(put).build());
        }
        let (client, table) = (&self.client, &self.table);
        for chunk in requests.chunks(WRITE_BATCH) {
            until_processed(
                chunk.to_vec(),
                "BatchWriteItem deliveries",
                |pending| async move {
                    let out = client
                        .batch_write_item()
                        .request_items(table, pending)
                        .send()
                        .await
                        .map_err(|e| classify("BatchWriteItem deliveries", e))?;
                    let left = out
                        .unprocessed_items()
                        .and_then(|u| u.get(table))
                        .cloned()
                        .unwrap_or_default();
                    Ok((left, Vec::new()))
                },
            )
            .await?;
        }
        Ok(())
    }

    async fn deliveries_for_event(&self, id: &EventId) -> PortResult<Vec<(Delivery, Vec<Attempt>)>> {
        let Some(targets) = self.event_targets(id).await? else {
            return Ok(Vec::new());
        };
        let keys = targets.iter().filter_map(delivery_key).collect();
        let items = self.batch_get(keys, None, "BatchGetItem deliveries").await?;
        let mut found: HashMap<DeliveryId, (Delivery, &Item)> = HashMap::new();
        for item in &items {
            let d = delivery_from_item(item)?;
            found.insert(d.id.clone(), (d, item));
        }
        // In the order the claim named them.
        let mut out = Vec::with_capacity(found.len());
        for target in &targets {
            if let Some((d, item)) = found.remove(target) {
                let attempts = self.attempts_of(&d, item).await?;
                out.push((d, attempts));
            }
        }
        Ok(out)
    }

    async fn get_delivery(&self, event: &EventId, endpoint: &EndpointId) -> PortResult<Option<Delivery>> {
        let Some(targets) = self.event_targets(event).await? else {
            return Ok(None);
        };
        let Some(id) = targets
            .iter()
            .find(|t| t.endpoint_id().as_ref() == Some(endpoint))
        else {
            return Ok(None);
        };
        self.delivery_item_by_id(id)
            .await?
            .map(|item| delivery_from_item(&item))
            .transpose()
    }

    async fn claim_attempt(&self, seen: &Delivery, now: Timestamp, lease: Duration) -> PortResult<bool> {
        let values = [(":until", n(now.saturating_add(lease).unix_millis()))];
        self.update_unleased(
            seen,
            now,
            "SET lease_until = :until",
            values,
            "UpdateItem delivery claim",
        )
        .await
    }

    async fn record_attempt(
        &self,
        seen: &Delivery,
        updated: &Delivery,
        attempt: &Attempt,
    ) -> PortResult<bool> {
        // The attempt first, then the delivery on condition. Not a transaction, which
        // would cost twice the writes: a crash between the two leaves an attempt the
        // delivery does not count yet, and the retry that follows overwrites it with
        // the same number, so the log and the count agree again.
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(self.attempt_item(updated, attempt)))
            .send()
            .await
            .map_err(|e| classify("PutItem attempt", e))?;
        self.put_as_seen(seen, updated, "UpdateItem delivery").await
    }

    async fn redrive(&self, seen: &Delivery, wake: &str, now: Timestamp) -> PortResult<bool> {
        let update = "SET wake = :new, due_at = :now, redriven_at = :now ADD redriven :one";
        let values = [(":new", s(wake)), (":one", n(1))];
        self.update_unleased(seen, now, update, values, "UpdateItem delivery redrive")
            .await
    }

    async fn fail_delivery(&self, seen: &Delivery, failed: &Delivery) -> PortResult<bool> {
        self.put_as_seen(seen, failed, "UpdateItem delivery failed").await
    }

    async fn due_deliveries(&self, before: Timestamp, limit: u32) -> PortResult<Vec<DueDelivery>> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(OPEN_INDEX)
            .key_condition_expression("open_pk = :p AND due_at <= :before")
            .expression_attribute_values(":p", s(OPEN_PK))
            .expression_attribute_values(":before", n(before.unix_millis()))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| classify("Query open index", e))?;
        out.items()
            .iter()
            .map(|item| {
                Ok(DueDelivery {
                    delivery: delivery_from_item(item)?,
                    leased_until: Reader(item)
                        .opt_num("lease_until")
                        .map(Timestamp::from_unix_millis),
                })
            })
            .collect()
    }

    async fn find_delivery(&self, id: &DeliveryId) -> PortResult<Option<(Delivery, Vec<Attempt>)>> {
        let Some(item) = self.delivery_item_by_id(id).await? else {
            return Ok(None);
        };
        let d = delivery_from_item(&item)?;
        let attempts = self.attempts_of(&d, &item).await?;
        Ok(Some((d, attempts)))
    }

    async fn list_deliveries(&self, q: &DeliveryQuery) -> PortResult<Page<Delivery>> {
        let below = q.cursor.as_deref().map(decode_log_cursor).transpose()?;
        let window = LogWindow::new(q, below);
        if window.from > window.to {
            // A window that ends before it starts (`until` older than the retention, or a
            // cursor below it): nothing to read.
            return Ok(Page {
                items: Vec::new(),
                next_cursor: None,
            });
        }
        let endpoints = match &q.endpoint {
            Some(ep) => vec![ep.clone()],
            None => self.log_endpoints().await?,
        };
        // Each endpoint's log, newest first, at most a page of it; a few at a time.
        let reads: Vec<_> = endpoints.iter().map(|ep| self.read_log(ep, q, &window)).collect();
        let logs: Vec<EndpointLog> = stream::iter(reads)
            .buffer_unordered(LOG_READS_AT_ONCE)
            .collect::<Vec<PortResult<EndpointLog>>>()
            .await
            .into_iter()
            .collect::<PortResult<_>>()?;
        Ok(merge_logs(logs, q.limit as usize))
    }

    async fn replace_delivery(&self, seen: &Delivery, updated: &Delivery) -> PortResult<bool> {
        let mut values = HashMap::from([
            (":n".to_owned(), n(seen.attempts)),
            (":st".to_owned(), s(seen.status.as_str())),
        ]);
        let wake = match &seen.wake {
            Some(w) => {
                values.insert(":wake".into(), s(w));
                "wake = :wake"
            }
            None => "attribute_not_exists(wake)",
        };
        self.update_as(
            updated,
            format!("attempts = :n AND #st = :st AND {wake}"),
            values,
            "UpdateItem delivery replace",
        )
        .await
    }

    async fn count_open(&self, limit: u32) -> PortResult<OpenDeliveries> {
        let oldest = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(OPEN_INDEX)
            .key_condition_expression("open_pk = :open")
            .expression_attribute_values(":open", s(OPEN_PK))
            .limit(1)
            .send()
            .await
            .map_err(|e| classify("Query oldest open delivery", e))?;
        let oldest_due_at = oldest
            .items()
            .first()
            .and_then(|i| Reader(i).opt_num::<i64>("due_at"))
            .map(Timestamp::from_unix_millis);
        let mut open: u32 = 0;
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(OPEN_INDEX)
                .key_condition_expression("open_pk = :open")
                .expression_attribute_values(":open", s(OPEN_PK))
                .select(Select::Count)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| classify("Query open deliveries", e))?;
            open = open.saturating_add(u32::try_from(out.count()).unwrap_or(0));
            match out.last_evaluated_key() {
                Some(k) if !k.is_empty() && open < limit => start = Some(k.clone()),
                _ => {
                    return Ok(OpenDeliveries {
                        open: open.min(limit),
                        oldest_due_at,
                    });
                }
            }
        }
    }
}

impl DynamoStore {
    /// Writes `updated` over a delivery that is still open and as `seen`.
    async fn put_as_seen(&self, seen: &Delivery, updated: &Delivery, what: &str) -> PortResult<bool> {
        let (cond, values) = as_seen(seen);
        self.update_as(updated, cond, values, what).await
    }

    /// Makes the stored delivery `updated` if `cond` (which uses `#st` for `status`) holds.
    async fn update_as(
        &self,
        updated: &Delivery,
        cond: String,
        values: HashMap<String, AttributeValue>,
        what: &str,
    ) -> PortResult<bool> {
        let mut u = self.delivery_update(updated);
        u.names.insert("#st".into(), "status".into());
        u.values.extend(values);
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(delivery_pk(&updated.endpoint_id)))
            .key("sk", s(delivery_sk(&updated.id)))
            .update_expression(u.expression)
            .condition_expression(cond)
            .set_expression_attribute_names(Some(u.names))
            .set_expression_attribute_values(Some(u.values))
            .send()
            .await;
        conditional(res.map(|_| ()), what)
    }

    /// Updates a delivery that is still as `seen` and that no worker holds at `now`.
    async fn update_unleased<const N: usize>(
        &self,
        seen: &Delivery,
        now: Timestamp,
        update: &str,
        extra: [(&str, AttributeValue); N],
        what: &str,
    ) -> PortResult<bool> {
        let (cond, mut values) = as_seen(seen);
        values.insert(":now".into(), n(now.unix_millis()));
        values.extend(extra.into_iter().map(|(k, v)| (k.to_owned(), v)));
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(delivery_pk(&seen.endpoint_id)))
            .key("sk", s(delivery_sk(&seen.id)))
            .update_expression(update)
            .condition_expression(format!(
                "{cond} AND (attribute_not_exists(lease_until) OR lease_until < :now)"
            ))
            .expression_attribute_names("#st", "status")
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        conditional(res.map(|_| ()), what)
    }

    /// Every endpoint whose log may hold deliveries: the live ones and the deleted
    /// ones whose tombstones have not expired (keys only).
    async fn log_endpoints(&self) -> PortResult<Vec<EndpointId>> {
        let mut ids = Vec::new();
        for pk in [ENDPOINT_PK, GONE_PK] {
            let query = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(pk))
                .projection_expression("sk");
            for item in query_all(query, "Query log endpoints").await? {
                ids.push(Reader(&item).parse("sk", EndpointId::parse)?);
            }
        }
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    /// One endpoint's log within the window, newest first: up to a page of matching
    /// deliveries, reading at most `LOG_QUERIES_PER_ENDPOINT` query pages.
    async fn read_log(&self, ep: &EndpointId, q: &DeliveryQuery, w: &LogWindow) -> PortResult<EndpointLog> {
        let mut log = EndpointLog::default();
        let mut start: Option<Item> = None;
        for _ in 0..LOG_QUERIES_PER_ENDPOINT {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
                .expression_attribute_values(":pk", s(delivery_pk(ep)))
                .expression_attribute_values(":from", s(&w.from))
                .expression_attribute_values(":to", s(&w.to))
                .scan_index_forward(false)
                .limit(i32::try_from(q.limit + 1).unwrap_or(i32::MAX));
            let mut filters = Vec::new();
            if let Some(st) = q.status {
                filters.push("#st = :st");
                query = query
                    .expression_attribute_names("#st", "status")
                    .expression_attribute_values(":st", s(st.as_str()));
            }
            if let Some(t) = &q.event_type {
                filters.push("event_type = :et");
                query = query.expression_attribute_values(":et", s(t.as_str()));
            }
            if !filters.is_empty() {
                query = query.filter_expression(filters.join(" AND "));
            }
            let out = query
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| classify("Query delivery log", e))?;
            for item in out.items() {
                let sk = Reader(item).str("sk")?;
                // The cursor's own item was on the page before.
                if w.below.as_deref() == Some(sk) {
                    continue;
                }
                log.items.push((sk.to_owned(), delivery_from_item(item)?));
            }
            let more = out.last_evaluated_key().filter(|k| !k.is_empty());
            match more {
                Some(k) if log.items.len() < q.limit as usize => start = Some(k.clone()),
                Some(k) => {
                    log.looked_down_to = Reader(k).opt_str("sk").map(str::to_owned);
                    return Ok(log);
                }
                None => return Ok(log),
            }
        }
        // Read as much as one request may: the rest is below where it stopped.
        log.looked_down_to = start
            .as_ref()
            .and_then(|k| Reader(k).opt_str("sk"))
            .map(str::to_owned);
        Ok(log)
    }
}

/// One page of the whole log reads this many endpoints' logs at once.
const LOG_READS_AT_ONCE: usize = 16;
/// And at most this many query pages of each (a filter that matches little would
/// otherwise read an endpoint's whole log): the cursor goes on from where it stopped.
const LOG_QUERIES_PER_ENDPOINT: usize = 8;

/// The sort-key range a log page reads: from `since` to `until`, or to the cursor.
struct LogWindow {
    from: String,
    to: String,
    /// The cursor: the sort key below which this page starts (itself excluded).
    below: Option<String>,
}

impl LogWindow {
    fn new(q: &DeliveryQuery, below: Option<String>) -> Self {
        let from = format!("{:016}", q.since.unix_millis().max(0));
        // `~` sorts after every id, so `until` itself is included.
        let until = format!("{:016}~", q.until.unix_millis().max(0));
        let to = match &below {
            Some(c) if *c < until => c.clone(),
            _ => until,
        };
        Self { from, to, below }
    }
}

/// What a page read of one endpoint's log: its matching deliveries, newest first, and,
/// when it did not read all of the window, the sort key it read down to.
#[derive(Default)]
struct EndpointLog {
    items: Vec<(String, Delivery)>,
    looked_down_to: Option<String>,
}

/// Merges endpoints' logs into one page, newest first. Only what lies above every
/// unfinished log's stopping point is complete; the cursor resumes below the page.
fn merge_logs(logs: Vec<EndpointLog>, limit: usize) -> Page<Delivery> {
    let floor = logs.iter().filter_map(|l| l.looked_down_to.clone()).max();
    let mut items: Vec<(String, Delivery)> = logs
        .into_iter()
        .flat_map(|l| l.items)
        .filter(|(sk, _)| floor.as_ref().is_none_or(|f| sk >= f))
        .collect();
    items.sort_by(|a, b| b.0.cmp(&a.0));
    let more = items.len() > limit || floor.is_some();
    items.truncate(limit);
    let next_cursor = match (more, items.last(), floor) {
        (false, _, _) => None,
        (true, Some((sk, _)), _) => Some(URL_SAFE_NO_PAD.encode(sk)),
        (true, None, floor) => floor.map(|f| URL_SAFE_NO_PAD.encode(f)),
    };
    Page {
        items: items.into_iter().map(|(_, d)| d).collect(),
        next_cursor,
    }
}

/// A log cursor: the sort key of the last delivery a page gave (or of where it
/// stopped reading), base64url.
fn decode_log_cursor(c: &str) -> PortResult<String> {
    let bad = || PortError::Permanent("the cursor is not one this API gave out".into());
    let sk = URL_SAFE_NO_PAD
        .decode(c)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(bad)?;
    let (millis, id) = sk.split_once('#').ok_or_else(bad)?;
    if millis.len() != 16 || !millis.bytes().all(|b| b.is_ascii_digit()) || DeliveryId::parse(id).is_err() {
        return Err(bad());
    }
    Ok(sk)
}

/// The condition "the delivery is still open and as it was read": same attempt count
/// and wake token. Uses `#st` for `status`.
fn as_seen(seen: &Delivery) -> (String, HashMap<String, AttributeValue>) {
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

/// A conditional write's result: `false` when its condition did not hold.
fn conditional<E>(res: Result<(), SdkError<E>>, what: &str) -> PortResult<bool>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match res {
        Ok(()) => Ok(true),
        Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(false),
        Err(e) => Err(classify(what, e)),
    }
}

#[async_trait]
impl crate::ports::StatsStore for DynamoStore {
    async fn add_stats(&self, rows: &[(EndpointId, String, crate::stats::HourStats)]) -> PortResult<()> {
        for (ep, hour, st) in rows {
            let mut update = String::from(
                "SET expires_at = :ttl ADD attempts :a, attempt_failures :f, delivered :d, failed :x, latency_sum_ms :l",
            );
            let mut values = HashMap::from([
                (":ttl".to_owned(), self.expires_at(Timestamp::now())),
                (":a".to_owned(), n(st.attempts)),
                (":f".to_owned(), n(st.attempt_failures)),
                (":d".to_owned(), n(st.delivered)),
                (":x".to_owned(), n(st.failed)),
                (":l".to_owned(), n(st.latency_sum_ms)),
            ]);
            for (i, c) in st.latency_buckets.iter().enumerate().filter(|(_, c)| **c > 0) {
                update.push_str(&format!(", b{i} :b{i}"));
                values.insert(format!(":b{i}"), n(c));
            }
            self.client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(format!("STATS#{ep}")))
                .key("sk", s(format!("H#{hour}")))
                .update_expression(update)
                .set_expression_attribute_values(Some(values))
                .send()
                .await
                .map_err(|e| classify("UpdateItem stats", e))?;
        }
        Ok(())
    }

    async fn read_stats(
        &self,
        endpoint: &EndpointId,
        from: &str,
        to: &str,
    ) -> PortResult<Vec<crate::stats::HourStats>> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
            .expression_attribute_values(":pk", s(format!("STATS#{endpoint}")))
            .expression_attribute_values(":from", s(format!("H#{from}")))
            .expression_attribute_values(":to", s(format!("H#{to}")));
        Ok(query_all(query, "Query stats")
            .await?
            .iter()
            .map(|item| {
                let r = Reader(item);
                let mut st = crate::stats::HourStats {
                    attempts: r.opt_num("attempts").unwrap_or(0),
                    attempt_failures: r.opt_num("attempt_failures").unwrap_or(0),
                    delivered: r.opt_num("delivered").unwrap_or(0),
                    failed: r.opt_num("failed").unwrap_or(0),
                    latency_sum_ms: r.opt_num("latency_sum_ms").unwrap_or(0),
                    ..Default::default()
                };
                for (i, b) in st.latency_buckets.iter_mut().enumerate() {
                    *b = r.opt_num(&format!("b{i}")).unwrap_or(0);
                }
                st
            })
            .collect())
    }
}

#[async_trait]
impl crate::ports::RateLimiter for DynamoStore {
    async fn take(
        &self,
        endpoint: &EndpointId,
        per_second: u32,
        now: Timestamp,
    ) -> PortResult<Option<Duration>> {
        use crate::ratelimit::{Bucket, take};
        let pk = format!("RATE#{endpoint}");
        // Read, take, write on condition; a concurrent taker means read again.
        for _ in 0..5 {
            let out = self
                .client
                .get_item()
                .table_name(&self.table)
                .key("pk", s(&pk))
                .key("sk", s("BUCKET"))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| classify("GetItem rate bucket", e))?;
            let seen = out.item().and_then(|i| {
                let r = Reader(i);
                Some(Bucket {
                    tokens: r.opt_num("tokens")?,
                    at: Timestamp::from_unix_millis(r.opt_num("at")?),
                })
            });
            let next = match take(seen, per_second, now) {
                Ok(b) => b,
                Err(wait) => return Ok(Some(wait)),
            };
            let req = self
                .client
                .put_item()
                .table_name(&self.table)
                .item("pk", s(&pk))
                .item("sk", s("BUCKET"))
                .item("tokens", n(next.tokens))
                .item("at", n(next.at.unix_millis()))
                .item("expires_at", n(now.unix_seconds() + 86_400));
            let req = match seen {
                Some(b) => req
                    .condition_expression("#at = :seen")
                    .expression_attribute_names("#at", "at")
                    .expression_attribute_values(":seen", n(b.at.unix_millis())),
                None => req.condition_expression("attribute_not_exists(pk)"),
            };
            if conditional(req.send().await.map(|_| ()), "PutItem rate bucket")? {
                return Ok(None);
            }
        }
        // Heavily contended: wait one token's time.
        Ok(Some(Duration::from_secs_f64(1.0 / f64::from(per_second.max(1)))))
    }
}
