//! The AWS calls each function makes, recorded for the least-privilege check
//! (`infra/iam_check.py`, run by `make test` after these tests): every client a
//! function's handler gets in the harness carries a `CallLog` naming the function, and
//! each distinct (function, IAM action, resource) is appended as one line to a file in
//! `$HOOKLINE_CALL_LOG_DIR`. Without that variable nothing is written.
//!
//! The line is read from the request as it goes on the wire (the `X-Amz-Target` header
//! and the JSON body), so it is what the code really asked AWS for, whatever path led
//! there. Resources are named by their template logical id (`it-<id>-DeliveryQueue`
//! becomes `DeliveryQueue`), indexes as `Table/index/<name>`.

use aws_sdk_sqs::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_sqs::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_sqs::error::BoxError;
use serde_json::Value;
use std::collections::HashSet;
use std::io::Write;
use std::sync::{Mutex, OnceLock};

#[derive(Debug, Clone, Copy)]
pub struct CallLog {
    function: &'static str,
    /// S3's calls name no target: they are read from the method and the path.
    s3: bool,
}

impl CallLog {
    pub fn new(function: &'static str) -> Self {
        Self { function, s3: false }
    }
}

/// The clients a function gets in the harness, each recording its calls.
pub fn sqs_for(cfg: &aws_config::SdkConfig, function: &'static str) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(cfg)
            .interceptor(CallLog::new(function))
            .build(),
    )
}

pub fn dynamo_for(cfg: &aws_config::SdkConfig, function: &'static str) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(cfg)
            .interceptor(CallLog::new(function))
            .build(),
    )
}

pub fn s3_for(cfg: &aws_config::SdkConfig, function: &'static str) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        hookline::adapters::s3::S3Data::config(cfg)
            .interceptor(CallLog { function, s3: true })
            .build(),
    )
}

pub fn secrets_for(cfg: &aws_config::SdkConfig, function: &'static str) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::from_conf(
        aws_sdk_secretsmanager::config::Builder::from(cfg)
            .interceptor(CallLog::new(function))
            .build(),
    )
}

impl Intercept for CallLog {
    fn name(&self) -> &'static str {
        "CallLog"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(dir) = std::env::var_os("HOOKLINE_CALL_LOG_DIR") else {
            return Ok(());
        };
        let request = context.request();
        let target = request.headers().get("x-amz-target").unwrap_or_default();
        let body: Value = request
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or_default();
        let made = if self.s3 {
            s3_calls(request.method(), request.uri())
        } else {
            calls(target, &body)
        };
        let lines: Vec<String> = made
            .into_iter()
            .map(|(action, resource)| format!("{}\t{action}\t{resource}\n", self.function))
            .collect();
        static SEEN: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
        let mut seen = SEEN
            .get_or_init(Default::default)
            .lock()
            .map_err(|_| "call log poisoned")?;
        let path = std::path::Path::new(&dir).join(format!("{}.tsv", std::process::id()));
        for line in lines {
            if seen.insert(line.clone()) {
                std::fs::create_dir_all(&dir)?;
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)?
                    .write_all(line.as_bytes())?;
            }
        }
        Ok(())
    }
}

/// The (IAM action, resource) pairs one request needs. Batch and transaction calls are
/// authorised as the single-item actions they contain, as IAM does.
fn calls(target: &str, body: &Value) -> Vec<(String, String)> {
    let (service, op) = target.split_once('.').unwrap_or(("unknown", target));
    let str_of = |k: &str| body[k].as_str().unwrap_or("?").to_owned();
    match service {
        "DynamoDB_20120810" => {
            let on = |op: &str, b: &Value| {
                let table = logical(b["TableName"].as_str().unwrap_or("?"));
                let resource = match b["IndexName"].as_str() {
                    Some(index) => format!("{table}/index/{index}"),
                    None => table,
                };
                (format!("dynamodb:{op}"), resource)
            };
            match op {
                "BatchWriteItem" | "BatchGetItem" => body["RequestItems"]
                    .as_object()
                    .into_iter()
                    .flat_map(|m| m.keys())
                    .map(|t| (format!("dynamodb:{op}"), logical(t)))
                    .collect(),
                "TransactWriteItems" | "TransactGetItems" => body["TransactItems"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|item| item.as_object()?.iter().next())
                    .map(|(kind, b)| {
                        let action = match kind.as_str() {
                            "Put" => "PutItem",
                            "Update" => "UpdateItem",
                            "Delete" => "DeleteItem",
                            "Get" => "GetItem",
                            _ => "ConditionCheckItem",
                        };
                        on(action, b)
                    })
                    .collect(),
                _ => vec![on(op, body)],
            }
        }
        "AmazonSQS" => {
            let action = match op {
                "SendMessageBatch" => "SendMessage",
                "DeleteMessageBatch" => "DeleteMessage",
                "ChangeMessageVisibilityBatch" => "ChangeMessageVisibility",
                other => other,
            };
            let queue = str_of("QueueUrl");
            let name = queue.rsplit('/').next().unwrap_or("?");
            vec![(format!("sqs:{action}"), logical(name))]
        }
        "secretsmanager" => vec![(format!("secretsmanager:{op}"), logical(&str_of("SecretId")))],
        other => vec![(format!("{other}:{op}"), "?".to_owned())],
    }
}

/// `it-<32 hex>-DeliveryQueue` → `DeliveryQueue`.
/// A path-style S3 call (`/bucket/key`), as IAM names it: `s3:GetObject` on
/// `DataBucket/events/…`, the bucket by its logical id in the template.
fn s3_calls(method: &str, uri: &str) -> Vec<(String, String)> {
    static BUCKETS: OnceLock<Vec<String>> = OnceLock::new();
    let buckets = BUCKETS.get_or_init(|| {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
        devstack::template::load(&path)
            .map(|t| t.buckets)
            .unwrap_or_default()
    });
    let path = uri.split_once("://").map_or(uri, |(_, rest)| rest);
    let path = path.split_once('/').map_or("", |(_, p)| p);
    let path = path.split('?').next().unwrap_or_default();
    let (bucket, key) = path.split_once('/').unwrap_or((path, ""));
    let bucket = logical(bucket);
    let bucket = buckets
        .iter()
        .find(|b| b.to_ascii_lowercase() == bucket)
        .cloned()
        .unwrap_or(bucket);
    let action = match (method, key.is_empty()) {
        ("GET", false) => "GetObject",
        ("PUT", false) => "PutObject",
        ("DELETE", false) => "DeleteObject",
        ("HEAD", false) => "GetObject",
        (m, _) => return vec![(format!("s3:{m} bucket"), bucket)],
    };
    vec![(format!("s3:{action}"), format!("{bucket}/{key}"))]
}

fn logical(name: &str) -> String {
    name.strip_prefix("it-")
        .and_then(|rest| rest.split_once('-'))
        .filter(|(id, _)| id.len() == 32)
        .map_or(name, |(_, logical)| logical)
        .to_owned()
}

#[test]
fn calls_are_named_as_iam_authorises_them() {
    assert_eq!(
        s3_calls(
            "PUT",
            "http://127.0.0.1:5000/it-0123456789abcdef0123456789abcdef-databucket/events/default/evt_1/ab.json?x-id=PutObject"
        ),
        vec![(
            "s3:PutObject".to_owned(),
            "DataBucket/events/default/evt_1/ab.json".to_owned()
        )]
    );
    let batch = serde_json::json!({"QueueUrl": "http://127.0.0.1:1/123456789012/it-0123456789abcdef0123456789abcdef-DeliveryQueue", "Entries": []});
    assert_eq!(
        calls("AmazonSQS.SendMessageBatch", &batch),
        vec![("sqs:SendMessage".to_owned(), "DeliveryQueue".to_owned())]
    );
    let query =
        serde_json::json!({"TableName": "it-0123456789abcdef0123456789abcdef-Table", "IndexName": "open"});
    assert_eq!(
        calls("DynamoDB_20120810.Query", &query),
        vec![("dynamodb:Query".to_owned(), "Table/index/open".to_owned())]
    );
    let tx = serde_json::json!({"TransactItems": [{"Put": {"TableName": "T"}}, {"ConditionCheck": {"TableName": "T"}}]});
    assert_eq!(
        calls("DynamoDB_20120810.TransactWriteItems", &tx),
        vec![
            ("dynamodb:PutItem".to_owned(), "T".to_owned()),
            ("dynamodb:ConditionCheckItem".to_owned(), "T".to_owned())
        ]
    );
}
