//! Dead letters: queue messages Hookline could not process (unreadable, or whose
//! deliveries the store refused for good). Each is kept where an operator sees it
//! (`GET /v1/dead-letters`, for the retention period), with its body, instead of only
//! a log line; the log names it by id, size and hash, never by its body.

use crate::ids::DeadLetterId;
use crate::timestamp::Timestamp;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// How much of a body a dead letter keeps (a DynamoDB item holds 400 KB).
pub const BODY_KEPT: usize = 64 * 1024;

/// Which function found it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FoundBy {
    /// On the delivery queue.
    Delivery,
    /// In the DLQ.
    Sweeper,
}

impl FoundBy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivery => "delivery",
            Self::Sweeper => "sweeper",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "delivery" => Some(Self::Delivery),
            "sweeper" => Some(Self::Sweeper),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    pub id: DeadLetterId,
    pub recorded_at: Timestamp,
    pub found_by: FoundBy,
    /// Why it could not be processed.
    pub reason: String,
    /// SQS's id of the message, when it had one.
    pub message_id: Option<String>,
    /// How often SQS had handed it out.
    pub receives: u32,
    pub body_bytes: usize,
    /// The whole body's SHA-256 (hex), to match it with a copy elsewhere.
    pub body_sha256: String,
    /// The body's first `BODY_KEPT` bytes, cut on a character boundary.
    pub body: String,
    pub body_truncated: bool,
}

impl DeadLetter {
    pub fn new(
        found_by: FoundBy,
        reason: impl Into<String>,
        message_id: Option<String>,
        receives: u32,
        body: &str,
        now: Timestamp,
    ) -> Self {
        let mut end = body.len().min(BODY_KEPT);
        while !body.is_char_boundary(end) {
            end -= 1;
        }
        Self {
            id: DeadLetterId::generate_at(now),
            recorded_at: now,
            found_by,
            reason: reason.into(),
            message_id,
            receives,
            body_bytes: body.len(),
            body_sha256: hex::encode(Sha256::digest(body.as_bytes())),
            body: body[..end].to_owned(),
            body_truncated: end < body.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_letter_keeps_a_bodys_head_its_size_and_its_hash() {
        let now = Timestamp::from_unix_millis(1_795_935_600_000);
        let small = DeadLetter::new(
            FoundBy::Delivery,
            "unreadable",
            Some("m-1".into()),
            1,
            "{oops",
            now,
        );
        assert_eq!(
            (small.body.as_str(), small.body_bytes, small.body_truncated),
            ("{oops", 5, false)
        );
        assert_eq!(small.body_sha256.len(), 64);
        assert_eq!(small.id.made_at_millis(), Some(now.unix_millis()));

        let big = "é".repeat(BODY_KEPT);
        let cut = DeadLetter::new(FoundBy::Sweeper, "unreadable", None, 10, &big, now);
        assert!(cut.body_truncated && cut.body.len() <= BODY_KEPT && cut.body.len() >= BODY_KEPT - 1);
        assert_eq!(cut.body_bytes, big.len());
        assert_ne!(cut.body_sha256, small.body_sha256);
    }
}
