//! The store ports on one DynamoDB table (`pk`, `sk`), laid out so that each read the
//! handlers make is one GetItem or Query:
//!
//! | item      | pk           | sk                     |
//! |-----------|--------------|------------------------|
//! | endpoint  | `ENDPOINT`   | `ep_…`                 |
//! | event     | `EVT#<id>`   | `EVENT`                |
//! | delivery  | `EVT#<id>`   | `DLV#<ep_…>`           |
//! | attempt   | `EVT#<id>`   | `DLV#<ep_…>#ATT#00001` |
//!
//! Open deliveries also carry `open_pk = "OPEN"` and `due_at`, the keys of the sparse
//! `open` index the sweeper reads (never a scan). Events, deliveries and attempts
//! carry `expires_at` for DynamoDB TTL.

use super::classify;
use crate::delivery::{Attempt, AttemptOutcome, Delivery, DeliveryStatus, TransportError};
use crate::endpoint::{Endpoint, EndpointStatus, EventTypeFilter};
use crate::event::{Event, EventType};
use crate::ids::{DeliveryId, EndpointId, EventId};
use crate::ports::{
    DeliveryStore, EndpointStore, EventStore, FanoutClaim, OpenDeliveries, Page, PortError, PortResult,
};
use crate::signing::EndpointSecret;
use crate::timestamp::Timestamp;
use async_trait::async_trait;
pub use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, Select, WriteRequest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

type Item = HashMap<String, AttributeValue>;

const ENDPOINT_PK: &str = "ENDPOINT";
const EVENT_SK: &str = "EVENT";
const OPEN_PK: &str = "OPEN";
pub const OPEN_INDEX: &str = "open";
/// BatchWriteItem takes at most 25 requests.
const WRITE_BATCH: usize = 25;

#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
    retention: Duration,
}

impl DynamoStore {
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

fn delivery_sk(ep: &EndpointId) -> String {
    format!("DLV#{ep}")
}

/// Reading back what we wrote: a missing or mistyped attribute is a bug or corruption,
/// reported as a permanent error naming it.
struct Reader<'a>(&'a Item);

impl Reader<'_> {
    fn str(&self, k: &str) -> PortResult<&str> {
        match self.0.get(k) {
            Some(AttributeValue::S(v)) => Ok(v),
            _ => Err(PortError::Permanent(format!("stored item lacks string `{k}`"))),
        }
    }

    fn opt_str(&self, k: &str) -> Option<&str> {
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
    HashMap::from([
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
    ])
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
        secret: r.parse("secret", EndpointSecret::parse)?,
        created_at: Timestamp::from_unix_millis(r.num("created_at")?),
        updated_at: Timestamp::from_unix_millis(r.num("updated_at")?),
    })
}

fn event_from_item(item: &Item) -> PortResult<Event> {
    Reader(item).parse("body", |b| serde_json::from_str::<Event>(b))
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
            ("pk".into(), s(event_pk(&d.event_id))),
            ("sk".into(), s(delivery_sk(&d.endpoint_id))),
            ("kind".into(), s("delivery")),
            ("delivery_id".into(), s(d.id.as_str())),
            ("endpoint_id".into(), s(d.endpoint_id.as_str())),
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
        item
    }

    fn attempt_item(&self, d: &Delivery, a: &Attempt) -> Item {
        let mut item = HashMap::from([
            ("pk".into(), s(event_pk(&d.event_id))),
            (
                "sk".into(),
                s(format!("{}#ATT#{:05}", delivery_sk(&d.endpoint_id), a.number)),
            ),
            ("kind".into(), s("attempt")),
            ("number".into(), n(a.number)),
            ("started_at".into(), n(a.started_at.unix_millis())),
            ("duration_ms".into(), n(a.duration_ms)),
            ("expires_at".into(), self.expires_at(a.started_at)),
        ]);
        match &a.outcome {
            AttemptOutcome::Response { status, body } => {
                item.insert("status_code".into(), n(status));
                item.insert("response_body".into(), s(body));
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
}

fn delivery_from_item(event_id: &EventId, item: &Item) -> PortResult<Delivery> {
    let r = Reader(item);
    Ok(Delivery {
        id: r.parse("delivery_id", DeliveryId::parse)?,
        event_id: event_id.clone(),
        endpoint_id: r.parse("endpoint_id", EndpointId::parse)?,
        event_type: r.parse("event_type", EventType::parse)?,
        status: r.parse("status", |s| DeliveryStatus::parse(s).ok_or("unknown status"))?,
        attempts: r.num("attempts")?,
        max_attempts: r.num("max_attempts")?,
        next_attempt_at: r.opt_num("next_attempt_at").map(Timestamp::from_unix_millis),
        last_status_code: r.opt_num("last_status_code"),
        last_error: r.opt_str("last_error").map(str::to_owned),
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
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(ENDPOINT_PK))
            .key("sk", s(id.as_str()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| classify("DeleteItem endpoint", e))?;
        Ok(out.attributes().is_some_and(|a| !a.is_empty()))
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
}

#[async_trait]
impl EventStore for DynamoStore {
    async fn claim_fanout(&self, event: &Event, now: Timestamp, lease: Duration) -> PortResult<FanoutClaim> {
        let pk = event_pk(&event.id);
        let lease_until = now.saturating_add(lease).unix_millis();
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(&pk))
            .item("sk", s(EVENT_SK))
            .item("kind", s("event"))
            .item("event_type", s(event.event_type.as_str()))
            .item("body", s(event.envelope_json()))
            .item("fanout", s("claimed"))
            .item("lease_until", n(lease_until))
            .item("received_at", n(now.unix_millis()))
            .item("expires_at", self.expires_at(now))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match put {
            Ok(_) => return Ok(FanoutClaim::Fresh),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) => {}
            Err(e) => return Err(classify("PutItem event", e)),
        }
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(&pk))
            .key("sk", s(EVENT_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("GetItem event", e))?;
        let Some(item) = out.item() else {
            // Expired by TTL between the two calls: the id is free again; let SQS retry.
            return Err(PortError::Retryable("event vanished while claiming".into()));
        };
        let r = Reader(item);
        if r.opt_str("fanout") == Some("done") {
            return Ok(FanoutClaim::Done);
        }
        let held_until: i64 = r.opt_num("lease_until").unwrap_or(0);
        if held_until > now.unix_millis() {
            return Ok(FanoutClaim::Busy {
                until: Timestamp::from_unix_millis(held_until),
            });
        }
        let stored = event_from_item(item)?;
        let take = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(&pk))
            .key("sk", s(EVENT_SK))
            .update_expression("SET lease_until = :new")
            .condition_expression("lease_until = :old AND fanout <> :done")
            .expression_attribute_values(":new", n(lease_until))
            .expression_attribute_values(":old", n(held_until))
            .expression_attribute_values(":done", s("done"))
            .send()
            .await;
        match take {
            Ok(_) => Ok(FanoutClaim::Resumed { stored }),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Ok(FanoutClaim::Busy {
                    until: Timestamp::from_unix_millis(lease_until),
                })
            }
            Err(e) => Err(classify("UpdateItem event claim", e)),
        }
    }

    async fn complete_fanout(&self, id: &EventId, deliveries: u32, now: Timestamp) -> PortResult<()> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(event_pk(id)))
            .key("sk", s(EVENT_SK))
            .update_expression("SET fanout = :done, deliveries = :n, fanned_out_at = :now REMOVE lease_until")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":done", s("done"))
            .expression_attribute_values(":n", n(deliveries))
            .expression_attribute_values(":now", n(now.unix_millis()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("UpdateItem event done", e))
    }

    async fn release_fanout(&self, id: &EventId) -> PortResult<()> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(event_pk(id)))
            .key("sk", s(EVENT_SK))
            .update_expression("SET lease_until = :zero")
            .condition_expression("fanout <> :done")
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":done", s("done"))
            .send()
            .await
            .map(|_| ())
            .or_else(|e| {
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception())
                {
                    Ok(())
                } else {
                    Err(classify("UpdateItem event release", e))
                }
            })
    }
}

#[async_trait]
impl DeliveryStore for DynamoStore {
    async fn record_attempts(&self, records: &[(Delivery, Attempt)]) -> PortResult<()> {
        let mut requests: Vec<WriteRequest> = Vec::with_capacity(records.len() * 2);
        for (d, a) in records {
            for item in [self.delivery_item(d), self.attempt_item(d, a)] {
                let put = PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map_err(|e| PortError::Permanent(e.to_string()))?;
                requests.push(WriteRequest::builder().put_request(put).build());
            }
        }
        for chunk in requests.chunks(WRITE_BATCH) {
            let mut pending = chunk.to_vec();
            let mut backoff = Duration::from_millis(25);
            for round in 0.. {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(|e| classify("BatchWriteItem deliveries", e))?;
                pending = out
                    .unprocessed_items()
                    .and_then(|u| u.get(&self.table))
                    .cloned()
                    .unwrap_or_default();
                if pending.is_empty() {
                    break;
                }
                if round == 5 {
                    return Err(PortError::Retryable(format!(
                        "BatchWriteItem left {} items unprocessed",
                        pending.len()
                    )));
                }
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
        Ok(())
    }

    async fn deliveries_for_event(&self, id: &EventId) -> PortResult<Vec<(Delivery, Vec<Attempt>)>> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :dlv)")
            .expression_attribute_values(":pk", s(event_pk(id)))
            .expression_attribute_values(":dlv", s("DLV#"))
            .consistent_read(true);
        let mut out: Vec<(Delivery, Vec<Attempt>)> = Vec::new();
        // Items come sorted by sk: each delivery, then its attempts.
        for item in query_all(query, "Query deliveries").await? {
            match Reader(&item).opt_str("kind") {
                Some("delivery") => out.push((delivery_from_item(id, &item)?, Vec::new())),
                Some("attempt") => {
                    if let Some((_, attempts)) = out.last_mut() {
                        attempts.push(attempt_from_item(&item)?);
                    }
                }
                _ => {}
            }
        }
        Ok(out)
    }

    async fn open_due(&self, now: Timestamp, limit: u32) -> PortResult<OpenDeliveries> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(OPEN_INDEX)
            .key_condition_expression("open_pk = :open AND due_at <= :now")
            .expression_attribute_values(":open", s(OPEN_PK))
            .expression_attribute_values(":now", n(now.unix_millis()))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .select(Select::AllProjectedAttributes)
            .send()
            .await
            .map_err(|e| classify("Query open deliveries", e))?;
        let oldest_due_at = out
            .items()
            .first()
            .and_then(|i| Reader(i).opt_num::<i64>("due_at"))
            .map(Timestamp::from_unix_millis);
        Ok(OpenDeliveries {
            due: u32::try_from(out.items().len()).unwrap_or(u32::MAX),
            oldest_due_at,
        })
    }
}
