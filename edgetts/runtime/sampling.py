"""Token sampling in numpy: temperature, top-k, top-p, greedy.

Each sample draws from its own generator seeded by (seed, sample index), so sample i makes the
same choices whether it is decoded alone or in a batch of N with a shared prefix, and dropping
finished samples from the batch does not shift anyone's random stream.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SamplingParams:
    """Temperature (0: greedy), then top-k, then top-p (nucleus) sampling.

    Without ``top_k`` (0) a row still draws only from its CANDIDATE_CAP (64) most likely tokens,
    then applies ``top_p``: beyond them the probability mass is negligible at the temperatures
    self-consistency uses, and sorting the whole vocabulary would cost more than the cut loses
    (see ``sample_rows``). An explicit ``top_k`` is taken as asked, above 64 too."""

    temperature: float = 0.7
    top_p: float = 0.95
    top_k: int = 0  # 0: no cut of the caller's (the CANDIDATE_CAP cut above applies)

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0


GREEDY = SamplingParams(temperature=0.0)
CANDIDATE_CAP = 64


def sample_rows(
    logits: np.ndarray, params: SamplingParams, generators: list[np.random.Generator | None]
) -> np.ndarray:
    """One token per row of ``logits`` [rows, vocab]; row r draws from ``generators[r]``, and a
    row whose generator is None (or every row, with greedy ``params``) takes the argmax: the
    greedy anchor of a vote is decoded in the same batch as its sampled companions."""
    if params.greedy:
        return logits.argmax(axis=-1)
    tokens = np.empty(len(logits), dtype=np.int64)
    sampled = [row for row, generator in enumerate(generators) if generator is not None]
    greedy = [row for row, generator in enumerate(generators) if generator is None]
    if greedy:
        tokens[greedy] = logits[greedy].argmax(axis=-1)
    if not sampled:
        return tokens
    # Why a candidate cap without top_k: a full argsort of a 152k vocabulary costs ~8 ms per row
    # per step on the edge CPU; the mass outside the 64 most likely tokens is negligible at the
    # temperatures self-consistency uses (llama.cpp's default top-k is 40). An explicit top_k is
    # not capped: argpartition costs the same for any k, only the sort of the k candidates grows.
    cap = min(params.top_k or CANDIDATE_CAP, logits.shape[-1])
    drawn = logits[sampled] if greedy else logits  # copy the rows only when some are greedy
    candidates = np.argpartition(-drawn, cap - 1, axis=-1)[:, :cap]
    for row, row_candidates in zip(sampled, candidates, strict=True):
        values = logits[row, row_candidates].astype(np.float64) / params.temperature
        rank = np.argsort(-values, kind="stable")
        order, values = row_candidates[rank], values[rank]
        probs = np.exp(values - values[0])
        probs /= probs.sum()
        if params.top_p < 1.0:
            keep = int(np.searchsorted(np.cumsum(probs), params.top_p) + 1)
            order, probs = order[:keep], probs[:keep] / probs[:keep].sum()
        tokens[row] = order[generators[row].choice(len(order), p=probs)]
    return tokens
