//! Ordered lanes: an endpoint with `ordering: run` (or `thread`) gets each run's (or
//! thread's) events one after another in their order, after retries too; other runs
//! go on beside it.
//!
//! An event's place in a lane is its key (`ordering_key`, else the SDK's
//! `data.run_id` / `data.thread_id`) and its position: in a run, the SDK's `data.seq`
//! when it gives one, else the order ingest took it in (a counter per key); in a
//! thread, always ingest's order. Positions count from 1 without gaps, so a delivery
//! knows whether its predecessor is still to come.
//!
//! A lane is one item per (endpoint, mode, key) holding the position whose turn it is
//! (`next`). A delivery goes when its position is `next`; otherwise it is parked
//! (pending, no message) and named in the lane, and the end of its predecessor wakes
//! it. A predecessor that ends (delivered, failed by its policy, expired, superseded)
//! moves the lane on; a failed one marks its successor `previous_failed`. A position
//! that never arrives (an event lost before the queue, a retried request's unused
//! positions) is skipped after [`GAP`], counted as failed; the sweeper's re-drive of
//! the parked delivery is what notices it.

use crate::event::EventKey;
use crate::timestamp::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;

/// How long a lane waits for a position that has not arrived before it skips it:
/// longer than a lost message takes to come back (the queue's 720 s visibility).
pub const GAP: Duration = Duration::from_secs(900);
/// The longest key, in bytes.
pub const MAX_KEY_BYTES: usize = 256;

/// An endpoint's `ordering`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderingMode {
    #[default]
    None,
    Run,
    Thread,
}

impl OrderingMode {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(Self::None),
            "run" => Some(Self::Run),
            "thread" => Some(Self::Thread),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Run => "run",
            Self::Thread => "thread",
        }
    }
}

/// An event's place in one kind of lane.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Place {
    pub key: String,
    pub position: u64,
}

/// An event's places, as ingest gave them; sent to receivers too, so that they can
/// see a gap for themselves.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Order {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<Place>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread: Option<Place>,
}

impl Order {
    pub fn is_empty(&self) -> bool {
        self.run.is_none() && self.thread.is_none()
    }

    pub fn place(&self, mode: OrderingMode) -> Option<&Place> {
        match mode {
            OrderingMode::None => None,
            OrderingMode::Run => self.run.as_ref(),
            OrderingMode::Thread => self.thread.as_ref(),
        }
    }
}

/// What an event names its lanes by, as sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Keys {
    pub run: Option<String>,
    pub thread: Option<String>,
    /// Its position in its run, when the producer counts (the SDK's `data.seq`).
    pub seq: Option<u64>,
}

/// The keys of an event with this `data` and top-level `ordering_key`: the
/// `ordering_key` is both its run's and its thread's key when given.
pub fn keys_of(data: &Value, ordering_key: Option<&str>) -> Keys {
    let given = ordering_key.map(str::to_owned);
    Keys {
        run: given.clone().or_else(|| key_of(data.get("run_id"))),
        thread: given.or_else(|| key_of(data.get("thread_id"))),
        seq: data.get("seq").and_then(Value::as_u64).filter(|n| *n > 0),
    }
}

/// A key from a string or an integer; anything else (null, empty, too long, with
/// control characters) names no lane.
fn key_of(v: Option<&Value>) -> Option<String> {
    let k = match v? {
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_u64() || n.is_i64() => n.to_string(),
        _ => return None,
    };
    check_key(&k).ok().map(|()| k)
}

/// Whether `k` may name a lane.
pub fn check_key(k: &str) -> Result<(), String> {
    if k.is_empty() || k.len() > MAX_KEY_BYTES {
        return Err(format!("must be 1 to {MAX_KEY_BYTES} bytes long"));
    }
    if k.chars().any(char::is_control) {
        return Err("must not hold control characters".into());
    }
    Ok(())
}

/// The places an event asks for, as it enters: in its run at its `seq` when the
/// producer counts, else (and in its thread always) at position 0, which ingest fills
/// from its counters ([`assign`]) before the event is queued.
pub fn asked(keys: Keys) -> Option<Order> {
    let order = Order {
        run: keys.run.map(|key| Place {
            key,
            position: keys.seq.unwrap_or(0),
        }),
        thread: keys.thread.map(|key| Place { key, position: 0 }),
    };
    (!order.is_empty()).then_some(order)
}

/// A sequence positions are taken from: a (mode, key) of one tenant.
pub type Sequence = (OrderingMode, String);

/// The sequences a request's events need positions from, each with how many, in the
/// order they first appear.
pub fn wanted<'a>(orders: impl IntoIterator<Item = &'a Order>) -> Vec<(Sequence, u64)> {
    let mut out: Vec<(Sequence, u64)> = Vec::new();
    for order in orders {
        for (mode, place) in [
            (OrderingMode::Run, &order.run),
            (OrderingMode::Thread, &order.thread),
        ] {
            let Some(p) = place.as_ref().filter(|p| p.position == 0) else {
                continue;
            };
            match out.iter_mut().find(|((m, k), _)| *m == mode && *k == p.key) {
                Some((_, n)) => *n += 1,
                None => out.push(((mode, p.key.clone()), 1)),
            }
        }
    }
    out
}

/// Gives each place still at 0 the next of its sequence's positions, in request order,
/// from the first position taken for it (`taken`); a place whose sequence has none
/// (its counter could not be reached) is dropped: that event is not ordered there.
pub fn assign<'a>(orders: impl IntoIterator<Item = &'a mut Order>, taken: &[(Sequence, u64)]) {
    let mut next: Vec<(Sequence, u64)> = taken.to_vec();
    for order in orders {
        for (mode, place) in [
            (OrderingMode::Run, &mut order.run),
            (OrderingMode::Thread, &mut order.thread),
        ] {
            let Some(p) = place.as_mut().filter(|p| p.position == 0) else {
                continue;
            };
            match next.iter_mut().find(|((m, k), _)| *m == mode && *k == p.key) {
                Some((_, at)) => {
                    p.position = *at;
                    *at += 1;
                }
                None => *place = None,
            }
        }
    }
}

/// Where a delivery stands in its endpoint's lane; kept with the delivery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LanePlace {
    pub mode: OrderingMode,
    pub key: String,
    pub position: u64,
    /// The event before it in the lane was not delivered (it failed, or never came).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub previous_failed: bool,
}

impl LanePlace {
    /// The place a delivery of an event with `order` to an endpoint in `mode` takes.
    pub fn of(order: Option<&Order>, mode: OrderingMode) -> Option<Self> {
        let p = order?.place(mode)?;
        Some(Self {
            mode,
            key: p.key.clone(),
            position: p.position,
            previous_failed: false,
        })
    }
}

/// A lane as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaneState {
    /// The position whose turn it is.
    pub next: u64,
    /// Since when.
    pub next_since: Timestamp,
    /// The event at `next`, once its delivery has taken the turn.
    pub head: Option<EventKey>,
}

/// What a delivery asking for its turn hears.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Turn {
    /// Its turn (given now, or held already), and whether the event before it failed.
    Go { previous_failed: bool },
    /// Not yet: the lane as it stands.
    Wait(LaneState),
    /// Its position was skipped before it came: it goes at once, out of the lane.
    Passed,
}

/// An endpoint ordered by `mode`, as ingest needs to know it: whose, and which events
/// it takes (never its secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderedEndpoint {
    pub tenant_id: crate::ids::TenantId,
    pub mode: OrderingMode,
    pub event_types: Vec<crate::matching::EventTypeFilter>,
}

impl OrderedEndpoint {
    pub fn takes(&self, event: &crate::event::Event, mode: OrderingMode) -> bool {
        self.mode == mode
            && self.tenant_id == event.tenant_id
            && self.event_types.iter().any(|f| f.matches(&event.event_type))
    }
}

/// Keeps only the places some ordered endpoint will use: an event's place by run (or
/// thread) stays when an endpoint of its tenant ordered so takes it.
pub fn keep_used(event: &mut crate::event::Event, ordered: &[OrderedEndpoint]) {
    let used = |mode| ordered.iter().any(|o| o.takes(event, mode));
    let (run, thread) = (used(OrderingMode::Run), used(OrderingMode::Thread));
    if let Some(order) = event.order.as_mut() {
        if !run {
            order.run = None;
        }
        if !thread {
            order.thread = None;
        }
        if order.is_empty() {
            event.order = None;
        }
    }
}

/// What ending a turn did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TurnEnded {
    /// The lane moved on; what waits at the next position, if anything.
    Moved(Option<Waiter>),
    /// The lane is not there yet: the end is kept for when it is.
    Kept,
    /// The lane is past it: nothing to do.
    Behind,
}

/// What waits at a position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Waiter {
    /// A parked delivery of this event, to wake.
    Event(EventKey),
    /// A delivery that ended before its turn came (`failed`: not delivered).
    Ended { failed: bool },
}

/// What a delivery that must wait does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Waiting {
    /// Parks until its predecessor ends, or until `until` (then the sweeper brings it
    /// back to look again).
    Park { until: Timestamp },
    /// The position whose turn it is has not come for [`GAP`]: skip to this one.
    SkipGap,
    /// The head has held the lane for [`GAP`]: whether it has ended (by a way that did
    /// not move the lane) is for its delivery to say.
    AskHead(EventKey),
}

/// What a delivery at `position` does while `lane` is not at it.
pub fn waiting(lane: &LaneState, position: u64, now: Timestamp) -> Waiting {
    let waited = now.since(lane.next_since);
    match &lane.head {
        Some(head) if waited >= GAP => Waiting::AskHead(head.clone()),
        None if waited >= GAP => Waiting::SkipGap,
        // The nearest looks again after the gap; those further behind later (each is
        // woken by its predecessor's end anyway), at most a day.
        _ => {
            let behind = u32::try_from(position.saturating_sub(lane.next)).unwrap_or(u32::MAX);
            let wait = (GAP * behind.clamp(1, 96)).min(Duration::from_secs(86_400));
            Waiting::Park {
                until: now.saturating_add(wait),
            }
        }
    }
}

/// The body an ordered endpoint is sent for a delivery whose predecessor failed:
/// the envelope with `"previous_failed": true` at its end.
pub fn mark_previous_failed(envelope: &[u8]) -> bytes::Bytes {
    match envelope.strip_suffix(b"}") {
        Some(open) => {
            let mut out = Vec::with_capacity(envelope.len() + 24);
            out.extend_from_slice(open);
            out.extend_from_slice(br#","previous_failed":true}"#);
            bytes::Bytes::from(out)
        }
        None => bytes::Bytes::copy_from_slice(envelope),
    }
}

#[cfg(test)]
mod tests;
