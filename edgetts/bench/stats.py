"""Numbers over a set of runs: accuracy with a 95 % Wilson interval, latency percentiles, tokens and
energy.

Why Wilson: a run is right or wrong, bench sets are small (tens to hundreds of questions), and
Wilson's interval stays inside [0, 1] and does not collapse to a point at 0 % or 100 %; it is the
interval calibration reports, so measured and calibrated accuracies read alike. Energy that
nothing measured stays None (shown as "unavailable"), never 0 J.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..calibration.accuracy import wilson_interval

PERCENTILES = (50, 95, 99)


@dataclass(frozen=True)
class ArmStats:
    """What one arm (the planner at a target, the greedy baseline, a fixed configuration) did."""

    runs: int
    correct: int
    accuracy: float
    accuracy_low: float
    accuracy_high: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_tokens: float  # think + answer tokens, summed over the samples of a run
    energy_per_query_j: float | None  # mean over the runs a meter measured; None: none was
    energy_per_correct_j: float | None  # None: no energy measured, or no correct answer
    energy_source: str  # the meters' sources, e.g. "rapl", "estimated", "unavailable"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in data.items()}


def summarize(records: Sequence[dict[str, Any]]) -> ArmStats:
    """The stats of ``records`` (at least one run)."""
    runs = len(records)
    correct = sum(bool(r["correct"]) for r in records)
    accuracy = correct / runs
    low, high = wilson_interval(np.array(accuracy), runs)
    p50, p95, p99 = np.percentile([r["latency_ms"] for r in records], PERCENTILES)
    measured = [r for r in records if r["energy_j"] is not None]
    joules = sum(r["energy_j"] for r in measured)
    right = sum(bool(r["correct"]) for r in measured)
    return ArmStats(
        runs=runs,
        correct=correct,
        accuracy=accuracy,
        accuracy_low=float(low),
        accuracy_high=float(high),
        p50_ms=float(p50),
        p95_ms=float(p95),
        p99_ms=float(p99),
        mean_tokens=float(np.mean([r["tokens"] for r in records])),
        energy_per_query_j=joules / len(measured) if measured else None,
        energy_per_correct_j=joules / right if measured and right else None,
        energy_source="+".join(sorted({str(r["energy_source"]) for r in records})),
    )


def hit_rate(records: Sequence[dict[str, Any]], target_ms: float) -> float:
    """The share of ``records`` (at least one run) that ended within ``target_ms``."""
    return sum(r["latency_ms"] <= target_ms for r in records) / len(records)


def paired(first: Sequence[dict[str, Any]], second: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """How two arms differ on the questions both ran: how many only ``first`` got right, how many
    only ``second`` did, and the exact McNemar p-value of that split (two-sided sign test on the
    discordant questions: under "equally accurate" each is a fair coin).

    Why: the issue's checks compare accuracies a question or two apart on 100 questions, and the
    oracle is picked in hindsight on those same questions; the p-value says whether a miss is
    more than the luck of the draw. Written with math.comb because scipy is not a runtime
    dependency and the test is three lines.
    """
    right_first = {r["question"]: bool(r["correct"]) for r in first}
    right_second = {r["question"]: bool(r["correct"]) for r in second}
    shared = right_first.keys() & right_second.keys()
    only_first = sum(right_first[q] and not right_second[q] for q in shared)
    only_second = sum(right_second[q] and not right_first[q] for q in shared)
    differ = only_first + only_second
    tail = sum(math.comb(differ, i) for i in range(min(only_first, only_second) + 1)) / 2**differ
    return {"only_first": only_first, "only_second": only_second, "p_value": round(min(1.0, 2 * tail), 4)}


def frontier(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the (latency, accuracy) points no other point beats on both, fastest first:
    the measured accuracy-latency frontier, i.e. the best fixed configuration at every latency."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    kept: list[int] = []
    for i in order:
        if not kept or points[i][1] > points[kept[-1]][1]:
            kept.append(i)
    return kept
