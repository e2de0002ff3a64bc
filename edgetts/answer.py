"""What a request produced and what it cost, as the Engine returns it: typed fields for the
Python API, ``to_json`` for the CLI's ``--json``, the HTTP service and the ROS 2 node (one
shape everywhere).

Units: durations are milliseconds here (``latency_ms``, ``predicted_ms``…), as the JSON carries
them, while the Engine takes its deadlines in seconds; each field's name says its unit.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .planner.scheduler import Config
from .tts.answer_types import NUMBER, AnswerType


@dataclass(frozen=True)
class Delta:
    """Text one sample added, as :meth:`Engine.stream` yields it: samples decode side by side,
    so ``sample`` says whose (0 is the greedy anchor of an anchored vote)."""

    sample: int
    text: str


@dataclass(frozen=True)
class TokenCounts:
    """Tokens of one request: the prompt's (prefilled once, shared by every sample), and per
    sample those it reasoned with and those it answered with."""

    prompt: int
    think: list[int]
    answer: list[int]

    @property
    def generated(self) -> int:
        """Every token the samples decoded (what OpenAI calls completion tokens)."""
        return sum(self.think) + sum(self.answer)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Prediction:
    """What a planned request was predicted to cost and what it measured of energy, with what
    the engine learnt from it (the run-time correction, planner/correction.py)."""

    predicted_ms: float  # the plan's 95th-percentile latency
    predicted_accuracy: float  # the calibration's accuracy for the chosen configuration
    predicted_energy_j: float | None = None
    energy_j: float | None = None  # measured (None where the meter cannot say)
    energy_source: str = "unavailable"
    replanned_fastest: bool = False  # the queue left too little time: the fastest plan ran
    profile_busy: bool = False  # the profile planned with was measured under load
    under_load: dict[str, float] | None = None  # {busy_cores, other_load_cores} of the thread sweep row used
    latency_correction: dict[str, Any] | None = None  # the model's correction after this run
    drift: bool | None = None  # the correction has left the profile's residual band
    reprofile: str | None = None  # what the background re-profiler did about the drift

    def to_json(self) -> dict[str, Any]:
        """The fields that say something (the defaults of the optional ones are left out)."""
        data = asdict(self)
        for key in ("under_load", "latency_correction", "drift", "reprofile"):
            if data[key] is None:
                del data[key]
        if not self.profile_busy:
            del data["profile_busy"]
        return data


@dataclass
class Answer:
    """What one question cost and produced; ``to_json`` is the CLI's ``--json`` shape."""

    text: str | None  # the voted answer (normalised), None when no sample gave one
    config: Config  # what ran (model, quant, budget, samples, mode)
    threads: int  # the session's intra-op threads (the engine's choice for the load it saw)
    latency_ms: float
    prefill_ms: float
    decode_ms: float
    tokens: TokenCounts
    forced_by: str
    votes: dict[str, int]
    stopped_early: bool
    samples: list[str] = field(default_factory=list)
    # per sample: none | budget | deadline | asked (ended by itself, then asked under the grammar)
    sample_forced_by: list[str] = field(default_factory=list)
    planned: Prediction | None = None  # solve()/submit(): the plan's prediction
    queued_ms: float | None = None  # a request's wait in the decode queue, from its arrival
    deadline_ms: float | None = None  # a planned request's latency target (latency_ms counts from arrival)
    answer_type: AnswerType = NUMBER

    @property
    def on_time(self) -> bool | None:
        """Whether a request with a deadline answered within it (None: it had none)."""
        return None if self.deadline_ms is None else self.latency_ms <= self.deadline_ms

    @property
    def reason(self) -> str | None:
        """Why this is not a usable answer: ``no_answer`` (no sample gave a readable one) or
        ``deadline`` (it came late); None when it is. A request refused at admission raises
        DeadlineUnreachableError instead (``deadline_unreachable``)."""
        if self.text is None:
            return "no_answer"
        return "deadline" if self.on_time is False else None

    def to_json(self) -> dict[str, object]:
        queued = {} if self.queued_ms is None else {"queued_ms": round(self.queued_ms, 1)}
        if self.deadline_ms is not None:
            queued |= {"deadline_ms": round(self.deadline_ms, 1), "on_time": self.on_time}
        if self.reason is not None:
            queued["reason"] = self.reason
        kind = self.answer_type
        shown = {"answer_text": kind.display(self.text)} if kind.kind == "choice" else {}
        return {
            "answer": self.text,
            **shown,
            "answer_type": self.answer_type.kind,
            "config": {**asdict(self.config), "threads": self.threads},
            "latency_ms": round(self.latency_ms, 1),
            "prefill_ms": round(self.prefill_ms, 1),
            "decode_ms": round(self.decode_ms, 1),
            "tokens": self.tokens.to_json(),
            "forced_by": self.forced_by,
            "votes": self.votes,
            "stopped_early": self.stopped_early,
            "samples": self.samples,
            **queued,
            **(self.planned.to_json() if self.planned else {}),
        }
