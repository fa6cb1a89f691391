//! The listings' opaque cursors: the sort key a page ended at, base64url. A cursor
//! that does not decode to a key the listing could have given out is `Permanent`.

use super::{DynamoStore, Item, s};
use crate::adapters::classify;
use crate::ports::{Page, PortError, PortResult};
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// What a cursor that does not decode says.
pub(super) const BAD_CURSOR: &str = "the cursor is not one this API gave out";

/// The cursor for a page that ended at sort key `sk`.
pub(super) fn encode(sk: &str) -> String {
    URL_SAFE_NO_PAD.encode(sk)
}

/// The next page's cursor, from a query's last evaluated key.
pub(super) fn after(last: Option<&Item>) -> Option<String> {
    match last?.get("sk") {
        Some(AttributeValue::S(sk)) => Some(encode(sk)),
        _ => None,
    }
}

/// The sort key a cursor names, if `parse` takes it.
pub(super) fn decode<T, E>(
    cursor: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
    what: &'static str,
) -> PortResult<T> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|sk| parse(&sk).ok())
        .ok_or_else(|| PortError::permanent(what, BAD_CURSOR))
}

impl DynamoStore {
    /// One page of a partition in sort-key order, after sort key `start` (from a cursor:
    /// `decode`), each item read by `read`; the filter, if any, on top.
    pub(super) async fn partition_page<T>(
        &self,
        pk: &str,
        limit: u32,
        start: Option<String>,
        filter: Option<&str>,
        read: impl Fn(&Item) -> PortResult<T>,
        what: &'static str,
    ) -> PortResult<Page<T>> {
        let mut q = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .set_filter_expression(filter.map(str::to_owned))
            .expression_attribute_values(":pk", s(pk))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX));
        if let Some(sk) = start {
            q = q
                .exclusive_start_key("pk", s(pk))
                .exclusive_start_key("sk", s(sk));
        }
        let out = q.send().await.map_err(|e| classify(what, e))?;
        let items = out.items().iter().map(read).collect::<PortResult<Vec<_>>>()?;
        Ok(Page {
            items,
            next_cursor: after(out.last_evaluated_key()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_is_the_key_it_ended_at_and_anything_else_is_refused() {
        let c = encode("ep_1");
        assert_eq!(decode(&c, |s| Ok::<_, ()>(s.to_owned()), "q").unwrap(), "ep_1");
        assert!(
            decode("not base64!", |s| Ok::<_, ()>(s.to_owned()), "q")
                .unwrap_err()
                .is_permanent()
        );
        assert!(decode(&c, |_| Err::<(), _>(()), "q").is_err());
    }
}
