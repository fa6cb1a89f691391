"""HooklineCallbackHandler on real LangGraph graphs (langgraph 1.2.x), with a fake sink."""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any

import pytest
from _support import API_KEY, BAD_TENANT_IDS, TENANT_KEY, TENANT_KEY_SECRET, FakeHookline, Sink
from langchain_core.callbacks.manager import adispatch_custom_event, dispatch_custom_event
from langchain_core.messages import AIMessage, AnyMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import MemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode
from langgraph.types import Command, interrupt
from typing_extensions import TypedDict

from hookline import AsyncHookline, Event, Hookline
from hookline.events import is_valid_event_id, is_valid_event_type
from hookline.langgraph import HooklineCallbackHandler


# -- the graph under test ---------------------------------------------------------------------


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


@tool
def approve(action: str) -> str:
    """Ask a human to approve an action."""
    return interrupt({"approve": action})


class State(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    mode: str  # "ok" | "fail" | "ask" | "tool-ask"
    answer: Any


def agent(state: State) -> dict[str, Any]:
    dispatch_custom_event("progress", {"pct": 50, "stage": "planning"})
    name, args = ("approve", {"action": "deploy"}) if state.get("mode") == "tool-ask" else ("add", {"a": 2, "b": 3})
    return {"messages": [AIMessage("", tool_calls=[{"name": name, "args": args, "id": "call-1"}])]}


async def aagent(state: State) -> dict[str, Any]:
    await adispatch_custom_event("progress", {"pct": 50, "stage": "planning"})
    return {"messages": [AIMessage("", tool_calls=[{"name": "add", "args": {"a": 2, "b": 3}, "id": "call-1"}])]}


def finish(state: State) -> dict[str, Any]:
    if state.get("mode") == "fail":
        raise ValueError("the model said no")
    if state.get("mode") == "ask":
        return {"answer": interrupt({"question": "ship it?"})}
    return {"answer": state["messages"][-1].content}


def build(agent_node=agent, checkpointer=None):
    g = StateGraph(State)
    g.add_node("agent", agent_node)
    g.add_node("tools", ToolNode([add, approve]))
    g.add_node("finish", finish)
    g.add_edge(START, "agent")
    g.add_edge("agent", "tools")
    g.add_edge("tools", "finish")
    g.add_edge("finish", END)
    return g.compile(checkpointer=checkpointer)


def run(graph, inputs, handler, *, thread_id: str | None = None, run_id: uuid.UUID | None = None):
    config: dict[str, Any] = {"callbacks": [handler]}
    if thread_id:
        config["configurable"] = {"thread_id": thread_id}
    if run_id:
        config["run_id"] = run_id
    return graph.invoke(inputs, config=config)


def kinds(events: list[Event]) -> list[str]:
    return [e.event_type for e in events]


def summary(events: list[Event]) -> list[tuple[str, Any, Any]]:
    return [(e.event_type, e.data.get("node"), e.data.get("step")) for e in events]


# -- what a run becomes -------------------------------------------------------------------------


def test_a_successful_run(handler: HooklineCallbackHandler, sink: Sink) -> None:
    root = uuid.uuid4()
    out = run(build(), {"mode": "ok"}, handler, thread_id="t-ok", run_id=root)
    assert out["answer"] == "5"
    assert handler.flush(5)
    events = sink.events
    assert summary(events) == [
        ("agent_invocation_started", None, None),
        ("node_started", "agent", 1),
        ("agent_processing", "agent", 1),
        ("node_completed", "agent", 1),
        ("node_started", "tools", 2),
        ("tool_started", "tools", 2),
        ("tool_completed", "tools", 2),
        ("node_completed", "tools", 2),
        ("node_started", "finish", 3),
        ("node_completed", "finish", 3),
        ("agent_invocation_success", None, None),
    ]
    for e in events:
        assert e.data["run_id"] == str(root)
        assert e.data["thread_id"] == "t-ok"
        assert e.data["graph"] == "LangGraph"
        assert e.source == "langgraph"
        assert is_valid_event_id(e.id) and is_valid_event_type(e.event_type)
        assert e.timestamp is not None
        assert "inputs" not in e.data and "outputs" not in e.data and "output" not in e.data  # private by default
    assert [e.data["seq"] for e in events] == list(range(1, len(events) + 1))
    assert len({e.id for e in events}) == len(events)
    custom = events[2].data
    assert custom["name"] == "progress" and custom["data"] == {"pct": 50, "stage": "planning"}
    tool_started, tool_completed = events[5].data, events[6].data
    assert tool_started["tool"] == tool_completed["tool"] == "add"
    assert tool_started["tool_call_id"] == "call-1"
    for e in events:
        if e.event_type in ("node_completed", "tool_completed", "agent_invocation_success"):
            assert isinstance(e.data["duration_ms"], float) and e.data["duration_ms"] >= 0


def test_event_ids_are_deterministic_per_root_run_callback_run_and_kind(handler, sink) -> None:
    root = uuid.uuid4()
    run(build(), {"mode": "ok"}, handler, run_id=root)
    handler.flush(5)
    started, node_started = sink.events[0], sink.events[1]
    assert started.id == f"lg.{root.hex}.{root.hex}.agent_invocation_started"
    assert re.fullmatch(rf"lg\.{root.hex}\.[0-9a-f]{{32}}\.node_started", node_started.id)
    assert sink.events[2].id.endswith(".agent_processing.1")
    # The same callback seen twice makes the same id (so a re-send is not a duplicate).
    again = HooklineCallbackHandler(Sink(), flush_at_exit=False)
    try:
        for h in (again, again):
            h.on_chain_start({}, {}, run_id=root, name="LangGraph")
        again.flush(5)
        ids = [e.id for e in again._client.events]
        assert ids[0] == ids[1] == started.id
    finally:
        again.close()


def test_an_error_run_ends_with_node_failed_then_agent_invocation_error(handler, sink) -> None:
    with pytest.raises(ValueError, match="the model said no"):  # the graph's error is untouched
        run(build(), {"mode": "fail"}, handler, thread_id="t-err")
    handler.flush(5)
    events = sink.events
    assert kinds(events)[-2:] == ["node_failed", "agent_invocation_error"]
    failed, ended = events[-2].data, events[-1].data
    assert (failed["node"], failed["step"]) == ("finish", 3)
    assert failed["error"] == {"type": "ValueError", "message": "the model said no"}
    assert ended["error"] == {"type": "ValueError", "message": "the model said no"}
    assert (ended["node"], ended["step"]) == ("finish", 3)
    assert ended["thread_id"] == "t-err" and ended["duration_ms"] >= failed["duration_ms"]
    assert "agent_invocation_success" not in kinds(events)


def test_an_interrupt_is_agent_interrupted_and_a_resume_is_agent_resumed(handler, sink) -> None:
    graph = build(checkpointer=MemorySaver())
    out = run(graph, {"mode": "ask"}, handler, thread_id="t-hitl")
    assert "__interrupt__" in out
    handler.flush(5)
    first = sink.events
    assert kinds(first) == [
        "agent_invocation_started",
        "node_started", "agent_processing", "node_completed",
        "node_started", "tool_started", "tool_completed", "node_completed",
        "node_started",
        "agent_interrupted",
    ]
    paused = first[-1].data
    assert not any(k in kinds(first) for k in ("node_failed", "agent_invocation_error", "agent_invocation_success"))
    assert (paused["node"], paused["step"], paused["reason"]) == ("finish", 3, "interrupt")
    assert paused["interrupts"] == [{"id": out["__interrupt__"][0].id, "node": "finish", "step": 3}]
    assert "value" not in paused["interrupts"][0]  # include_outputs is off
    assert paused["thread_id"] == "t-hitl"

    n = len(sink.events)
    out = run(graph, Command(resume="yes"), handler, thread_id="t-hitl")
    assert out["answer"] == "yes"
    handler.flush(5)
    second = sink.events[n:]
    assert summary(second) == [
        ("agent_resumed", None, None),
        ("node_started", "finish", 3),
        ("node_completed", "finish", 3),
        ("agent_invocation_success", None, None),
    ]
    assert {e.data["thread_id"] for e in second} == {"t-hitl"}
    assert second[0].data["run_id"] != paused["run_id"]  # a new root run


def test_an_interrupt_inside_a_tool_is_not_a_tool_failure() -> None:
    sink = Sink()
    with HooklineCallbackHandler(sink, include_outputs=True, flush_at_exit=False) as handler:
        graph = build(checkpointer=MemorySaver())
        run(graph, {"mode": "tool-ask"}, handler, thread_id="t-tool")
        handler.flush(5)
        assert kinds(sink.events)[-3:] == ["node_started", "tool_started", "agent_interrupted"]
        paused = sink.events[-1].data
        assert paused["interrupts"][0]["tool"] == "approve"
        assert paused["interrupts"][0]["node"] == "tools"
        assert paused["interrupts"][0]["value"] == {"approve": "deploy"}
        run(graph, Command(resume="approved"), handler, thread_id="t-tool")
        handler.flush(5)
        assert "tool_failed" not in kinds(sink.events)
        assert kinds(sink.events)[-1] == "agent_invocation_success"


async def test_an_async_run_reports_the_same_events(handler, sink) -> None:
    root = uuid.uuid4()
    out = await build(aagent).ainvoke(
        {"mode": "ok"}, config={"callbacks": [handler], "configurable": {"thread_id": "t-async"}, "run_id": root}
    )
    assert out["answer"] == "5"
    assert handler.flush(5)
    assert summary(sink.events)[:4] == [
        ("agent_invocation_started", None, None),
        ("node_started", "agent", 1),
        ("agent_processing", "agent", 1),
        ("node_completed", "agent", 1),
    ]
    assert kinds(sink.events)[-1] == "agent_invocation_success"
    assert {e.data["run_id"] for e in sink.events} == {str(root)}
    assert {e.data["thread_id"] for e in sink.events} == {"t-async"}


def test_prefix_and_opt_in_inputs_and_outputs_are_json_safe_and_capped() -> None:
    sink = Sink()
    with HooklineCallbackHandler(
        sink, event_prefix="agent.", include_inputs=True, include_outputs=True,
        max_payload_chars=300, source="my-agent", flush_at_exit=False,
    ) as handler:
        run(build(), {"mode": "ok", "answer": "x" * 1000}, handler)
        handler.flush(5)
    events = sink.events
    assert all(e.event_type.startswith("agent.") and e.source == "my-agent" for e in events)
    started = events[0].data["inputs"]
    assert started["truncated"] is True and started["size"] > 1000 and len(started["preview"]) == 300
    tool_started = next(e for e in events if e.event_type == "agent.tool_started")
    assert tool_started.data["inputs"] == {"a": 2, "b": 3}
    tool_done = next(e for e in events if e.event_type == "agent.tool_completed")
    assert tool_done.data["output"]["content"] == "5"  # a ToolMessage, dumped to JSON
    node_done = [e for e in events if e.event_type == "agent.node_completed"][-1]
    assert node_done.data["outputs"] == {"answer": "5"}
    with pytest.raises(ValueError):
        HooklineCallbackHandler(sink, event_prefix="hookline.", flush_at_exit=False)
    with pytest.raises(TypeError, match="AsyncHookline"):
        HooklineCallbackHandler(AsyncHookline("http://127.0.0.1:9", API_KEY), flush_at_exit=False)


# -- never blocking or breaking the graph -----------------------------------------------------------


def test_a_slow_sink_does_not_slow_the_graph() -> None:
    sink = Sink(delay=1.5)
    handler = HooklineCallbackHandler(sink, flush_interval=0.01, flush_at_exit=False)
    try:
        start = time.monotonic()
        for i in range(3):
            run(build(), {"mode": "ok"}, handler, thread_id=f"slow-{i}")
        assert time.monotonic() - start < 1.0
        deadline = time.monotonic() + 2
        while sink.calls == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sink.calls >= 1  # the sender is busy sending in its own thread
    finally:
        assert handler.close(timeout=0.1) is False  # bounded: gave up waiting, did not hang
    assert handler._thread is not None


def test_a_failing_sink_does_not_break_the_graph(caplog: pytest.LogCaptureFixture) -> None:
    sink = Sink(fail=True)
    with HooklineCallbackHandler(sink, flush_interval=0.01, flush_at_exit=False) as handler:
        out = run(build(), {"mode": "ok"}, handler)
        assert out["answer"] == "5"
        with pytest.raises(ValueError):
            run(build(), {"mode": "fail"}, handler)
        assert handler.flush(5)
        assert handler.failed > 0 and handler.sent == 0 and handler.dropped == 0
    assert "could not send" in caplog.text and "hookline is down" in caplog.text


def test_a_full_queue_drops_and_counts(caplog: pytest.LogCaptureFixture) -> None:
    gate = threading.Event()
    sink = Sink(gate=gate)
    handler = HooklineCallbackHandler(sink, max_queue=3, batch_size=1, flush_interval=0.01, flush_at_exit=False)
    try:
        start = time.monotonic()
        run(build(), {"mode": "ok"}, handler)  # 11 events; the sender is stuck on the first
        assert time.monotonic() - start < 2.0
        assert handler.dropped >= 11 - 3 - 1
        gate.set()
        assert handler.flush(5)
        assert handler.sent + handler.dropped == 11 and handler.failed == 0
        assert len(sink.events) == handler.sent
        drops = [r for r in caplog.records if "queue full" in r.getMessage()]
        assert len(drops) == 1  # rate-limited
    finally:
        gate.set()
        handler.close()


def test_closing_stops_the_thread_and_later_events_are_dropped(sink: Sink) -> None:
    handler = HooklineCallbackHandler(sink, flush_at_exit=False)
    run(build(), {"mode": "ok"}, handler)
    assert handler.close(timeout=5)
    assert handler._thread is not None and not handler._thread.is_alive()
    run(build(), {"mode": "ok"}, handler)
    assert handler.dropped == 11 and len(sink.events) == 11
    assert handler.close() is True  # idempotent


def test_end_to_end_with_the_real_client_over_http(hookline_server: FakeHookline) -> None:
    client = Hookline(hookline_server.url, API_KEY, backoff=0.01)
    with HooklineCallbackHandler(client, flush_interval=0.05, flush_at_exit=False) as handler:
        run(build(), {"mode": "ok"}, handler, thread_id="t-http")
        assert handler.flush(5)
        assert handler.sent == 11 and handler.failed == 0
    client.close()
    sent = [e for r in hookline_server.requests for e in r.body["events"]]
    assert {r.path for r in hookline_server.requests} == {"/v1/events/batch"}
    assert sent[0]["event_type"] == "agent_invocation_started"
    assert sent[-1]["event_type"] == "agent_invocation_success"
    lifecycle = {"id", "event_type", "data", "timestamp", "source"}
    assert all(set(e) == lifecycle for e in sent if e["event_type"] != "agent_processing")
    [progress] = [e for e in sent if e["event_type"] == "agent_processing"]
    assert set(progress) == lifecycle | {"ttl_seconds", "collapse_key"}  # the progress defaults
    assert all(e["id"].startswith("lg.") and e["data"]["thread_id"] == "t-http" for e in sent)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", e["timestamp"]) for e in sent)


def test_a_handler_made_from_the_environment(hookline_server: FakeHookline, monkeypatch) -> None:
    monkeypatch.setenv("HOOKLINE_URL", hookline_server.url)
    monkeypatch.setenv("HOOKLINE_API_KEY", API_KEY)
    handler = HooklineCallbackHandler(flush_interval=0.01, flush_at_exit=False)
    run(build(), {"mode": "ok"}, handler)
    assert handler.close(timeout=5)
    assert handler.sent == 11
    assert API_KEY not in repr(handler)


def test_the_handler_logs_nothing_noisy_on_a_normal_run(handler, sink, caplog) -> None:
    caplog.set_level(logging.WARNING)
    run(build(), {"mode": "ok"}, handler)
    handler.flush(5)
    assert not [r for r in caplog.records if r.name.startswith("hookline")]


def test_a_subgraph_interrupt_is_reported_once_and_a_none_input_is_a_resume(handler, sink) -> None:
    def ask(state: State) -> dict[str, Any]:
        return {"answer": interrupt("which way?")}

    inner = StateGraph(State)
    inner.add_node("ask", ask)
    inner.add_edge(START, "ask")
    outer = StateGraph(State)
    outer.add_node("outer", inner.compile())
    outer.add_node("after", lambda s: {"mode": "done"})
    outer.add_edge(START, "outer")
    outer.add_edge("outer", "after")
    graph = outer.compile(checkpointer=MemorySaver(), interrupt_before=["after"])

    run(graph, {"mode": "x"}, handler, thread_id="t-sub")
    handler.flush(5)
    assert summary(sink.events) == [
        ("agent_invocation_started", None, None),
        ("node_started", "outer", 1),
        ("node_started", "ask", 1),  # the subgraph's node
        ("agent_interrupted", "ask", 1),
    ]
    assert len(sink.events[-1].data["interrupts"]) == 1  # seen at three levels, reported once

    n = len(sink.events)
    run(graph, Command(resume="left"), handler, thread_id="t-sub")  # stops at the static breakpoint
    run(graph, None, handler, thread_id="t-sub")  # goes on from the checkpoint
    handler.flush(5)
    assert kinds(sink.events[n:]) == [
        "agent_resumed", "node_started", "node_started", "node_completed", "node_completed",
        "agent_invocation_success",  # a static breakpoint is invisible to callbacks
        "agent_resumed", "node_started", "node_completed", "agent_invocation_success",
    ]


# -- tenants ---------------------------------------------------------------------------------------


def test_the_handlers_events_carry_its_tenant(sink: Sink) -> None:
    with HooklineCallbackHandler(sink, tenant_id="acme", flush_interval=0.05, flush_at_exit=False) as handler:
        run(build(), {"mode": "ok"}, handler)
        assert handler.flush(5)
    assert len(sink.events) == 11
    assert all(e.tenant_id == "acme" and e.to_json()["tenant_id"] == "acme" for e in sink.events)
    assert "tenant_id='acme'" in repr(handler)


def test_the_handlers_tenant_or_else_the_clients_goes_over_http(hookline_server: FakeHookline) -> None:
    def bodies(client: Hookline, **kw: Any) -> list[dict[str, Any]]:
        before = len(hookline_server.requests)
        with HooklineCallbackHandler(client, flush_interval=0.05, flush_at_exit=False, **kw) as handler:
            run(build(), {"mode": "ok"}, handler)
            assert handler.flush(5) and handler.sent == 11
        return [e for r in hookline_server.requests[before:] for e in r.body["events"]]

    with Hookline(hookline_server.url, API_KEY, backoff=0.01, tenant_id="acme") as client:
        assert {e["tenant_id"] for e in bodies(client)} == {"acme"}  # the client's
        assert {e["tenant_id"] for e in bodies(client, tenant_id="globex")} == {"globex"}  # the handler's wins
    with Hookline(hookline_server.url, API_KEY, backoff=0.01) as client:
        assert {e["tenant_id"] for e in bodies(client, tenant_id="globex")} == {"globex"}
        assert all("tenant_id" not in e for e in bodies(client))  # no tenant anywhere: as before


def test_a_handler_made_with_a_tenant_key_and_a_tenant(hookline_server: FakeHookline) -> None:
    handler = HooklineCallbackHandler(
        base_url=hookline_server.url, api_key=TENANT_KEY, tenant_id="acme", flush_interval=0.01, flush_at_exit=False
    )
    run(build(), {"mode": "ok"}, handler)
    assert handler.close(timeout=5) and handler.sent == 11
    assert all(r.headers["authorization"] == f"Bearer {TENANT_KEY}" for r in hookline_server.requests)
    assert {e["tenant_id"] for r in hookline_server.requests for e in r.body["events"]} == {"acme"}
    assert TENANT_KEY_SECRET not in repr(handler) and "hk_" not in repr(handler)


@pytest.mark.parametrize("tenant_id", BAD_TENANT_IDS)
def test_a_handler_with_a_bad_tenant_id_is_a_value_error(sink: Sink, tenant_id) -> None:
    with pytest.raises(ValueError, match="tenant_id"):
        HooklineCallbackHandler(sink, tenant_id=tenant_id, flush_at_exit=False)


# -- progress events: a short TTL and a collapse key --------------------------------------------------


def rank(event: Event) -> tuple[int, str]:
    """How Hookline orders the events of one collapse key: the timestamp as sent (whole ms), then id."""
    sent = datetime.fromisoformat(event.to_json()["timestamp"].replace("Z", "+00:00"))
    return (sent - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(milliseconds=1), event.id or ""


def test_progress_events_get_a_short_ttl_and_a_per_run_collapse_key_by_default(handler, sink) -> None:
    root = uuid.uuid4()
    run(build(), {"mode": "ok"}, handler, run_id=root)
    assert handler.flush(5)
    progress = [e for e in sink.events if e.event_type == "agent_processing"]
    assert len(progress) == 1
    assert progress[0].ttl_seconds == 300 and progress[0].expires_at is None
    assert progress[0].collapse_key == f"{root}:progress:progress"  # the run, then the event's name
    body = progress[0].to_json()
    assert (body["ttl_seconds"], body["collapse_key"]) == (300, f"{root}:progress:progress")
    lifecycle = [e for e in sink.events if e.event_type != "agent_processing"]
    assert len(lifecycle) == 10
    for e in lifecycle:
        assert (e.ttl_seconds, e.expires_at, e.collapse_key) == (None, None, None)
        assert not {"ttl_seconds", "expires_at", "collapse_key"} & set(e.to_json())


def test_interrupts_and_the_budget_event_never_get_a_ttl_or_a_collapse_key(sink: Sink) -> None:
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel

    model = GenericFakeChatModel(messages=iter([
        AIMessage("plan", usage_metadata={"input_tokens": 50, "output_tokens": 10, "total_tokens": 60}),
    ]))

    def planner(state: State) -> dict[str, Any]:
        dispatch_custom_event("progress", {"pct": 10})
        model.invoke("plan it")
        return {"answer": interrupt({"question": "ship it?"})}

    g = StateGraph(State)
    g.add_node("planner", planner)
    g.add_edge(START, "planner")
    g.add_edge("planner", END)
    with HooklineCallbackHandler(sink, token_budget=20, flush_interval=0.05, flush_at_exit=False) as handler:
        run(g.compile(checkpointer=MemorySaver()), {"mode": "ask"}, handler, thread_id="t-progress-ask")
        assert handler.flush(5)
    by_kind = {e.event_type: e for e in sink.events}
    assert {"agent_processing", "agent_budget_exceeded", "agent_interrupted"} <= set(by_kind)
    assert by_kind["agent_processing"].collapse_key is not None
    for e in sink.events:
        if e.event_type != "agent_processing":
            assert (e.ttl_seconds, e.collapse_key) == (None, None), e.event_type


def test_each_progress_name_collapses_on_its_own_and_each_run_has_its_own_keys(handler, sink) -> None:
    def busy(state: State) -> dict[str, Any]:
        dispatch_custom_event("progress", {"pct": 10})
        dispatch_custom_event("status", {"text": "reading"})
        dispatch_custom_event("progress", {"pct": 90})
        return {"answer": "done"}

    g = StateGraph(State)
    g.add_node("busy", busy)
    g.add_edge(START, "busy")
    g.add_edge("busy", END)
    roots = [uuid.uuid4(), uuid.uuid4()]
    for root in roots:
        run(g.compile(), {}, handler, run_id=root)
    assert handler.flush(5)
    keys = [e.collapse_key for e in sink.events if e.event_type == "agent_processing"]
    assert keys == [
        f"{roots[0]}:progress:progress", f"{roots[0]}:progress:status", f"{roots[0]}:progress:progress",
        f"{roots[1]}:progress:progress", f"{roots[1]}:progress:status", f"{roots[1]}:progress:progress",
    ]


def test_progress_events_of_one_key_rank_in_the_order_they_were_sent(handler, sink) -> None:
    # Twelve in a burst, most within one millisecond: by id alone `.10` would rank before `.9`.
    def burst(state: State) -> dict[str, Any]:
        for i in range(12):
            dispatch_custom_event("progress", {"i": i})
        return {}

    def more(state: State) -> dict[str, Any]:  # another callback run, whose id sorts anywhere
        for i in range(12, 15):
            dispatch_custom_event("progress", {"i": i})
        return {}

    g = StateGraph(State)
    g.add_node("burst", burst)
    g.add_node("more", more)
    g.add_edge(START, "burst")
    g.add_edge("burst", "more")
    g.add_edge("more", END)
    run(g.compile(), {}, handler)
    assert handler.flush(5)
    progress = [e for e in sink.events if e.event_type == "agent_processing"]
    assert [e.data["data"]["i"] for e in progress] == list(range(15))
    ranks = [rank(e) for e in progress]
    assert ranks == sorted(ranks) and len({ms for ms, _ in ranks}) == 15  # the last sent is the newest


def test_progress_ttl_and_collapsing_can_be_changed_or_turned_off(sink: Sink) -> None:
    def progress_of(**options: Any) -> Event:
        sink.batches.clear()
        with HooklineCallbackHandler(sink, flush_interval=0.05, flush_at_exit=False, **options) as handler:
            run(build(), {"mode": "ok"}, handler)
            assert handler.flush(5)
        [event] = [e for e in sink.events if e.event_type == "agent_processing"]
        return event

    short = progress_of(progress_ttl_seconds=30)
    assert short.ttl_seconds == 30 and short.collapse_key is not None
    no_ttl = progress_of(progress_ttl_seconds=None)
    assert no_ttl.ttl_seconds is None and no_ttl.collapse_key is not None
    no_key = progress_of(collapse_progress=False)
    assert no_key.ttl_seconds == 300 and no_key.collapse_key is None
    neither = progress_of(progress_ttl_seconds=None, collapse_progress=False)
    assert set(neither.to_json()) == {"event_type", "data", "id", "source", "timestamp"}  # as before


@pytest.mark.parametrize("ttl", [0, -1, 1_728_001, 1.5, True, "300"])
def test_a_bad_progress_ttl_is_a_value_error(sink: Sink, ttl: Any) -> None:
    with pytest.raises(ValueError, match="progress_ttl_seconds must be a whole number of seconds from 1 to 1728000"):
        HooklineCallbackHandler(sink, progress_ttl_seconds=ttl, flush_at_exit=False)


def test_a_progress_name_that_cannot_go_in_a_collapse_key_is_hashed_into_one(handler, sink) -> None:
    root = uuid.uuid4()
    handler.on_chain_start({}, {}, run_id=root, name="LangGraph")
    for name in ("line\nbreak", "x" * 300, "line\nbreak", "x" * 299):
        handler.on_custom_event(name, {}, run_id=root)
    assert handler.flush(5)
    keys = [e.collapse_key for e in sink.events if e.event_type == "agent_processing"]
    assert len(keys) == 4 and all(k is not None and k.startswith(f"{root}:progress:") for k in keys)
    assert all(len(k) <= 256 and "\n" not in k for k in keys if k)
    assert keys[0] == keys[2] != keys[1] != keys[3]  # the same name, the same key; another, another
