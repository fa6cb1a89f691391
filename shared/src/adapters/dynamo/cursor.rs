//! The listings' opaque cursors: the sort key a page ended at, base64url. A cursor
//! that does not decode to a key the listing could have given out is `Permanent`.

use super::Item;
use crate::ports::{PortError, PortResult};
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
