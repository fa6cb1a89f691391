//! Creates the template's queues, tables and buckets on the emulator, under a name prefix so
//! that every test (and the dev stack) gets its own. Safe to run twice.

use crate::template::{QueueSpec, TableSpec, Template};
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("{what}: {detail}")]
    Aws { what: String, detail: String },
    #[error("template: {0}")]
    Template(String),
}

fn aws_err<E: std::error::Error>(what: impl Into<String>, e: E) -> ProvisionError {
    ProvisionError::Aws {
        what: what.into(),
        detail: aws_sdk_sqs::error::DisplayErrorContext(e).to_string(),
    }
}

/// What was made: physical names by logical id.
#[derive(Clone, Debug, Default)]
pub struct Stack {
    pub queue_urls: BTreeMap<String, String>,
    pub queue_arns: BTreeMap<String, String>,
    pub tables: BTreeMap<String, String>,
    pub buckets: BTreeMap<String, String>,
}

impl Stack {
    pub fn queue_url(&self, logical_id: &str) -> &str {
        self.queue_urls
            .get(logical_id)
            .map(String::as_str)
            .unwrap_or_default()
    }
    pub fn queue_arn(&self, logical_id: &str) -> &str {
        self.queue_arns
            .get(logical_id)
            .map(String::as_str)
            .unwrap_or_default()
    }
    pub fn bucket(&self, logical_id: &str) -> &str {
        self.buckets
            .get(logical_id)
            .map(String::as_str)
            .unwrap_or_default()
    }
    pub fn table(&self, logical_id: &str) -> &str {
        self.tables
            .get(logical_id)
            .map(String::as_str)
            .unwrap_or_default()
    }
}

pub async fn provision(
    template: &Template,
    prefix: &str,
    sqs: &aws_sdk_sqs::Client,
    dynamo: &aws_sdk_dynamodb::Client,
    s3: &aws_sdk_s3::Client,
) -> Result<Stack, ProvisionError> {
    let mut stack = Stack::default();
    for q in &template.queues {
        let (url, arn) = create_queue(q, prefix, &stack, sqs).await?;
        stack.queue_urls.insert(q.logical_id.clone(), url);
        stack.queue_arns.insert(q.logical_id.clone(), arn);
    }
    for t in &template.tables {
        let name = create_table(t, prefix, dynamo).await?;
        stack.tables.insert(t.logical_id.clone(), name);
    }
    for b in &template.buckets {
        let name = create_bucket(b, prefix, s3).await?;
        stack.buckets.insert(b.clone(), name);
    }
    Ok(stack)
}

/// A bucket, plain: the template's encryption, public-access block and TLS-only
/// policy are AWS's to enforce (moto would deny every plain-HTTP call under the last).
async fn create_bucket(
    logical_id: &str,
    prefix: &str,
    s3: &aws_sdk_s3::Client,
) -> Result<String, ProvisionError> {
    // Bucket names are lowercase.
    let name = format!("{prefix}-{logical_id}").to_ascii_lowercase();
    match s3.create_bucket().bucket(&name).send().await {
        Ok(_) => Ok(name),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_bucket_already_owned_by_you()) =>
        {
            Ok(name)
        }
        Err(e) => Err(aws_err(format!("CreateBucket {name}"), e)),
    }
}

async fn create_queue(
    q: &QueueSpec,
    prefix: &str,
    stack: &Stack,
    sqs: &aws_sdk_sqs::Client,
) -> Result<(String, String), ProvisionError> {
    let name = format!("{prefix}-{}", q.logical_id);
    let mut req = sqs.create_queue().queue_name(&name);
    for (k, v) in &q.attributes {
        req = req.attributes(QueueAttributeName::from(k.as_str()), v);
    }
    if let Some((dlq, max)) = &q.redrive {
        let arn = stack.queue_arns.get(dlq).ok_or_else(|| {
            ProvisionError::Template(format!(
                "{}: dead-letter queue {dlq} is not a queue of the template",
                q.logical_id
            ))
        })?;
        let policy = serde_json::json!({"deadLetterTargetArn": arn, "maxReceiveCount": max}).to_string();
        req = req.attributes(QueueAttributeName::RedrivePolicy, policy);
    }
    let out = req
        .send()
        .await
        .map_err(|e| aws_err(format!("CreateQueue {name}"), e))?;
    let url = out.queue_url().unwrap_or_default().to_owned();
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| aws_err(format!("GetQueueAttributes {name}"), e))?;
    let arn = attrs
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .cloned()
        .unwrap_or_default();
    Ok((url, arn))
}

fn str_of<'a>(v: &'a Value, k: &str) -> Result<&'a str, ProvisionError> {
    v.get(k)
        .and_then(Value::as_str)
        .ok_or_else(|| ProvisionError::Template(format!("table: `{k}` must be a string")))
}

fn key_schema(v: &Value) -> Result<Vec<KeySchemaElement>, ProvisionError> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|k| {
            KeySchemaElement::builder()
                .attribute_name(str_of(k, "AttributeName")?)
                .key_type(KeyType::from(str_of(k, "KeyType")?))
                .build()
                .map_err(|e| ProvisionError::Template(e.to_string()))
        })
        .collect()
}

async fn create_table(
    t: &TableSpec,
    prefix: &str,
    dynamo: &aws_sdk_dynamodb::Client,
) -> Result<String, ProvisionError> {
    let name = format!("{prefix}-{}", t.logical_id);
    let p = &t.properties;
    let mut req = dynamo
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::from(
            p.get("BillingMode")
                .and_then(Value::as_str)
                .unwrap_or("PAY_PER_REQUEST"),
        ))
        .set_key_schema(Some(key_schema(&p["KeySchema"])?));
    for a in p["AttributeDefinitions"].as_array().into_iter().flatten() {
        req = req.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(str_of(a, "AttributeName")?)
                .attribute_type(ScalarAttributeType::from(str_of(a, "AttributeType")?))
                .build()
                .map_err(|e| ProvisionError::Template(e.to_string()))?,
        );
    }
    for g in p["GlobalSecondaryIndexes"].as_array().into_iter().flatten() {
        let proj = &g["Projection"];
        let projection = Projection::builder()
            .projection_type(ProjectionType::from(
                proj.get("ProjectionType")
                    .and_then(Value::as_str)
                    .unwrap_or("ALL"),
            ))
            .set_non_key_attributes(
                proj.get("NonKeyAttributes")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect()),
            )
            .build();
        req = req.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(str_of(g, "IndexName")?)
                .set_key_schema(Some(key_schema(&g["KeySchema"])?))
                .projection(projection)
                .build()
                .map_err(|e| ProvisionError::Template(e.to_string()))?,
        );
    }
    match req.send().await {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception()) =>
        {
            return Ok(name);
        }
        Err(e) => return Err(aws_err(format!("CreateTable {name}"), e)),
    }
    if let Some(attr) = p
        .pointer("/TimeToLiveSpecification/AttributeName")
        .and_then(Value::as_str)
    {
        let enabled = p
            .pointer("/TimeToLiveSpecification/Enabled")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        let spec = TimeToLiveSpecification::builder()
            .attribute_name(attr)
            .enabled(enabled)
            .build()
            .map_err(|e| ProvisionError::Template(e.to_string()))?;
        let res = dynamo
            .update_time_to_live()
            .table_name(&name)
            .time_to_live_specification(spec)
            .send()
            .await;
        match res {
            Ok(_) => {}
            // dynalite (the bench's DynamoDB) has no TTL API; no emulator expires items
            // anyway, so the stack is the same without it.
            Err(e) if e.code() == Some("UnknownOperationException") => {
                eprintln!("devstack: {name}: the emulator has no UpdateTimeToLive; items will not expire");
            }
            Err(e) => return Err(aws_err(format!("UpdateTimeToLive {name}"), e)),
        }
    }
    Ok(name)
}
