"""Token sampling: the candidates a row draws from, with and without an explicit top_k."""

from __future__ import annotations

import numpy as np

from edgetts.runtime.sampling import CANDIDATE_CAP, SamplingParams, sample_rows

VOCAB, DRAWS = 1000, 2000
# Token i is the (i + 1)-th most likely; a huge temperature makes the candidates near-uniform,
# so every candidate is drawn and none beyond them can be.
RANKED = np.tile(-np.arange(VOCAB, dtype=np.float32), (DRAWS, 1))


def drawn(params: SamplingParams) -> set[int]:
    generators = [np.random.default_rng([0, i]) for i in range(DRAWS)]
    return set(sample_rows(RANKED, params, generators).tolist())


def test_an_explicit_top_k_above_the_cap_draws_among_that_many():
    tokens = drawn(SamplingParams(temperature=1e6, top_p=1.0, top_k=100))
    assert max(tokens) == 99 and 79 in tokens  # the 80th most likely can be drawn, the 101st not
    assert len(tokens) == 100


def test_without_top_k_a_row_draws_among_its_candidate_cap():
    """What the SamplingParams docstring says: no top_k still means the 64 most likely."""
    tokens = drawn(SamplingParams(temperature=1e6, top_p=1.0))
    assert tokens == set(range(CANDIDATE_CAP))
