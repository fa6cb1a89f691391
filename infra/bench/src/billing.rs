//! What DynamoDB and SQS bill a request, as the counting proxy measures it: SQS in
//! 64 KiB chunks, DynamoDB's write units from the sizes of the items a write touches
//! before and after (table and indexes), read units from what a read returns.

use crate::awsproxy::TableShape;
use serde_json::Value;
use std::collections::BTreeMap;

pub(crate) fn is_write(op: &str) -> bool {
    matches!(
        op,
        "PutItem" | "UpdateItem" | "DeleteItem" | "BatchWriteItem" | "TransactWriteItems"
    )
}

/// The (table, key) pairs a write touches. A put's key is read from its item through
/// the table's usual key names (pk, sk), which is what Hookline's table uses.
pub(crate) fn touched_keys(op: &str, body: &Value) -> Vec<(String, Value)> {
    let key_of_item = |item: &Value| -> Value {
        let mut k = serde_json::Map::new();
        for name in ["pk", "sk"] {
            if let Some(v) = item.get(name) {
                k.insert(name.to_owned(), v.clone());
            }
        }
        Value::Object(k)
    };
    let table = body["TableName"].as_str().unwrap_or_default().to_owned();
    match op {
        "PutItem" => vec![(table, key_of_item(&body["Item"]))],
        "UpdateItem" | "DeleteItem" => vec![(table, body["Key"].clone())],
        "BatchWriteItem" => body["RequestItems"]
            .as_object()
            .map(|m| {
                m.iter()
                    .flat_map(|(t, reqs)| {
                        reqs.as_array().into_iter().flatten().filter_map(move |r| {
                            if let Some(item) = r.get("PutRequest").map(|p| &p["Item"]) {
                                Some((t.clone(), key_of_item(item)))
                            } else {
                                r.get("DeleteRequest").map(|d| (t.clone(), d["Key"].clone()))
                            }
                        })
                    })
                    .collect()
            })
            .unwrap_or_default(),
        "TransactWriteItems" => body["TransactItems"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| {
                let (kind, inner) = t.as_object()?.iter().next()?;
                let key = if kind == "Put" {
                    key_of_item(&inner["Item"])
                } else {
                    inner["Key"].clone()
                };
                Some((inner["TableName"].as_str()?.to_owned(), key))
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The item a put tried to write (a failed conditional put is billed by its size).
pub(crate) fn attempted_item(op: &str, body: &Value, key: &Value) -> Option<Value> {
    match op {
        "PutItem" => Some(body["Item"].clone()),
        "BatchWriteItem" => body["RequestItems"].as_object()?.values().find_map(|reqs| {
            reqs.as_array()?.iter().find_map(|r| {
                let item = &r.get("PutRequest")?["Item"];
                (item.get("pk") == key.get("pk") && item.get("sk") == key.get("sk")).then(|| item.clone())
            })
        }),
        _ => None,
    }
}

pub(crate) fn chunks_of_64k(bytes: usize) -> f64 {
    units(bytes, 65_536)
}

pub(crate) fn units(bytes: usize, per: usize) -> f64 {
    (bytes.max(1) as f64 / per as f64).ceil()
}

/// Table and index write units of one item's write.
pub(crate) fn write_units(
    shape: &TableShape,
    before: Option<&Value>,
    after: Option<&Value>,
    attempted: Option<&Value>,
    ok: bool,
) -> (f64, f64) {
    let size = |v: Option<&Value>| v.map_or(0, item_size);
    if !ok {
        // A write whose condition failed is billed by item size and writes no index.
        return (units(size(before).max(size(attempted)), 1024), 0.0);
    }
    let table = units(size(before).max(size(after)), 1024);
    let mut index = 0.0;
    for ix in &shape.indexes {
        let entry = |item: Option<&Value>| -> Option<BTreeMap<String, Value>> {
            let obj = item?.as_object()?;
            if !ix.keys.iter().all(|k| obj.contains_key(k)) {
                return None;
            }
            Some(
                obj.iter()
                    .filter(|(k, _)| {
                        ix.projected
                            .as_ref()
                            .is_none_or(|p| p.contains(k) || ix.keys.contains(k) || shape.keys.contains(k))
                    })
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            )
        };
        let cost =
            |e: &BTreeMap<String, Value>| units(e.iter().map(|(k, v)| k.len() + attr_size(v)).sum(), 1024);
        index += match (entry(before), entry(after)) {
            (None, None) => 0.0,
            (None, Some(a)) => cost(&a),
            (Some(b), None) => cost(&b),
            (Some(b), Some(a)) => {
                let key_changed = ix.keys.iter().any(|k| b.get(k) != a.get(k));
                if key_changed {
                    cost(&b) + cost(&a)
                } else if a != b {
                    cost(&a)
                } else {
                    0.0
                }
            }
        };
    }
    (table, index)
}

/// Read units from what a read returned (strongly consistent reads cost twice).
pub(crate) fn read_units(op: &str, req: &Value, resp: &[u8]) -> f64 {
    let resp: Value = serde_json::from_slice(resp).unwrap_or(Value::Null);
    let half = if req["ConsistentRead"].as_bool() == Some(true) {
        1.0
    } else {
        0.5
    };
    match op {
        "GetItem" => units(resp.get("Item").map_or(0, item_size), 4096) * half,
        "Query" | "Scan" => {
            let bytes: usize = resp["Items"]
                .as_array()
                .map(|a| a.iter().map(item_size).sum())
                .unwrap_or(0);
            units(bytes, 4096) * half
        }
        "BatchGetItem" => resp["Responses"]
            .as_object()
            .map(|m| {
                m.values()
                    .flat_map(|items| items.as_array().into_iter().flatten())
                    .map(|i| units(item_size(i), 4096) * 0.5)
                    .sum()
            })
            .unwrap_or(0.0),
        _ => 0.0,
    }
}

/// An item's size as DynamoDB counts it: each attribute's name and value.
pub fn item_size(item: &Value) -> usize {
    item.as_object()
        .map(|o| o.iter().map(|(k, v)| k.len() + attr_size(v)).sum())
        .unwrap_or(0)
}

pub(crate) fn number_size(n: &str) -> usize {
    let digits: String = n.chars().filter(char::is_ascii_digit).collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len().max(1);
    significant.div_ceil(2) + 1
}

pub(crate) fn attr_size(v: &Value) -> usize {
    let Some((t, x)) = v.as_object().and_then(|o| o.iter().next()) else {
        return 0;
    };
    let strs = || x.as_array().into_iter().flatten().filter_map(Value::as_str);
    match t.as_str() {
        "S" => x.as_str().map_or(0, str::len),
        "N" => x.as_str().map_or(1, number_size),
        "B" => x.as_str().map_or(0, |b| b.len() * 3 / 4),
        "BOOL" | "NULL" => 1,
        "SS" => strs().map(str::len).sum(),
        "NS" => strs().map(number_size).sum(),
        "BS" => strs().map(|b| b.len() * 3 / 4).sum(),
        "L" => {
            3 + x
                .as_array()
                .map_or(0, |a| a.iter().map(|e| 1 + attr_size(e)).sum())
        }
        "M" => {
            3 + x
                .as_object()
                .map_or(0, |m| m.iter().map(|(k, e)| k.len() + 1 + attr_size(e)).sum())
        }
        _ => 0,
    }
}
