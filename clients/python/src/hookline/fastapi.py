"""A FastAPI dependency that verifies Hookline's webhooks.

    from fastapi import Depends, FastAPI
    from hookline.fastapi import webhook_verifier

    app = FastAPI()
    verified = webhook_verifier(os.environ["HOOKLINE_WEBHOOK_SECRET"])

    @app.post("/webhooks")
    async def receive(event: dict = Depends(verified)):
        ...

A request that does not verify is answered 400 (malformed: missing headers, bad
timestamp, body not JSON) or 401 (wrong signature, timestamp outside the window).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

try:
    from fastapi import HTTPException, Request
except ImportError as e:  # pragma: no cover
    raise ImportError("hookline.fastapi needs FastAPI: pip install 'hookline[fastapi]'") from e

from .errors import WebhookVerificationError
from .verify import DEFAULT_TOLERANCE, _key, _secrets, verify_webhook

__all__ = ["webhook_verifier"]


def webhook_verifier(
    secret: str | Sequence[str], tolerance: int = DEFAULT_TOLERANCE, *, allow_seed: bool = False
) -> Callable[[Request], Awaitable[dict[str, Any]]]:
    """A dependency that reads the raw body, verifies it and returns the parsed payload."""
    # A missing or malformed secret is the app's bug: fail at start-up, not per request.
    for s in _secrets(secret):
        _key(s)

    async def verified_webhook(request: Request) -> dict[str, Any]:
        body = await request.body()
        try:
            return verify_webhook(body, request.headers, secret, tolerance=tolerance, allow_seed=allow_seed)
        except WebhookVerificationError as e:
            raise HTTPException(status_code=e.status, detail=e.reason) from None

    return verified_webhook
