"""Verifying the webhooks Hookline delivers.

Every delivery is signed twice:

- Standard Webhooks: ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature:
  v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`` (space-separated, one entry
  per valid secret while a secret is rotated), the key being the base64 after ``whsec_``;
- the seed design's ``X-Webhook-Signature: sha256=<hex HMAC-SHA256(secret, body)>``, keyed
  with the whole ``whsec_…`` string. It has no timestamp, so it does not stop replays (a
  captured delivery replayed without its standard headers would pass it): it is checked
  only with ``allow_seed=True``, and only when ``webhook-signature`` is absent.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from .errors import ConfigurationError, WebhookVerificationError

__all__ = ["verify_webhook", "sign_webhook", "WebhookVerificationError", "DEFAULT_TOLERANCE"]

#: Seconds a webhook's timestamp may be away from now, either way.
DEFAULT_TOLERANCE = 300

_SECRET_PREFIX = "whsec_"


def _key(secret: str) -> bytes:
    b64 = secret.removeprefix(_SECRET_PREFIX)
    try:
        return base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError("the webhook secret is not `whsec_` followed by base64") from None


def _secrets(secret: str | Sequence[str]) -> list[str]:
    secrets = [secret] if isinstance(secret, str) else list(secret)
    if not secrets or not all(isinstance(s, str) and s for s in secrets):
        raise ConfigurationError("a webhook secret is required")
    return secrets


def _now(now: float | datetime | None) -> float:
    if now is None:
        return time.time()
    if isinstance(now, datetime):
        return now.timestamp()
    return float(now)


def _standard_signature(key: bytes, msg_id: str, timestamp: str, body: bytes) -> bytes:
    return hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()


def sign_webhook(body: bytes | str, secret: str, *, msg_id: str, timestamp: int) -> dict[str, str]:
    """The headers Hookline would send with ``body``: handy for testing a receiver."""
    raw = body.encode() if isinstance(body, str) else body
    sig = base64.b64encode(_standard_signature(_key(secret), msg_id, str(timestamp), raw)).decode()
    seed = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": f"v1,{sig}",
        "X-Webhook-Signature": f"sha256={seed}",
    }


def verify_webhook(
    body: bytes | str,
    headers: Mapping[str, str],
    secret: str | Sequence[str],
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    now: float | datetime | None = None,
    allow_seed: bool = False,
) -> dict[str, Any]:
    """Check a delivery's signature and return its parsed JSON body.

    ``body`` must be the raw bytes as received (not re-serialised JSON). ``headers`` are
    matched case-insensitively. ``secret`` is the endpoint's ``whsec_…`` secret, or a list
    of them while rotating. ``allow_seed`` also accepts a request signed only with the
    seed design's ``X-Webhook-Signature`` (no replay protection; for old receivers).
    Raises :class:`WebhookVerificationError` saying why it failed.
    """
    raw = body.encode() if isinstance(body, str) else bytes(body)
    lower = {str(k).lower(): v for k, v in headers.items()}
    secrets = _secrets(secret)

    signature = lower.get("webhook-signature")
    if signature is not None:
        _verify_standard(raw, lower, signature, secrets, tolerance, _now(now))
    elif allow_seed and lower.get("x-webhook-signature") is not None:
        _verify_seed(raw, lower["x-webhook-signature"], secrets)
    else:
        raise WebhookVerificationError("no webhook-signature header", code="missing_header")

    try:
        payload = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise WebhookVerificationError("the body is not valid JSON", code="invalid_body") from None
    if not isinstance(payload, dict):
        raise WebhookVerificationError("the body is not a JSON object", code="invalid_body")
    return payload


def _verify_standard(
    raw: bytes,
    headers: Mapping[str, str],
    signature: str,
    secrets: list[str],
    tolerance: int,
    now: float,
) -> None:
    msg_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    if not msg_id:
        raise WebhookVerificationError("missing webhook-id header", code="missing_header")
    if not timestamp:
        raise WebhookVerificationError("missing webhook-timestamp header", code="missing_header")
    timestamp = timestamp.strip()
    if not timestamp.isascii() or not timestamp.isdigit():
        raise WebhookVerificationError(
            "webhook-timestamp is not a Unix time in seconds", code="invalid_timestamp"
        )
    age = now - int(timestamp)
    if age > tolerance:
        raise WebhookVerificationError(
            f"the webhook timestamp is too old ({int(age)} s; tolerance {tolerance} s)",
            code="timestamp_out_of_window",
        )
    if age < -tolerance:
        raise WebhookVerificationError(
            f"the webhook timestamp is in the future ({int(-age)} s; tolerance {tolerance} s)",
            code="timestamp_out_of_window",
        )

    candidates: list[bytes] = []
    for entry in signature.split():
        version, _, value = entry.partition(",")
        if version != "v1" or not value:
            continue
        try:
            candidates.append(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            continue
    if not candidates:
        raise WebhookVerificationError(
            "webhook-signature holds no v1 signature", code="invalid_signature"
        )
    expected = [_standard_signature(_key(s), msg_id, timestamp, raw) for s in secrets]
    # Compare every pair (no early exit), each in constant time.
    matched = False
    for want in expected:
        for got in candidates:
            matched |= hmac.compare_digest(want, got)
    if not matched:
        raise WebhookVerificationError(
            "no signature in webhook-signature matches", code="invalid_signature"
        )


def _verify_seed(raw: bytes, header: str, secrets: list[str]) -> None:
    scheme, _, hex_sig = header.strip().partition("=")
    if scheme.lower() != "sha256" or not hex_sig:
        raise WebhookVerificationError(
            "X-Webhook-Signature is not `sha256=<hex>`", code="invalid_signature"
        )
    try:
        got = bytes.fromhex(hex_sig)
    except ValueError:
        raise WebhookVerificationError(
            "X-Webhook-Signature is not `sha256=<hex>`", code="invalid_signature"
        ) from None
    matched = False
    for s in secrets:
        matched |= hmac.compare_digest(hmac.new(s.encode(), raw, hashlib.sha256).digest(), got)
    if not matched:
        raise WebhookVerificationError("X-Webhook-Signature does not match", code="invalid_signature")
