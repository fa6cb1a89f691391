//! The lane rules: keys, places, positions, waiting, the marker.

use super::*;
use serde_json::json;

const T0: i64 = 1_795_935_600_000;

#[test]
fn keys_come_from_the_sdks_fields_or_the_ordering_key() {
    let data = json!({"run_id": "r-1", "thread_id": 42, "seq": 7});
    assert_eq!(
        keys_of(&data, None),
        Keys {
            run: Some("r-1".into()),
            thread: Some("42".into()),
            seq: Some(7)
        }
    );
    let k = keys_of(&data, Some("order-9"));
    assert_eq!(
        (k.run.as_deref(), k.thread.as_deref()),
        (Some("order-9"), Some("order-9"))
    );
    let none = keys_of(&json!({"run_id": null, "thread_id": "", "seq": 0}), None);
    assert_eq!(none, Keys::default());
    assert_eq!(keys_of(&json!([1, 2]), None), Keys::default());
    assert!(keys_of(&json!({"run_id": "x".repeat(257)}), None).run.is_none());
}

#[test]
fn ingest_gives_positions_in_request_order_and_a_runs_seq_stands() {
    let asked = |data: Value| asked(keys_of(&data, None)).unwrap();
    let mut orders = vec![
        asked(json!({"run_id": "a", "thread_id": "t"})),
        asked(json!({"run_id": "b", "thread_id": "t", "seq": 4})),
        asked(json!({"run_id": "a", "thread_id": "t"})),
    ];
    let wanted = wanted(&orders);
    assert_eq!(
        wanted,
        vec![
            ((OrderingMode::Run, "a".to_owned()), 2),
            ((OrderingMode::Thread, "t".to_owned()), 3)
        ]
    );
    // GIVEN the run's counter gave 10, and the thread's could not be reached
    assign(&mut orders, &[((OrderingMode::Run, "a".to_owned()), 10)]);
    let runs: Vec<u64> = orders.iter().map(|o| o.run.as_ref().unwrap().position).collect();
    assert_eq!(runs, vec![10, 4, 11]);
    assert!(orders.iter().all(|o| o.thread.is_none()), "not ordered by thread");
    assert_eq!(super::asked(keys_of(&json!({"x": 1}), None)), None);
}

#[test]
fn a_delivery_takes_its_events_place_for_its_endpoints_mode() {
    let order = Order {
        run: Some(Place {
            key: "r".into(),
            position: 3,
        }),
        thread: None,
    };
    let p = LanePlace::of(Some(&order), OrderingMode::Run).unwrap();
    assert_eq!((p.key.as_str(), p.position), ("r", 3));
    assert_eq!(LanePlace::of(Some(&order), OrderingMode::Thread), None);
    assert_eq!(LanePlace::of(Some(&order), OrderingMode::None), None);
    assert_eq!(LanePlace::of(None, OrderingMode::Run), None);
}

fn lane(next: u64, since_ms: i64, head: bool) -> LaneState {
    LaneState {
        next,
        next_since: Timestamp::from_unix_millis(T0 + since_ms),
        head: head.then(|| EventKey::of_default(&crate::EventId::parse("evt_head").unwrap())),
    }
}

#[test]
fn a_waiting_delivery_parks_then_skips_a_gap_or_asks_after_a_stuck_head() {
    let now = Timestamp::from_unix_millis(T0 + 60_000);
    assert_eq!(
        waiting(&lane(2, 0, false), 3, now),
        Waiting::Park {
            until: now.saturating_add(GAP)
        }
    );
    assert_eq!(
        waiting(&lane(2, 0, true), 6, now),
        Waiting::Park {
            until: now.saturating_add(GAP * 4)
        }
    );
    let late = Timestamp::from_unix_millis(T0 + GAP.as_millis() as i64);
    assert_eq!(waiting(&lane(2, 0, false), 3, late), Waiting::SkipGap);
    assert!(matches!(waiting(&lane(2, 0, true), 3, late), Waiting::AskHead(_)));
}

#[test]
fn the_previous_failed_marker_closes_the_envelope() {
    let marked = mark_previous_failed(br#"{"id":"evt_1","data":{}}"#);
    let v: Value = serde_json::from_slice(&marked).unwrap();
    assert_eq!(v["previous_failed"], true);
    assert_eq!(v["id"], "evt_1");
}

#[test]
fn modes_read_back_from_their_names() {
    for m in [OrderingMode::None, OrderingMode::Run, OrderingMode::Thread] {
        assert_eq!(OrderingMode::parse(m.as_str()), Some(m));
    }
    assert_eq!(OrderingMode::parse("fifo"), None);
}
