//! For receivers: checks that a webhook came from Hookline, from its headers and the
//! raw body, before the body is trusted or even parsed.
//!
//! `verify_webhook` checks the Standard Webhooks headers (`webhook-id`,
//! `webhook-timestamp`, `webhook-signature`): any one of the space-separated `v1,`
//! signatures may match (during a secret rotation there is one per valid secret), in
//! constant time, and the timestamp must be within the tolerance of now, so a captured
//! request cannot be replayed later. It never falls back to the seed design's
//! `X-Webhook-Signature` (which signs the body only): a replayed request stripped of
//! the standard headers would pass that. Receivers built for the seed design, which
//! accept that risk, call `verify_seed_webhook`.

use crate::signing::{EndpointSecret, VerifyError, verify_seed, verify_standard};
use http::HeaderMap;

/// Five minutes either way, as the Standard Webhooks spec advises.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebhookError {
    #[error("the request carries no Hookline signature header (webhook-signature)")]
    Unsigned,
    #[error("the `{0}` header is missing or not text")]
    MissingHeader(&'static str),
    #[error(transparent)]
    Signature(#[from] VerifyError),
}

/// Verifies a delivered webhook. `now_unix` is the receiver's clock in seconds.
pub fn verify_webhook(
    secret: &EndpointSecret,
    headers: &HeaderMap,
    body: &[u8],
    now_unix: i64,
    tolerance_secs: i64,
) -> Result<(), WebhookError> {
    let text = |name: &'static str| headers.get(name).and_then(|v| v.to_str().ok());
    let signature = text("webhook-signature").ok_or(WebhookError::Unsigned)?;
    let id = text("webhook-id").ok_or(WebhookError::MissingHeader("webhook-id"))?;
    let ts = text("webhook-timestamp").ok_or(WebhookError::MissingHeader("webhook-timestamp"))?;
    Ok(verify_standard(
        secret,
        id,
        ts,
        signature,
        body,
        now_unix,
        tolerance_secs,
    )?)
}

/// The seed design's `X-Webhook-Signature: sha256=<hex>` only. It has no timestamp, so
/// it cannot tell a replay; use it only for receivers that cannot read the standard
/// headers.
pub fn verify_seed_webhook(
    secret: &EndpointSecret,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), WebhookError> {
    let seed = headers
        .get("x-webhook-signature")
        .and_then(|v| v.to_str().ok())
        .ok_or(WebhookError::Unsigned)?;
    Ok(verify_seed(secret, seed, body)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The Standard Webhooks specification's test vector.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1_614_265_330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (http::HeaderName::from_static(k), v.parse().unwrap()))
            .collect()
    }

    fn standard(signature: &str) -> HeaderMap {
        headers(&[
            ("webhook-id", ID),
            ("webhook-timestamp", &TS.to_string()),
            ("webhook-signature", signature),
        ])
    }

    #[test]
    fn the_spec_vector_verifies_alone_or_beside_another_signature() {
        let secret = EndpointSecret::parse(SECRET).unwrap();
        assert_eq!(
            verify_webhook(&secret, &standard(SIGNATURE), BODY, TS, 300),
            Ok(())
        );
        let rotating = format!("v1,bm90IHRoaXMgb25l {SIGNATURE}");
        assert_eq!(
            verify_webhook(&secret, &standard(&rotating), BODY, TS + 299, 300),
            Ok(())
        );
    }

    #[test]
    fn a_changed_body_an_old_timestamp_or_no_signature_is_refused() {
        let secret = EndpointSecret::parse(SECRET).unwrap();
        let h = standard(SIGNATURE);
        assert_eq!(
            verify_webhook(&secret, &h, br#"{"test": 1}"#, TS, 300),
            Err(WebhookError::Signature(VerifyError::NoMatch))
        );
        assert_eq!(
            verify_webhook(&secret, &h, BODY, TS + 301, 300),
            Err(WebhookError::Signature(VerifyError::TimestampOutOfWindow))
        );
        let no_id = headers(&[("webhook-timestamp", "1"), ("webhook-signature", SIGNATURE)]);
        assert_eq!(
            verify_webhook(&secret, &no_id, BODY, TS, 300),
            Err(WebhookError::MissingHeader("webhook-id"))
        );
        assert_eq!(
            verify_webhook(&secret, &HeaderMap::new(), BODY, TS, 300),
            Err(WebhookError::Unsigned)
        );
    }

    #[test]
    fn the_seed_header_alone_never_passes_the_standard_check() {
        // A captured delivery replayed without its standard headers must not verify.
        let secret = EndpointSecret::parse(SECRET).unwrap();
        let seed = crate::signing::seed_signature_header(&secret, BODY);
        let h = headers(&[("x-webhook-signature", &seed)]);
        assert_eq!(
            verify_webhook(&secret, &h, BODY, 0, 300),
            Err(WebhookError::Unsigned)
        );
        assert_eq!(verify_seed_webhook(&secret, &h, BODY), Ok(()));
        assert!(verify_seed_webhook(&secret, &h, b"other").is_err());
    }
}
