//! One entry per parser that takes outside input, for the fuzz targets in `shared/fuzz`
//! (`make fuzz`) and for the regression test that replays their corpora in `make test`.
//! Each asserts what must hold for whatever the parser accepts, not only that it does
//! not crash: an accepted event crosses the queue unchanged, an accepted URL is one the
//! policy accepts again, a signature made is a signature verified.

use crate::endpoint::{Endpoint, EventTypeFilter};
use crate::endpoint_input::{apply_patch, parse_new_endpoint};
use crate::event::Event;
use crate::event_input::{batch_events, parse_event};
use crate::ids::{TenantId, TenantKeyId};
use crate::message::QueueMessage;
use crate::signing::{EndpointSecret, standard_signature_header};
use crate::ssrf::{AddressClass, METADATA, SsrfPolicy, classify, embedded_v4};
use crate::tenant_key::{KEY_PREFIX, PresentedKey};
use crate::timestamp::Timestamp;
use crate::verify::verify_webhook;
use crate::{langgraph, strict_json};
use std::net::IpAddr;

/// A parser's entry: takes any bytes, panics only when a property fails.
pub type Target = fn(&[u8]);

/// The fuzz targets, by name: the folders of `shared/fuzz/corpus`.
pub const TARGETS: &[(&str, Target)] = &[
    ("event_body", event_body),
    ("batch_body", batch_body),
    ("endpoint_body", endpoint_body),
    ("langgraph_run", langgraph_run),
    ("queue_message", queue_message),
    ("ssrf_url", ssrf_url),
    ("verify_webhook", verify),
    ("tenant_key", tenant_key),
];

const NOW: i64 = 1_795_935_600_000;
const OWN_KEY: &str = "fuzz-ingest-key-0123456789";

fn now() -> Timestamp {
    Timestamp::from_unix_millis(NOW)
}

/// An accepted event goes through its queue message and comes back the same.
fn crosses_the_queue(event: Event) {
    let body = QueueMessage::EventV1 { event }.to_body();
    let back = QueueMessage::from_body(&body).expect("an accepted event's message reads back");
    assert_eq!(back.to_body(), body, "the message reads back as it was written");
}

/// `POST /v1/events`.
pub fn event_body(data: &[u8]) {
    let Ok(v) = strict_json::parse(data) else { return };
    if let Some(event) = parse_event(&v, "", now(), &mut Vec::new()) {
        assert!(!event.event_type.is_reserved_in_any_case());
        crosses_the_queue(event);
    }
}

/// `POST /v1/events/batch`.
pub fn batch_body(data: &[u8]) {
    let Ok(v) = strict_json::parse(data) else { return };
    let Ok(events) = batch_events(&v) else { return };
    assert!(!events.is_empty() && events.len() <= crate::event_input::MAX_BATCH_EVENTS);
    for (i, e) in events.iter().enumerate() {
        if let Some(event) = parse_event(e, &format!("/events/{i}"), now(), &mut Vec::new()) {
            crosses_the_queue(event);
        }
    }
}

fn local() -> SsrfPolicy {
    SsrfPolicy::parse_allowed("127.0.0.0/8,::1/128").unwrap_or_default()
}

/// `POST /v1/endpoints` and `PATCH /v1/endpoints/{id}` (the URL's form and literal
/// addresses; names are resolved later, and never here).
pub fn endpoint_body(data: &[u8]) {
    let Ok(v) = strict_json::parse(data) else { return };
    let policy = local();
    if let Ok(e) = parse_new_endpoint(&v, &policy, now()) {
        assert!(policy.parse_destination(&e.url).is_ok(), "{}", e.url);
        assert!(crate::endpoint::check_custom_headers(e.headers.clone()).is_ok());
    }
    let mut existing = Endpoint::new(
        "fuzz".into(),
        "http://127.0.0.1:9/".into(),
        vec![EventTypeFilter::All],
        now(),
    );
    if apply_patch(&mut existing, &v, &policy, now()).is_ok() {
        assert!(
            policy.parse_destination(&existing.url).is_ok(),
            "{}",
            existing.url
        );
    }
}

/// `POST /v1/langgraph/runs`: what is accepted is delivered without Hookline's key.
pub fn langgraph_run(data: &[u8]) {
    let Ok(v) = strict_json::parse(data) else { return };
    let Ok(mut event) = langgraph::run_event(&v, now(), &[OWN_KEY]) else {
        return;
    };
    if langgraph::fit_depth(&mut event).is_ok() {
        assert!(!event.envelope_json().contains(OWN_KEY), "the key left");
        crosses_the_queue(event);
    }
}

/// A queue body, as the delivery function and the sweeper read it.
pub fn queue_message(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = crate::message::is_unknown_type(text);
    if let Ok(m) = QueueMessage::from_body(text) {
        let body = m.to_body();
        assert_eq!(
            QueueMessage::from_body(&body).ok(),
            Some(m),
            "a message reads back as written"
        );
    }
}

/// An endpoint's URL under the strict, the local and a closed policy.
pub fn ssrf_url(data: &[u8]) {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    for (policy, public) in [
        (SsrfPolicy::default(), true),
        (local(), true),
        (local().closed(), false),
    ] {
        let _ = policy.parse_destination(raw);
        let Ok(dest) = policy.parse_new_destination(raw) else {
            continue;
        };
        assert!(!raw.chars().any(|c| c.is_control() || c.is_whitespace()));
        assert_ne!(dest.as_url().port(), Some(0));
        // What passed once passes again in the form it is stored and sent in.
        assert!(
            policy.parse_new_destination(dest.as_str()).is_ok(),
            "{}",
            dest.as_str()
        );
        // An address host passes only as a public address or in an allowed range
        // (loopback, here), and never as a metadata address, whatever it carries.
        let ip = match dest.as_url().host() {
            Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
            Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
            _ => continue,
        };
        match classify(ip) {
            AddressClass::Metadata => panic!("{raw}: a metadata address passed"),
            AddressClass::Global => assert!(public, "{raw}: a public address passed a closed policy"),
            AddressClass::Special(class) => {
                assert!(ip.to_canonical().is_loopback(), "{raw}: a {class} address passed")
            }
        }
        if let IpAddr::V6(v6) = ip {
            for e in embedded_v4(v6) {
                assert!(!METADATA.contains(&IpAddr::V4(e)), "{raw}: carries {e}");
            }
        }
    }
}

/// A receiver's check: any headers and body verify or are refused, never crash; and a
/// body signed with the secret verifies.
pub fn verify(data: &[u8]) {
    let secret = EndpointSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("a valid secret");
    let mut parts = data.splitn(4, |b| *b == b'\n');
    let (id, ts, sig, body) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let mut headers = http::HeaderMap::new();
    for (name, value) in [
        ("webhook-id", id),
        ("webhook-timestamp", ts),
        ("webhook-signature", sig),
    ] {
        if let Ok(v) = http::HeaderValue::from_bytes(value) {
            headers.insert(name, v);
        }
    }
    let now_unix = NOW / 1000;
    let _ = verify_webhook(&secret, &headers, body, now_unix, 300);

    // The round trip for what Hookline sends: event ids are visible ASCII.
    let id = String::from_utf8_lossy(id).replace(['\r', '\n'], "");
    if id.bytes().all(|b| b.is_ascii_graphic())
        && let Ok(id_value) = http::HeaderValue::from_str(&id)
    {
        let signed = standard_signature_header(&[&secret], &id, now_unix, body);
        let mut good = http::HeaderMap::new();
        good.insert("webhook-id", id_value);
        good.insert("webhook-timestamp", http::HeaderValue::from(now_unix));
        good.insert(
            "webhook-signature",
            http::HeaderValue::from_str(&signed).expect("base64 is a header value"),
        );
        assert_eq!(verify_webhook(&secret, &good, body, now_unix, 300), Ok(()));
    }
}

/// A key as an API caller sends it (`Authorization: Bearer …`): read from the header or
/// refused, never a crash; an accepted tenant key is exactly its three parts (nothing
/// trimmed, normalised or dropped), its secret 1 to 64 characters of base64url, its
/// tenant and key id ids that parse again as they are, and the header gives it whole.
pub fn tenant_key(data: &[u8]) {
    let mut headers = http::HeaderMap::new();
    let mut bearer = b"Bearer ".to_vec();
    bearer.extend_from_slice(data);
    if let Ok(v) = http::HeaderValue::from_bytes(&bearer) {
        headers.insert("authorization", v);
    }
    let from_header = crate::api::presented_key(&headers);
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let Some(key) = PresentedKey::parse(raw) else {
        return;
    };
    let secret = raw.splitn(3, '.').nth(2).unwrap_or_default();
    let base64url = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    assert!(
        !secret.is_empty() && secret.len() <= 64 && secret.bytes().all(base64url),
        "{raw}"
    );
    assert_eq!(
        format!("{KEY_PREFIX}{}.{}.{secret}", key.tenant, key.key_id),
        raw,
        "an accepted key is its parts"
    );
    assert_eq!(TenantId::parse(key.tenant.as_str()).as_ref(), Ok(&key.tenant));
    assert_eq!(TenantKeyId::parse(key.key_id.as_str()).as_ref(), Ok(&key.key_id));
    assert_eq!(
        from_header.as_deref(),
        Some(raw),
        "the header gives the key whole"
    );
}

#[cfg(test)]
mod tests {
    /// Every input in the fuzz corpora (what fuzzing kept as new coverage, and the
    /// regressions: the seeds written by hand and every input that once failed) still
    /// holds: a regression test of each parser, run by `make test`.
    #[test]
    fn every_fuzz_corpus_input_still_holds() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
        let mut total = 0;
        for (name, target) in super::TARGETS {
            let mut files = Vec::new();
            for kind in ["corpus", "regressions"] {
                let dir = root.join(kind).join(name);
                files.extend(
                    std::fs::read_dir(&dir)
                        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                        .filter_map(Result::ok)
                        .map(|e| e.path()),
                );
            }
            assert!(!files.is_empty(), "{name} has no corpus");
            for f in &files {
                let data = std::fs::read(f).unwrap();
                let outcome = std::panic::catch_unwind(|| target(&data));
                assert!(outcome.is_ok(), "{name}: {} fails", f.display());
            }
            total += files.len();
        }
        assert!(total >= super::TARGETS.len());
    }
}
