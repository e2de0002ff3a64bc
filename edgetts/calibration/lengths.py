"""How many decode steps a configuration takes, from the lengths its calibration recorded.

Why not the budget: a program ends by itself (its closing fence) long before its budget on most
questions — Qwen2.5-Coder's GSM8K programs average ~80 tokens against budgets up to 256 — so a
prediction at the budget overstates a program-aided run 2–3× and hides that mode at exactly the
short deadlines where it wins. What a run costs is set by its longest row: the N rows decode as
one batch until the last of them ends, each ending by itself or cut at the budget; a cut row is
then forced (closing text, the answer cue and the answer's tokens, ``extra`` steps), a row that
ended by itself is not (its program is run instead).

The N rows of an anchored vote are the greedy row and N - 1 of the K sampled ones; as the accuracy
tables do (accuracy.py), every (N - 1)-subset of the sampled rows counts with equal weight, so the
order in which calibration stored its samples does not matter.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np


def decode_steps(
    lengths: Sequence[Sequence[int]],
    cap: int,
    budgets: Sequence[int],
    samples: Sequence[int],
    extra: Sequence[float],
    quantile: float | None,
) -> np.ndarray:
    """Steps of each (budget, N), shape (len(budgets), len(samples)), at ``quantile`` over the
    questions (None: their mean). ``lengths[q]`` are question q's row lengths, the K sampled
    rows first and the greedy row last, as calibration records them; ``cap`` is the largest budget
    it ran to, so a row that reached it is taken to run to any budget (its own end is unknown);
    ``extra[j]`` the steps a cut batch of ``samples[j]`` rows adds after its budget."""
    rows = np.asarray(lengths, dtype=np.float64)
    if rows.ndim != 2 or rows.shape[0] == 0:
        raise ValueError("decode_steps needs the row lengths of at least one question")
    out = np.empty((len(budgets), len(samples)))
    for i, budget in enumerate(budgets):
        ended = rows < min(cap, budget)  # the rows that stopped by themselves before the budget
        used = np.where(ended, rows, budget)
        for j, n in enumerate(samples):
            steps, weights = _longest_rows(used[:, :-1], used[:, -1], ended[:, :-1], ended[:, -1], n)
            total = steps[0] + np.where(steps[1], 0.0, extra[j])
            out[i, j] = _weighted(total, weights, quantile)
    return out


def _longest_rows(sampled, greedy, sampled_ended, greedy_ended, n: int):
    """Per question and (n - 1)-subset of the sampled rows: (the longest row's steps, whether every
    row ended by itself), and each pair's weight (a question weighs 1 in all)."""
    k = sampled.shape[1]
    subsets = list(itertools.combinations(range(k), n - 1)) if n - 1 <= k else []
    if not subsets:
        raise ValueError(f"a vote of {n} needs {n - 1} sampled rows; the calibration has {k}")
    longest = [np.maximum(greedy, sampled[:, list(s)].max(axis=1, initial=0.0)) for s in subsets]
    ended = [greedy_ended & sampled_ended[:, list(s)].all(axis=1) for s in subsets]
    weights = np.full(len(subsets) * sampled.shape[0], 1.0 / math.comb(k, n - 1))
    return (np.concatenate(longest), np.concatenate(ended)), weights


def _weighted(values: np.ndarray, weights: np.ndarray, quantile: float | None) -> float:
    """The weighted mean, or the smallest value whose cumulative weight reaches ``quantile`` (a
    step count the runs stay within that often, not an interpolation between two)."""
    if quantile is None:
        return float(np.average(values, weights=weights))
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order]) / weights.sum()
    return float(values[order][min(np.searchsorted(cumulative, quantile - 1e-12), len(values) - 1)])
