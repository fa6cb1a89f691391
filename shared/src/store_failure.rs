//! What delivery does when a store call fails. A retryable failure leaves the message
//! for SQS to bring back. A permanent one (the store refuses the request: trying again
//! cannot help) is recorded at once as the failure of the delivery it stops, and the
//! message acknowledged, instead of waiting out its receives for the sweeper to record
//! it from the DLQ. A failure that names no delivery (the endpoint list cannot be read)
//! has nothing to record: its message stays, and the DLQ keeps what never settles.
//!
//! The reason a delivery shows says which step failed, never the store's own words:
//! those are in the delivery function's log, beside the delivery's id.

use crate::ports::PortError;

/// The step of a delivery whose store call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Storing (claiming) the event, before its first attempts.
    StoreEvent,
    /// Reading the endpoint the delivery goes to.
    ReadEndpoint,
    /// Taking a token from the endpoint's rate limit.
    RateLimit,
    /// Taking the lease on the delivery's next attempt.
    ClaimAttempt,
    /// Recording an attempt that was made.
    RecordAttempt,
    /// Queueing the message for the next attempt.
    QueueAttempt,
    /// Reading or raising the newest event of the delivery's collapse key.
    Collapse,
    /// Fetching a checked-in event's data, or making its URL (`crate::claim_check`).
    ReadData,
    /// Asking for, or giving up, a turn in an ordered lane (`crate::ordering`).
    Lane,
}

impl Step {
    /// The reason a delivery stopped at this step fails with.
    pub fn reason(self) -> &'static str {
        match self {
            Self::StoreEvent => "the event could not be stored (a permanent store error)",
            Self::ReadEndpoint => "the endpoint could not be read (a permanent store error)",
            Self::RateLimit => "the endpoint's rate limit could not be read (a permanent store error)",
            Self::ClaimAttempt => "the next attempt could not be claimed (a permanent store error)",
            Self::RecordAttempt => "the attempt could not be recorded (a permanent store error)",
            Self::QueueAttempt => "the next attempt could not be queued (a permanent queue error)",
            Self::Collapse => {
                "the newest event of its collapse key could not be read (a permanent store error)"
            }
            Self::ReadData => {
                "the event's data could not be read: it is no longer stored, or is not the event's"
            }
            Self::Lane => "its ordered lane could not be read (a permanent store error)",
        }
    }
}

/// What to do about a failed store call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnFailure {
    /// Leave the message on the queue: SQS brings it back.
    Redeliver,
    /// Record the delivery as failed with this reason, and acknowledge.
    GiveUp(&'static str),
}

/// What to do about `e`, met at `step`.
pub fn on_failure(e: &PortError, step: Step) -> OnFailure {
    if e.is_retryable() {
        OnFailure::Redeliver
    } else {
        OnFailure::GiveUp(step.reason())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retryable_failure_redelivers_and_a_permanent_one_gives_up_with_its_step() {
        let throttled = PortError::retryable("UpdateItem delivery claim", "ThrottlingException (400)");
        assert_eq!(on_failure(&throttled, Step::ClaimAttempt), OnFailure::Redeliver);
        let refused = PortError::permanent(
            "PutItem event",
            "ValidationException (400): Item size has exceeded",
        );
        assert_eq!(
            on_failure(&refused, Step::StoreEvent),
            OnFailure::GiveUp("the event could not be stored (a permanent store error)")
        );
    }
}
