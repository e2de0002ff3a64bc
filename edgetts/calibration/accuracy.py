"""Accuracy of majority vote over N samples, estimated from K >= N stored samples per question.

Why an exact expectation rather than "vote over the first N stored samples": the first N are one
draw out of C(K, N) equally likely ones, so that estimate is noisy and depends on the arbitrary order
in which calibration stored its samples. Averaging over every N-subset uses all K samples for every
N and gives the same number whatever the storage order.

What exactly is averaged. At run time the N samples are exchangeable: which stored sample would play
runtime sample 0, 1, ... is arbitrary, so the estimate averages :func:`edgetts.tts.vote.majority`
over every N-subset of the K stored samples *and* every order in which the runtime could number
them (equivalently: over all ordered N-tuples of distinct stored samples). This matters only for the
tie-break, which ``majority`` settles by the lowest runtime sample index; a fixed storage order would
instead always favour whichever answer calibration happened to store first.

Why the counting method is exact. A subset is described by how many samples it takes from each
answer class (the reference answer, every other answer, and "no answer"); the number of subsets
with counts (j_r, j_1, ..., j_0) is the product of binomials C(k_r, j_r) * prod C(k_c, j_c) *
C(k_0, j_0). For a subset with j_r = t >= 1 reference votes where no other class has more than t
votes and s other classes have exactly t, the vote is a tie between s + 1 classes of t votes each
(or a clean win when s = 0). Under a uniformly random numbering the first of those (s + 1) * t
samples is equally likely to be any of them, so the reference wins the tie-break with probability
exactly t / ((s + 1) * t) = 1 / (s + 1). Hence

    acc(N) = 1 / C(K, N) * sum_t C(k_r, t) * sum_s W_t(N - t, s) / (s + 1),

where W_t(d, s) counts the ways to choose d non-reference samples with every class at most t and
exactly s classes at t. W_t is a product of per-class polynomials in (d, s), accumulated below as
integer-valued float arrays (exact below 2**53); the only rounding is the final division. Classes
too small to reach t, and the "no answer" samples, can never tie, so they enter as one binomial row.

Anchored votes (what the runtime does for N >= 2, see runtime/generator.py): runtime sample 0 is
the greedy decode and the other N - 1 are sampled, so the vote is over the greedy answer g plus
N - 1 of the K stored samples; ties go to the lowest runtime index, i.e. to g's answer whenever it
is among the tied. The same counting works with the greedy vote folded in: if g is the reference,
the reference has t + 1 votes and wins unless another class passes t + 1 (a cap, no tie weight);
if g is another answer with k_g stored samples, that class must stay at most t - 2 sampled votes
(t - 1 would tie and go to g) and the remaining classes tie with the reference as above; if g
gave no answer, the vote is the plain vote over the N - 1 samples.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, NoReturn

import numpy as np

from ..errors import EdgeTTSError

_LISTS = ("budgets", "samples")
_TABLES = ("mean", "low", "high")
_CONFIDENCE = 0.95
_Z = NormalDist().inv_cdf(0.5 + _CONFIDENCE / 2)


def vote_accuracy(answers: Sequence[str | None], reference: str, n: int) -> float:
    """Exact probability that majority vote over ``n`` of these samples is ``reference`` (see the
    module docstring). ``None`` samples do not vote; a vote with no votes at all is wrong."""
    if not 1 <= n <= len(answers):
        raise ValueError(f"n must be between 1 and {len(answers)} (the number of samples), got {n}")
    return float(_accuracy_by_n(*_signature(answers, reference))[n])


def anchored_vote_accuracy(
    anchor: str | None, answers: Sequence[str | None], reference: str, m: int
) -> float:
    """Exact probability that the vote over ``anchor`` (the greedy answer, runtime sample 0) and
    ``m`` of these samples is ``reference`` (module docstring: anchored votes)."""
    if not 0 <= m <= len(answers):
        raise ValueError(f"m must be between 0 and {len(answers)} (the number of samples), got {m}")
    return float(_anchored_by_m(*_anchored_signature(anchor, answers, reference))[m])


@dataclass(frozen=True, eq=False)
class AccuracyTable:
    """acc(budget, N): mean over questions of the exact vote accuracy, with a 95 % interval.

    The interval is Wilson's score interval with the question count as the number of trials.
    Per-question accuracies lie in [0, 1], so their variance is at most mean * (1 - mean), the
    Bernoulli variance Wilson assumes: the interval is valid (conservative when votes make
    per-question values less extreme), deterministic (no bootstrap seed to record), and, unlike a
    normal interval on the sample variance, it does not collapse to a point when every question
    is right or every one is wrong, which is where small calibration sets land.
    """

    budgets: list[int]
    samples: list[int]  # 1..max_n; column j of the arrays is N = samples[j]
    mean: np.ndarray  # [len(budgets), len(samples)]
    low: np.ndarray
    high: np.ndarray
    questions: int

    def at(self, budget: int, n: int) -> float:
        """Mean accuracy at a calibrated budget and sample count."""
        if budget not in self.budgets:
            raise EdgeTTSError(f"budget {budget} was not calibrated (calibrated budgets: {self.budgets})")
        if not 1 <= n <= len(self.samples):
            raise EdgeTTSError(f"{n} samples were not calibrated (calibrated: 1 to {len(self.samples)})")
        return float(self.mean[self.budgets.index(budget), n - 1])

    def to_dict(self) -> dict[str, Any]:
        """Plain lists and numbers, for YAML / JSON; :meth:`from_dict` restores it exactly."""
        return {
            "budgets": list(self.budgets),
            "samples": list(self.samples),
            "questions": self.questions,
            "mean": self.mean.tolist(),
            "low": self.low.tolist(),
            "high": self.high.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Any) -> AccuracyTable:
        """The table ``to_dict`` wrote; a one-line :class:`EdgeTTSError` if it is malformed."""
        if not isinstance(data, Mapping):
            _malformed(f"expected a mapping, got {type(data).__name__}")
        missing = [key for key in (*_LISTS, "questions", *_TABLES) if key not in data]
        if missing:
            _malformed(f"missing {', '.join(missing)}")
        budgets, samples, questions = data["budgets"], data["samples"], data["questions"]
        if not isinstance(budgets, list) or not budgets or not all(_is_int(b) for b in budgets):
            _malformed("budgets must be a non-empty list of integers")
        if len(set(budgets)) != len(budgets):
            _malformed(f"budgets repeat: {budgets}")
        if not isinstance(samples, list) or not samples or samples != list(range(1, len(samples) + 1)):
            _malformed("samples must be the list 1, 2, ..., max_n")
        if not _is_int(questions) or questions < 1:
            _malformed("questions must be a positive integer")
        arrays = {key: _matrix(data[key], key, (len(budgets), len(samples))) for key in _TABLES}
        if not np.all((arrays["low"] <= arrays["mean"]) & (arrays["mean"] <= arrays["high"])):
            _malformed("every mean must lie between its low and high")
        return cls(list(budgets), list(samples), questions=questions, **arrays)


def accuracy_table(
    answers: Sequence[Sequence[Sequence[str | None]]],
    references: Sequence[str],
    budgets: Sequence[int],
    max_n: int,
    anchors: Sequence[Sequence[str | None]] | None = None,
) -> AccuracyTable:
    """acc(budget, N) for N = 1..max_n from ``answers[q][k][b]`` (question q, sample k, budget
    checkpoint b; a normalised answer or ``None``) and the reference answer of each question.

    With ``anchors[q][b]`` (the greedy answers) the votes are anchored: N = the greedy answer plus
    N - 1 samples, so N = 1 is the greedy answer and max_n can be K + 1."""
    if not answers:
        raise EdgeTTSError("no calibration questions: the accuracy table needs at least one")
    if len(answers) != len(references):
        raise EdgeTTSError(f"{len(answers)} questions were sampled but {len(references)} references given")
    if max_n < 1:
        raise ValueError(f"max_n must be at least 1, got {max_n}")
    if len(set(budgets)) != len(budgets):
        raise ValueError(f"budgets repeat: {list(budgets)}")
    if anchors is not None and len(anchors) != len(answers):
        raise EdgeTTSError(f"{len(answers)} questions were sampled but {len(anchors)} have greedy answers")
    anchored = 0 if anchors is None else 1  # the greedy answer is one of the N votes
    per_question = np.empty((len(answers), len(budgets), max_n))
    for q, (samples, reference) in enumerate(zip(answers, references, strict=True)):
        if len(samples) + anchored < max_n:
            raise EdgeTTSError(
                f"question {q} has {len(samples)} samples, fewer than the {max_n - anchored} asked for: "
                f"calibrate with at least {max_n - anchored} samples per question"
            )
        if any(len(sample) != len(budgets) for sample in samples) or (
            anchors is not None and len(anchors[q]) != len(budgets)
        ):
            raise EdgeTTSError(f"question {q}: every sample needs one answer per budget ({len(budgets)})")
        for b in range(len(budgets)):
            column = [sample[b] for sample in samples]
            if anchors is None:
                per_question[q, b] = _accuracy_by_n(*_signature(column, reference))[1 : max_n + 1]
            else:
                signature = _anchored_signature(anchors[q][b], column, reference)
                per_question[q, b] = _anchored_by_m(*signature)[:max_n]
    mean = per_question.mean(axis=0)
    low, high = wilson_interval(mean, len(answers))
    return AccuracyTable(list(budgets), list(range(1, max_n + 1)), mean, low, high, len(answers))


def _signature(answers: Sequence[str | None], reference: str) -> tuple[int, tuple[int, ...], int]:
    """(reference votes, sorted vote counts of the other answers, samples without an answer): all
    that the vote accuracy depends on, so that questions with the same shape share one result."""
    counts = Counter(answers)
    missing = counts.pop(None, 0)
    right = counts.pop(reference, 0)
    return right, tuple(sorted(counts.values())), missing


_REFERENCE = -1  # in an anchored signature: the greedy answer is the reference


def _anchored_signature(
    anchor: str | None, answers: Sequence[str | None], reference: str
) -> tuple[int, tuple[int, ...], int, int | None]:
    """``_signature`` plus what the greedy vote is: None (no answer), ``_REFERENCE``, or the number
    of stored samples in its (wrong) class, which then leaves ``others``."""
    right, others, missing = _signature(answers, reference)
    if anchor is None:
        return right, others, missing, None
    if anchor == reference:
        return right, others, missing, _REFERENCE
    size = sum(1 for a in answers if a == anchor)
    rest = list(others)
    if size:
        rest.remove(size)
    return right, tuple(rest), missing, size


@functools.lru_cache(maxsize=1 << 16)
def _accuracy_by_n(right: int, others: tuple[int, ...], missing: int) -> np.ndarray:
    """Vote accuracy for every N = 0..K (index N) from the class counts (module docstring)."""
    total = right + sum(others) + missing
    numerator = np.zeros(total + 1)
    for t in range(1, right + 1):
        tying = [k for k in others if k >= t]
        rest = _tie_weighted(_ways(total, total - right - sum(tying), [], tying, t))
        numerator[t:] += math.comb(right, t) * rest[: total + 1 - t]
    return _frozen(numerator / _binomials(total))


@functools.lru_cache(maxsize=1 << 16)
def _anchored_by_m(right: int, others: tuple[int, ...], missing: int, anchor: int | None) -> np.ndarray:
    """Anchored vote accuracy for every m = 0..K sampled votes (index m) besides the greedy one
    (module docstring: anchored votes)."""
    if anchor is None:
        return _accuracy_by_n(right, others, missing)
    anchor_size = 0 if anchor == _REFERENCE else anchor
    total = right + sum(others) + missing + anchor_size
    numerator = np.zeros(total + 1)
    if anchor == _REFERENCE:  # t sampled + the greedy vote; every tie goes to the greedy answer
        for t in range(right + 1):
            capped = [(k, t + 1) for k in others if k > t + 1]
            ways = _ways(total, total - right - sum(k for k, _ in capped), capped, [], t)
            numerator[t:] += math.comb(right, t) * ways[: total + 1 - t, 0]
    else:  # the greedy class (anchor_size samples + 1) must stay below the reference's t
        for t in range(2, right + 1):
            tying = [k for k in others if k >= t]
            capped = [(anchor_size, t - 2)] if anchor_size > t - 2 else []
            pool = total - right - sum(tying) - sum(k for k, _ in capped)
            rest = _tie_weighted(_ways(total, pool, capped, tying, t))
            numerator[t:] += math.comb(right, t) * rest[: total + 1 - t]
    return _frozen(numerator / _binomials(total))


def _ways(total: int, pool: int, capped: list[tuple[int, int]], tying: list[int], t: int) -> np.ndarray:
    """ways[d, s]: choices of d non-reference samples with s classes tied at t votes, from
    ``pool`` samples taken freely, ``capped`` classes (size, most votes allowed) and ``tying``
    classes allowed up to t votes, where reaching t counts as a tie."""
    ways = np.zeros((total + 1, len(tying) + 1))
    ways[: pool + 1, 0] = _binomials(pool)
    for k, cap in capped:
        ways = _class_step(k, cap + 1, total)[0] @ ways
    for k in tying:
        below, tie = _class_step(k, t, total)
        tied = ways.copy()
        ways = below @ ways
        ways[:, 1:] += tie @ tied[:, :-1]
    return ways


def _tie_weighted(ways: np.ndarray) -> np.ndarray:
    """Sum over tie counts s, weighted by the reference's chance 1 / (s + 1) to win the tie."""
    return ways @ (1.0 / np.arange(1, ways.shape[1] + 1))


def _frozen(result: np.ndarray) -> np.ndarray:
    result.flags.writeable = False  # cached: shared by every caller
    return result


@functools.lru_cache(maxsize=1024)
def _binomials(k: int) -> np.ndarray:
    row = np.array([math.comb(k, j) for j in range(k + 1)], dtype=float)
    row.flags.writeable = False
    return row


@functools.lru_cache(maxsize=4096)
def _class_step(k: int, t: int, total: int) -> tuple[np.ndarray, np.ndarray]:
    """Matrices that add one class of ``k`` samples to ``ways``: taking j < t of them (shift by j,
    weight C(k, j)) and taking exactly t (a tie: the caller shifts the tie count too)."""
    below = sum(math.comb(k, j) * np.eye(total + 1, k=-j) for j in range(t))
    tie = math.comb(k, t) * np.eye(total + 1, k=-t)
    return below, tie


def wilson_interval(mean: np.ndarray, trials: int) -> tuple[np.ndarray, np.ndarray]:
    z2 = _Z * _Z / trials
    centre = (mean + z2 / 2) / (1 + z2)
    half = _Z / (1 + z2) * np.sqrt(mean * (1 - mean) / trials + z2 / (4 * trials))
    # The score interval contains the mean; clipping only guards against rounding.
    return np.clip(centre - half, 0.0, mean), np.clip(centre + half, mean, 1.0)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _matrix(value: Any, key: str, shape: tuple[int, int]) -> np.ndarray:
    try:
        array = np.array(value, dtype=float)
    except (TypeError, ValueError):
        _malformed(f"{key} must be a table of numbers")
    if array.shape != shape:
        _malformed(f"{key} has shape {array.shape}, expected {shape} (budgets x samples)")
    if not np.all(np.isfinite(array) & (array >= 0) & (array <= 1)):
        _malformed(f"{key} has values outside [0, 1]")
    return array


def _malformed(why: str) -> NoReturn:
    raise EdgeTTSError(f"malformed accuracy table: {why}; run `edgetts calibrate` again to rebuild it")
