"""Events as sent to Hookline, their ids, and batch results."""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

from .errors import FieldError

__all__ = [
    "Event",
    "EventLike",
    "BatchResult",
    "BatchItemResult",
    "new_event_id",
    "format_timestamp",
    "is_valid_event_id",
    "is_valid_event_type",
    "is_valid_tenant_id",
    "check_tenant_id",
    "check_ttl_seconds",
    "check_expires_at",
    "check_collapse_key",
    "MAX_BATCH_EVENTS",
    "MAX_TTL_SECONDS",
    "MAX_COLLAPSE_KEY_CHARS",
]

#: At most this many events go in one ``POST /v1/events/batch``.
MAX_BATCH_EVENTS = 100
#: The longest ``ttl_seconds`` (20 days), and how far ahead Hookline takes an ``expires_at``.
MAX_TTL_SECONDS = 20 * 86_400
#: The longest ``collapse_key``, in characters (not bytes).
MAX_COLLAPSE_KEY_CHARS = 256

_ID_RE = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
_TYPE_RE = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")
_RESERVED_PREFIX = "hookline."
#: The contract's ``^[A-Za-z0-9_-]{1,64}$`` (generated ``tnt_…`` ids match it too).
_TENANT_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
#: RFC 3339 ``date-time`` as Hookline parses it: the offset is required (``Z`` or ``±hh:mm``).
_RFC3339_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|[+-](\d{2}):(\d{2}))",
    re.ASCII,
)


def is_valid_event_id(value: str) -> bool:
    """1–128 ASCII letters, digits, ``_ - . :``."""
    return bool(_ID_RE.fullmatch(value))


def is_valid_event_type(value: str) -> bool:
    """Dot-separated segments of letters, digits, ``_``, ``-``; at most 128 chars; not ``hookline.*``."""
    return len(value) <= 128 and bool(_TYPE_RE.fullmatch(value)) and not value.startswith(_RESERVED_PREFIX)


def is_valid_tenant_id(value: object) -> bool:
    """1–64 ASCII letters, digits, ``_``, ``-`` (``^[A-Za-z0-9_-]{1,64}$``)."""
    return isinstance(value, str) and bool(_TENANT_RE.fullmatch(value))


def check_tenant_id(value: object, error: type[ValueError] = ValueError) -> str:
    """``value`` if it is a valid tenant id, else ``error`` (a ValueError) saying why."""
    if not isinstance(value, str):
        raise error(f"tenant_id must be a string, not {type(value).__name__}")
    if not _TENANT_RE.fullmatch(value):
        shown = value if len(value) <= 80 else value[:80] + "…"
        raise error(
            f"tenant_id {shown!r} is not valid: a tenant id is 1 to 64 ASCII letters, digits, "
            "`_` or `-` (^[A-Za-z0-9_-]{1,64}$)"
        )
    return value


def _shown(value: str) -> str:
    return repr(value if len(value) <= 80 else value[:80] + "…")


def check_ttl_seconds(value: object, name: str = "ttl_seconds") -> int:
    """``value`` if it is a valid ``ttl_seconds`` (a whole number from 1 to 1728000), else a ValueError."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TTL_SECONDS:
        raise ValueError(
            f"{name} must be a whole number of seconds from 1 to {MAX_TTL_SECONDS} (20 days), not {value!r}"
        )
    return value


def check_expires_at(value: object) -> datetime | str:
    """``value`` if it can be sent as ``expires_at``, else a ValueError saying why.

    A timezone-aware datetime, or an RFC 3339 string with its offset (``2026-01-31T12:00:00Z``).
    A naive datetime is refused rather than guessed at: off by a timezone, the event would
    expire hours early or late. Whether it lies in the future (and at most 20 days ahead)
    is Hookline's to judge, by its clock, when the event arrives.
    """
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                f"expires_at {value.isoformat()!r} is a naive datetime: give it a timezone "
                "(e.g. datetime.now(timezone.utc) + timedelta(minutes=5)) or pass an RFC 3339 string"
            )
        return value
    if not isinstance(value, str):
        raise ValueError(
            f"expires_at must be a timezone-aware datetime or an RFC 3339 string, not {type(value).__name__}"
        )
    m = _RFC3339_RE.fullmatch(value)
    try:
        if m is None:
            raise ValueError
        year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
        datetime(year, month, day, hour, minute, min(second, 59))  # 60: a leap second, which RFC 3339 allows
        if second > 60 or (m[7] is not None and (int(m[7]) > 23 or int(m[8]) > 59)):
            raise ValueError
    except ValueError:
        raise ValueError(
            f"expires_at {_shown(value)} is not an RFC 3339 date-time with an offset, such as "
            "2026-01-31T12:00:00Z"
        ) from None
    return value


def check_collapse_key(value: object) -> str:
    """``value`` if it is a valid ``collapse_key``, else a ValueError saying why.

    1 to 256 characters (not only whitespace), no control characters (such as NUL, a tab
    or a line break).
    """
    if not isinstance(value, str):
        raise ValueError(f"collapse_key must be a string, not {type(value).__name__}")
    if not value.strip() or len(value) > MAX_COLLAPSE_KEY_CHARS:
        raise ValueError(
            f"collapse_key {_shown(value)} is not valid: a collapse key is 1 to "
            f"{MAX_COLLAPSE_KEY_CHARS} characters, not only whitespace"
        )
    if any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in value):
        raise ValueError(
            f"collapse_key {_shown(value)} is not valid: it must not contain control characters "
            "(such as NUL, a tab or a line break)"
        )
    return value


_id_lock = threading.Lock()
_last_ms = 0
_seq = 0


def new_event_id(prefix: str = "evt_") -> str:
    """A new time-sortable id: ``evt_`` and 32 hex digits laid out as a UUIDv7.

    48 bits of Unix milliseconds, then a 12-bit counter that keeps ids made in the same
    millisecond by this process in order, then 62 random bits.
    """
    global _last_ms, _seq
    with _id_lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            _seq += 1
            if _seq > 0xFFF:  # counter exhausted: borrow the next millisecond
                _last_ms += 1
                _seq = 0
            ms = _last_ms
        else:
            _last_ms, _seq = ms, int.from_bytes(os.urandom(2), "big") & 0x3FF
        seq = _seq
    rand = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | seq << 64 | 0b10 << 62 | rand
    return f"{prefix}{value:032x}"


def format_timestamp(value: datetime | str | None) -> str | None:
    """RFC 3339 in UTC with milliseconds; a naive datetime is taken as UTC; strings pass as is."""
    if value is None or isinstance(value, str):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    value = value.astimezone(timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


@dataclass
class Event:
    """One event. ``id`` is filled in (``evt_…``) before the first try when left out.

    ``tenant_id`` names the event's tenant; when left out, the client's ``tenant_id`` (if
    any) is sent, else none (Hookline then uses the key's tenant, or ``default``).

    Keyword-only, each sent only when set:

    - ``ttl_seconds`` (1 to 1728000) or ``expires_at`` (a timezone-aware datetime or an
      RFC 3339 string, in the future and at most 20 days ahead), not both: a delivery not
      made by then ends ``expired`` and is never sent after. A TTL counts from when
      Hookline receives the event.
    - ``collapse_key`` (1 to 256 characters, no control characters): the events under one
      key are versions of one thing; a newer one (by ``timestamp``, then ``id``) supersedes
      an older one not yet delivered to the same endpoint, which ends ``superseded``.

    What Hookline would refuse in them is a ``ValueError`` here, before anything is sent.
    """

    event_type: str
    data: Any
    id: str | None = None
    timestamp: datetime | str | None = None
    source: str | None = None
    tenant_id: str | None = None
    _: KW_ONLY
    expires_at: datetime | str | None = None
    ttl_seconds: int | None = None
    collapse_key: str | None = None

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Raise a ValueError for what Hookline would refuse in the tenant, expiry or collapse key."""
        if self.tenant_id is not None:
            check_tenant_id(self.tenant_id)
        if self.ttl_seconds is not None and self.expires_at is not None:
            raise ValueError("give expires_at or ttl_seconds, not both")
        if self.ttl_seconds is not None:
            check_ttl_seconds(self.ttl_seconds)
        if self.expires_at is not None:
            check_expires_at(self.expires_at)
        if self.collapse_key is not None:
            check_collapse_key(self.collapse_key)

    def to_json(
        self, default_source: str | None = None, default_tenant_id: str | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"event_type": self.event_type, "data": self.data}
        if self.id is not None:
            body["id"] = self.id
        source = self.source or default_source
        if source is not None:
            body["source"] = source
        ts = format_timestamp(self.timestamp)
        if ts is not None:
            body["timestamp"] = ts
        tenant_id = self.tenant_id if self.tenant_id is not None else default_tenant_id
        if tenant_id is not None:
            body["tenant_id"] = tenant_id
        if self.expires_at is not None:
            body["expires_at"] = format_timestamp(self.expires_at)
        if self.ttl_seconds is not None:
            body["ttl_seconds"] = self.ttl_seconds
        if self.collapse_key is not None:
            body["collapse_key"] = self.collapse_key
        return body

    @classmethod
    def coerce(cls, value: EventLike) -> Event:
        if isinstance(value, Event):
            return value
        if isinstance(value, Mapping):
            unknown = set(value) - _FIELDS
            if unknown:
                raise ValueError(f"unknown event fields: {sorted(unknown)}")
            if "event_type" not in value or "data" not in value:
                raise ValueError("an event needs `event_type` and `data`")
            return cls(
                event_type=value["event_type"],
                data=value["data"],
                id=value.get("id"),
                timestamp=value.get("timestamp"),
                source=value.get("source"),
                tenant_id=value.get("tenant_id"),
                expires_at=value.get("expires_at"),
                ttl_seconds=value.get("ttl_seconds"),
                collapse_key=value.get("collapse_key"),
            )
        raise TypeError(f"an event is an Event or a mapping, not {type(value).__name__}")


EventLike = Event | Mapping[str, Any]
#: The fields an event given as a mapping may have.
_FIELDS = frozenset(
    {"event_type", "data", "id", "timestamp", "source", "tenant_id", "expires_at", "ttl_seconds", "collapse_key"}
)


@dataclass(frozen=True)
class BatchItemResult:
    """What happened to one event of a batch (``index`` is its position in the request)."""

    index: int
    status: Literal["accepted", "rejected", "failed"]
    id: str | None = None
    errors: list[FieldError] = field(default_factory=list)
    retryable: bool = False

    @property
    def ok(self) -> bool:
        return self.status == "accepted"


@dataclass(frozen=True)
class BatchResult:
    """The answer to ``send_batch``: counts and one result per event, in request order."""

    accepted: int
    rejected: int
    failed: int
    results: list[BatchItemResult]

    @property
    def ok(self) -> bool:
        """True when every event was accepted."""
        return self.rejected == 0 and self.failed == 0

    @property
    def accepted_ids(self) -> list[str]:
        return [r.id for r in self.results if r.ok and r.id is not None]

    @property
    def retryable(self) -> list[BatchItemResult]:
        """Results that failed on Hookline's side and may be sent again (with the same id)."""
        return [r for r in self.results if r.status == "failed" and r.retryable]

    @classmethod
    def from_json(
        cls, body: Mapping[str, Any], sent_ids: Sequence[str | None] | None = None
    ) -> BatchResult:
        """Parse an answer; ``sent_ids`` fills in the ids the server leaves out (rejected events)."""

        def sent_id(index: int) -> str | None:
            return sent_ids[index] if sent_ids is not None and 0 <= index < len(sent_ids) else None

        results = [
            BatchItemResult(
                index=int(r.get("index", i)),
                status=r.get("status", "failed"),
                id=r.get("id") or sent_id(int(r.get("index", i))),
                errors=[FieldError.from_json(e) for e in r.get("errors") or []],
                retryable=bool(r.get("retryable", False)),
            )
            for i, r in enumerate(body.get("results") or [])
        ]
        return cls(
            accepted=int(body.get("accepted", 0)),
            rejected=int(body.get("rejected", 0)),
            failed=int(body.get("failed", 0)),
            results=results,
        )
