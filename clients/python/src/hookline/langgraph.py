"""A LangChain callback handler that turns LangGraph runs into Hookline events.

    from hookline.langgraph import HooklineCallbackHandler

    handler = HooklineCallbackHandler()          # HOOKLINE_URL / HOOKLINE_API_KEY
    graph.invoke(inputs, config={"callbacks": [handler], "configurable": {"thread_id": "t1"}})

The handler never blocks or breaks the graph. Each callback only builds a small dict and
puts it on a bounded in-memory queue (no I/O, no waiting), so it is safe to call from the
graph's worker threads and, being ``run_inline``, directly on an asyncio event loop. A
daemon thread drains the queue in batches with the synchronous client. A full queue drops
the event (counted in :attr:`HooklineCallbackHandler.dropped`); a batch that cannot be sent
is logged and counted in :attr:`HooklineCallbackHandler.failed`.

How LangGraph 1.2 reports a human-in-the-loop pause: ``interrupt()`` raises
``GraphInterrupt`` inside the node, which reaches ``on_chain_error`` of the node (and of
every enclosing subgraph and node; ``on_tool_error`` first when the tool itself called
``interrupt()``), and then the root run ends *normally* through ``on_chain_end`` (its
output does not hold ``__interrupt__``: ``invoke`` adds that afterwards). The handler
therefore remembers the interrupt and reports the root's end as ``agent_interrupted``
(never as a failure). A run started with ``Command(resume=...)`` (or with ``None`` input,
which continues from the checkpoint) is reported as ``agent_resumed`` *instead of*
``agent_invocation_started``; it ends like any run.

Token usage: LLM and chat model runs send no events of their own. Their end is read only
for the tokens LangChain reports (never the prompts or answers), which are added, through
the ``parent_run_id`` chain, to the tool and node events they ran in and to the run's end
event as ``data["usage"]``; a run's ``token_budget`` is checked as they come in.
"""

from __future__ import annotations

import atexit
import dataclasses
import hashlib
import inspect
import json
import logging
import math
import queue
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta, timezone
from enum import Enum
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

try:
    from langchain_core.callbacks import BaseCallbackHandler
    from langchain_core.outputs import LLMResult
except ImportError as e:  # pragma: no cover
    raise ImportError("hookline.langgraph needs langchain-core: pip install 'hookline[langgraph]'") from e

from ._usage import (
    TOKEN_BUDGET_KEY,
    UNKNOWN_MODEL,
    Tokens,
    Usage,
    add_usage,
    attribute,
    model_at_start,
    parse_budget,
    total_of,
    usage_json,
    usage_of_result,
)
from .client import AsyncHookline, Hookline
from .events import (
    MAX_BATCH_EVENTS,
    BatchResult,
    Event,
    check_collapse_key,
    check_tenant_id,
    check_ttl_seconds,
    is_valid_event_type,
)

__all__ = ["HooklineCallbackHandler", "EventSink", "EVENT_TYPES", "TOKEN_BUDGET_KEY", "PROGRESS_TTL_SECONDS"]

logger = logging.getLogger("hookline.langgraph")

#: Every event type the handler sends (before ``event_prefix``).
EVENT_TYPES = (
    "agent_invocation_started",
    "agent_resumed",
    "agent_invocation_success",
    "agent_invocation_error",
    "agent_interrupted",
    "node_started",
    "node_completed",
    "node_failed",
    "tool_started",
    "tool_completed",
    "tool_failed",
    "agent_processing",
    "agent_budget_exceeded",
)

#: A batch request stays small: quick to send, and far below Hookline's limits.
_MAX_BATCH_BYTES = 200_000
#: At most this many runs are tracked at once (runs that never end are forgotten).
_MAX_TRACKED_RUNS = 10_000
_MAX_ERROR_MESSAGE = 2_000
#: Retries, inside the sender thread, of batch items Hookline marked ``retryable``.
_ITEM_RETRIES = 2
#: The default ``progress_ttl_seconds``: progress older than five minutes is not worth sending.
PROGRESS_TTL_SECONDS = 300


@runtime_checkable
class EventSink(Protocol):
    """Anything with ``send_batch(events)``: a :class:`~hookline.Hookline` client or a test fake."""

    def send_batch(self, events: Sequence[Event]) -> Any: ...


def _exc_name(obj: BaseException, name: str) -> bool:
    return any(c.__name__ == name for c in type(obj).__mro__)


def _is_interrupt(error: BaseException) -> bool:
    # By name, so that langgraph itself is not a dependency of this module.
    return _exc_name(error, "GraphInterrupt")


def _is_bubble_up(error: BaseException) -> bool:
    return _exc_name(error, "GraphBubbleUp")


def _is_resume(inputs: Any) -> bool:
    if inputs is None:
        return True  # graph.invoke(None, config): go on from the checkpoint
    return type(inputs).__name__ == "Command" and getattr(inputs, "resume", None) is not None


def _error_json(error: BaseException) -> dict[str, str]:
    message = str(error)
    if len(message) > _MAX_ERROR_MESSAGE:
        message = message[:_MAX_ERROR_MESSAGE] + "…"
    return {"type": type(error).__name__, "message": message}


def _now() -> datetime:
    return datetime.now(timezone.utc)


def to_jsonable(value: Any, *, max_items: int = 5_000, max_depth: int = 20) -> Any:
    """A JSON-safe copy of ``value``: models dumped, unknown objects as their repr.

    At most ``max_items`` values are visited and ``max_depth`` levels descended (the rest
    become ``"…"``), so the work stays bounded whatever the state holds.
    """
    budget = [max_items]

    def convert(v: Any, depth: int) -> Any:
        budget[0] -= 1
        if budget[0] < 0 or depth > max_depth:
            return "…"
        if v is None or isinstance(v, (bool, int, str)):
            return v
        if isinstance(v, float):
            return v if math.isfinite(v) else str(v)
        if isinstance(v, (datetime, date)):
            return v.isoformat()
        if isinstance(v, Enum):
            return convert(v.value, depth + 1)
        if isinstance(v, UUID):
            return str(v)
        if isinstance(v, (bytes, bytearray)):
            return f"<{len(v)} bytes>"
        if isinstance(v, Mapping):
            out: dict[str, Any] = {}
            for k, x in v.items():
                if budget[0] <= 0:  # stop walking, not only converting, once spent
                    out["…"] = f"{len(v) - len(out)} more"
                    break
                out[str(k)] = convert(x, depth + 1)
            return out
        if isinstance(v, (list, tuple, set, frozenset)):
            items: list[Any] = []
            for x in v:
                if budget[0] <= 0:
                    items.append(f"… {len(v) - len(items)} more")
                    break
                items.append(convert(x, depth + 1))
            return items
        dump = getattr(v, "model_dump", None)  # pydantic v2 (LangChain messages, ...)
        if callable(dump):
            try:
                return convert(dump(), depth + 1)
            except Exception:
                pass
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return {f.name: convert(getattr(v, f.name, None), depth + 1) for f in dataclasses.fields(v)}
        text = repr(v)
        return text if len(text) <= 500 else text[:500] + "…"

    return convert(value, 0)


def _capped(value: Any, max_chars: int) -> Any:
    """``value`` made JSON-safe; when its JSON is longer than ``max_chars``, a preview of it."""
    try:
        safe = to_jsonable(value)
        text = json.dumps(safe, ensure_ascii=False, separators=(",", ":"))
    except Exception as e:  # never let a strange object break the graph
        return {"unserializable": type(e).__name__}
    if len(text) <= max_chars:
        return safe
    return {"truncated": True, "size": len(text), "preview": text[:max_chars]}


@dataclasses.dataclass
class _Root:
    run_id: UUID
    name: str | None
    thread_id: Any
    started: float
    seq: int = 0
    interrupts: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    interrupt_ids: set[str] = dataclasses.field(default_factory=set)
    failed_node: tuple[str, Any] | None = None
    customs: dict[UUID, int] = dataclasses.field(default_factory=dict)
    usage: Usage = dataclasses.field(default_factory=dict)
    token_budget: int | None = None
    budget_exceeded: bool = False


@dataclasses.dataclass
class _Run:
    root: UUID
    kind: str  # "root" | "node" | "tool" | "chain" | "llm"
    name: str | None
    node: str | None
    step: Any
    started: float
    tool_call_id: str | None = None
    parent: UUID | None = None  # to walk up from an LLM call to its tool, node and root
    model: str | None = None  # an LLM's model as named when it started
    usage: Usage = dataclasses.field(default_factory=dict)


class _RateLimitedLog:
    """Logs a warning at most once every ``every`` seconds per key, saying how many were held back."""

    def __init__(self, every: float = 10.0) -> None:
        self.every = every
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    def warning(self, key: str, message: str, *args: Any) -> None:
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.every:
                self._held[key] = self._held.get(key, 0) + 1
                return
            self._last[key] = now
            held = self._held.pop(key, 0)
        if held:
            message += f" ({held} similar warning(s) held back)"
        logger.warning(message, *args)


class HooklineCallbackHandler(BaseCallbackHandler):
    """Sends a LangGraph run's lifecycle to Hookline as events (see the module doc).

    ``client`` is a :class:`~hookline.Hookline` (or any :class:`EventSink`); when left out,
    one is made from ``base_url``/``api_key`` or ``HOOKLINE_URL``/``HOOKLINE_API_KEY`` and
    closed by :meth:`close`.

    ``tenant_id`` puts every event of the handler in that tenant; left out, the events name
    no tenant of their own, so the client's ``tenant_id`` (if any) is sent.

    ``token_budget`` is a number of tokens per run (one ``invoke``/``stream``; a resume is a
    new run): when the tokens LangChain reported for a run first go over it, one
    ``agent_budget_exceeded`` event is sent. A run's config metadata
    ``{"hookline_token_budget": n}`` sets it for that run (``None`` there: no budget). The
    handler only tells; it never stops the graph.

    Progress events (``agent_processing``, one per ``dispatch_custom_event``) are worth
    little once stale or once a newer one exists, so by default each carries
    ``ttl_seconds=progress_ttl_seconds`` (300; ``None``: no TTL) and, with
    ``collapse_progress`` (True), ``collapse_key="<root run id>:progress:<name>"``, so that
    an endpoint that fell behind gets the newest progress of each name, not a backlog.
    Lifecycle events (runs, nodes, tools, interrupts, the budget) never get either.
    """

    #: Called directly (not in an executor) on the event loop in async runs: every
    #: callback only enqueues, so it never blocks the loop, and order is kept.
    run_inline = True
    raise_error = False

    def __init__(
        self,
        client: Hookline | EventSink | None = None,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        event_prefix: str = "",
        source: str = "langgraph",
        include_inputs: bool = False,
        include_outputs: bool = False,
        max_payload_chars: int = 8_192,
        max_queue: int = 1_000,
        flush_interval: float = 0.5,
        batch_size: int = MAX_BATCH_EVENTS,
        flush_at_exit: bool = True,
        tenant_id: str | None = None,
        token_budget: int | None = None,
        progress_ttl_seconds: int | None = PROGRESS_TTL_SECONDS,
        collapse_progress: bool = True,
    ) -> None:
        super().__init__()
        if tenant_id is not None:
            check_tenant_id(tenant_id)
        # The longest type it will send must still be valid (and within 128 characters).
        if event_prefix and not is_valid_event_type(event_prefix + max(EVENT_TYPES, key=len)):
            raise ValueError(f"event_prefix {event_prefix!r} does not make valid event types")
        if not 1 <= batch_size <= MAX_BATCH_EVENTS:
            raise ValueError(f"batch_size must be 1 to {MAX_BATCH_EVENTS}")
        if max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        if progress_ttl_seconds is not None:
            check_ttl_seconds(progress_ttl_seconds, "progress_ttl_seconds")
        if isinstance(client, AsyncHookline) or inspect.iscoroutinefunction(getattr(client, "send_batch", None)):
            raise TypeError("the handler sends from its own thread: give it a Hookline, not an AsyncHookline")
        self._owns_client = client is None
        self._client: EventSink = (
            client if client is not None else Hookline(base_url, api_key, tenant_id=tenant_id)
        )
        #: The tenant of every event the handler sends (None: the client's, if any).
        self.tenant_id = tenant_id
        self.event_prefix = event_prefix
        self.source = source
        self.include_inputs = include_inputs
        self.include_outputs = include_outputs
        #: The default token budget of each run (None: none); see the class doc.
        self.token_budget = parse_budget(token_budget)
        #: The ``ttl_seconds`` of each progress event (None: none); see the class doc.
        self.progress_ttl_seconds = progress_ttl_seconds
        #: Whether progress events carry a ``collapse_key``; see the class doc.
        self.collapse_progress = bool(collapse_progress)
        self.max_payload_chars = max_payload_chars
        self.flush_interval = flush_interval
        self.batch_size = batch_size

        #: Events dropped because the queue was full (or the handler closed).
        self.dropped = 0
        #: Events that could not be sent (Hookline unreachable, refused or rejected them).
        self.failed = 0
        #: Events Hookline accepted.
        self.sent = 0

        self._queue: queue.Queue[Event] = queue.Queue(maxsize=max_queue)
        self._lock = threading.Lock()  # run state and counters
        self._roots: dict[UUID, _Root] = {}
        self._runs: dict[UUID, _Run] = {}
        self._pending = 0  # enqueued, not yet sent or given up
        self._drained = threading.Condition(self._lock)
        self._urgent = 0  # flush() callers waiting: send without waiting for a full batch
        self._custom_seq = 0
        self._last_progress: datetime | None = None  # the timestamp of the last collapsed event
        self._closed = False
        self._thread: threading.Thread | None = None
        self._log = _RateLimitedLog()
        if flush_at_exit:
            _flush_at_exit(self)

    def __repr__(self) -> str:
        tenant = f"tenant_id={self.tenant_id!r}, " if self.tenant_id is not None else ""
        return (
            f"{type(self).__name__}(client={self._client!r}, {tenant}pending={self._pending}, "
            f"sent={self.sent}, failed={self.failed}, dropped={self.dropped})"
        )

    # -- which callbacks we want ----------------------------------------------------------

    # LLM and chat model callbacks are wanted for their token usage only (no event of their own).

    @property
    def ignore_llm(self) -> bool:
        return False

    @property
    def ignore_chat_model(self) -> bool:
        return False

    @property
    def ignore_retriever(self) -> bool:
        return True

    @property
    def ignore_retry(self) -> bool:
        return True

    # -- run bookkeeping ----------------------------------------------------------------

    def _track(self, run_id: UUID, run: _Run) -> None:
        if len(self._runs) >= _MAX_TRACKED_RUNS:
            self._runs.pop(next(iter(self._runs)))
        self._runs[run_id] = run

    def _root_of(self, parent_run_id: UUID | None) -> UUID | None:
        if parent_run_id is None:
            return None
        parent = self._runs.get(parent_run_id)
        return parent.root if parent is not None else parent_run_id

    def _data(
        self,
        root: _Root | None,
        root_id: UUID,
        fields: Mapping[str, Any],
        metadata: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        thread_id = root.thread_id if root else None
        if thread_id is None and metadata:
            thread_id = metadata.get("thread_id")
        data: dict[str, Any] = {
            "run_id": str(root_id),
            "thread_id": to_jsonable(thread_id),
            "graph": root.name if root else None,
        }
        if root is not None:
            root.seq += 1
            data["seq"] = root.seq
        data.update({k: v for k, v in fields.items() if v is not None})
        return data

    def _emit(
        self,
        kind: str,
        root_id: UUID,
        run_id: UUID,
        data: dict[str, Any],
        suffix: str = "",
        *,
        timestamp: datetime | None = None,
        ttl_seconds: int | None = None,
        collapse_key: str | None = None,
    ) -> None:
        event_type = self.event_prefix + kind
        event_id = f"lg.{root_id.hex}.{run_id.hex}.{event_type}{suffix}"
        if len(event_id) > 128:
            event_id = "lg." + hashlib.sha256(event_id.encode()).hexdigest()
        self._enqueue(Event(
            event_type, data, id=event_id, timestamp=timestamp or _now(), source=self.source,
            tenant_id=self.tenant_id, ttl_seconds=ttl_seconds, collapse_key=collapse_key,
        ))

    # -- chains: the root run and graph nodes ----------------------------------------------

    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        try:
            self._chain_start(serialized, inputs, run_id, parent_run_id, metadata or {}, kwargs)
        except Exception:
            logger.debug("hookline: on_chain_start failed", exc_info=True)

    def _chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        run_id: UUID,
        parent_run_id: UUID | None,
        metadata: dict[str, Any],
        kwargs: dict[str, Any],
    ) -> None:
        name = kwargs.get("name") or (serialized or {}).get("name")
        now = time.monotonic()
        budget = self._run_budget(metadata) if parent_run_id is None else None
        with self._lock:
            if parent_run_id is None:
                root = _Root(run_id, name, metadata.get("thread_id"), now, token_budget=budget)
                self._roots[run_id] = root
                if len(self._roots) > _MAX_TRACKED_RUNS:
                    self._roots.pop(next(iter(self._roots)))
                self._track(run_id, _Run(run_id, "root", name, None, None, now))
                resumed = _is_resume(inputs)
                fields: dict[str, Any] = {}
                if self.include_inputs:
                    if resumed and inputs is not None:
                        fields["resume"] = _capped(getattr(inputs, "resume", None), self.max_payload_chars)
                    elif not resumed:
                        fields["inputs"] = _capped(inputs, self.max_payload_chars)
                kind = "agent_resumed" if resumed else "agent_invocation_started"
                self._emit(kind, run_id, run_id, self._data(root, run_id, fields))
                return
            root_id = self._root_of(parent_run_id)
            assert root_id is not None
            node = metadata.get("langgraph_node")
            is_node = node is not None and node == name
            step = metadata.get("langgraph_step")
            run_kind = "node" if is_node else "chain"
            self._track(run_id, _Run(root_id, run_kind, name, node, step, now, parent=parent_run_id))
            if not is_node:
                return
            node_root = self._roots.get(root_id)
            if node_root is not None and node_root.thread_id is None:
                node_root.thread_id = metadata.get("thread_id")
            fields = {"node": node, "step": step}
            if self.include_inputs:
                fields["inputs"] = _capped(inputs, self.max_payload_chars)
            self._emit("node_started", root_id, run_id, self._data(node_root, root_id, fields, metadata))

    def on_chain_end(
        self,
        outputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        try:
            self._chain_end(outputs, run_id)
        except Exception:
            logger.debug("hookline: on_chain_end failed", exc_info=True)

    def _chain_end(self, outputs: Any, run_id: UUID) -> None:
        with self._lock:
            run = self._runs.pop(run_id, None)
            if run is None or run.kind == "chain":
                return
            duration_ms = _ms(run.started)
            if run.kind == "root":
                root = self._roots.pop(run_id, None)
                if isinstance(outputs, Mapping) and outputs.get("__interrupt__") and root is not None:
                    self._note_interrupts(root, outputs["__interrupt__"], None, None, None)
                if root is not None and root.interrupts:
                    self._emit_interrupted(root, duration_ms, "interrupt")
                    return
                fields: dict[str, Any] = {"duration_ms": duration_ms}
                if root is not None:
                    fields["usage"] = usage_json(root.usage)
                if self.include_outputs:
                    fields["outputs"] = _capped(outputs, self.max_payload_chars)
                self._emit("agent_invocation_success", run_id, run_id, self._data(root, run_id, fields))
                return
            root = self._roots.get(run.root)
            fields = {"node": run.node, "step": run.step, "duration_ms": duration_ms, "usage": usage_json(run.usage)}
            if self.include_outputs:
                fields["outputs"] = _capped(outputs, self.max_payload_chars)
            self._emit("node_completed", run.root, run_id, self._data(root, run.root, fields))

    def on_chain_error(
        self,
        error: BaseException,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        try:
            self._chain_error(error, run_id)
        except Exception:
            logger.debug("hookline: on_chain_error failed", exc_info=True)

    def _chain_error(self, error: BaseException, run_id: UUID) -> None:
        with self._lock:
            run = self._runs.pop(run_id, None)
            if run is None:
                return
            duration_ms = _ms(run.started)
            if run.kind == "root":
                root = self._roots.pop(run_id, None)
                if root is not None and (_is_interrupt(error) or _exc_name(error, "GraphDrained")):
                    if _is_interrupt(error):
                        self._note_interrupts(root, _interrupts_of(error), None, None, None)
                    reason = "interrupt" if _is_interrupt(error) else "drained"
                    self._emit_interrupted(root, duration_ms, reason)
                    return
                fields: dict[str, Any] = {"duration_ms": duration_ms, "error": _error_json(error)}
                if root is not None and root.failed_node is not None:
                    fields["node"], fields["step"] = root.failed_node
                if root is not None:
                    fields["usage"] = usage_json(root.usage)
                self._emit("agent_invocation_error", run_id, run_id, self._data(root, run_id, fields))
                return
            root = self._roots.get(run.root)
            if _is_interrupt(error):
                if root is not None:
                    self._note_interrupts(root, _interrupts_of(error), run.node, run.step, None)
                return  # a pause, not a failure: reported when the root run ends
            if run.kind != "node":
                return
            if _is_bubble_up(error):
                # Control flow (e.g. Command(graph=Command.PARENT)), not a failure.
                fields = {
                    "node": run.node, "step": run.step, "duration_ms": duration_ms, "usage": usage_json(run.usage),
                }
                self._emit("node_completed", run.root, run_id, self._data(root, run.root, fields))
                return
            if root is not None and root.failed_node is None:
                root.failed_node = (run.node or "", run.step)
            fields = {
                "node": run.node, "step": run.step, "duration_ms": duration_ms, "error": _error_json(error),
                "usage": usage_json(run.usage),
            }
            self._emit("node_failed", run.root, run_id, self._data(root, run.root, fields))

    def _note_interrupts(
        self, root: _Root, interrupts: Any, node: str | None, step: Any, tool: str | None
    ) -> None:
        for item in interrupts or ():
            interrupt_id = getattr(item, "id", None) or getattr(item, "interrupt_id", None)
            key = str(interrupt_id) if interrupt_id else f"#{len(root.interrupts)}"
            if key in root.interrupt_ids:
                continue
            root.interrupt_ids.add(key)
            entry: dict[str, Any] = {"id": interrupt_id, "node": node, "step": step}
            if tool is not None:
                entry["tool"] = tool
            if self.include_outputs:
                entry["value"] = _capped(getattr(item, "value", item), self.max_payload_chars)
            root.interrupts.append({k: v for k, v in entry.items() if v is not None})

    def _emit_interrupted(self, root: _Root, duration_ms: float, reason: str) -> None:
        first = root.interrupts[0] if root.interrupts else {}
        fields: dict[str, Any] = {
            "node": first.get("node"),
            "step": first.get("step"),
            "reason": reason,
            "duration_ms": duration_ms,
            "interrupts": root.interrupts,
            "usage": usage_json(root.usage),
        }
        self._emit("agent_interrupted", root.run_id, root.run_id, self._data(root, root.run_id, fields))

    # -- tools ----------------------------------------------------------------------------

    def on_tool_start(
        self,
        serialized: dict[str, Any] | None,
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        try:
            md = metadata or {}
            name = (serialized or {}).get("name") or kwargs.get("name")
            now = time.monotonic()
            with self._lock:
                root_id = self._root_of(parent_run_id) or run_id
                run = _Run(root_id, "tool", name, md.get("langgraph_node"), md.get("langgraph_step"), now,
                           tool_call_id=kwargs.get("tool_call_id"), parent=parent_run_id)
                self._track(run_id, run)
                root = self._roots.get(root_id)
                fields: dict[str, Any] = {
                    "tool": name, "node": run.node, "step": run.step, "tool_call_id": run.tool_call_id,
                }
                if self.include_inputs:
                    fields["inputs"] = _capped(inputs if inputs is not None else input_str, self.max_payload_chars)
                self._emit("tool_started", root_id, run_id, self._data(root, root_id, fields, md))
        except Exception:
            logger.debug("hookline: on_tool_start failed", exc_info=True)

    def on_tool_end(self, output: Any, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        try:
            with self._lock:
                run = self._runs.pop(run_id, None)
                if run is None:
                    return
                root = self._roots.get(run.root)
                fields: dict[str, Any] = {
                    "tool": run.name, "node": run.node, "step": run.step,
                    "tool_call_id": run.tool_call_id, "duration_ms": _ms(run.started),
                    "usage": usage_json(run.usage),
                }
                if self.include_outputs:
                    fields["output"] = _capped(output, self.max_payload_chars)
                self._emit("tool_completed", run.root, run_id, self._data(root, run.root, fields))
        except Exception:
            logger.debug("hookline: on_tool_end failed", exc_info=True)

    def on_tool_error(
        self, error: BaseException, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any
    ) -> None:
        try:
            with self._lock:
                run = self._runs.pop(run_id, None)
                if run is None:
                    return
                root = self._roots.get(run.root)
                if _is_interrupt(error):
                    if root is not None:
                        self._note_interrupts(root, _interrupts_of(error), run.node, run.step, run.name)
                    return
                fields: dict[str, Any] = {
                    "tool": run.name, "node": run.node, "step": run.step, "tool_call_id": run.tool_call_id,
                    "duration_ms": _ms(run.started), "error": _error_json(error),
                    "usage": usage_json(run.usage),
                }
                self._emit("tool_failed", run.root, run_id, self._data(root, run.root, fields))
        except Exception:
            logger.debug("hookline: on_tool_error failed", exc_info=True)

    # -- LLM and chat model calls: token usage and the budget ---------------------------------

    def on_chat_model_start(
        self,
        serialized: dict[str, Any] | None,
        messages: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        # Defined so that LangChain does not fall back to on_llm_start with the messages
        # turned into text; the messages themselves are never read.
        self._llm_start(serialized, run_id, parent_run_id, metadata or {}, kwargs)

    def on_llm_start(
        self,
        serialized: dict[str, Any] | None,
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._llm_start(serialized, run_id, parent_run_id, metadata or {}, kwargs)

    def _llm_start(
        self,
        serialized: dict[str, Any] | None,
        run_id: UUID,
        parent_run_id: UUID | None,
        metadata: dict[str, Any],
        kwargs: dict[str, Any],
    ) -> None:
        if parent_run_id is None:
            return  # a model called on its own, outside any run this handler reports
        try:
            model = model_at_start(serialized, metadata, kwargs)
            with self._lock:
                root_id = self._root_of(parent_run_id)
                if root_id is None:
                    return  # under a run this handler does not track
                self._track(run_id, _Run(
                    root_id, "llm", None, metadata.get("langgraph_node"), metadata.get("langgraph_step"),
                    time.monotonic(), parent=parent_run_id, model=model,
                ))
        except Exception:
            logger.debug("hookline: on_llm_start failed", exc_info=True)

    def on_llm_end(
        self, response: LLMResult, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any
    ) -> None:
        try:
            with self._lock:
                run = self._runs.pop(run_id, None)
                if run is None or run.kind != "llm":
                    return
                reported = usage_of_result(response)
                if reported is not None:
                    tokens, model = reported
                    self._count_usage(run, model or run.model or UNKNOWN_MODEL, tokens)
        except Exception:
            logger.debug("hookline: on_llm_end failed", exc_info=True)

    def on_llm_error(
        self, error: BaseException, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any
    ) -> None:
        # A failed call reports no usage in LangChain; only forget the run.
        try:
            with self._lock:
                self._runs.pop(run_id, None)
        except Exception:
            logger.debug("hookline: on_llm_error failed", exc_info=True)

    def _count_usage(self, llm: _Run, model: str, tokens: Tokens) -> None:
        """Add one call's tokens to the tools and nodes it ran in and, once, to its root run."""
        tool = attribute(self._runs, llm, model, tokens)
        root = self._roots.get(llm.root)
        if root is None:
            return
        add_usage(root.usage, model, tokens)
        self._check_budget(root, llm, tool)

    def _check_budget(self, root: _Root, llm: _Run, tool: str | None) -> None:
        """Send ``agent_budget_exceeded`` the first time the run's tokens go over its budget."""
        if root.token_budget is None or root.budget_exceeded:
            return
        total = total_of(root.usage)
        if total <= root.token_budget:
            return
        root.budget_exceeded = True
        fields = {"budget": root.token_budget, "total_tokens": total, "node": llm.node, "step": llm.step, "tool": tool}
        self._emit("agent_budget_exceeded", root.run_id, root.run_id, self._data(root, root.run_id, fields))

    def _run_budget(self, metadata: Mapping[str, Any]) -> int | None:
        """The run's budget: its ``hookline_token_budget`` metadata if set, else the handler's."""
        if TOKEN_BUDGET_KEY not in metadata:
            return self.token_budget
        try:
            return parse_budget(metadata[TOKEN_BUDGET_KEY])
        except ValueError:
            self._log.warning(
                "budget", "hookline: ignoring %s of type %s (not a positive int or None); using %s",
                TOKEN_BUDGET_KEY, type(metadata[TOKEN_BUDGET_KEY]).__name__, self.token_budget,
            )
            return self.token_budget

    # -- custom progress events -------------------------------------------------------------

    def on_custom_event(
        self,
        name: str,
        data: Any,
        *,
        run_id: UUID,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        try:
            md = metadata or {}
            with self._lock:
                run = self._runs.get(run_id)
                root_id = run.root if run is not None else run_id
                root = self._roots.get(root_id)
                if root is not None:
                    n = root.customs.get(run_id, 0) + 1
                    root.customs[run_id] = n
                else:
                    self._custom_seq += 1
                    n = self._custom_seq
                node = md.get("langgraph_node", run.node if run else None)
                step = md.get("langgraph_step", run.step if run else None)
                fields = {
                    "name": name,
                    "node": node,
                    "step": step,
                    "data": _capped(data, self.max_payload_chars),
                }
                key = _progress_key(root_id, name) if self.collapse_progress else None
                self._emit(
                    "agent_processing", root_id, run_id, self._data(root, root_id, fields, md), suffix=f".{n}",
                    timestamp=self._progress_time() if key is not None else None,
                    ttl_seconds=self.progress_ttl_seconds, collapse_key=key,
                )
        except Exception:
            logger.debug("hookline: on_custom_event failed", exc_info=True)

    def _progress_time(self) -> datetime:
        """Now, to the millisecond, but always after the last collapsed event's timestamp.

        Hookline ranks the events of one collapse key by ``timestamp`` (milliseconds), then
        by id. Two progress events in one millisecond would be ranked by id, where ``.10``
        sorts before ``.9`` and two callback runs' ids sort at random, so the older could
        supersede the newer. A millisecond apart at least, they rank in the order emitted.
        Called with the lock held.
        """
        now = _now()
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        if self._last_progress is not None and now <= self._last_progress:
            now = self._last_progress + timedelta(milliseconds=1)
        self._last_progress = now
        return now

    # -- the queue and the sender thread ------------------------------------------------------

    def _enqueue(self, event: Event) -> None:
        # Called with self._lock held; never blocks.
        if self._closed:
            self.dropped += 1
            return
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self.dropped += 1
            self._log.warning(
                "dropped", "hookline: event queue full (%d); dropping %s (%d dropped so far)",
                self._queue.maxsize, event.event_type, self.dropped,
            )
            return
        self._pending += 1
        if self._thread is None:
            self._thread = threading.Thread(target=self._run_sender, name="hookline-sender", daemon=True)
            self._thread.start()

    def _run_sender(self) -> None:
        carry: Event | None = None
        while True:
            if carry is not None:
                first, carry = carry, None
            else:
                try:
                    first = self._queue.get(timeout=0.25)
                except queue.Empty:
                    if self._closed:
                        return
                    continue
            batch, size = [first], _size(first)
            deadline = time.monotonic() + self.flush_interval
            while len(batch) < self.batch_size:
                try:
                    event = self._queue.get_nowait()
                except queue.Empty:
                    if self._urgent or self._closed:
                        break
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    try:
                        event = self._queue.get(timeout=min(remaining, 0.05))
                    except queue.Empty:
                        continue
                event_size = _size(event)
                if size + event_size > _MAX_BATCH_BYTES:
                    carry = event
                    break
                batch.append(event)
                size += event_size
            self._send(batch)

    def _send(self, batch: list[Event]) -> None:
        sent = failed = 0
        try:
            todo = batch
            for attempt in range(_ITEM_RETRIES + 1):
                result = self._client.send_batch(todo)
                if not isinstance(result, BatchResult):
                    sent += len(todo)  # a sink that does not report per event
                    break
                sent += result.accepted
                bad = [r for r in result.results if r.status == "rejected" or (r.status == "failed" and not r.retryable)]
                for r in bad:
                    self._log.warning(
                        "rejected", "hookline: event %s was %s: %s", r.id, r.status,
                        "; ".join(f"{e.pointer}: {e.detail}" for e in r.errors) or "no detail",
                    )
                failed += len(bad)
                retry = {r.index for r in result.retryable}
                if not retry:
                    break
                if attempt == _ITEM_RETRIES:
                    failed += len(retry)
                    break
                todo = [e for i, e in enumerate(todo) if i in retry]
                time.sleep(0.2 * (attempt + 1))
        except Exception as e:
            failed = len(batch) - sent
            self._log.warning(
                "send", "hookline: could not send %d event(s): %s: %s", failed, type(e).__name__, e
            )
        with self._lock:
            self.sent += sent
            self.failed += failed
            self._pending -= len(batch)
            if self._pending <= 0:
                self._drained.notify_all()

    def flush(self, timeout: float | None = 5.0) -> bool:
        """Wait until every queued event is sent (or given up); True when the queue drained in time."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            self._urgent += 1
            try:
                while self._pending > 0:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._drained.wait(remaining)
                return True
            finally:
                self._urgent -= 1

    def close(self, timeout: float | None = 5.0) -> bool:
        """Flush, stop the sender thread, and close the client if the handler made it."""
        if self._closed:
            return self._pending == 0
        drained = self.flush(timeout)
        with self._lock:
            self._closed = True
            thread = self._thread
        _LIVE.discard(self)
        if thread is not None:
            # The idle sender notices `_closed` within its 0.25 s poll; a sender stuck in a
            # slow request is a daemon thread and is left to finish on its own.
            thread.join(timeout=0.5 if drained else 0.05)
        if self._owns_client:
            close = getattr(self._client, "close", None)
            if callable(close):
                try:
                    close()
                except Exception:
                    logger.debug("hookline: closing the client failed", exc_info=True)
        return drained

    def __enter__(self) -> HooklineCallbackHandler:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _interrupts_of(error: BaseException) -> Any:
    # GraphInterrupt(interrupts: Sequence[Interrupt]) keeps them in args[0].
    if error.args and isinstance(error.args[0], (list, tuple)):
        return error.args[0]
    return ()


def _progress_key(root_id: UUID, name: Any) -> str:
    """The collapse key of a run's progress events of one ``name``.

    Per (run, name), not per run: a graph may dispatch several kinds of progress at once
    (``"progress"`` with a percentage, ``"status"`` with a message, ``"sources"`` found so
    far), each a stream of its own. One key per run would let the newest of one kind
    supersede an undelivered event of another, so a receiver could miss the last word of
    a stream altogether; per name, each stream still arrives at its newest. Not per node
    or step: the newest progress of a run is what a receiver shows, whichever node sent it.
    A name that cannot go in a key (too long, control characters) is hashed.
    """
    key = f"{root_id}:progress:{name}"
    try:
        return check_collapse_key(key)
    except ValueError:
        digest = hashlib.sha256(str(name).encode("utf-8", "surrogatepass")).hexdigest()[:32]
        return f"{root_id}:progress:#{digest}"


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 3)


def _size(event: Event) -> int:
    try:
        return len(json.dumps(event.to_json(), default=str)) + 1
    except Exception:
        return 1_000


_LIVE: weakref.WeakSet[HooklineCallbackHandler] = weakref.WeakSet()
_atexit_registered = False
_atexit_lock = threading.Lock()


def _flush_at_exit(handler: HooklineCallbackHandler) -> None:
    """Remember ``handler`` (weakly) so that one atexit hook closes every live handler."""
    global _atexit_registered
    with _atexit_lock:
        _LIVE.add(handler)
        if not _atexit_registered:
            atexit.register(_close_all)
            _atexit_registered = True


def _close_all() -> None:
    for handler in list(_LIVE):
        try:
            handler.close(timeout=2.0)
        except Exception:
            pass
