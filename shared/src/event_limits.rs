//! The limits on an event, applied where it enters (ingest's three routes) and nowhere
//! else, so that whatever is accepted can always be queued, stored, read back and
//! delivered: a JSON reader refuses input nested deeper than 128 levels, and an event
//! travels inside a queue message (three levels more) and a stored envelope (one more).

use crate::problem::FieldProblem;
use serde_json::Value;

/// How deep an event's `data` may nest (arrays and objects).
pub const MAX_DATA_DEPTH: usize = 64;

/// How deep a value nests: 0 for a scalar, one more than its deepest member for an
/// array or object. Iterative, so that no input can exhaust the stack.
pub fn depth(v: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(v, 0usize)];
    while let Some((v, above)) = stack.pop() {
        let members: Box<dyn Iterator<Item = &Value>> = match v {
            Value::Array(a) => Box::new(a.iter()),
            Value::Object(o) => Box::new(o.values()),
            _ => continue,
        };
        let here = above + 1;
        deepest = deepest.max(here);
        stack.extend(members.map(|m| (m, here)));
    }
    deepest
}

/// The problem with `data` at `pointer`, if it nests deeper than the limit.
pub fn too_deep(data: &Value, pointer: &str) -> Option<FieldProblem> {
    let d = depth(data);
    (d > MAX_DATA_DEPTH).then(|| {
        FieldProblem::new(
            pointer,
            format!("nests {d} levels deep; at most {MAX_DATA_DEPTH} are allowed"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn nested(levels: usize) -> Value {
        let mut v = json!("leaf");
        for i in 0..levels {
            v = if i % 2 == 0 { json!([v]) } else { json!({ "k": v }) };
        }
        v
    }

    #[test]
    fn depth_counts_nested_arrays_and_objects() {
        assert_eq!(depth(&json!(1)), 0);
        assert_eq!(depth(&json!([])), 1);
        assert_eq!(depth(&json!({"a": [1, {"b": []}], "c": 2})), 4);
        assert_eq!(depth(&nested(126)), 126);
    }

    #[test]
    fn data_at_the_limit_passes_and_one_level_more_is_refused_naming_the_limit() {
        assert!(too_deep(&nested(MAX_DATA_DEPTH), "/data").is_none());
        let p = too_deep(&nested(MAX_DATA_DEPTH + 1), "/events/3/data").expect("refused");
        assert_eq!(p.pointer, "/events/3/data");
        assert_eq!(p.detail, "nests 65 levels deep; at most 64 are allowed");
    }

    mod round_trip {
        use super::*;
        use crate::event::Event;
        use crate::event_input::parse_event;
        use crate::message::{QueueMessage, pack};
        use crate::timestamp::Timestamp;
        use proptest::prelude::*;

        /// Any JSON value: a small tree of every kind of member, wrapped in up to 130
        /// levels of arrays and objects, so that both sides of every limit are met.
        fn json_value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                any::<u64>().prop_map(Value::from),
                any::<f64>()
                    .prop_filter("JSON has no NaN or infinity", |f| f.is_finite())
                    .prop_map(Value::from),
                any::<String>().prop_map(Value::from),
            ];
            let tree = leaf.prop_recursive(4, 32, 4, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                    prop::collection::btree_map(any::<String>(), inner, 0..4)
                        .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            });
            (tree, 0usize..130, any::<u64>()).prop_map(|(mut v, levels, kinds)| {
                for i in 0..levels {
                    v = if kinds.rotate_left(i as u32) & 1 == 0 {
                        json!([v])
                    } else {
                        json!({ "k": v })
                    };
                }
                v
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn any_accepted_event_round_trips_through_its_queue_messages_and_its_store(
                data in json_value(),
                source in "[a-z]{1,12}",
            ) {
                // GIVEN a client's body, read as ingest reads it
                let body = json!({"event_type": "agent.node.completed", "data": data, "source": source}).to_string();
                let Ok(value) = serde_json::from_str::<Value>(&body) else {
                    // Refused at the door as malformed (too deep for any JSON reader).
                    return Ok(());
                };
                let mut errors = Vec::new();
                let accepted = parse_event(&value, "", Timestamp::from_unix_millis(0), &mut errors);
                prop_assert_eq!(accepted.is_some(), depth(&value["data"]) <= MAX_DATA_DEPTH, "{:?}", errors);
                let Some(event) = accepted else { return Ok(()) };
                prop_assert_eq!(&event.data, &value["data"], "accepted as sent");

                // THEN every message that carries it is read back as it went, by delivery and the sweeper
                let mut twin = event.clone();
                twin.id = crate::ids::EventId::generate();
                let mut messages = vec![QueueMessage::EventV1 { event: event.clone() }];
                messages.extend(pack(vec![(0, event.clone()), (1, twin)]).into_iter().map(|(_, m)| m));
                messages.push(QueueMessage::AttemptV1 {
                    event: event.clone(),
                    endpoint_id: crate::ids::EndpointId::generate(),
                    wake: "w".into(),
                });
                for m in messages {
                    let back = QueueMessage::from_body(&m.to_body());
                    prop_assert!(back.is_ok(), "{:?}", back.err());
                    prop_assert_eq!(back.ok(), Some(m));
                }
                // AND its stored envelope reads back as it went
                let stored: Result<Event, _> = serde_json::from_str(&event.envelope_json());
                prop_assert!(stored.is_ok(), "{:?}", stored.as_ref().err());
                prop_assert_eq!(stored.ok(), Some(event));
            }
        }
    }
}
