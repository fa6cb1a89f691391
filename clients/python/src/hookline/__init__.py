"""Hookline: send events from agents, verify the webhooks Hookline delivers.

- :class:`Hookline` / :class:`AsyncHookline`: the ingest API clients.
- :mod:`hookline.langgraph`: ``HooklineCallbackHandler`` (extra ``hookline[langgraph]``).
- :mod:`hookline.verify`: ``verify_webhook``; :mod:`hookline.fastapi` (extra ``hookline[fastapi]``).
"""

from ._version import __version__
from .client import AsyncHookline, Hookline
from .errors import (
    APIError,
    AuthenticationError,
    ConfigurationError,
    FieldError,
    HooklineConnectionError,
    HooklineError,
    RateLimitError,
    ServerError,
    ValidationError,
    WebhookVerificationError,
)
from .events import BatchItemResult, BatchResult, Event, new_event_id
from .verify import verify_webhook

__all__ = [
    "__version__",
    "Hookline",
    "AsyncHookline",
    "Event",
    "BatchResult",
    "BatchItemResult",
    "new_event_id",
    "verify_webhook",
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
