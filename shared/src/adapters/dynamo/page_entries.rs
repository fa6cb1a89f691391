//! A delivery that ended at its first attempt, as its entry in a page
//! (`super::pages`): compact JSON, its times counted from its id's. What the page
//! itself says (the id's batch and time, the endpoint, the tenant) is not repeated.

use crate::delivery::{Attempt, AttemptOutcome, Delivery, DeliveryStatus, TransportError};
use crate::event::EventType;
use crate::ids::{DeliveryId, EndpointId, EventId, TenantId};
use crate::ports::{PortError, PortResult};
use crate::timestamp::Timestamp;
use serde::{Deserialize, Serialize};

/// `[event id, event type, status, max attempts, created, updated, first attempt,
/// rest]`: positional, since a page holds a batch's entries and each byte of them is
/// billed. `created` counts from the id's time, `updated` from `created`; the first
/// attempt and the rest may be `null`.
#[derive(Serialize, Deserialize)]
struct Entry(
    EventId,
    EventType,
    DeliveryStatus,
    u32,
    i64,
    i64,
    Option<EntryAttempt>,
    Option<Rest>,
);

/// `[started (from created), duration ms, response status or null, response body or
/// the error's message]`.
#[derive(Serialize, Deserialize)]
struct EntryAttempt(i64, u64, Option<u16>, String);

/// What most entries do not need: what differs from the usual (one attempt, numbered
/// 1, whose status is the last), and the reasons a failure gives.
#[derive(Default, PartialEq, Serialize, Deserialize)]
struct Rest {
    /// Attempts made, when not the one the entry holds (or none without it).
    #[serde(rename = "n", default, skip_serializing_if = "Option::is_none")]
    attempts: Option<u32>,
    /// The first attempt's number, when not 1.
    #[serde(rename = "an", default, skip_serializing_if = "Option::is_none")]
    attempt_number: Option<u32>,
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
    retry_after_seconds: Option<u64>,
    #[serde(rename = "k", default, skip_serializing_if = "Option::is_none")]
    error: Option<TransportError>,
    #[serde(rename = "x", default, skip_serializing_if = "Option::is_none")]
    next_attempt_at: Option<i64>,
    /// The last status, when not the first attempt's (`null` for none).
    #[serde(
        rename = "lc",
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    last_status_code: Option<Option<u16>>,
    #[serde(rename = "le", default, skip_serializing_if = "Option::is_none")]
    last_error: Option<String>,
    #[serde(rename = "fr", default, skip_serializing_if = "Option::is_none")]
    failure_reason: Option<String>,
}

/// A field that is there, `null` or not (serde reads a `null` as absent otherwise).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<u16>>, D::Error> {
    Option::<u16>::deserialize(d).map(Some)
}

/// `d`'s entry, with its first attempt if it made one.
pub(super) fn encode(d: &Delivery, first: Option<&Attempt>) -> String {
    let base = d.id.made_at_millis().unwrap_or(0);
    let created = d.created_at.unix_millis();
    let mut rest = Rest {
        next_attempt_at: d.next_attempt_at.map(Timestamp::unix_millis),
        last_error: d.last_error.clone(),
        failure_reason: d.failure_reason.clone(),
        ..Rest::default()
    };
    let mut answered = None;
    let attempt = first.map(|a| {
        let (status, body) = match &a.outcome {
            AttemptOutcome::Response {
                status,
                body,
                retry_after_seconds,
            } => {
                rest.retry_after_seconds = *retry_after_seconds;
                (Some(*status), body.clone())
            }
            AttemptOutcome::Error { error, message } => {
                rest.error = Some(*error);
                (None, message.clone())
            }
        };
        answered = status;
        rest.attempt_number = (a.number != 1).then_some(a.number);
        EntryAttempt(a.started_at.unix_millis() - created, a.duration_ms, status, body)
    });
    if d.attempts != u32::from(first.is_some()) {
        rest.attempts = Some(d.attempts);
    }
    if d.last_status_code != answered {
        rest.last_status_code = Some(d.last_status_code);
    }
    let entry = Entry(
        d.event_id.clone(),
        d.event_type.clone(),
        d.status,
        d.max_attempts,
        created - base,
        d.updated_at.unix_millis() - created,
        attempt,
        (rest != Rest::default()).then_some(rest),
    );
    // Strings, numbers and options of them: it always serializes.
    serde_json::to_string(&entry).unwrap_or_default()
}

/// The delivery an entry holds, with its first attempt, given what its page says.
pub(super) fn decode(
    json: &str,
    id: DeliveryId,
    endpoint_id: EndpointId,
    tenant_id: TenantId,
) -> PortResult<(Delivery, Option<Attempt>)> {
    let Entry(event_id, event_type, status, max_attempts, created, updated, attempt, rest) =
        serde_json::from_str(json).map_err(|e| {
            PortError::permanent("read stored delivery", format!("a page entry is invalid: {e}")).caused_by(e)
        })?;
    let rest = rest.unwrap_or_default();
    let created = id.made_at_millis().unwrap_or(0) + created;
    let answered = attempt.as_ref().and_then(|a| a.2);
    let made = u32::from(attempt.is_some());
    let first = attempt.map(|EntryAttempt(started, duration_ms, status, body)| Attempt {
        number: rest.attempt_number.unwrap_or(1),
        started_at: Timestamp::from_unix_millis(created + started),
        duration_ms,
        outcome: match status {
            Some(status) => AttemptOutcome::Response {
                status,
                body,
                retry_after_seconds: rest.retry_after_seconds,
            },
            None => AttemptOutcome::Error {
                error: rest.error.unwrap_or(TransportError::Other),
                message: body,
            },
        },
    });
    let d = Delivery {
        id,
        tenant_id,
        event_id,
        endpoint_id,
        event_type,
        status,
        attempts: rest.attempts.unwrap_or(made),
        max_attempts,
        next_attempt_at: rest.next_attempt_at.map(Timestamp::from_unix_millis),
        last_status_code: rest.last_status_code.unwrap_or(answered),
        last_error: rest.last_error,
        failure_reason: rest.failure_reason,
        wake: None,
        order: None,
        created_at: Timestamp::from_unix_millis(created),
        updated_at: Timestamp::from_unix_millis(created + updated),
    };
    Ok((d, first))
}

/// The event an entry names and when its first attempt started (unix ms), given the
/// sort key of the page it was written to; `None` for what is not an entry with an
/// attempt. For what watches the table's writes (`make bench`'s counting proxy).
pub fn first_attempt_in_page(page_sk: &str, entry: &str) -> Option<(String, i64)> {
    let ms: i64 = page_sk.split_once('#')?.0.parse().ok()?;
    let Entry(event_id, _, _, _, created, _, attempt, _) = serde_json::from_str(entry).ok()?;
    Some((event_id.to_string(), ms + created + attempt?.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id_batch::DeliveryIdBatch;
    use crate::retry::RetryPolicy;

    const T0: i64 = 1_795_935_600_000;

    fn attempted(outcome: AttemptOutcome) -> (Delivery, Attempt) {
        let ep = EndpointId::generate();
        let id = DeliveryIdBatch::new(Timestamp::from_unix_millis(T0))
            .for_targets([&ep])
            .remove(0);
        let mut d = Delivery::new(
            EventId::parse("run-1:node-3").unwrap(),
            ep,
            EventType::parse("agent.run.completed").unwrap(),
            5,
            Timestamp::from_unix_millis(T0 + 7),
        );
        d.id = id;
        let verdict = RetryPolicy::with_max_attempts(1).judge(1, &outcome, 0.5);
        d.apply(&outcome, &verdict, Timestamp::from_unix_millis(T0 + 40));
        let a = Attempt {
            number: 1,
            started_at: Timestamp::from_unix_millis(T0 + 9),
            duration_ms: 31,
            outcome,
        };
        (d, a)
    }

    #[test]
    fn a_delivered_webhook_reads_back_as_written_from_a_short_entry() {
        let (d, a) = attempted(AttemptOutcome::Response {
            status: 204,
            body: String::new(),
            retry_after_seconds: None,
        });
        assert_eq!(d.status, DeliveryStatus::Delivered);
        let json = encode(&d, Some(&a));
        // A page holds a batch's entries: each counts towards its write units.
        assert!(json.len() < 90, "{} bytes: {json}", json.len());
        let back = decode(&json, d.id.clone(), d.endpoint_id.clone(), d.tenant_id.clone()).unwrap();
        assert_eq!(back, (d.clone(), Some(a.clone())));
        let sk = format!("{:016}#dlv_x#0000", d.id.made_at_millis().unwrap());
        assert_eq!(
            first_attempt_in_page(&sk, &json),
            Some((d.event_id.to_string(), a.started_at.unix_millis()))
        );
        assert_eq!(first_attempt_in_page(&sk, "{}"), None);
    }

    #[test]
    fn a_failed_one_keeps_its_error_reason_and_answer_and_one_never_tried_has_no_attempt() {
        for outcome in [
            AttemptOutcome::Response {
                status: 410,
                body: "gone".into(),
                retry_after_seconds: Some(30),
            },
            AttemptOutcome::Error {
                error: TransportError::Blocked,
                message: "refused by the SSRF policy".into(),
            },
        ] {
            let (d, a) = attempted(outcome);
            assert_eq!(d.status, DeliveryStatus::Failed);
            let tenant = TenantId::parse("acme").unwrap();
            let mut d = d;
            d.tenant_id = tenant.clone();
            let json = encode(&d, Some(&a));
            let back = decode(&json, d.id.clone(), d.endpoint_id.clone(), tenant).unwrap();
            assert_eq!(back, (d.clone(), Some(a.clone())));
            let mut never = d.clone();
            never.attempts = 0;
            never.last_status_code = None;
            let back = decode(
                &encode(&never, None),
                d.id.clone(),
                d.endpoint_id.clone(),
                d.tenant_id.clone(),
            );
            assert_eq!(back.unwrap(), (never, None));
            // One answered whose last status is none, and one whose first attempt is not
            // its only one, read back as written too.
            let mut unknown = d.clone();
            unknown.last_status_code = None;
            let back = decode(
                &encode(&unknown, Some(&a)),
                d.id.clone(),
                d.endpoint_id.clone(),
                d.tenant_id.clone(),
            );
            assert_eq!(back.unwrap(), (unknown, Some(a.clone())));
            let mut more = d.clone();
            more.attempts = 2;
            more.last_status_code = Some(503);
            let back = decode(
                &encode(&more, Some(&a)),
                d.id.clone(),
                d.endpoint_id.clone(),
                d.tenant_id.clone(),
            );
            assert_eq!(back.unwrap(), (more, Some(a)));
        }
    }

    #[test]
    fn an_entry_that_is_not_one_is_a_permanent_error() {
        let (d, _) = attempted(AttemptOutcome::Response {
            status: 200,
            body: String::new(),
            retry_after_seconds: None,
        });
        let e = decode("{\"e\":1}", d.id, d.endpoint_id, d.tenant_id).unwrap_err();
        assert!(e.is_permanent());
    }
}
