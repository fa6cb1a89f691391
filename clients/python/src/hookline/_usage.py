"""Token usage for :mod:`hookline.langgraph`: what an LLM result reports, how it is summed
per node, tool and run, the ``usage`` field of an event, and the token budget's parsing.

Private: the handler's callbacks in ``langgraph.py`` call these, under its lock.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol
from uuid import UUID

if TYPE_CHECKING:
    from langchain_core.outputs import LLMResult

#: The LangChain config metadata key that sets one run's token budget (see ``token_budget``).
TOKEN_BUDGET_KEY = "hookline_token_budget"
#: The model name under which usage is counted when the provider named none.
UNKNOWN_MODEL = "unknown"


@dataclasses.dataclass
class Tokens:
    """Token counts as LangChain reported them (a count the provider left out is 0)."""

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0

    def add(self, other: Tokens) -> None:
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.total_tokens += other.total_tokens

    def to_json(self) -> dict[str, int]:
        return dataclasses.asdict(self)


#: Tokens per model name: what a node, a tool or a whole run has used so far.
Usage = dict[str, Tokens]


def add_usage(usage: Usage, model: str, tokens: Tokens) -> None:
    usage.setdefault(model, Tokens()).add(tokens)


def usage_json(usage: Usage) -> dict[str, Any] | None:
    """The ``usage`` field of an event, or None (no field) when nothing was reported.

    One nested object rather than flat fields: it cannot collide with the other fields of
    an event, ``"usage" in data`` tells whether LangChain reported any tokens, and it has
    the same shape on node, tool and run events, so one receiver filter fits them all.
    The sums are always at ``usage.input_tokens``/``output_tokens``/``total_tokens``; the
    model is ``usage.model`` when there was one, else ``usage.models`` breaks the sums
    down by model (a fresh copy each time: the event is serialised later, elsewhere).
    """
    if not usage:
        return None
    total = Tokens()
    for tokens in usage.values():
        total.add(tokens)
    out: dict[str, Any] = total.to_json()
    if len(usage) == 1:
        out["model"] = next(iter(usage))
    else:
        out["models"] = {model: tokens.to_json() for model, tokens in usage.items()}
    return out


def _count(value: Any) -> int | None:
    """A token count LangChain reported: a non-negative whole number, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    return value if isinstance(value, int) and value >= 0 else None


def _tokens(report: Any, input_key: str, output_key: str) -> Tokens | None:
    """The counts in one usage mapping, or None when it holds none.

    A total the provider left out is input + output, which is what it means; a count it
    left out is 0 so that sums stay sums. Nothing is made up when no count is there.
    """
    if not isinstance(report, Mapping):
        return None
    counts = [_count(report.get(k)) for k in (input_key, output_key, "total_tokens")]
    if all(c is None for c in counts):
        return None
    inp, out, total = (c or 0 for c in counts)
    return Tokens(inp, out, total if counts[2] is not None else inp + out)


def _name(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _model_of(mapping: Any, *keys: str) -> str | None:
    if not isinstance(mapping, Mapping):
        return None
    return next((_name(mapping.get(k)) for k in keys if _name(mapping.get(k))), None)


def usage_of_result(response: LLMResult) -> tuple[Tokens, str | None] | None:
    """The tokens an ``LLMResult`` reports and the model it names, or None when it reports none.

    Chat models put the counts on the message (``usage_metadata``, LangChain's standard);
    older providers only in ``llm_output["token_usage"]`` with OpenAI's names, which is
    read only when no message had any (OpenAI's integration fills both, for the same call).
    Of the generations of one prompt only the first with usage is counted: with ``n`` > 1,
    langchain-openai copies the whole response's usage onto every choice.
    """
    total: Tokens | None = None
    model: str | None = None
    for generations in getattr(response, "generations", None) or ():
        for generation in generations or ():
            message = getattr(generation, "message", None)
            tokens = _tokens(getattr(message, "usage_metadata", None), "input_tokens", "output_tokens")
            model = model or _model_of(getattr(message, "response_metadata", None), "model_name", "model")
            if tokens is not None:
                total = total or Tokens()
                total.add(tokens)
                break
    llm_output = getattr(response, "llm_output", None)
    model = model or _model_of(llm_output, "model_name", "model")
    if total is None and isinstance(llm_output, Mapping):
        report = llm_output.get("token_usage")
        total = _tokens(report, "prompt_tokens", "completion_tokens") or _tokens(
            report, "input_tokens", "output_tokens"
        )
    return (total, model) if total is not None else None


def model_at_start(serialized: Any, metadata: Mapping[str, Any], kwargs: Mapping[str, Any]) -> str | None:
    """The model an LLM call asked for, for when its result does not name one.

    LangChain puts it in the run's metadata (``ls_model_name``); some integrations only have
    it in their invocation params or their serialized constructor arguments.
    """
    return (
        _name(metadata.get("ls_model_name"))
        or _model_of(kwargs.get("invocation_params"), "model_name", "model", "model_id")
        or _model_of((serialized or {}).get("kwargs") if isinstance(serialized, Mapping) else None,
                     "model_name", "model", "model_id")
    )


def parse_budget(value: Any) -> int | None:
    """``value`` as a token budget (a positive int, or None for none); ValueError otherwise."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"a token budget is a positive int or None, not {value!r}")
    return value


def total_of(usage: Usage) -> int:
    """The ``total_tokens`` of every model in ``usage``, summed."""
    return sum(t.total_tokens for t in usage.values())


class Step(Protocol):
    """What :func:`attribute` reads of a tracked run (the handler's ``_Run``)."""

    kind: str
    name: str | None
    parent: UUID | None
    usage: Usage


def attribute(runs: Mapping[UUID, Step], llm: Step, model: str, tokens: Tokens) -> str | None:
    """Add one LLM call's tokens to every tool and node it ran in; the innermost tool's name.

    Every enclosing tool and node gets them (a subgraph's node inside an outer node, a
    tool inside the ToolNode), so each event tells what its own step cost. The walk up the
    ``parent`` chain stops at the root run, whose total the caller counts once per call,
    so that it never counts a call twice.
    """
    tool: str | None = None
    parent = runs.get(llm.parent) if llm.parent is not None else None
    while parent is not None and parent.kind != "root":
        if parent.kind in ("node", "tool"):
            add_usage(parent.usage, model, tokens)
            if parent.kind == "tool" and tool is None:
                tool = parent.name
        parent = runs.get(parent.parent) if parent.parent is not None else None
    return tool
