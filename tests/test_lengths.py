"""Decode steps from recorded row lengths (calibration/lengths.py), checked against cases worked
out by hand, and used by the planner for program-aided candidates."""

from __future__ import annotations

import numpy as np
import pytest

from edgetts.calibration.lengths import decode_steps

# Two questions, two sampled rows then the greedy row; the calibration ran to budget 64.
LENGTHS = [[10, 30, 20], [50, 5, 5]]
EXTRA = [1, 9, 9]  # steps a cut batch of 1, 2, 3 rows adds (forcing text + answer)


def test_a_batch_costs_its_longest_row_and_a_cut_adds_the_forced_steps():
    mean = decode_steps(LENGTHS, 64, [16, 64], [1, 2, 3], EXTRA, None)
    # Budget 16, greedy alone: question 1's greedy row (20) is cut -> 16 + 1; question 2's ends at 5.
    # A vote of 2 (greedy + either sampled row, weight 1/2 each): 25, 25 | 25, 5 -> mean 20.
    # A vote of 3: both questions have a cut row -> 16 + 9 each.
    # Budget 64: every row ends by itself: greedy 20 and 5; votes of 2 take 20|30 and 50|5, of 3 30 and 50.
    np.testing.assert_allclose(mean, [[11, 20, 25], [12.5, 26.25, 40]])
    top = decode_steps(LENGTHS, 64, [16, 64], [1, 2, 3], EXTRA, 1.0)
    np.testing.assert_allclose(top, [[17, 25, 25], [20, 50, 50]])
    # The 0.5 quantile is a step count that half the runs stay within, not an interpolation.
    assert decode_steps(LENGTHS, 64, [16], [2], EXTRA[1:2], 0.5)[0, 0] == 25


def test_a_row_that_reached_the_calibrations_largest_budget_runs_to_any_larger_one():
    lengths = [[64, 3, 3]]  # the first sampled row was still going at the cap
    steps = decode_steps(lengths, 64, [32, 128], [1, 2], [1, 9], 1.0)
    # Greedy ends at 3 both times; a vote of 2 takes the capped row half the time, cut at 32 or 128.
    np.testing.assert_allclose(steps, [[3, 41], [3, 137]])
    with pytest.raises(ValueError, match="needs 3 sampled rows"):
        decode_steps(lengths, 64, [32], [4], [9], None)


def test_program_candidates_are_predicted_from_their_recorded_lengths(tiny_service_home, monkeypatch):
    """A measured program table whose programs end after 3 tokens predicts each configuration as
    3 decode steps (no forcing), however large its budget; without lengths, as the budget."""
    pytest.importorskip("asteval")
    from edgetts.calibration.accuracy import AccuracyTable
    from edgetts.calibration.tables import Calibration
    from edgetts.planner import candidates
    from edgetts.runtime.prompting import PROGRAM
    from edgetts.tts.answer_types import NUMBER

    home, profile = tiny_service_home
    monkeypatch.setenv("EDGETTS_HOME", str(home))
    settings = {"budgets": [4, 16], "samples": 2, "answer_tokens": 4, "mode": PROGRAM}
    results = [
        {"index": i, "type": "number", "reference": "1", "sampled": [["1", "1"], ["1", "1"]],
         "greedy": ["1", "1"], "think_tokens": [3, 3, 3]}
        for i in range(25)
    ]  # fmt: skip
    Calibration("llama-fp32", "short", settings, results=results).save()
    flat = np.full((2, 3), 0.1)
    steps = AccuracyTable([0, 4], [1, 2, 3], flat, flat, flat, 100)
    Calibration("llama-fp32", "short", {"budgets": [0, 4], "samples": 2}, published=steps).save()
    question = "Question: what is 2 plus 2?"
    model = profile.models["llama-fp32"]
    for cache in (candidates.calibration, candidates.accuracy_table, candidates.recorded_steps):
        cache.cache_clear()
    found, _ = candidates.build(profile, question, "short", answer_tokens=4, modes=[PROGRAM])
    cost = candidates.prompt_cost("llama-fp32", question, NUMBER, PROGRAM)
    assert {c.config.budget for c in found.candidates} == {4, 16}
    for candidate in found.candidates:
        n = candidate.config.samples
        expected = model.latency.run_s(cost.thinking, 3, 0, n, 0, candidates.QUANTILE)
        assert candidate.latency_s == pytest.approx(float(expected))
        budget = candidate.config.budget
        at_budget = model.latency.run_s(cost.thinking, budget, 4, n, cost.force, candidates.QUANTILE)
        assert candidate.latency_s < float(at_budget)
    for result in results:
        del result["think_tokens"]  # records from before lengths were kept: predicted at the budget
    Calibration("llama-fp32", "short", settings, results=results).save()
    for cache in (candidates.calibration, candidates.accuracy_table, candidates.recorded_steps):
        cache.cache_clear()
    found, _ = candidates.build(profile, question, "short", answer_tokens=4, modes=[PROGRAM])
    for candidate in found.candidates:
        n, budget = candidate.config.samples, candidate.config.budget
        expected = model.latency.run_s(cost.thinking, budget, 4, n, cost.force, candidates.QUANTILE)
        assert candidate.latency_s == pytest.approx(float(expected))
