//! Which events an endpoint wants: its `event_types` filters, matched against an
//! event's type. Hookline's own `hookline.` events are left out of `*`.

use crate::event::EventType;
use serde::{Deserialize, Serialize};
use std::fmt;
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum FilterError {
    #[error("`{0}` is neither an event type, `*`, nor a prefix wildcard like `agent.*` or `node_*`")]
    Malformed(String),
}

/// One entry of an endpoint's `event_types`: an exact type, `*`, a dotted prefix like
/// `agent.*`, or a word prefix like `node_*` (for flat names such as LangGraph's
/// `node_started`, `node_completed`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum EventTypeFilter {
    All,
    Exact(EventType),
    /// Matches types that start with this prefix followed by a dot.
    Prefix(EventType),
    /// Matches types that start with this text, which ends in `_` or `-`.
    Starts(String),
}

impl EventTypeFilter {
    pub fn parse(s: &str) -> Result<Self, FilterError> {
        if s == "*" {
            return Ok(Self::All);
        }
        let bad = || FilterError::Malformed(s.to_owned());
        if let Some(prefix) = s.strip_suffix(".*") {
            return EventType::parse(prefix).map(Self::Prefix).map_err(|_| bad());
        }
        if let Some(start) = s.strip_suffix('*') {
            let word = start.strip_suffix(['_', '-']).ok_or_else(bad)?;
            return match EventType::parse(word) {
                Ok(_) => Ok(Self::Starts(start.to_owned())),
                Err(_) => Err(bad()),
            };
        }
        EventType::parse(s).map(Self::Exact).map_err(|_| bad())
    }

    pub fn matches(&self, t: &EventType) -> bool {
        match self {
            Self::All => !t.is_reserved(),
            Self::Exact(e) => e == t,
            Self::Prefix(p) => t
                .as_str()
                .strip_prefix(p.as_str())
                .is_some_and(|rest| rest.starts_with('.')),
            Self::Starts(start) => t.as_str().starts_with(start.as_str()),
        }
    }
}

impl TryFrom<String> for EventTypeFilter {
    type Error = FilterError;
    fn try_from(s: String) -> Result<Self, FilterError> {
        Self::parse(&s)
    }
}

impl From<EventTypeFilter> for String {
    fn from(f: EventTypeFilter) -> String {
        f.to_string()
    }
}

impl fmt::Display for EventTypeFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::All => f.write_str("*"),
            Self::Exact(t) => f.write_str(t.as_str()),
            Self::Prefix(p) => write!(f, "{p}.*"),
            Self::Starts(start) => write!(f, "{start}*"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> EventType {
        EventType::parse(s).unwrap()
    }

    #[test]
    fn filters_match_exact_names_everything_or_a_dotted_prefix() {
        let exact = EventTypeFilter::parse("agent.run.completed").unwrap();
        let all = EventTypeFilter::parse("*").unwrap();
        let prefix = EventTypeFilter::parse("agent.*").unwrap();
        assert!(exact.matches(&t("agent.run.completed")));
        assert!(!exact.matches(&t("agent.run.completed.v2")));
        assert!(all.matches(&t("anything")));
        assert!(
            !all.matches(&t("hookline.endpoint.disabled")),
            "`*` leaves Hookline's own events out"
        );
        assert!(
            EventTypeFilter::parse("hookline.*")
                .unwrap()
                .matches(&t("hookline.endpoint.disabled"))
        );
        assert!(prefix.matches(&t("agent.run")));
        assert!(prefix.matches(&t("agent.run.completed")));
        assert!(!prefix.matches(&t("agent")));
        assert!(!prefix.matches(&t("agentx.run")));
        assert_eq!(prefix.to_string(), "agent.*");
    }

    #[test]
    fn a_word_prefix_matches_flat_names_that_start_with_it() {
        let nodes = EventTypeFilter::parse("node_*").unwrap();
        assert!(nodes.matches(&t("node_started")));
        assert!(nodes.matches(&t("node_failed")));
        assert!(!nodes.matches(&t("node")));
        assert!(!nodes.matches(&t("tool_started")));
        let runs = EventTypeFilter::parse("agent_invocation_*").unwrap();
        assert!(runs.matches(&t("agent_invocation_error")));
        assert_eq!(runs.to_string(), "agent_invocation_*");
        assert!(EventTypeFilter::parse("tool-*").unwrap().matches(&t("tool-done")));
    }

    #[test]
    fn malformed_filters_are_refused() {
        for bad in [
            "",
            "agent*",
            "*.run",
            "agent.*.x",
            "a..b",
            "agent.**",
            "_*",
            "a._*",
            "-*",
        ] {
            assert!(EventTypeFilter::parse(bad).is_err(), "{bad}");
        }
    }
}
