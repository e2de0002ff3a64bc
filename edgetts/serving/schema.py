"""What a service request may hold, read and checked in one place (HTTP and ROS 2 alike).

Written by hand rather than with pydantic: the bodies have a dozen flat fields, the errors must
be edgetts' own one-line ``{"error": {"code", "message"}}`` rather than a validation report, and
the runtime stays free of another dependency. Every check raises :class:`BadRequestError`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..errors import EdgeTTSError
from ..planner.scheduler import parse_reasonings
from ..tts.answer_types import KINDS

MAX_LATENCY_MS = 3_600_000  # an hour: longer is a unit mistake, not a robot's deadline
MAX_SAMPLES = 64
MAX_TOKENS = 32_768
ANSWER_TOKENS = 16  # what a planned or as-given request leaves for the answer after its reasoning
DEFAULT_BUDGET = 128  # the think budget of a chat completion that names none
_MISSING = object()


class BadRequestError(EdgeTTSError):
    """A request that cannot be served as written (HTTP 400, a ROS error answer)."""

    code = "bad_request"


@dataclass(frozen=True)
class SolveRequest:
    """``POST /v1/solve`` and the ROS 2 ``question`` topic: a question and its deadline."""

    question: str
    latency_s: float
    energy_j: float | None = None
    best_effort: bool = False
    seed: int = 0
    answer_type: str | None = None  # None: inferred from the question (tts/answer_types.py)
    choices: tuple[str, ...] = ()
    schema: dict | None = None  # a json answer's JSON Schema
    modes: tuple[str, ...] | None = None  # how it may be reasoned (None: "auto", every mode)


@dataclass(frozen=True)
class ChatRequest:
    """``POST /v1/chat/completions``. With ``latency_s`` the planner chooses the model (among
    ``model``, unless it is "auto"), budget and ``n``, and the guard keeps the deadline; without
    it the request runs as given on ``model``."""

    question: str
    model: str | None  # None: plan over every model ("auto" or absent)
    n: int
    budget: int
    answer_tokens: int
    temperature: float | None
    stop: tuple[str, ...]
    seed: int
    stream: bool
    latency_s: float | None
    best_effort: bool
    include_usage: bool = field(default=True)


def parse_solve(body: Any) -> SolveRequest:
    data = _object(body)
    return SolveRequest(
        question=_text(data, "question"),
        latency_s=_latency_ms(data, "latency_ms", required=True) / 1000,
        energy_j=_number(data, "energy_j", None, low=0, exclusive=True),
        best_effort=_flag(data, "best_effort", False),
        seed=_integer(data, "seed", 0, low=0),
        answer_type=_answer_type(data),
        choices=_strings(data, "choices"),
        schema=_schema(data),
        modes=_modes(data),
    )


def parse_chat(body: Any) -> ChatRequest:
    """OpenAI's chat completion fields; ``reasoning_budget_tokens`` (llama.cpp) or
    ``thinking_token_budget`` (vLLM) set the think budget, else ``max_tokens`` less the answer's
    tokens, else 128. The question is the last user message, after any system messages: edgetts
    answers one question at a time, so earlier turns are not carried."""
    data = _object(body)
    question = _question(data.get("messages", _MISSING))
    model = data.get("model")
    if model is not None and not isinstance(model, str):
        raise BadRequestError("'model' must be a string (a store entry, or \"auto\")")
    max_tokens = _integer(data, "max_tokens", None, low=1, high=MAX_TOKENS)
    if max_tokens is None:
        max_tokens = _integer(data, "max_completion_tokens", None, low=1, high=MAX_TOKENS)
    budget = _integer(data, "reasoning_budget_tokens", None, low=-1, high=MAX_TOKENS)
    if budget is None:
        budget = _integer(data, "thinking_token_budget", None, low=-1, high=MAX_TOKENS)
    answer_tokens = ANSWER_TOKENS if max_tokens is None else min(ANSWER_TOKENS, max_tokens)
    if budget is None:
        budget = DEFAULT_BUDGET if max_tokens is None else max(0, max_tokens - answer_tokens)
    stream_options = data.get("stream_options") or {}
    if not isinstance(stream_options, dict):
        raise BadRequestError("'stream_options' must be an object")
    latency = _latency_ms(data, "latency_ms", required=False)
    return ChatRequest(
        question=question,
        model=None if model in (None, "", "auto") else model,
        n=_integer(data, "n", 1, low=1, high=MAX_SAMPLES),
        budget=budget,
        answer_tokens=answer_tokens,
        temperature=_number(data, "temperature", None, low=0, high=2),
        stop=_stop(data.get("stop")),
        seed=_integer(data, "seed", 0, low=0),
        stream=_flag(data, "stream", False),
        latency_s=None if latency is None else latency / 1000,
        best_effort=_flag(data, "best_effort", False),
        include_usage=bool(stream_options.get("include_usage", True)),
    )


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequestError("the body must be a JSON object")
    return body


def _text(data: dict, name: str) -> str:
    value = data.get(name, _MISSING)
    if value is _MISSING:
        raise BadRequestError(f"'{name}' is missing")
    if not isinstance(value, str):
        raise BadRequestError(f"'{name}' must be a string")
    if not value.strip():
        raise BadRequestError(f"'{name}' is empty")
    return value


def _number(
    data: dict, name: str, default: float | None, low: float | None = None, high: float | None = None,
    exclusive: bool = False,
) -> float | None:  # fmt: skip
    value = data.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadRequestError(f"'{name}' must be a number")
    if low is not None and (value <= low if exclusive else value < low):
        raise BadRequestError(
            f"'{name}' must be {'above' if exclusive else 'at least'} {low:g} (got {value:g})"
        )
    if high is not None and value > high:
        raise BadRequestError(f"'{name}' must be at most {high:g} (got {value:g})")
    return float(value)


def _integer(data: dict, name: str, default: int | None, low: int | None = None, high: int | None = None):
    value = data.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequestError(f"'{name}' must be an integer")
    if low is not None and value < low:
        raise BadRequestError(f"'{name}' must be at least {low} (got {value})")
    if high is not None and value > high:
        raise BadRequestError(f"'{name}' must be at most {high} (got {value})")
    return value


def _flag(data: dict, name: str, default: bool) -> bool:
    value = data.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise BadRequestError(f"'{name}' must be true or false")
    return value


def _latency_ms(data: dict, name: str, required: bool) -> float | None:
    if data.get(name) is None:
        if required:
            raise BadRequestError(f"'{name}' is missing: the deadline in ms from the request's arrival")
        return None
    value = _number(data, name, None)
    assert value is not None
    if value <= 0:
        raise BadRequestError(f"'{name}' must be positive (got {value:g})")
    if value > MAX_LATENCY_MS:
        raise BadRequestError(f"'{name}' {value:g} is over an hour ({MAX_LATENCY_MS} ms): a unit mistake?")
    return value


def _answer_type(data: dict) -> str | None:
    value = data.get("answer_type")
    if value is None:
        return None
    if value not in ("auto", *KINDS):
        raise BadRequestError(f"'answer_type' must be one of auto, {', '.join(KINDS)} (got {value!r})")
    return value


def _modes(data: dict) -> tuple[str, ...] | None:
    """``mode``: "auto" (the default), or direct/steps/program as a comma list or a list."""
    value = data.get("mode", "auto")
    if not isinstance(value, str | list):
        raise BadRequestError(f"'mode' must be a string or a list of strings (got {value!r})")
    try:
        modes = parse_reasonings(value)
    except EdgeTTSError as err:
        raise BadRequestError(f"'mode': {str(err).removeprefix('mode ')}") from None
    return None if modes is None else tuple(modes)


def _schema(data: dict) -> dict | None:
    value = data.get("schema")
    if value is not None and not isinstance(value, dict):
        raise BadRequestError("'schema' must be a JSON Schema object")
    return value


def _strings(data: dict, name: str) -> tuple[str, ...]:
    value = data.get(name)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequestError(f"'{name}' must be a list of strings")
    return tuple(value)


def _stop(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value) or len(value) > 16:
        raise BadRequestError("'stop' must be a string or a list of at most 16 strings")
    return tuple(v for v in value if v)


def _question(messages: Any) -> str:
    if messages is _MISSING:
        raise BadRequestError("'messages' is missing")
    if not isinstance(messages, list) or not messages:
        raise BadRequestError("'messages' must be a non-empty list")
    system, user = [], None
    for message in messages:
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise BadRequestError("each message must be an object with a 'role' and a 'content'")
        content = _content(message.get("content"))
        if message["role"] == "system":
            system.append(content)
        elif message["role"] == "user":
            user = content
    if user is None or not user.strip():
        raise BadRequestError("'messages' holds no user message to answer")
    return "\n\n".join([*system, user])


def _content(content: Any) -> str:
    """A message's text: a string, or OpenAI's list of ``{"type": "text", "text": …}`` parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(
        isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)
        for part in content
    ):
        return "".join(part["text"] for part in content)
    raise BadRequestError("a message's 'content' must be text (a string or a list of text parts)")
