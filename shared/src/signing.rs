//! Signing of delivered webhooks, and verification for receivers and tests.
//!
//! Two schemes go on every request:
//! - Standard Webhooks: `webhook-signature: v1,<base64 HMAC-SHA256(key, "{id}.{ts}.{body}")>`,
//!   the key being the base64 after `whsec_`; one `v1,` entry per valid secret.
//! - The seed design's `X-Webhook-Signature: sha256=<hex HMAC-SHA256(secret string, body)>`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;
use thiserror::Error;

type HmacSha256 = Hmac<Sha256>;

const SECRET_PREFIX: &str = "whsec_";
/// Bytes of key material in a generated secret (Standard Webhooks asks for 24 to 64).
const GENERATED_KEY_BYTES: usize = 32;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("must start with `whsec_`")]
    Prefix,
    #[error("the part after `whsec_` must be base64")]
    Base64,
    #[error("the key must decode to 24 to 64 bytes")]
    Length,
}

/// An endpoint's signing secret, `whsec_<base64 key>`. Its `Debug` never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct EndpointSecret {
    text: String,
    key: Vec<u8>,
}

impl EndpointSecret {
    pub fn parse(s: &str) -> Result<Self, SecretError> {
        let b64 = s.strip_prefix(SECRET_PREFIX).ok_or(SecretError::Prefix)?;
        let key = B64.decode(b64).map_err(|_| SecretError::Base64)?;
        if !(24..=64).contains(&key.len()) {
            return Err(SecretError::Length);
        }
        Ok(Self {
            text: s.to_owned(),
            key,
        })
    }

    pub fn generate() -> Self {
        let mut key = vec![0u8; GENERATED_KEY_BYTES];
        // The OS random source failing is not something to carry on from.
        getrandom::fill(&mut key).expect("the OS random source is available");
        Self {
            text: format!("{SECRET_PREFIX}{}", B64.encode(&key)),
            key,
        }
    }

    /// The whole `whsec_…` string: shown once to the user, and the seed scheme's key.
    pub fn expose(&self) -> &str {
        &self.text
    }
}

impl fmt::Debug for EndpointSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EndpointSecret(****)")
    }
}

fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length.
    HmacSha256::new_from_slice(key).expect("HMAC accepts any key length")
}

fn standard_signature(secret: &EndpointSecret, id: &str, timestamp: i64, body: &[u8]) -> [u8; 32] {
    let mut m = mac(&secret.key);
    m.update(id.as_bytes());
    m.update(b".");
    m.update(timestamp.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m.finalize().into_bytes().into()
}

/// The `webhook-signature` value: one `v1,<sig>` per secret, space-separated.
pub fn standard_signature_header(
    secrets: &[&EndpointSecret],
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .iter()
        .map(|s| format!("v1,{}", B64.encode(standard_signature(s, id, timestamp, body))))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The seed-compatible `X-Webhook-Signature` value.
pub fn seed_signature_header(secret: &EndpointSecret, body: &[u8]) -> String {
    let mut m = mac(secret.expose().as_bytes());
    m.update(body);
    format!("sha256={}", hex::encode(m.finalize().into_bytes()))
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("the timestamp is not a Unix time in seconds")]
    BadTimestamp,
    #[error("the timestamp is outside the tolerance window")]
    TimestampOutOfWindow,
    #[error("no signature in the header matches")]
    NoMatch,
}

/// Verifies a `webhook-signature` header: any one of its `v1,` entries may match,
/// compared in constant time, and the timestamp must be within `tolerance_secs` of `now`.
pub fn verify_standard(
    secret: &EndpointSecret,
    id: &str,
    timestamp: &str,
    signature_header: &str,
    body: &[u8],
    now_unix: i64,
    tolerance_secs: i64,
) -> Result<(), VerifyError> {
    let ts: i64 = timestamp.trim().parse().map_err(|_| VerifyError::BadTimestamp)?;
    if now_unix.abs_diff(ts) > tolerance_secs.unsigned_abs() {
        return Err(VerifyError::TimestampOutOfWindow);
    }
    let mut m = mac(&secret.key);
    m.update(format!("{id}.{ts}.").as_bytes());
    m.update(body);
    for entry in signature_header.split_ascii_whitespace() {
        let Some(sig) = entry.strip_prefix("v1,") else {
            continue;
        };
        let Ok(sig) = B64.decode(sig) else { continue };
        if m.clone().verify_slice(&sig).is_ok() {
            return Ok(());
        }
    }
    Err(VerifyError::NoMatch)
}

/// Verifies the seed-compatible `X-Webhook-Signature: sha256=<hex>` header.
pub fn verify_seed(secret: &EndpointSecret, header: &str, body: &[u8]) -> Result<(), VerifyError> {
    let sig = header
        .strip_prefix("sha256=")
        .and_then(|h| hex::decode(h).ok())
        .ok_or(VerifyError::NoMatch)?;
    let mut m = mac(secret.expose().as_bytes());
    m.update(body);
    m.verify_slice(&sig).map_err(|_| VerifyError::NoMatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SPEC_TS: i64 = 1_614_265_330;
    const SPEC_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SPEC_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn signature_matches_the_standard_webhooks_test_vector() {
        let secret = EndpointSecret::parse(SPEC_SECRET).unwrap();
        assert_eq!(
            standard_signature_header(&[&secret], SPEC_ID, SPEC_TS, SPEC_BODY),
            SPEC_SIG
        );
        assert_eq!(
            verify_standard(&secret, SPEC_ID, "1614265330", SPEC_SIG, SPEC_BODY, SPEC_TS, 300),
            Ok(())
        );
    }

    #[test]
    fn two_secrets_give_two_space_separated_signatures_and_either_verifies() {
        let old = EndpointSecret::parse(SPEC_SECRET).unwrap();
        let new = EndpointSecret::generate();
        let header = standard_signature_header(&[&new, &old], SPEC_ID, SPEC_TS, SPEC_BODY);
        let parts: Vec<_> = header.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[1], SPEC_SIG);
        for s in [&old, &new] {
            assert!(verify_standard(s, SPEC_ID, "1614265330", &header, SPEC_BODY, SPEC_TS, 300).is_ok());
        }
    }

    #[test]
    fn a_tampered_body_or_stale_timestamp_does_not_verify() {
        let secret = EndpointSecret::parse(SPEC_SECRET).unwrap();
        assert_eq!(
            verify_standard(&secret, SPEC_ID, "1614265330", SPEC_SIG, b"{}", SPEC_TS, 300),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            verify_standard(
                &secret,
                SPEC_ID,
                "1614265330",
                SPEC_SIG,
                SPEC_BODY,
                SPEC_TS + 301,
                300
            ),
            Err(VerifyError::TimestampOutOfWindow)
        );
    }

    #[test]
    fn seed_signature_is_hex_hmac_of_the_body_keyed_by_the_secret_string() {
        let secret = EndpointSecret::parse(SPEC_SECRET).unwrap();
        let header = seed_signature_header(&secret, b"hello");
        assert!(header.starts_with("sha256="));
        assert_eq!(header.len(), "sha256=".len() + 64);
        assert_eq!(verify_seed(&secret, &header, b"hello"), Ok(()));
        assert_eq!(verify_seed(&secret, &header, b"hellO"), Err(VerifyError::NoMatch));
    }

    #[test]
    fn secrets_are_checked_and_never_printed() {
        assert_eq!(EndpointSecret::parse("abc"), Err(SecretError::Prefix));
        assert_eq!(EndpointSecret::parse("whsec_!!"), Err(SecretError::Base64));
        assert_eq!(EndpointSecret::parse("whsec_YWJj"), Err(SecretError::Length));
        let s = EndpointSecret::generate();
        assert!(EndpointSecret::parse(s.expose()).is_ok());
        assert_eq!(format!("{s:?}"), "EndpointSecret(****)");
    }
}
