"""End to end: a real LangGraph graph with HooklineCallbackHandler, against a real
Hookline local stack (infra/with-stack.sh sets HOOKLINE_URL and the keys), down to the
signed webhooks a receiver on 127.0.0.1 gets.

    infra/with-stack.sh langgraph .tools/pyclient/bin/pytest clients/python/e2e -q
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.request
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from langchain_core.callbacks.manager import dispatch_custom_event
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import tool
from langgraph.checkpoint.memory import MemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt
from typing_extensions import TypedDict

from hookline import Hookline, verify_webhook
from hookline.langgraph import HooklineCallbackHandler

BASE = os.environ.get("HOOKLINE_URL", "")
pytestmark = pytest.mark.skipif(not BASE, reason="needs a local stack: run through infra/with-stack.sh")


class Receiver:
    """Records every webhook delivered to it; answers 200."""

    def __init__(self) -> None:
        self.got: list[tuple[dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with outer.lock:
                    outer.got.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def admin(method: str, path: str, body: Any = None) -> Any:
    req = urllib.request.Request(
        BASE + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"x-api-key": os.environ["HOOKLINE_ADMIN_KEY"], "content-type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read() or b"null")


@tool
def lookup(city: str) -> str:
    """Look up the weather."""
    return f"sunny in {city}"


class State(TypedDict, total=False):
    mode: str
    weather: str
    answer: Any


def plan(state: State, config: RunnableConfig) -> dict[str, Any]:
    dispatch_custom_event("progress", {"pct": 50}, config=config)
    return {"weather": lookup.invoke({"city": "Paris"}, config=config)}


def decide(state: State) -> dict[str, Any]:
    if state.get("mode") == "fail":
        raise ValueError("the model said no")
    if state.get("mode") == "ask":
        return {"answer": interrupt({"question": "ship it?"})}
    return {"answer": "done"}


def graph():
    g = StateGraph(State)
    g.add_node("plan", plan)
    g.add_node("decide", decide)
    g.add_edge(START, "plan")
    g.add_edge("plan", "decide")
    g.add_edge("decide", END)
    return g.compile(checkpointer=MemorySaver())


def test_a_graphs_runs_reach_a_receiver_as_signed_webhooks_in_order() -> None:
    # GIVEN a receiver registered for every event, and a graph with the handler
    rx = Receiver()
    try:
        endpoint = admin("POST", "/v1/endpoints", {"name": "e2e", "url": rx.url, "event_types": ["*"]})
        handler = HooklineCallbackHandler(
            client=Hookline(BASE, os.environ["HOOKLINE_INGEST_KEY"]), flush_interval=0.1
        )
        g = graph()

        # WHEN it runs once well, once into an error, and once into an interrupt that is resumed
        def cfg(thread: str) -> dict[str, Any]:
            return {"callbacks": [handler], "configurable": {"thread_id": thread}}

        g.invoke({"mode": "ok"}, config=cfg("t-ok"))
        with pytest.raises(ValueError):
            g.invoke({"mode": "fail"}, config=cfg("t-fail"))
        g.invoke({"mode": "ask"}, config=cfg("t-ask"))
        g.invoke(Command(resume="yes"), config=cfg("t-ask"))
        handler.close()
        assert handler.dropped == 0 and handler.failed == 0, (handler.dropped, handler.failed)
        expected = handler.sent

        # THEN every event arrives, signed with the endpoint's secret
        deadline = time.monotonic() + 120
        while len(rx.got) < expected and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1)  # anything beyond what was sent would show up now
        assert len(rx.got) == expected, f"{len(rx.got)} webhooks for {expected} events"
        runs: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for headers, body in rx.got:
            event = verify_webhook(body, headers, endpoint["secret"])
            assert headers["webhook-id"] == event["id"]
            runs[event["data"]["run_id"]].append(event)
    finally:
        rx.close()

    # AND each run's events, in their `seq` order, tell what happened
    by_thread: dict[str, list[list[tuple[str, Any]]]] = defaultdict(list)
    for events in runs.values():
        events.sort(key=lambda e: e["data"]["seq"])
        assert [e["data"]["seq"] for e in events] == list(range(1, len(events) + 1))
        thread = events[0]["data"]["thread_id"]
        by_thread[thread].append([(e["event_type"], e["data"].get("node")) for e in events])

    [ok] = by_thread["t-ok"]
    assert ok[0][0] == "agent_invocation_started" and ok[-1][0] == "agent_invocation_success"
    assert ("node_started", "plan") in ok and ("node_completed", "decide") in ok
    assert [t for t, _ in ok if t.startswith("tool_")] == ["tool_started", "tool_completed"]
    assert ("agent_processing", "plan") in ok
    assert ok.index(("node_completed", "plan")) < ok.index(("node_started", "decide"))

    [fail] = by_thread["t-fail"]
    assert fail[-2:] == [("node_failed", "decide"), ("agent_invocation_error", "decide")]

    asked, resumed = sorted(by_thread["t-ask"], key=lambda r: r[0][0] != "agent_invocation_started")
    assert asked[0][0] == "agent_invocation_started" and asked[-1] == ("agent_interrupted", "decide")
    assert not [t for t, _ in asked if "error" in t or "failed" in t], "an interrupt is not an error"
    assert resumed[0][0] == "agent_resumed" and resumed[-1][0] == "agent_invocation_success"


def call(key: str, method: str, path: str, body: Any = None) -> Any:
    req = urllib.request.Request(
        BASE + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"authorization": f"Bearer {key}", "content-type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read() or b"null")


def test_a_customers_graph_sends_with_its_tenant_key_and_only_its_endpoint_gets_the_runs() -> None:
    # GIVEN a tenant with a manage key, its own endpoint, and an endpoint of another tenant
    tenant = f"e2e-{time.time_ns()}"
    admin("POST", "/v1/tenants", {"id": tenant, "name": "An e2e customer"})
    key = admin("POST", f"/v1/tenants/{tenant}/keys", {"scope": "manage"})["key"]
    rx, elsewhere = Receiver(), Receiver()
    try:
        endpoint = call(key, "POST", "/v1/endpoints", {"name": "mine", "url": rx.url, "event_types": ["*"]})
        assert endpoint["tenant_id"] == tenant
        admin("POST", "/v1/endpoints", {"name": "not mine", "url": elsewhere.url, "event_types": ["*"]})

        # WHEN the customer's graph runs with the handler on a client holding its key
        handler = HooklineCallbackHandler(client=Hookline(BASE, key), flush_interval=0.1)
        graph().invoke({"mode": "ok"}, config={"callbacks": [handler], "configurable": {"thread_id": "t"}})
        handler.close()
        assert handler.dropped == 0 and handler.failed == 0, (handler.dropped, handler.failed)

        # THEN its endpoint gets every event, signed and naming the tenant, and the other none
        deadline = time.monotonic() + 120
        while len(rx.got) < handler.sent and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1)
        assert len(rx.got) == handler.sent, f"{len(rx.got)} webhooks for {handler.sent} events"
        for headers, body in rx.got:
            assert verify_webhook(body, headers, endpoint["secret"])["tenant_id"] == tenant
        assert elsewhere.got == []
        # AND its key reads its own deliveries
        log = call(key, "GET", "/v1/deliveries?limit=200")["data"]
        assert {d["tenant_id"] for d in log} == {tenant} and len(log) == handler.sent
    finally:
        rx.close()
        elsewhere.close()
