//! Dead letters in one partition, newest last, each expiring with the retention.

use super::endpoints::BAD_CURSOR;
use super::keys::{DEAD_PK, dead_letter_sk};
use super::reader::Reader;
use super::{DynamoStore, Item, n, s};
use crate::adapters::classify;
use crate::dead_letter::{DeadLetter, FoundBy};
use crate::ids::DeadLetterId;
use crate::ports::{DeadLetterStore, Page, PortError, PortResult};
use crate::timestamp::Timestamp;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::collections::HashMap;

impl DynamoStore {
    fn dead_letter_item(&self, d: &DeadLetter) -> Item {
        let mut item = HashMap::from([
            ("pk".to_owned(), s(DEAD_PK)),
            ("sk".to_owned(), s(dead_letter_sk(&d.id))),
            ("found_by".to_owned(), s(d.found_by.as_str())),
            ("reason".to_owned(), s(&d.reason)),
            ("receives".to_owned(), n(d.receives)),
            ("body_bytes".to_owned(), n(d.body_bytes)),
            ("body_sha256".to_owned(), s(&d.body_sha256)),
            ("body".to_owned(), s(&d.body)),
            (
                "body_truncated".to_owned(),
                AttributeValue::Bool(d.body_truncated),
            ),
            ("recorded_at".to_owned(), n(d.recorded_at.unix_millis())),
            ("expires_at".to_owned(), self.expires_at(d.recorded_at)),
        ]);
        if let Some(m) = &d.message_id {
            item.insert("message_id".into(), s(m));
        }
        item
    }
}

fn dead_letter_from_item(item: &Item) -> PortResult<DeadLetter> {
    let r = Reader(item);
    let id = r
        .str("sk")?
        .split_once('#')
        .and_then(|(_, id)| DeadLetterId::parse(id).ok())
        .ok_or_else(|| PortError::permanent("read stored dead letter", "invalid `sk`"))?;
    Ok(DeadLetter {
        id,
        recorded_at: Timestamp::from_unix_millis(r.num("recorded_at")?),
        found_by: r.parse("found_by", |v| FoundBy::parse(v).ok_or("unknown"))?,
        reason: r.str("reason")?.to_owned(),
        message_id: r.opt_str("message_id").map(str::to_owned),
        receives: r.num("receives")?,
        body_bytes: r.num("body_bytes")?,
        body_sha256: r.str("body_sha256")?.to_owned(),
        body: r.str("body")?.to_owned(),
        body_truncated: matches!(item.get("body_truncated"), Some(AttributeValue::Bool(true))),
    })
}

#[async_trait]
impl DeadLetterStore for DynamoStore {
    async fn record_dead_letter(&self, letter: &DeadLetter) -> PortResult<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(self.dead_letter_item(letter)))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("PutItem dead letter", e))
    }

    async fn list_dead_letters(&self, limit: u32, cursor: Option<&str>) -> PortResult<Page<DeadLetter>> {
        let start = cursor
            .map(|c| {
                URL_SAFE_NO_PAD
                    .decode(c)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .filter(|sk| {
                        sk.split_once('#').is_some_and(|(ms, id)| {
                            ms.len() == 16
                                && ms.bytes().all(|b| b.is_ascii_digit())
                                && DeadLetterId::parse(id).is_ok()
                        })
                    })
                    .ok_or_else(|| PortError::permanent("Query dead letters", BAD_CURSOR))
            })
            .transpose()?;
        let mut q = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(DEAD_PK))
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX));
        if let Some(sk) = start {
            q = q
                .exclusive_start_key("pk", s(DEAD_PK))
                .exclusive_start_key("sk", s(sk));
        }
        let out = q.send().await.map_err(|e| classify("Query dead letters", e))?;
        let items = out
            .items()
            .iter()
            .map(dead_letter_from_item)
            .collect::<PortResult<Vec<_>>>()?;
        let next_cursor = super::cursor::after(out.last_evaluated_key());
        Ok(Page { items, next_cursor })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_dead_letter_reads_back_as_written() {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .build();
        let store = DynamoStore::new(
            aws_sdk_dynamodb::Client::from_conf(config),
            "t",
            Duration::from_secs(60),
        );
        let now = Timestamp::from_unix_millis(1_795_935_600_000);
        for message_id in [Some("m-1".to_owned()), None] {
            let d = DeadLetter::new(
                FoundBy::Sweeper,
                "unreadable: EOF",
                message_id,
                11,
                "{\"type\":",
                now,
            );
            let item = store.dead_letter_item(&d);
            assert_eq!(item["expires_at"], n(now.unix_seconds() + 60));
            assert_eq!(dead_letter_from_item(&item).unwrap(), d);
        }
    }
}
