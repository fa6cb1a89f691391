//! An event id is the sender's promise that two bodies under it are one event: a copy
//! may be re-sent (and is delivered once), but another event under a taken id is a
//! conflict. Ingest answers it with a 409 when the id is already stored; a conflicting
//! copy that reaches delivery first (sent before the first one was stored) is not
//! delivered, and is kept as a dead letter where the operator sees it.
//!
//! Only what the sender means by the event counts: its `event_type` and `data`. The
//! `timestamp` is Hookline's when the sender gave none, so a re-send may differ in it.

use crate::event::Event;
use crate::problem::{FieldProblem, Problem};

/// What differs between the stored event and the one sent under its id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conflict {
    pub event_type: bool,
    pub data: bool,
}

impl Conflict {
    /// The conflict between the event stored under an id and another sent under it,
    /// if they are not one event.
    pub fn between(stored: &Event, sent: &Event) -> Option<Self> {
        let c = Self {
            event_type: stored.event_type != sent.event_type,
            // Checked-in data is compared by its digest (`crate::claim_check`).
            data: stored.data != sent.data
                || stored.data_ref.as_ref().map(|r| &r.sha256) != sent.data_ref.as_ref().map(|r| &r.sha256),
        };
        (c.event_type || c.data).then_some(c)
    }

    /// The fields that differ, as the sender named them.
    pub fn fields(self) -> Vec<&'static str> {
        [("event_type", self.event_type), ("data", self.data)]
            .into_iter()
            .filter_map(|(name, differs)| differs.then_some(name))
            .collect()
    }

    /// "`event_type` and `data` differ from …": what a person reads.
    pub fn describe(self, sent: &Event) -> String {
        let fields: Vec<String> = self.fields().iter().map(|f| format!("`{f}`")).collect();
        format!(
            "event id `{}` is taken by another event: its {} {} from this one's; \
             re-send an event under its own id, or this one unchanged",
            sent.id,
            fields.join(" and "),
            if fields.len() == 1 { "differs" } else { "differ" },
        )
    }

    /// The field problems of this conflict, under `at` (the event's pointer in the body).
    pub fn problems(self, at: &str) -> Vec<FieldProblem> {
        self.fields()
            .into_iter()
            .map(|f| {
                FieldProblem::new(
                    format!("{at}/{f}"),
                    "differs from the event already sent under this id",
                )
            })
            .collect()
    }

    /// The 409 for one event.
    pub fn problem(self, sent: &Event) -> Problem {
        let mut p = Problem::conflict(self.describe(sent));
        p.errors = self.problems("");
        p
    }

    /// The dead letter's reason for a conflicting copy that reached delivery.
    pub fn dead_letter_reason(self, sent: &Event) -> String {
        format!("conflict: {}; this copy was not delivered", self.describe(sent))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventType;
    use crate::ids::EventId;
    use crate::timestamp::Timestamp;
    use serde_json::json;

    fn event(event_type: &str, data: serde_json::Value, at: i64) -> Event {
        Event {
            id: EventId::parse("run-1:node-3").unwrap(),
            tenant_id: Default::default(),
            event_type: EventType::parse(event_type).unwrap(),
            data,
            timestamp: Timestamp::from_unix_millis(at),
            source: "hookline".into(),
            version: "1".into(),
            expires_at: None,
            collapse_key: None,
            data_ref: None,
            order: None,
        }
    }

    #[test]
    fn the_same_event_re_sent_later_is_no_conflict() {
        let first = event(
            "agent.node.finished",
            json!({"node": "plan", "tokens": 1.5}),
            1_000,
        );
        let again = event(
            "agent.node.finished",
            json!({"tokens": 1.5, "node": "plan"}),
            9_000,
        );
        assert_eq!(Conflict::between(&first, &again), None);
    }

    #[test]
    fn another_type_or_other_data_under_one_id_is_a_conflict_that_names_them() {
        let first = event("agent.node.finished", json!({"node": "plan"}), 1_000);
        let other_data = event("agent.node.finished", json!({"node": "act"}), 1_000);
        let other_both = event("agent.tool.failed", json!({"node": "act"}), 1_000);

        let c = Conflict::between(&first, &other_data).expect("a conflict");
        assert_eq!(c.fields(), ["data"]);
        assert!(
            c.describe(&other_data).contains("its `data` differs"),
            "{}",
            c.describe(&other_data)
        );

        let c = Conflict::between(&first, &other_both).expect("a conflict");
        assert_eq!(c.fields(), ["event_type", "data"]);
        let p = c.problem(&other_both);
        assert_eq!(p.status, 409);
        assert!(p.detail.contains("`run-1:node-3`") && p.detail.contains("`event_type` and `data` differ"));
        let pointers: Vec<&str> = p.errors.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(pointers, ["/event_type", "/data"]);
        assert_eq!(c.problems("/events/2")[0].pointer, "/events/2/event_type");
    }
}
