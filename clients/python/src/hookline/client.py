"""Clients for Hookline's ingest API: :class:`Hookline` (sync) and :class:`AsyncHookline`.

Both make an event's id before the first try, so a retry (after a timeout, a dropped
connection, a 429 or a 5xx) sends the same id and Hookline delivers the event once.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import math
import os
import random
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import httpx

from ._version import __version__
from .errors import (
    APIError,
    ConfigurationError,
    FieldError,
    HooklineConnectionError,
    error_class_for,
)
from .events import (
    MAX_BATCH_EVENTS,
    BatchResult,
    Event,
    EventLike,
    check_tenant_id,
    new_event_id,
)

__all__ = ["Hookline", "AsyncHookline", "ENV_URL", "ENV_API_KEY"]

logger = logging.getLogger("hookline")

ENV_URL = "HOOKLINE_URL"
ENV_API_KEY = "HOOKLINE_API_KEY"

#: A Retry-After longer than this is cut to it.
MAX_RETRY_AFTER = 30.0
#: The exponential backoff never waits longer than this between two tries.
MAX_BACKOFF = 8.0


class _Core:
    """What both clients share: configuration, request bodies, answers, retry timing."""

    def __init__(
        self,
        base_url: str | None,
        api_key: str | None,
        *,
        timeout: float,
        max_retries: int,
        backoff: float,
        source: str | None,
        tenant_id: str | None,
    ) -> None:
        base_url = base_url or os.environ.get(ENV_URL)
        if not base_url:
            raise ConfigurationError(
                f"no Hookline URL: pass base_url= or set {ENV_URL} (e.g. http://127.0.0.1:9000)"
            )
        api_key = api_key or os.environ.get(ENV_API_KEY)
        if not api_key:
            raise ConfigurationError(f"no Hookline API key: pass api_key= or set {ENV_API_KEY}")
        if max_retries < 0:
            raise ConfigurationError("max_retries must be 0 or more")
        if backoff < 0:
            raise ConfigurationError("backoff must be 0 or more")
        if tenant_id is not None:
            check_tenant_id(tenant_id, ConfigurationError)  # a ConfigurationError is a ValueError
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.source = source
        #: Sent as ``tenant_id`` with every event that does not name its own tenant.
        self.tenant_id = tenant_id

    def __repr__(self) -> str:
        # The key is never shown, not even in part (a tenant key `hk_<tenant>.<id>.<secret>`
        # neither: its tenant is shown only as tenant_id, when set).
        tenant = f", tenant_id={self.tenant_id!r}" if self.tenant_id is not None else ""
        return f"{type(self).__name__}(base_url={self.base_url!r}, api_key='***'{tenant})"

    def _headers(self) -> dict[str, str]:
        # `Authorization` (not x-api-key) so that httpx masks it in any repr of the headers.
        return {
            "Authorization": f"Bearer {self._api_key}",
            "Content-Type": "application/json",
            "Accept": "application/json, application/problem+json",
            "User-Agent": f"hookline-python/{__version__}",
        }

    # -- bodies -------------------------------------------------------------------------

    def _event_body(self, event: Event) -> dict[str, Any]:
        event.check()  # again: a field may have been set after the Event was made
        if event.id is None:
            event.id = new_event_id()
        return event.to_json(default_source=self.source, default_tenant_id=self.tenant_id)

    def _single_body(self, event_type: str, data: Any, fields: dict[str, Any]) -> dict[str, Any]:
        return self._event_body(Event(event_type, data, **fields))

    def _batch_body(self, events: Sequence[EventLike]) -> list[dict[str, Any]]:
        if isinstance(events, (str, bytes, Mapping, Event)):
            raise TypeError("send_batch takes a sequence of events")
        items = [self._event_body(Event.coerce(e)) for e in events]
        if not 1 <= len(items) <= MAX_BATCH_EVENTS:
            raise ValueError(f"a batch holds 1 to {MAX_BATCH_EVENTS} events, not {len(items)}")
        return items

    # -- answers ------------------------------------------------------------------------

    @staticmethod
    def _retry_after(response: httpx.Response) -> float | None:
        value = response.headers.get("retry-after")
        if not value:
            return None
        value = value.strip()
        try:
            seconds = float(value)
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):
                return None
            if when.tzinfo is None:
                when = when.replace(tzinfo=timezone.utc)
            seconds = (when - datetime.now(timezone.utc)).total_seconds()
        if math.isnan(seconds):
            return None
        return max(0.0, seconds)

    @staticmethod
    def _error(response: httpx.Response, attempts: int) -> APIError:
        status = response.status_code
        problem: dict[str, Any] = {}
        try:
            parsed = response.json()
            if isinstance(parsed, dict):
                problem = parsed
        except ValueError:
            pass
        detail = problem.get("detail")
        if detail is None:
            # e.g. API Gateway's own `{"message": "Too Many Requests"}`, or a plain-text body
            detail = problem.get("message") or response.text[:500]
        request_id = problem.get("request_id") or response.headers.get("apigw-requestid")
        errors = problem.get("errors")
        return error_class_for(status)(
            status,
            str(problem.get("title") or response.reason_phrase or ""),
            str(detail or ""),
            [FieldError.from_json(e) for e in errors] if isinstance(errors, list) else [],
            request_id,
            type=problem.get("type"),
            retry_after=_Core._retry_after(response),
            attempts=attempts,
        )

    @staticmethod
    def _json(response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}

    @staticmethod
    def _batch_result(response: httpx.Response, sent: list[dict[str, Any]]) -> BatchResult:
        # The server leaves out the id of a rejected event; we know which one we sent.
        return BatchResult.from_json(_Core._json(response), sent_ids=[e.get("id") for e in sent])

    @staticmethod
    def _retryable_status(status: int) -> bool:
        return status == 429 or status >= 500

    def _delay(self, retry: int, retry_after: float | None) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        if retry_after is not None:
            return min(retry_after, MAX_RETRY_AFTER)
        base = min(MAX_BACKOFF, self.backoff * (2 ** (retry - 1)))
        return float(base * random.uniform(0.5, 1.0))

    @staticmethod
    def _connection_error(exc: httpx.HTTPError, attempts: int) -> HooklineConnectionError:
        kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "failed"
        return HooklineConnectionError(
            f"the request to Hookline {kind} after {attempts} attempt(s): "
            f"{type(exc).__name__}: {exc}",
            attempts=attempts,
        )

    @staticmethod
    def _log_retry(path: str, what: str, retry: int, delay: float) -> None:
        logger.info("hookline: POST %s %s; retry %d in %.2fs", path, what, retry, delay)


class Hookline(_Core):
    """Synchronous client.

    >>> hl = Hookline("http://127.0.0.1:9000", "dev-ingest-key")   # or HOOKLINE_URL / HOOKLINE_API_KEY
    >>> hl.send("agent_invocation_started", {"run_id": "r-1"})     # doctest: +SKIP
    'evt_0193…'

    ``api_key`` may be an operator key or a tenant key (``hk_<tenant>.<key id>.<secret>``).
    ``tenant_id`` (``^[A-Za-z0-9_-]{1,64}$``, else a ``ValueError``) is sent with every event
    that does not name its own tenant; left out, no ``tenant_id`` is sent and Hookline uses
    the key's tenant (a tenant key) or ``default`` (an operator key).
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 10.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        source: str | None = None,
        tenant_id: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(
            base_url, api_key, timeout=timeout, max_retries=max_retries, backoff=backoff, source=source,
            tenant_id=tenant_id,
        )
        self._http = httpx.Client(timeout=httpx.Timeout(timeout), transport=transport)

    def send(
        self,
        event_type: str,
        data: Any,
        *,
        id: str | None = None,
        timestamp: datetime | str | None = None,
        source: str | None = None,
        tenant_id: str | None = None,
        expires_at: datetime | str | None = None,
        ttl_seconds: int | None = None,
        collapse_key: str | None = None,
    ) -> str:
        """Send one event; returns its id (yours, or the ``evt_…`` made for it).

        ``tenant_id`` names this event's tenant instead of the client's ``tenant_id``.
        ``ttl_seconds`` (1 to 1728000) or ``expires_at`` (a timezone-aware datetime or an
        RFC 3339 string), not both, is when an undelivered event stops being sent;
        ``collapse_key`` makes a newer event under the same key supersede this one if it is
        not delivered yet (see :class:`~hookline.Event`). Each is sent only when given; what
        Hookline would refuse in them is a ``ValueError`` before anything is sent.
        """
        body = self._single_body(event_type, data, dict(
            id=id, timestamp=timestamp, source=source, tenant_id=tenant_id,
            expires_at=expires_at, ttl_seconds=ttl_seconds, collapse_key=collapse_key,
        ))
        response = self._post("/v1/events", body)
        return str(self._json(response).get("id") or body["id"])

    def send_batch(self, events: Sequence[EventLike]) -> BatchResult:
        """Send 1 to 100 events in one request; see :class:`BatchResult` for what happened to each."""
        items = self._batch_body(events)
        response = self._post("/v1/events/batch", {"events": items})
        return self._batch_result(response, items)

    def _post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        content = json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
        url, headers = self.base_url + path, self._headers()
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._http.post(url, content=content, headers=headers)
            except httpx.TransportError as exc:
                if attempt > self.max_retries:
                    raise self._connection_error(exc, attempt) from None
                delay = self._delay(attempt, None)
                self._log_retry(path, type(exc).__name__, attempt, delay)
                time.sleep(delay)
                continue
            if response.is_success:
                return response
            if self._retryable_status(response.status_code) and attempt <= self.max_retries:
                delay = self._delay(attempt, self._retry_after(response))
                self._log_retry(path, f"answered {response.status_code}", attempt, delay)
                time.sleep(delay)
                continue
            raise self._error(response, attempt)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Hookline:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncHookline(_Core):
    """Asynchronous client (``httpx.AsyncClient``); the same methods, awaited."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 10.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        source: str | None = None,
        tenant_id: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(
            base_url, api_key, timeout=timeout, max_retries=max_retries, backoff=backoff, source=source,
            tenant_id=tenant_id,
        )
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(timeout), transport=transport)

    async def send(
        self,
        event_type: str,
        data: Any,
        *,
        id: str | None = None,
        timestamp: datetime | str | None = None,
        source: str | None = None,
        tenant_id: str | None = None,
        expires_at: datetime | str | None = None,
        ttl_seconds: int | None = None,
        collapse_key: str | None = None,
    ) -> str:
        body = self._single_body(event_type, data, dict(
            id=id, timestamp=timestamp, source=source, tenant_id=tenant_id,
            expires_at=expires_at, ttl_seconds=ttl_seconds, collapse_key=collapse_key,
        ))
        response = await self._post("/v1/events", body)
        return str(self._json(response).get("id") or body["id"])

    async def send_batch(self, events: Sequence[EventLike]) -> BatchResult:
        items = self._batch_body(events)
        response = await self._post("/v1/events/batch", {"events": items})
        return self._batch_result(response, items)

    async def _post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        content = json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
        url, headers = self.base_url + path, self._headers()
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._http.post(url, content=content, headers=headers)
            except httpx.TransportError as exc:
                if attempt > self.max_retries:
                    raise self._connection_error(exc, attempt) from None
                delay = self._delay(attempt, None)
                self._log_retry(path, type(exc).__name__, attempt, delay)
                await asyncio.sleep(delay)
                continue
            if response.is_success:
                return response
            if self._retryable_status(response.status_code) and attempt <= self.max_retries:
                delay = self._delay(attempt, self._retry_after(response))
                self._log_retry(path, f"answered {response.status_code}", attempt, delay)
                await asyncio.sleep(delay)
                continue
            raise self._error(response, attempt)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def close(self) -> None:
        await self.aclose()

    async def __aenter__(self) -> AsyncHookline:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
