"""Choose the most accurate configuration whose predicted latency fits the target.

``plan`` runs on every request, so it works on arrays built once per candidate set
(:class:`CandidateSet`) rather than on Python objects: a few vectorised comparisons, a sort for
the frontier, and a Python-level tie-break over the handful of equally accurate candidates.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields

import numpy as np

from ..errors import DeadlineUnreachableError, EdgeTTSError, NoFeasiblePlanError
from ..runtime.prompting import PROGRAM, STEPS

# Accuracies this close are the same number computed two ways (float noise), not a real difference:
# the tie-break then prefers the cheaper configuration. Statistical ties are the caller's business.
ACCURACY_TIE = 1e-9


REASONINGS = ("direct", "steps", "program")  # Config.reasoning's values


def parse_reasonings(value: str | Sequence[str]) -> list[str] | None:
    """How an answer may be reasoned, as a caller names it (CLI ``--mode``, a request's
    ``mode``): "auto" — None, every mode with a table — or some of direct, steps and program,
    as a comma list or a list of names."""
    names = value.split(",") if isinstance(value, str) else list(value)
    if not all(isinstance(name, str) for name in names):
        raise EdgeTTSError(f"mode {value!r}: use auto or a comma list of {', '.join(REASONINGS)}")
    modes = [name.strip() for name in names if name.strip()]
    if modes == ["auto"]:
        return None
    if not modes or any(mode not in REASONINGS for mode in modes):
        raise EdgeTTSError(f"mode {value!r}: use auto or a comma list of {', '.join(REASONINGS)}")
    return modes


@dataclass(frozen=True)
class Config:
    """What to run: a store entry, its quantization, the reasoning-token budget, the number of
    samples voted over and how the samples reason (``steps`` in prose, budget 0 answering
    directly; ``program``: a function the safe evaluator runs, runtime/prompting.py)."""

    model: str  # store entry name, e.g. "qwen2.5-coder-0.5b-int4"
    quant: str
    budget: int
    samples: int
    mode: str = STEPS

    def describe(self) -> str:
        how = f"program of {self.budget} tokens" if self.mode == PROGRAM else f"budget {self.budget}"
        return f"{self.model}, {how}, {plural(self.samples, 'sample')}"

    @classmethod
    def of(cls, config: dict) -> Config:
        """The configuration an answer's ``config`` dict ran (it also says how it ran, e.g. the
        session's threads, which is the engine's choice for the load, not the planner's)."""
        return cls(**{f.name: config[f.name] for f in fields(cls) if f.name in config})

    @property
    def reasoning(self) -> str:
        """direct | steps | program: what a table or a report calls the way it answers."""
        return "direct" if self.mode == STEPS and self.budget == 0 else self.mode


@dataclass(frozen=True)
class Candidate:
    """A configuration with its predictions. ``latency_s`` is an upper quantile (a deadline must
    hold on most runs, not on the average one); ``energy_j`` is None where nothing measured or
    estimated it."""

    config: Config
    latency_s: float
    latency_mean_s: float
    accuracy: float
    accuracy_low: float
    accuracy_high: float
    energy_j: float | None
    memory_bytes: int


class CandidateSet:
    """Candidates plus their numbers as arrays. Build it once per (device, calibration) and pass it
    to every :func:`plan` call; a plain sequence works too but is converted on each call."""

    def __init__(self, candidates: Iterable[Candidate]) -> None:
        self.candidates: tuple[Candidate, ...] = tuple(candidates)
        self.latency = np.array([c.latency_s for c in self.candidates], dtype=float)
        self.accuracy = np.array([c.accuracy for c in self.candidates], dtype=float)
        # NaN = unknown: it fails every comparison, so an energy cap excludes it by itself.
        self.energy = np.array(
            [np.nan if c.energy_j is None else c.energy_j for c in self.candidates], dtype=float
        )
        self.memory = np.array([c.memory_bytes for c in self.candidates], dtype=np.int64)
        if not (np.all(np.isfinite(self.latency)) and np.all(np.isfinite(self.accuracy))):
            raise ValueError("every candidate needs a finite predicted latency and accuracy")

    def __len__(self) -> int:
        return len(self.candidates)


@dataclass
class Plan:
    """The choice and what it was chosen from. ``frontier``: the candidates within the energy and
    memory caps that no other such candidate beats on both latency and accuracy, fastest first
    (it may extend past the target, to show what a looser target would buy). ``fastest_s``: the
    lowest predicted latency within the caps. ``best_effort``: nothing met the target and
    ``chosen`` is the fastest candidate instead (:func:`plan` always chooses; None is for a plan
    built by hand to show a frontier without a choice)."""

    chosen: Candidate | None
    frontier: list[Candidate]
    fastest_s: float
    target_s: float
    best_effort: bool = False


def plan(
    candidates: Sequence[Candidate] | CandidateSet,
    latency_s: float,
    energy_j: float | None = None,
    memory_bytes: int | None = None,
    best_effort: bool = False,
) -> Plan:
    """The most accurate candidate with predicted latency <= ``latency_s`` within the caps.

    Equally accurate candidates (within :data:`ACCURACY_TIE`) go to the lower energy (unknown
    energy last), then the lower latency, then by name, budget and samples so the choice never
    depends on input order. The caps are hard limits (memory that does not fit fails, an energy
    budget is a battery), so ``best_effort`` relaxes only the latency target: it returns the
    fastest candidate within the caps instead of raising :class:`NoFeasiblePlanError`.
    """
    table = candidates if isinstance(candidates, CandidateSet) else CandidateSet(candidates)
    if not len(table):
        raise EdgeTTSError(
            "there are no configurations to plan over: convert, profile and calibrate a model first"
        )
    allowed = np.flatnonzero(_within_caps(table, energy_j, memory_bytes))
    latency = table.latency[allowed]
    fastest_s = float(latency.min())
    frontier = [table.candidates[i] for i in _frontier(latency, table.accuracy[allowed], allowed)]
    fits = allowed[latency <= latency_s]
    if fits.size:
        accuracy = table.accuracy[fits]
        tied = fits[accuracy >= accuracy.max() - ACCURACY_TIE]
        chosen = min((table.candidates[i] for i in tied), key=_preference)
        return Plan(chosen, frontier, fastest_s, latency_s)
    fastest = min((table.candidates[i] for i in allowed[latency == fastest_s]), key=_speed)
    if not best_effort:
        note = _unknown_energy_note(table, latency_s, energy_j, memory_bytes)
        raise DeadlineUnreachableError(
            f"no configuration meets the {format_duration(latency_s)} latency target: fastest achievable is "
            f"{format_duration(fastest_s)} ({fastest.config.describe()}){note}; "
            "raise the latency target or ask for best effort (--best-effort)",
            fastest_ms=1000 * fastest_s,
        )
    return Plan(fastest, frontier, fastest_s, latency_s, best_effort=True)


def format_duration(seconds: float) -> str:
    """A latency as people read it: "730 ms" below a second, "2.5 s" above, "0.35 ms" below 1 ms."""
    if seconds < 1e-3:
        return f"{seconds * 1e3:.2g} ms"
    if round(seconds * 1e3) < 1000:
        return f"{seconds * 1e3:.0f} ms"
    return f"{seconds:.3g} s" if seconds < 100 else f"{seconds:.0f} s"


def plural(count: int, noun: str) -> str:
    """``1 sample``, ``2 samples``: what a line says of a count."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def format_bytes(count: float) -> str:
    """Binary units, as memory is sold: "512 MiB", "1.5 GiB"."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024:
            return f"{count:.0f} {unit}" if count >= 100 else f"{count:.3g} {unit}"
        count /= 1024
    return f"{count:.0f} TiB" if count >= 100 else f"{count:.3g} TiB"


def _within_caps(table: CandidateSet, energy_j: float | None, memory_bytes: int | None) -> np.ndarray:
    """Mask of candidates within the caps; a one-line error naming the cap that leaves none."""
    mask = np.ones(len(table), dtype=bool)
    if memory_bytes is not None:
        mask &= table.memory <= memory_bytes
        if not mask.any():
            raise NoFeasiblePlanError(
                f"the memory cap of {format_bytes(memory_bytes)} excludes every configuration: the smallest "
                f"needs {format_bytes(int(table.memory.min()))}; raise the memory cap"
            )
    if energy_j is not None:
        with_energy = mask & ~np.isnan(table.energy)
        within = with_energy & (table.energy <= energy_j)
        if not within.any():
            unknown = int(mask.sum() - with_energy.sum())
            if not with_energy.any():
                why = "none of them has an energy estimate (profile this device's energy, or drop the cap)"
            else:
                lowest = float(table.energy[with_energy].min())
                why = f"the most frugal needs {lowest:.3g} J; raise the energy cap"
                if unknown:
                    why += f" ({unknown} without an energy estimate count as over it)"
            raise NoFeasiblePlanError(
                f"the energy cap of {energy_j:.3g} J excludes every configuration: {why}"
            )
        mask = within
    return mask


def _unknown_energy_note(
    table: CandidateSet, latency_s: float, energy_j: float | None, memory_bytes: int | None
) -> str:
    """Why a configuration that is fast enough was not chosen, when the reason is that nothing
    measured its energy: otherwise the error would name a slower "fastest" without explanation."""
    if energy_j is None:
        return ""
    hidden = np.isnan(table.energy) & (table.latency <= latency_s)
    if memory_bytes is not None:
        hidden &= table.memory <= memory_bytes
    count = int(hidden.sum())
    if not count:
        return ""
    return f" (the energy cap also excludes {count} that would meet it but have no energy estimate)"


def _frontier(latency: np.ndarray, accuracy: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``index`` entries not dominated in (lower latency, higher accuracy), by latency.

    A candidate survives when it is the most accurate at its latency and strictly more accurate
    than everything faster; equal (latency, accuracy) pairs all survive, as neither dominates."""
    order = np.lexsort((-accuracy, latency))
    latency, accuracy = latency[order], accuracy[order]
    position = np.arange(order.size)
    starts = np.r_[True, latency[1:] != latency[:-1]]
    group = np.maximum.accumulate(np.where(starts, position, 0))  # first row of each latency
    faster_best = np.r_[-np.inf, np.maximum.accumulate(accuracy)[:-1]][group]
    keep = (accuracy == accuracy[group]) & (accuracy > faster_best)
    return index[order[keep]]


def _last_key(c: Candidate) -> tuple[str, str, int, int, str]:
    return c.config.model, c.config.quant, c.config.budget, c.config.samples, c.config.mode


def _preference(c: Candidate) -> tuple:
    return (c.energy_j is None, c.energy_j or 0.0, c.latency_s, *_last_key(c))


def _speed(c: Candidate) -> tuple:
    return (-c.accuracy, c.energy_j is None, c.energy_j or 0.0, *_last_key(c))
