"""Typed errors raised by the Hookline clients and the webhook verifier.

None of them ever carries the API key: messages are built only from what the
server answered (an RFC 9457 problem) or from the kind of network failure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = [
    "HooklineError",
    "ConfigurationError",
    "HooklineConnectionError",
    "APIError",
    "AuthenticationError",
    "ValidationError",
    "RateLimitError",
    "ServerError",
    "FieldError",
    "WebhookVerificationError",
]


class HooklineError(Exception):
    """Base class of every error raised by this package."""


class ConfigurationError(HooklineError, ValueError):
    """The client is missing its base URL or API key, or an option is invalid."""


class HooklineConnectionError(HooklineError):
    """The request did not get an answer (network error or timeout), after all retries."""

    def __init__(self, message: str, *, attempts: int = 1) -> None:
        super().__init__(message)
        self.attempts = attempts


@dataclass(frozen=True)
class FieldError:
    """One thing wrong with the request: a JSON pointer into the body and what is wrong."""

    pointer: str
    detail: str

    @classmethod
    def from_json(cls, value: Any) -> FieldError:
        if isinstance(value, Mapping):
            return cls(str(value.get("pointer", "")), str(value.get("detail", "")))
        return cls("", str(value))


class APIError(HooklineError):
    """Hookline answered with an error status (an ``application/problem+json`` body)."""

    def __init__(
        self,
        status: int,
        title: str = "",
        detail: str = "",
        errors: list[FieldError] | None = None,
        request_id: str | None = None,
        *,
        type: str | None = None,
        retry_after: float | None = None,
        attempts: int = 1,
    ) -> None:
        self.status = status
        self.title = title
        self.detail = detail
        self.errors: list[FieldError] = list(errors or [])
        self.request_id = request_id
        self.type = type
        self.retry_after = retry_after
        self.attempts = attempts
        super().__init__(self._message())

    def _message(self) -> str:
        text = f"{self.status} {self.title}".rstrip()
        if self.detail:
            text += f": {self.detail}"
        if self.errors:
            text += " (" + "; ".join(f"{e.pointer or '/'}: {e.detail}" for e in self.errors) + ")"
        if self.request_id:
            text += f" [request_id={self.request_id}]"
        return text

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, title={self.title!r}, "
            f"detail={self.detail!r}, errors={self.errors!r}, request_id={self.request_id!r})"
        )

    @property
    def retryable(self) -> bool:
        return self.status == 429 or self.status >= 500


class AuthenticationError(APIError):
    """401 (no or unknown key) or 403 (the key may not do this)."""


class ValidationError(APIError):
    """400 (bad JSON), 413 (body too large), 415 (not JSON) or 422 (invalid event)."""


class RateLimitError(APIError):
    """429: throttled, still so after all retries."""


class ServerError(APIError):
    """5xx: Hookline or a dependency failed, still so after all retries."""


class WebhookVerificationError(HooklineError):
    """A received webhook's signature or timestamp does not verify.

    ``code`` says why: ``missing_header``, ``invalid_timestamp`` or ``invalid_body``
    (the request is malformed: :attr:`status` 400), ``timestamp_out_of_window`` or
    ``invalid_signature`` (it is not authentic or is a replay: :attr:`status` 401).
    """

    _STATUS: ClassVar[dict[str, int]] = {
        "missing_header": 400,
        "invalid_timestamp": 400,
        "invalid_body": 400,
        "timestamp_out_of_window": 401,
        "invalid_signature": 401,
    }

    def __init__(self, reason: str, *, code: str = "invalid_signature") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code

    @property
    def status(self) -> int:
        """The HTTP status a receiver should answer with: 400 or 401."""
        return self._STATUS.get(self.code, 401)


def error_class_for(status: int) -> type[APIError]:
    if status in (401, 403):
        return AuthenticationError
    if status in (400, 413, 415, 422):
        return ValidationError
    if status == 429:
        return RateLimitError
    if status >= 500:
        return ServerError
    return APIError
