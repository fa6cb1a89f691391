//! An SQS batch in and its response out: each record's body read as work (a packed
//! record carries several events), copies of one event in the batch handled once, and
//! each record kept, hidden or deleted by what became of its works.

use crate::fan_out::AttemptedFanOut;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsMessage};
use hookline::event::Event;
use hookline::event_conflict::Conflict;
use hookline::ids::EndpointId;
use hookline::message::{self, QueueMessage};
use hookline::ops::{self, EventMessage, Report};
use hookline::ports::{PortError, Queue};
use hookline::telemetry::{Metrics, Unit};
use std::collections::HashMap;
use std::time::Duration;

/// One thing a record asks for.
pub enum Work {
    /// Fan an event out.
    Event(Event),
    /// Make a delivery's next attempt, if `wake` is still its token.
    Attempt {
        event: Event,
        endpoint_id: EndpointId,
        wake: String,
    },
    /// Make one of Hookline's own events from the fact the report names, if the store
    /// says it is so (`hookline::ops`).
    Report(Report),
    /// Not a message this version can read; kept as a dead letter for the operator.
    Unreadable { error: String },
    /// An event message with a reserved type: Hookline's own events come as reports,
    /// so this one was not made by Hookline. Kept as a dead letter (the event alone, not
    /// the others packed with it), never delivered.
    Forged { reason: String, event_json: String },
    /// A message type this version does not know: a newer version's, kept for it.
    Newer,
}

/// The works of a batch, each with the records that carry it.
pub type Works = Vec<(Work, Vec<usize>)>;

/// What became of one work.
#[derive(Debug)]
pub enum Disposition {
    Done,
    /// Leave its records on the queue: SQS brings them back after their visibility
    /// timeout.
    Redeliver(PortError),
    /// Hide its records this long, then SQS brings them back.
    Sleep(Duration),
    /// Its attempts are made; done once its deliveries are written, which happens for
    /// many fan-outs at once.
    Record(Box<AttemptedFanOut>),
}

/// What becomes of a record: returned beats hidden beats deleted, and a longer hide
/// wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Fate {
    Delete,
    Hide(Duration),
    Return,
}

/// How often SQS has handed the record out (1 when it does not say).
pub fn receive_count(record: &SqsMessage) -> u32 {
    record
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|c| c.parse().ok())
        .unwrap_or(1)
}

pub fn parse(record: &SqsMessage) -> Vec<Work> {
    let body = record.body.as_deref().unwrap_or("");
    match QueueMessage::from_body(body) {
        Ok(QueueMessage::EventV1 { event } | QueueMessage::EventV2 { event }) => vec![event_work(event)],
        Ok(QueueMessage::EventsV1 { events }) => events.into_iter().map(event_work).collect(),
        Ok(QueueMessage::ReportV1 { report }) => vec![Work::Report(report)],
        Ok(
            QueueMessage::AttemptV1 {
                event,
                endpoint_id,
                wake,
            }
            | QueueMessage::AttemptV2 {
                event,
                endpoint_id,
                wake,
            },
        ) => vec![Work::Attempt {
            event,
            endpoint_id,
            wake,
        }],
        Err(_) if message::is_unknown_type(body) => vec![Work::Newer],
        Err(e) => {
            // Not ours or corrupt: no retry can fix it. It is named, not shown: its body
            // goes to the dead letter, which the operator reads through the API.
            tracing::error!(
                message_id = record.message_id.as_deref().unwrap_or(""),
                error = %e,
                body_bytes = body.len(),
                "an unreadable queue message; it is kept as a dead letter"
            );
            Metrics::new()
                .metric("UnreadableMessages", 1.0, Unit::Count)
                .emit();
            vec![Work::Unreadable { error: e.to_string() }]
        }
    }
}

fn event_work(event: Event) -> Work {
    match ops::event_message(&event) {
        EventMessage::Client => Work::Event(event),
        EventMessage::Report(report) => Work::Report(report),
        EventMessage::Forged(reason) => {
            tracing::error!(event_id = %event.id, event_type = %event.event_type, "an event message with a reserved type; it is kept as a dead letter");
            Work::Forged {
                reason,
                event_json: event.envelope_json(),
            }
        }
    }
}

/// The batch's works: copies of one event are one work, which shares its outcome with
/// every record that carries it. Another event under the same id is a work of its own,
/// so that its claim finds the conflict (`hookline::event_conflict`).
pub fn works(records: &[SqsMessage]) -> Works {
    let mut works: Works = Vec::new();
    let mut by_event: HashMap<String, Vec<usize>> = HashMap::new();
    for (at, record) in records.iter().enumerate() {
        for work in parse(record) {
            match work {
                Work::Event(event) => {
                    let same = by_event.entry(event.id.to_string()).or_default();
                    let copy_of = same.iter().copied().find(
                        |&g| matches!(&works[g].0, Work::Event(e) if Conflict::between(e, &event).is_none()),
                    );
                    match copy_of {
                        Some(g) if !works[g].1.contains(&at) => works[g].1.push(at),
                        Some(_) => {}
                        None => {
                            same.push(works.len());
                            works.push((Work::Event(event), vec![at]));
                        }
                    }
                }
                other => works.push((other, vec![at])),
            }
        }
    }
    works
}

/// The batch response: a record stays as long as any of its works wants it to; a
/// sleeping one is hidden first, on the queue it came from.
pub async fn respond<'q, Q: Queue + 'q>(
    records: &[SqsMessage],
    works: &Works,
    outcomes: Vec<Disposition>,
    queue_of: impl Fn(&SqsMessage) -> &'q Q,
) -> SqsBatchResponse {
    let mut fates = vec![Fate::Delete; records.len()];
    for ((_, at), outcome) in works.iter().zip(outcomes) {
        let fate = match outcome {
            Disposition::Done => Fate::Delete,
            Disposition::Redeliver(e) => {
                tracing::warn!(error = %e, "leaving the message for SQS to bring back");
                Fate::Return
            }
            Disposition::Sleep(d) => Fate::Hide(d),
            // Every fan-out is settled before the response.
            Disposition::Record(_) => Fate::Return,
        };
        for &i in at {
            fates[i] = fates[i].max(fate);
        }
    }
    let mut response = SqsBatchResponse::default();
    for (record, fate) in records.iter().zip(fates) {
        match fate {
            Fate::Delete => continue,
            Fate::Return => {}
            Fate::Hide(d) => {
                let receipt = record.receipt_handle.as_deref().unwrap_or_default();
                if let Err(e) = queue_of(record)
                    .hide(receipt, d.max(Duration::from_secs(1)))
                    .await
                {
                    tracing::warn!(error = %e, "could not hide the message; it returns after the queue's visibility timeout");
                }
            }
        }
        response.add_failure(record.message_id.clone().unwrap_or_default());
    }
    response
}
