"""Majority vote over samples (self-consistency) with a deterministic tie-break and the early
stop rule: once the samples still running cannot change the winner, stop decoding them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence


def majority(answers: Sequence[str | None]) -> tuple[str | None, dict[str, int]]:
    """Winner and vote counts. Samples without an answer do not vote. Ties go to the answer
    whose first vote came from the lowest sample index: sample order is fixed by the seed, so
    the same samples always give the same winner (calibration uses the same rule)."""
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return None, {}
    first_seen = {a: i for i, a in reversed(list(enumerate(answers))) if a is not None}
    winner = max(counts, key=lambda a: (counts[a], -first_seen[a]))
    return winner, dict(counts)


def decided(answers: Sequence[str | None], unfinished: int) -> bool:
    """True when ``unfinished`` more votes cannot change the winner ``majority`` would pick."""
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return unfinished == 0
    ranked = counts.most_common()
    lead = ranked[0][1]
    runner_up = ranked[1][1] if len(ranked) > 1 else 0
    # A tie could flip the winner through the tie-break, so the lead must be strict.
    return lead > runner_up + unfinished
