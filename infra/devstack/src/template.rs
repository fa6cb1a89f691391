//! Reads the queues and tables out of `template.yaml`, so the local stack is made
//! from the same definitions as the cloud one.

use serde_json::{Map, Value, json};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("template.yaml is not valid YAML: {0}")]
    Yaml(#[from] serde_norway::Error),
    #[error("template.yaml: {0}")]
    Shape(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct QueueSpec {
    pub logical_id: String,
    /// SQS attribute names and values, as CreateQueue takes them (without RedrivePolicy).
    pub attributes: Vec<(String, String)>,
    /// The dead-letter queue's logical id and `maxReceiveCount`.
    pub redrive: Option<(String, u32)>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TableSpec {
    pub logical_id: String,
    /// The resource's `Properties`, in CloudFormation's JSON form.
    pub properties: Value,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    /// Dead-letter queues come before the queues that name them.
    pub queues: Vec<QueueSpec>,
    pub tables: Vec<TableSpec>,
    /// The buckets' logical ids (checked-in event data).
    pub buckets: Vec<String>,
}

/// CloudFormation's short-form tags (`!Ref X`, `!GetAtt A.B`) in their JSON form.
fn to_json(v: serde_norway::Value) -> Value {
    use serde_norway::Value as Y;
    match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                json!(i)
            } else if let Some(u) = n.as_u64() {
                json!(u)
            } else {
                json!(n.as_f64().unwrap_or(0.0))
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(seq) => Value::Array(seq.into_iter().map(to_json).collect()),
        Y::Mapping(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| {
                    let key = match k {
                        Y::String(s) => s,
                        other => serde_norway::to_string(&other)
                            .unwrap_or_default()
                            .trim()
                            .to_owned(),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
        Y::Tagged(t) => {
            let tag = t.tag.to_string();
            let name = tag.trim_start_matches('!');
            let inner = to_json(t.value);
            match name {
                "Ref" => json!({ "Ref": inner }),
                "GetAtt" => match inner {
                    Value::String(s) => {
                        let parts: Vec<Value> = s.splitn(2, '.').map(|p| json!(p)).collect();
                        json!({ "Fn::GetAtt": parts })
                    }
                    other => json!({ "Fn::GetAtt": other }),
                },
                other => json!({ format!("Fn::{other}"): inner }),
            }
        }
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The logical id a `!GetAtt X.Arn` or `!Ref X` points at.
fn target(v: &Value) -> Option<String> {
    if let Some(Value::Array(parts)) = v.get("Fn::GetAtt") {
        return parts.first().and_then(Value::as_str).map(str::to_owned);
    }
    v.get("Ref").and_then(Value::as_str).map(str::to_owned)
}

/// Replaces `{"Ref": P}` for a template parameter `P` by its default, as a deploy
/// without overrides would.
fn resolve_parameters(v: &mut Value, params: &Map<String, Value>) {
    match v {
        Value::Object(o) => {
            let default = o
                .get("Ref")
                .and_then(Value::as_str)
                .and_then(|p| params.get(p))
                .and_then(|p| p.get("Default"))
                .cloned();
            match default {
                Some(d) if o.len() == 1 => *v = d,
                _ => o.values_mut().for_each(|x| resolve_parameters(x, params)),
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| resolve_parameters(x, params)),
        _ => {}
    }
}

pub fn parse(text: &str) -> Result<Template, TemplateError> {
    let mut doc = to_json(serde_norway::from_str::<serde_norway::Value>(text)?);
    let params = doc
        .get("Parameters")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if let Some(resources) = doc.get_mut("Resources") {
        resolve_parameters(resources, &params);
    }
    let resources = doc
        .get("Resources")
        .and_then(Value::as_object)
        .ok_or_else(|| TemplateError::Shape("no Resources section".into()))?;
    let mut queues = Vec::new();
    let mut tables = Vec::new();
    let mut buckets = Vec::new();
    for (id, res) in resources {
        let props = res.get("Properties").cloned().unwrap_or_else(|| json!({}));
        match res.get("Type").and_then(Value::as_str) {
            Some("AWS::SQS::Queue") => queues.push(queue_spec(id, &props)?),
            Some("AWS::DynamoDB::Table") => tables.push(TableSpec {
                logical_id: id.clone(),
                properties: props,
            }),
            Some("AWS::S3::Bucket") => buckets.push(id.clone()),
            _ => {}
        }
    }
    queues.sort_by_key(|q| q.redrive.is_some());
    Ok(Template {
        queues,
        tables,
        buckets,
    })
}

fn queue_spec(id: &str, props: &Value) -> Result<QueueSpec, TemplateError> {
    let empty = Map::new();
    let props = props.as_object().unwrap_or(&empty);
    let mut attributes = Vec::new();
    let mut redrive = None;
    for (k, v) in props {
        match k.as_str() {
            "QueueName"
            | "Tags"
            | "SqsManagedSseEnabled"
            | "KmsMasterKeyId"
            | "KmsDataKeyReusePeriodSeconds" => {}
            "RedrivePolicy" => {
                let dlq = v.get("deadLetterTargetArn").and_then(target).ok_or_else(|| {
                    TemplateError::Shape(format!(
                        "{id}: RedrivePolicy needs deadLetterTargetArn: !GetAtt X.Arn"
                    ))
                })?;
                let max = v
                    .get("maxReceiveCount")
                    .and_then(scalar)
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| {
                        TemplateError::Shape(format!("{id}: RedrivePolicy needs maxReceiveCount"))
                    })?;
                redrive = Some((dlq, max));
            }
            name => {
                let value = scalar(v).ok_or_else(|| {
                    TemplateError::Shape(format!("{id}: {name} must be a literal for the local stack"))
                })?;
                attributes.push((name.to_owned(), value));
            }
        }
    }
    Ok(QueueSpec {
        logical_id: id.to_owned(),
        attributes,
        redrive,
    })
}

pub fn load(path: &Path) -> Result<Template, TemplateError> {
    let text = std::fs::read_to_string(path).map_err(|source| TemplateError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queues_tables_and_short_form_tags_are_read() {
        let t = parse(
            r#"
Parameters:
  Receives: { Type: Number, Default: 5 }
Resources:
  Main:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 360
      SqsManagedSseEnabled: true
      RedrivePolicy: { deadLetterTargetArn: !GetAtt Dead.Arn, maxReceiveCount: !Ref Receives }
  Dead:
    Type: AWS::SQS::Queue
  T:
    Type: AWS::DynamoDB::Table
    Properties: { BillingMode: PAY_PER_REQUEST, TableName: !Sub "${AWS::StackName}-t" }
  F:
    Type: AWS::Serverless::Function
"#,
        )
        .unwrap();
        assert_eq!(t.queues[0].logical_id, "Dead");
        assert_eq!(
            t.queues[1].attributes,
            vec![("VisibilityTimeout".to_owned(), "360".to_owned())]
        );
        assert_eq!(t.queues[1].redrive, Some(("Dead".to_owned(), 5)));
        assert_eq!(
            t.tables[0].properties["TableName"],
            json!({"Fn::Sub": "${AWS::StackName}-t"})
        );
    }

    #[test]
    fn the_project_template_has_both_lanes_queues_their_dlq_and_the_table() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
        let t = load(&path).unwrap();
        let ids: Vec<_> = t.queues.iter().map(|q| q.logical_id.as_str()).collect();
        assert_eq!(ids, ["DeliveryDLQ", "DeliveryQueue", "SlowQueue"]);
        assert_eq!(t.tables.len(), 1);
    }
}
