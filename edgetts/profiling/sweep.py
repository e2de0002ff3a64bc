"""Latency, memory and power measurements of one store entry on this device.

A decode step is measured the way the generator takes it: one pass of N rows through the
generator's own KV cache at ``context`` tokens *plus* the sampling of N tokens in numpy, because
that is what a request pays per step (the cache's values do not change the arithmetic, so it is
not filled by a prefill). Every point runs warm-up passes first and reports the median and the
standard deviation over repeats (llama-bench reports the mean; why the median: see ``_timed``).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import psutil

from ..runtime.onnx_model import OnnxCausalLM
from ..runtime.sampling import GREEDY, SamplingParams, sample_rows
from .latency_model import LatencyModel, fit_decode, fit_prefill


@dataclass(frozen=True)
class SweepPlan:
    prefill_lengths: tuple[int, ...]
    batches: tuple[int, ...]
    contexts: tuple[int, ...]
    repeats: int
    warmup: int

    def units(self) -> int:
        """Forward passes the sweep makes (for a progress bar)."""
        points = len(self.prefill_lengths) + len(self.batches) * len(self.contexts)
        return points * (self.repeats + self.warmup)


# --quick: enough points for every form's leave-one-out error, a minute for the default ladder.
QUICK = SweepPlan((16, 64, 160, 320), (1, 4, 16), (64, 512), repeats=3, warmup=1)
FULL = SweepPlan((16, 32, 64, 128, 256, 384, 512, 1024), (1, 2, 4, 8, 16), (32, 128, 512, 1024), 5, 2)


@dataclass
class Point:
    """One measured configuration: ``length`` for prefill, ``batch`` × ``context`` for decode."""

    seconds: float  # median over the repeats (see _timed)
    std: float
    watts: float | None
    length: int = 0
    batch: int = 0
    context: int = 0

    def to_list(self) -> list[float]:
        shape = [self.length] if self.length else [self.batch, self.context]
        watts = None if self.watts is None else round(self.watts, 3)
        return [*shape, round(self.seconds, 7), round(self.std, 7), watts]


class MemoryWatch:
    """Peak resident memory of this process, sampled after every measurement."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.peak = self.process.memory_info().rss

    def sample(self) -> None:
        self.peak = max(self.peak, self.process.memory_info().rss)


def _timed(
    run: Callable[[], object], repeats: int, warmup: int, meter, tick
) -> tuple[float, float, float | None]:
    """Median, standard deviation and mean power of ``repeats`` timed runs after ``warmup``.

    Why the median: one stalled repeat (a page fault, the OS scheduling something else) moved
    the mean of a quick profile's 3 repeats by half again — a first-use profile here once put
    Qwen2.5's decode step at 27 ms where it takes 14 — and every plan made with that profile
    then chose less than the device can do. The tail that matters to deadlines is the planner's
    residual quantile and the runtime's guard, not one outlier in the fit's points."""
    for _ in range(warmup):
        run()
        tick()
    times = []
    if meter is not None:
        meter.begin()
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
        tick()
    watts = None
    if meter is not None:
        reading = meter.end()
        watts = reading.mean_watts
    std = statistics.stdev(times) if len(times) > 1 else 0.0
    return statistics.median(times), std, watts


def random_prompt(lm: OnnxCausalLM, length: int, seed: int = 0) -> np.ndarray:
    vocab = lm.manifest.architecture.vocab_size
    return np.random.default_rng(seed).integers(0, vocab, size=(1, length), dtype=np.int64)


def measure_prefill(lm, length, repeats=5, warmup=2, meter=None, tick=lambda: None) -> Point:
    """A prompt of ``length`` tokens into the cache the generator prefills into, emptied before
    every pass (the generator's cache is a little larger: room for the budget and answer)."""
    ids = random_prompt(lm, length)
    cache = lm.new_cache(1, length)

    def prefill() -> None:
        cache.set_length(0)
        lm.run(cache, ids)

    seconds, std, watts = _timed(prefill, repeats, warmup, meter, tick)
    return Point(seconds, std, watts, length=length)


def measure_decode(lm, batch, context, repeats=5, warmup=2, meter=None, tick=lambda: None) -> Point:
    """One generator step at ``batch`` rows after ``context`` tokens: the cache the generator
    uses (updated in place where the graph allows), rewound to ``context`` before every pass so
    that all repeats measure the same configuration."""
    cache = lm.new_cache(batch, context + 1)
    cache.replicate(batch)
    ids = random_prompt(lm, batch).reshape(batch, 1)
    params = GREEDY if batch == 1 else SamplingParams()
    generators = [np.random.default_rng([0, i]) for i in range(batch)]

    def step() -> None:
        cache.set_length(context)
        logits = lm.run(cache, ids)
        sample_rows(logits[:, -1], params, generators)

    seconds, std, watts = _timed(step, repeats, warmup, meter, tick)
    return Point(seconds, std, watts, batch=batch, context=context)


@dataclass
class Sweep:
    prefill: list[Point]
    decode: list[Point]
    peak_rss_bytes: int

    def fit(self) -> LatencyModel:
        """The latency model these points give (latency_model's form choice per phase)."""
        return LatencyModel(
            prefill=fit_prefill([p.length for p in self.prefill], [p.seconds for p in self.prefill]),
            decode=fit_decode(
                [p.batch for p in self.decode], [p.context for p in self.decode],
                [p.seconds for p in self.decode],
            ),
        )  # fmt: skip


def within(values: tuple[int, ...], limit: int) -> list[int]:
    """The plan's values with those past the model's context pulled in to the context's edge, so
    that a short-context model still gets as many distinct points as the fits need."""
    return sorted({min(v, limit - 1) for v in values})


def run_sweep(lm: OnnxCausalLM, plan: SweepPlan, meter=None, tick=lambda: None) -> Sweep:
    """Measure every point of ``plan`` (clipped to the model's context)."""
    limit = lm.manifest.architecture.context_length
    memory = MemoryWatch()
    prefill = []
    for length in within(plan.prefill_lengths, limit):
        prefill.append(measure_prefill(lm, length, plan.repeats, plan.warmup, meter, tick))
        memory.sample()
    decode = []
    for batch in plan.batches:
        for context in within(plan.contexts, limit - 1):
            decode.append(measure_decode(lm, batch, context, plan.repeats, plan.warmup, meter, tick))
            memory.sample()
    return Sweep(prefill, decode, memory.peak)
