//! How a port fails: what it was doing, whether the same call may succeed later, and
//! the error underneath (an SDK error, say), kept as the source so that nothing of it
//! is lost on the way up.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

/// The error beneath a port's failure. Shared, so that one failure can settle several
/// records (a batch write carries many fan-outs).
pub type Cause = Arc<dyn StdError + Send + Sync + 'static>;

/// A storage or queue failure, split by what the caller should do about it.
#[derive(Clone, Debug)]
pub enum PortError {
    /// Throttling, timeouts, 5xx: the same call may succeed later.
    Retryable {
        /// The operation, as `PutItem event` or `SendMessage`.
        op: Cow<'static, str>,
        detail: String,
        source: Option<Cause>,
    },
    /// Bad input, configuration or stored data: trying again will not help.
    Permanent {
        op: Cow<'static, str>,
        detail: String,
        source: Option<Cause>,
    },
}

impl fmt::Display for PortError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Retryable { op, detail, .. } => write!(f, "temporarily unavailable: {op}: {detail}"),
            Self::Permanent { op, detail, .. } => write!(f, "{op}: {detail}"),
        }
    }
}

impl StdError for PortError {
    /// The error itself, not the `Arc` that shares it, so that a caller can downcast it.
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::Retryable { source, .. } | Self::Permanent { source, .. } => {
                source.as_deref().map(|e| e as &(dyn StdError + 'static))
            }
        }
    }
}

impl PortError {
    pub fn retryable(op: impl Into<Cow<'static, str>>, detail: impl Into<String>) -> Self {
        Self::Retryable {
            op: op.into(),
            detail: detail.into(),
            source: None,
        }
    }

    pub fn permanent(op: impl Into<Cow<'static, str>>, detail: impl Into<String>) -> Self {
        Self::Permanent {
            op: op.into(),
            detail: detail.into(),
            source: None,
        }
    }

    /// The same failure, caused by `e`.
    pub fn caused_by(mut self, e: impl StdError + Send + Sync + 'static) -> Self {
        let cause: Cause = Arc::new(e);
        match &mut self {
            Self::Retryable { source, .. } | Self::Permanent { source, .. } => *source = Some(cause),
        }
        self
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Retryable { .. })
    }

    pub fn is_permanent(&self) -> bool {
        !self.is_retryable()
    }

    /// The operation that failed.
    pub fn op(&self) -> &str {
        match self {
            Self::Retryable { op, .. } | Self::Permanent { op, .. } => op,
        }
    }
}

pub type PortResult<T> = Result<T, PortError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_names_its_operation_and_keeps_its_cause() {
        let io = std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer");
        let e = PortError::retryable("GetItem endpoint", "dispatch failure").caused_by(io);
        assert!(e.is_retryable() && !e.is_permanent());
        assert_eq!(e.op(), "GetItem endpoint");
        assert_eq!(
            e.to_string(),
            "temporarily unavailable: GetItem endpoint: dispatch failure"
        );
        let cause = e.source().expect("the cause is kept");
        assert_eq!(cause.to_string(), "no answer");
        assert!(cause.downcast_ref::<std::io::Error>().is_some(), "as it was");
        let again = e.clone();
        assert!(again.source().is_some(), "a clone shares the cause");

        let p = PortError::permanent("read stored endpoint", "lacks string `url`");
        assert!(p.is_permanent() && p.source().is_none());
        assert_eq!(p.to_string(), "read stored endpoint: lacks string `url`");
    }
}
