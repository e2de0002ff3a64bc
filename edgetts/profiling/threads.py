"""Latency per intra-op thread count under other load: measured by `edgetts profile
--threads-sweep`, used by the engine to pick how many threads to decode with for the load it sees.

Why: onnxruntime's intra-op threads meet at a barrier after every operator, so when another
process holds a core, a session with one thread per core waits at every operator for its
descheduled thread. Measured on a 2-core VM (README, `benchmarks/threads.py`): with one core busy
one thread decodes 1.1–1.9× faster than two; idle, two win by 1.3–1.8×. No formula predicts the
crossover well (it depends on the scheduler, SMT, caches and the model's operator sizes), so the
sweep measures it: for every thread count and every number of cores kept busy by busy-loop
processes it starts, a quick latency sweep and its own fitted latency model. The engine then
plans with the row measured nearest the foreign load it sees now — what a profile taken under
that load would predict — instead of waiting for the run-time correction to learn it.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..runtime.onnx_model import OnnxCausalLM, default_threads
from .latency_model import LatencyModel
from .load import LoadMeter
from .sweep import QUICK, SweepPlan, run_sweep

SETTLE_S = 1.0  # for the scheduler to spread the busy loops over the cores before measuring
PICK_BATCHES = (1, 4)  # the thread count is chosen for these batches at this context
PICK_CONTEXT = 256

Tick = Callable[[], None]


@dataclass
class UnderLoad:
    """One measured row: ``threads`` intra-op threads while ``busy_cores`` busy loops ran."""

    threads: int
    busy_cores: int
    latency: LatencyModel
    load: dict[str, Any]  # profiling.load's reading over the sweep (what the busy loops made)

    def to_dict(self) -> dict[str, Any]:
        return {
            "threads": self.threads,
            "busy_cores": self.busy_cores,
            "latency": self.latency.to_dict(),
            "load": self.load,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str) -> UnderLoad:
        return cls(
            threads=int(data["threads"]),
            busy_cores=int(data["busy_cores"]),
            latency=LatencyModel.from_dict(data["latency"], where),
            load=dict(data.get("load") or {}),
        )

    def pick_cost(self) -> float:
        """What rows are compared by: the geometric mean of the decode step at PICK_BATCHES
        (a thread count that wins at batch 1 may lose at batch 4, see the README table)."""
        steps = self.latency.step_s(np.asarray(PICK_BATCHES), PICK_CONTEXT)
        return float(np.exp(np.mean(np.log(np.maximum(steps, 1e-9)))))


def thread_counts(cores: int) -> list[int]:
    """1 … cores on small boards; on many-core ones 1, 2, a quarter, half, all but one and all
    (each count costs one sweep per load level)."""
    if cores <= 4:
        return list(range(1, cores + 1))
    return sorted({1, 2, max(1, cores // 4), cores // 2, cores - 1, cores})


def busy_levels(cores: int) -> list[int]:
    """Cores kept busy: 0 (quiet) … cores on small boards, a few levels on many-core ones."""
    return [0, *thread_counts(cores)]


def start_busy(cores: int) -> list[subprocess.Popen]:
    """``cores`` busy-loop processes: what a perception or control loop pinning a core does."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(cores)]


def stop_busy(processes: Sequence[subprocess.Popen]) -> None:
    for process in processes:
        process.kill()
        process.wait()


def sweep_threads(
    load_model: Callable[[int], OnnxCausalLM], cores: int | None = None, plan: SweepPlan = QUICK,
    threads: Sequence[int] | None = None, levels: Sequence[int] | None = None, tick: Tick = lambda: None,
) -> list[UnderLoad]:  # fmt: skip
    """Every (thread count, busy cores) row; ``load_model(threads)`` loads a session with that
    many intra-op threads (one per count, kept for every load level so that loading is not
    measured). The busy loops are stopped whatever happens."""
    cores = cores or default_threads()
    counts = list(threads or thread_counts(cores))
    loads = sorted({0, *(busy_levels(cores) if levels is None else levels)})
    sessions = {t: load_model(t) for t in counts}
    meter = LoadMeter()
    rows: list[UnderLoad] = []
    for busy in loads:
        processes = start_busy(busy)
        try:
            time.sleep(SETTLE_S if busy else 0.0)
            for count, lm in sessions.items():
                meter.begin()
                sweep = run_sweep(lm, plan, tick=tick)
                reading = meter.end()
                rows.append(UnderLoad(count, busy, sweep.fit(), reading.to_dict()))
        finally:
            stop_busy(processes)
    return rows


def sweep_units(cores: int, plan: SweepPlan = QUICK) -> int:
    """Forward passes sweep_threads makes (for a progress bar)."""
    return plan.units() * len(thread_counts(cores)) * len(busy_levels(cores))


@dataclass(frozen=True)
class Choice:
    """The thread count to decode with now and the latency model to plan it with."""

    threads: int
    latency: LatencyModel
    busy_cores: int | None  # the row's load level; None: the profile's own latency (quiet)
    other_load_cores: float = 0.0  # the reading it was chosen for


def choose(
    rows: Sequence[UnderLoad], quiet: LatencyModel, quiet_threads: int, foreign_cores: float,
    fixed: int | None = None,
) -> Choice:  # fmt: skip
    """The fastest thread count for ``foreign_cores`` (other processes' load, in cores) among
    the rows measured at the load level nearest it (``fixed``: that count only). Where that is
    the quiet row of the profile's own thread count, the profile's own latency stands for it: it
    is the same measurement, or a newer one (a re-profile)."""
    levels = sorted({r.busy_cores for r in rows})
    level = min(levels, key=lambda b: (abs(b - foreign_cores), b), default=None)
    candidates = [r for r in rows if r.busy_cores == level and fixed in (None, r.threads)]
    if not candidates:
        return Choice(fixed or quiet_threads, quiet, None, foreign_cores)
    best = min(candidates, key=UnderLoad.pick_cost)
    if level == 0 and best.threads == quiet_threads:
        return Choice(quiet_threads, quiet, None, foreign_cores)
    return Choice(best.threads, best.latency, best.busy_cores, foreign_cores)
