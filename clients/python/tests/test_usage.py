"""Token usage on node, tool and run events, and the token budget, with LangChain's fake models."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Annotated, Any

import pytest
from _support import Sink
from langchain_core.language_models.fake import FakeListLLM
from langchain_core.language_models.fake_chat_models import FakeListChatModel, GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, AnyMessage
from langchain_core.outputs import ChatGenerationChunk, LLMResult
from langchain_core.tools import tool
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode
from typing_extensions import TypedDict

from hookline import Event
from hookline.langgraph import HooklineCallbackHandler


class State(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    topic: str


def reply(text: str, tokens: tuple[int, int] | None, model: str | None = None, **extra: Any) -> AIMessage:
    """An AIMessage as a provider returns it: usage on the message, the model in response_metadata."""
    kwargs: dict[str, Any] = {"response_metadata": {"model_name": model} if model else {}}
    if tokens is not None:
        kwargs["usage_metadata"] = {"input_tokens": tokens[0], "output_tokens": tokens[1], "total_tokens": sum(tokens)}
    return AIMessage(text, **kwargs, **extra)


def fake(*messages: AIMessage) -> GenericFakeChatModel:
    return GenericFakeChatModel(messages=iter(messages))


def calling(model: Any, name: str, times: int = 1):
    """A graph node that calls ``model`` ``times`` times."""

    def node(state: State) -> dict[str, Any]:
        prompt = f"{name}: the secret plan for {state.get('topic', '')}"
        return {"messages": [model.invoke(prompt) for _ in range(times)]}

    node.__name__ = name
    return node


def chain(*nodes: tuple[str, Any]):
    """START → each node in turn → END."""
    g = StateGraph(State)
    previous = START
    for name, fn in nodes:
        g.add_node(name, fn)
        g.add_edge(previous, name)
        previous = name
    g.add_edge(previous, END)
    return g.compile()


def run(
    graph, handler: HooklineCallbackHandler, sink: Sink, *, thread_id: str = "t-usage", **config: Any
) -> list[Event]:
    graph.invoke({"topic": "q3"}, config={"callbacks": [handler], "configurable": {"thread_id": thread_id}, **config})
    assert handler.flush(5)
    return sink.events


def the(events: list[Event], kind: str, node: str | None = None) -> Event:
    [event] = [e for e in events if e.event_type == kind and (node is None or e.data.get("node") == node)]
    return event


@pytest.fixture(autouse=True)
def no_callback_failed(caplog: pytest.LogCaptureFixture):
    """The handler swallows its own errors (logged at debug): make any of them fail the test."""
    caplog.set_level(logging.DEBUG, logger="hookline")
    yield
    assert not [r.getMessage() for r in caplog.records if r.getMessage().startswith("hookline: on_")]


# -- usage on node and tool events ---------------------------------------------------------------


def test_node_completed_carries_the_tokens_its_llm_reported(handler, sink) -> None:
    model = fake(reply("a plan", (120, 30), "gpt-4o-mini"))
    events = run(chain(("plan", calling(model, "plan"))), handler, sink)
    done = the(events, "node_completed", "plan")
    assert done.data["usage"] == {"input_tokens": 120, "output_tokens": 30, "total_tokens": 150, "model": "gpt-4o-mini"}
    assert "usage" not in the(events, "node_started", "plan").data
    assert not [e for e in events if e.event_type.startswith("llm")]  # LLM calls are not events of their own
    # Neither the prompt nor the answer is sent: only counts and the model's name.
    sent = json.dumps([e.to_json() for e in events], default=str)
    assert "secret plan" not in sent and "a plan" not in sent


def test_a_node_that_calls_its_llm_twice_carries_the_sum(handler, sink) -> None:
    model = fake(reply("one", (10, 5), "m"), reply("two", (20, 7), "m"))
    events = run(chain(("plan", calling(model, "plan", times=2))), handler, sink)
    assert the(events, "node_completed", "plan").data["usage"] == {
        "input_tokens": 30, "output_tokens": 12, "total_tokens": 42, "model": "m",
    }


def test_a_tool_that_calls_an_llm_carries_its_tokens_and_so_does_its_node(handler, sink) -> None:
    summarizer = fake(reply("short", (400, 50), "gpt-4o-mini"))

    @tool
    def summarize(text: str) -> str:
        """Summarize a text with an LLM."""
        return str(summarizer.invoke(f"Summarize: {text}").content)

    def agent(state: State) -> dict[str, Any]:
        call = {"name": "summarize", "args": {"text": "long"}, "id": "call-1"}
        return {"messages": [AIMessage("", tool_calls=[call])]}

    events = run(chain(("agent", agent), ("tools", ToolNode([summarize]))), handler, sink)
    expected = {"input_tokens": 400, "output_tokens": 50, "total_tokens": 450, "model": "gpt-4o-mini"}
    tool_done = the(events, "tool_completed")
    assert tool_done.data["tool"] == "summarize" and tool_done.data["usage"] == expected
    assert "usage" not in the(events, "tool_started").data
    assert the(events, "node_completed", "tools").data["usage"] == expected  # the node the tool ran in
    assert "usage" not in the(events, "node_completed", "agent").data  # no LLM there
    assert the(events, "agent_invocation_success").data["usage"] == expected


def test_a_failed_tool_and_a_failed_run_still_carry_what_was_spent(handler, sink) -> None:
    model = fake(reply("meh", (60, 4), "m"))

    @tool
    def judge(text: str) -> str:
        """Ask an LLM, then fail."""
        model.invoke(text)
        raise RuntimeError("no verdict")

    def agent(state: State) -> dict[str, Any]:
        return {"messages": [AIMessage("", tool_calls=[{"name": "judge", "args": {"text": "x"}, "id": "c1"}])]}

    graph = chain(("agent", agent), ("tools", ToolNode([judge], handle_tool_errors=False)))
    with pytest.raises(RuntimeError, match="no verdict"):
        run(graph, handler, sink)
    assert handler.flush(5)
    spent = {"input_tokens": 60, "output_tokens": 4, "total_tokens": 64, "model": "m"}
    assert the(sink.events, "tool_failed").data["usage"] == spent
    assert the(sink.events, "node_failed", "tools").data["usage"] == spent
    assert the(sink.events, "agent_invocation_error").data["usage"] == spent


def test_no_usage_key_when_the_model_reports_none(handler, sink) -> None:
    silent = FakeListChatModel(responses=["fine"])  # reports no usage at all
    events = run(chain(("plan", calling(silent, "plan")), ("write", calling(fake(reply("x", None, "m")), "write"))),
                 handler, sink)
    assert events and all("usage" not in e.data for e in events)


def test_the_model_name_comes_from_the_call_when_the_result_names_none(handler, sink) -> None:
    class NamedFake(GenericFakeChatModel):
        model: str = "fake-small"  # LangChain reports it as the run's ls_model_name

    named = NamedFake(messages=iter([reply("x", (3, 4))]))
    anonymous = fake(reply("y", (1, 1)))
    events = run(chain(("a", calling(named, "a")), ("b", calling(anonymous, "b"))), handler, sink)
    assert the(events, "node_completed", "a").data["usage"]["model"] == "fake-small"
    assert the(events, "node_completed", "b").data["usage"]["model"] == "unknown"


def test_an_older_providers_token_usage_in_llm_output_is_read(handler, sink) -> None:
    class OldStyleLLM(FakeListLLM):
        def _generate(self, prompts: list[str], stop: Any = None, run_manager: Any = None, **kw: Any) -> LLMResult:
            result = super()._generate(prompts, stop=stop, run_manager=run_manager, **kw)
            result.llm_output = {
                "token_usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
                "model_name": "text-davinci-003",
            }
            return result

    llm = OldStyleLLM(responses=["ok"])
    events = run(chain(("plan", lambda s: {"topic": llm.invoke("hi")})), handler, sink)
    assert the(events, "node_completed", "plan").data["usage"] == {
        "input_tokens": 7, "output_tokens": 3, "total_tokens": 10, "model": "text-davinci-003",
    }


def test_a_subgraph_nodes_tokens_are_on_both_nodes_and_counted_once_in_the_run(handler, sink) -> None:
    inner = StateGraph(State)
    inner.add_node("draft", calling(fake(reply("d", (50, 10), "m")), "draft"))
    inner.add_edge(START, "draft")
    events = run(chain(("writer", inner.compile())), handler, sink)
    usage = {"input_tokens": 50, "output_tokens": 10, "total_tokens": 60, "model": "m"}
    assert the(events, "node_completed", "draft").data["usage"] == usage
    assert the(events, "node_completed", "writer").data["usage"] == usage
    assert the(events, "agent_invocation_success").data["usage"] == usage


# -- per-run totals --------------------------------------------------------------------------------


def test_the_run_end_event_sums_every_node_with_a_breakdown_by_model(handler, sink) -> None:
    planner = fake(reply("plan", (100, 20), "gpt-4o"))
    writer = fake(reply("w1", (30, 10), "claude-haiku-4-5"), reply("w2", (5, 5), "claude-haiku-4-5"))
    events = run(chain(("plan", calling(planner, "plan")), ("write", calling(writer, "write", times=2))), handler, sink)
    assert the(events, "node_completed", "write").data["usage"] == {
        "input_tokens": 35, "output_tokens": 15, "total_tokens": 50, "model": "claude-haiku-4-5",
    }
    ended = the(events, "agent_invocation_success").data
    assert ended["usage"] == {
        "input_tokens": 135,
        "output_tokens": 35,
        "total_tokens": 170,
        "models": {
            "gpt-4o": {"input_tokens": 100, "output_tokens": 20, "total_tokens": 120},
            "claude-haiku-4-5": {"input_tokens": 35, "output_tokens": 15, "total_tokens": 50},
        },
    }
    nodes = [e.data["usage"]["total_tokens"] for e in events if e.event_type == "node_completed"]
    assert sum(nodes) == ended["usage"]["total_tokens"]
    # Plain JSON numbers and strings, as a receiver reads them.
    body = json.loads(json.dumps(the(events, "agent_invocation_success").to_json()))
    assert type(body["data"]["usage"]["total_tokens"]) is int
    assert type(body["data"]["usage"]["models"]["gpt-4o"]["input_tokens"]) is int


async def test_an_async_run_counts_the_same_tokens(handler, sink) -> None:
    model = fake(reply("a", (8, 2), "m"), reply("b", (4, 1), "m"))

    async def plan(state: State) -> dict[str, Any]:
        return {"messages": [await model.ainvoke("one"), await model.ainvoke("two")]}

    await chain(("plan", plan)).ainvoke({}, config={"callbacks": [handler]})
    assert handler.flush(5)
    usage = {"input_tokens": 12, "output_tokens": 3, "total_tokens": 15, "model": "m"}
    assert the(sink.events, "node_completed", "plan").data["usage"] == usage
    assert the(sink.events, "agent_invocation_success").data["usage"] == usage


# -- the token budget ------------------------------------------------------------------------------


def test_the_budget_event_is_sent_once_when_the_run_goes_over_it(sink) -> None:
    model = fake(*(reply(str(i), (60, 20), "m") for i in range(3)))  # 80 tokens a call
    root = uuid.uuid4()
    with HooklineCallbackHandler(sink, token_budget=100, flush_interval=0.05, flush_at_exit=False) as handler:
        events = run(chain(("plan", calling(model, "plan", times=2)), ("write", calling(model, "write"))),
                     handler, sink, thread_id="t-budget", run_id=root)
    over = [e for e in events if e.event_type == "agent_budget_exceeded"]
    assert len(over) == 1  # the third call (240 tokens) does not send another
    assert over[0].data == {
        "run_id": str(root), "thread_id": "t-budget", "graph": "LangGraph", "seq": over[0].data["seq"],
        "budget": 100, "total_tokens": 160, "node": "plan", "step": 1,
    }
    assert over[0].id == f"lg.{root.hex}.{root.hex}.agent_budget_exceeded"
    kinds = [e.event_type for e in events]
    assert kinds.index("agent_budget_exceeded") < kinds.index("node_completed")  # sent when crossed, mid-node
    assert the(events, "agent_invocation_success").data["usage"]["total_tokens"] == 240


def test_no_budget_event_when_the_run_stays_within_it(sink) -> None:
    model = fake(reply("a", (60, 20), "m"), reply("b", (15, 5), "m"))  # 100 tokens: at, not over, the budget
    with HooklineCallbackHandler(sink, token_budget=100, flush_interval=0.05, flush_at_exit=False) as handler:
        events = run(chain(("plan", calling(model, "plan", times=2))), handler, sink)
    assert "agent_budget_exceeded" not in [e.event_type for e in events]
    assert the(events, "agent_invocation_success").data["usage"]["total_tokens"] == 100


def test_each_run_has_its_own_budget(sink) -> None:
    model = fake(*(reply(str(i), (100, 0), "m") for i in range(2)))
    with HooklineCallbackHandler(sink, token_budget=50, flush_interval=0.05, flush_at_exit=False) as handler:
        for thread in ("t-1", "t-2"):
            run(chain(("plan", calling(model, "plan"))), handler, sink, thread_id=thread)
    over = [e for e in sink.events if e.event_type == "agent_budget_exceeded"]
    assert [e.data["thread_id"] for e in over] == ["t-1", "t-2"]
    assert len({e.data["run_id"] for e in over}) == 2


def test_a_runs_metadata_sets_or_lifts_the_budget(sink, caplog: pytest.LogCaptureFixture) -> None:
    model = fake(*(reply(str(i), (40, 10), "m") for i in range(3)))
    graph = chain(("plan", calling(model, "plan")))
    with HooklineCallbackHandler(sink, token_budget=10, flush_interval=0.05, flush_at_exit=False) as handler:
        run(graph, handler, sink, thread_id="own", metadata={"hookline_token_budget": 20})
        run(graph, handler, sink, thread_id="none", metadata={"hookline_token_budget": None})
        run(graph, handler, sink, thread_id="bad", metadata={"hookline_token_budget": "lots"})
    over = {e.data["thread_id"]: e.data["budget"] for e in sink.events if e.event_type == "agent_budget_exceeded"}
    assert over == {"own": 20, "bad": 10}  # None lifts the handler's budget; a bad value falls back to it
    assert "ignoring hookline_token_budget of type str" in caplog.text and "lots" not in caplog.text


def test_a_run_whose_model_reports_no_usage_never_exceeds_its_budget(sink) -> None:
    with HooklineCallbackHandler(sink, token_budget=1, flush_interval=0.05, flush_at_exit=False) as handler:
        events = run(chain(("plan", calling(FakeListChatModel(responses=["x"]), "plan"))), handler, sink)
    assert "agent_budget_exceeded" not in [e.event_type for e in events]


@pytest.mark.parametrize("budget", [0, -5, True, 1.5, "100"])
def test_a_bad_token_budget_is_a_value_error(sink, budget) -> None:
    with pytest.raises(ValueError, match="token budget"):
        HooklineCallbackHandler(sink, token_budget=budget, flush_at_exit=False)


def test_the_budget_event_type_is_valid_with_a_prefix(sink) -> None:
    model = fake(reply("a", (10, 10), "m"))
    with HooklineCallbackHandler(sink, event_prefix="agent.", token_budget=5, flush_at_exit=False) as handler:
        events = run(chain(("plan", calling(model, "plan"))), handler, sink)
    assert "agent.agent_budget_exceeded" in [e.event_type for e in events]


def test_a_normal_run_with_usage_logs_nothing(handler, sink, caplog: pytest.LogCaptureFixture) -> None:
    run(chain(("plan", calling(fake(reply("a", (1, 2), "m")), "plan"))), handler, sink)
    assert not [r for r in caplog.records if r.name.startswith("hookline")]


def test_a_streamed_call_counts_the_usage_its_chunks_reported(handler, sink) -> None:
    class StreamingFake(GenericFakeChatModel):
        """Streams like a provider does: the usage and the model come with the last chunk."""

        def _stream(self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any):
            yield ChatGenerationChunk(message=AIMessageChunk(content="he"))
            yield ChatGenerationChunk(message=AIMessageChunk(
                content="llo", usage_metadata={"input_tokens": 9, "output_tokens": 2, "total_tokens": 11},
                response_metadata={"model_name": "s-1"},
            ))

    graph = chain(("plan", calling(StreamingFake(messages=iter([])), "plan")))
    for _ in graph.stream({"topic": "a"}, config={"callbacks": [handler]}, stream_mode="messages"):
        pass  # LangGraph streams the model's tokens, so the model runs in streaming mode
    assert handler.flush(5)
    usage = {"input_tokens": 9, "output_tokens": 2, "total_tokens": 11, "model": "s-1"}
    assert the(sink.events, "node_completed", "plan").data["usage"] == usage
