"""verify_webhook: the Standard Webhooks test vector and the seed-compatible header."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from hookline import ConfigurationError, WebhookVerificationError, verify_webhook
from hookline.verify import sign_webhook

# The Standard Webhooks specification's test vector.
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TS = 1614265330
BODY = b'{"test": 2432232314}'
SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
OTHER_SECRET = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODk="


def headers(signature: str = SIGNATURE, ts: int | str = TS) -> dict[str, str]:
    return {"webhook-id": MSG_ID, "webhook-timestamp": str(ts), "webhook-signature": signature}


def reason(excinfo: pytest.ExceptionInfo[WebhookVerificationError]) -> tuple[str, int]:
    return excinfo.value.code, excinfo.value.status


def test_the_spec_test_vector_verifies() -> None:
    assert verify_webhook(BODY, headers(), SECRET, now=TS) == {"test": 2432232314}
    assert sign_webhook(BODY, SECRET, msg_id=MSG_ID, timestamp=TS)["webhook-signature"] == SIGNATURE


def test_headers_are_case_insensitive_and_body_may_be_str() -> None:
    mixed = {"Webhook-Id": MSG_ID, "WEBHOOK-TIMESTAMP": str(TS), "Webhook-Signature": SIGNATURE}
    assert verify_webhook(BODY.decode(), mixed, SECRET, now=TS + 10) == {"test": 2432232314}


def test_any_of_several_signatures_may_match() -> None:
    bogus = "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
    for sig in (f"{bogus} {SIGNATURE}", f"v2,whatever {SIGNATURE}", f"{SIGNATURE} {bogus}", f"  {SIGNATURE}  "):
        assert verify_webhook(BODY, headers(sig), SECRET, now=TS)
    # Rotation: the receiver may hold the old and the new secret.
    assert verify_webhook(BODY, headers(), [OTHER_SECRET, SECRET], now=TS)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(BODY, headers(), OTHER_SECRET, now=TS)
    with pytest.raises(WebhookVerificationError) as info:
        verify_webhook(BODY, headers(f"{bogus} v1,not-base64!"), SECRET, now=TS)
    assert reason(info) == ("invalid_signature", 401)


@pytest.mark.parametrize("now", [TS + 301, TS - 301, TS + 10_000])
def test_a_timestamp_outside_the_tolerance_is_refused(now: int) -> None:
    with pytest.raises(WebhookVerificationError) as info:
        verify_webhook(BODY, headers(), SECRET, now=now)
    assert reason(info) == ("timestamp_out_of_window", 401)
    assert verify_webhook(BODY, headers(), SECRET, now=now, tolerance=20_000)


def test_the_tolerance_edges_are_inclusive() -> None:
    assert verify_webhook(BODY, headers(), SECRET, now=TS + 300)
    assert verify_webhook(BODY, headers(), SECRET, now=TS - 300)


def test_a_tampered_body_id_or_timestamp_is_refused() -> None:
    for body, hdrs in (
        (b'{"test": 2432232315}', headers()),
        (BODY + b" ", headers()),
        (BODY, {**headers(), "webhook-id": "msg_other"}),
        (BODY, headers(ts=TS + 1)),
    ):
        with pytest.raises(WebhookVerificationError) as info:
            verify_webhook(body, hdrs, SECRET, now=TS)
        assert reason(info) == ("invalid_signature", 401)


def test_malformed_requests_are_400() -> None:
    cases = [
        ({}, "missing_header"),
        ({"webhook-signature": SIGNATURE, "webhook-timestamp": str(TS)}, "missing_header"),
        ({"webhook-signature": SIGNATURE, "webhook-id": MSG_ID}, "missing_header"),
        (headers(ts="yesterday"), "invalid_timestamp"),
        (headers(ts="-5"), "invalid_timestamp"),
    ]
    for hdrs, code in cases:
        with pytest.raises(WebhookVerificationError) as info:
            verify_webhook(BODY, hdrs, SECRET, now=TS)
        assert reason(info) == (code, 400), hdrs
    # A correctly signed body that is not JSON.
    sig = sign_webhook(b"not json", SECRET, msg_id=MSG_ID, timestamp=TS)
    with pytest.raises(WebhookVerificationError) as info:
        verify_webhook(b"not json", sig, SECRET, now=TS)
    assert reason(info) == ("invalid_body", 400)


def test_the_seed_header_alone_is_refused_unless_allowed() -> None:
    # A captured delivery replayed without its standard headers must not pass by default.
    hex_sig = hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()
    with pytest.raises(WebhookVerificationError) as info:
        verify_webhook(BODY, {"X-Webhook-Signature": f"sha256={hex_sig}"}, SECRET)
    assert reason(info)[0] == "missing_header"


def test_the_seed_header_verifies_when_allowed_and_there_is_no_standard_signature() -> None:
    hex_sig = hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()
    seed = {"X-Webhook-Signature": f"sha256={hex_sig}"}
    assert verify_webhook(BODY, seed, SECRET, allow_seed=True) == {"test": 2432232314}
    assert verify_webhook(BODY, {"x-webhook-signature": f"sha256={hex_sig.upper()}"}, SECRET, allow_seed=True)
    for bad in (f"sha256={hex_sig[:-2]}00", "sha256=zz", hex_sig, f"sha1={hex_sig}"):
        with pytest.raises(WebhookVerificationError) as info:
            verify_webhook(BODY, {"X-Webhook-Signature": bad}, SECRET, allow_seed=True)
        assert reason(info) == ("invalid_signature", 401)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(b'{"test": 1}', seed, SECRET, allow_seed=True)


def test_the_standard_signature_wins_over_the_seed_header() -> None:
    hex_sig = hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()
    hdrs = {**headers("v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="), "X-Webhook-Signature": f"sha256={hex_sig}"}
    with pytest.raises(WebhookVerificationError):
        verify_webhook(BODY, hdrs, SECRET, now=TS)


def test_what_sign_webhook_makes_verifies_both_ways() -> None:
    body = b'{"id":"evt_1","event_type":"node_completed","data":{}}'
    signed = sign_webhook(body, SECRET, msg_id="evt_1", timestamp=1_700_000_000)
    assert verify_webhook(body, signed, SECRET, now=1_700_000_000)["id"] == "evt_1"
    seed_only = {"X-Webhook-Signature": signed["X-Webhook-Signature"]}
    assert verify_webhook(body, seed_only, SECRET, allow_seed=True)["event_type"] == "node_completed"


def test_a_bad_secret_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        verify_webhook(BODY, headers(), "whsec_%%%not-base64", now=TS)
    with pytest.raises(ConfigurationError):
        verify_webhook(BODY, headers(), "", now=TS)
