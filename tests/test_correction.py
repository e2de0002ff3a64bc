"""The run-time latency correction on its own: medians, bounds, drift, the scaled model, the
decode prediction for what a run actually did, and persistence."""

from __future__ import annotations

import numpy as np
import pytest

from edgetts.errors import EdgeTTSError
from edgetts.planner import correction
from edgetts.planner.correction import Correction, Factors, corrected, predicted_decode_s, ratios
from edgetts.profiling.latency_model import LatencyModel, fit_decode, fit_prefill


def _model() -> LatencyModel:
    lengths = np.array([8, 32, 64, 128, 256])
    batches, contexts = np.meshgrid([1, 2, 4, 8], [64, 256, 512])
    batches, contexts = batches.ravel(), contexts.ravel()
    return LatencyModel(
        prefill=fit_prefill(lengths, 0.002 + 0.0005 * lengths),
        decode=fit_decode(batches, contexts, 0.010 + 0.002 * batches + 1e-6 * contexts),
    )


def test_no_factor_before_enough_runs_then_the_median_and_one_outlier_moves_nothing():
    state = Correction()
    assert state.factors("m") == Factors(1.0, 1.0, 0)
    state.observe("m", 2.0, 2.0)
    state.observe("m", 2.0, 2.0)
    assert state.factors("m").decode == 1.0, "two runs are not enough to correct"
    state.observe("m", 2.0, 2.0)
    assert state.factors("m") == Factors(2.0, 2.0, 3)
    quiet = Correction()
    for _ in range(8):
        quiet.observe("m", 1.0, 1.0)
    quiet.observe("m", 9.0, 9.0)  # one run slowed by something else
    assert quiet.factors("m").decode == 1.0
    for _ in range(correction.WINDOW):
        quiet.observe("m", 10.0, 0.01)
    assert quiet.factors("m") == Factors(correction.MAX_FACTOR, correction.MIN_FACTOR, correction.WINDOW)
    quiet.observe("m", None, float("nan"))  # a phase too short to measure, or garbage: ignored
    assert quiet.factors("m").runs == correction.WINDOW


def test_the_corrected_model_scales_every_prediction():
    model = _model()
    scaled = corrected(model, Factors(2.0, 3.0, 5))
    assert scaled.prefill_s(100) == pytest.approx(2 * model.prefill_s(100))
    assert scaled.step_s(4, 300, 0.95) == pytest.approx(3 * model.step_s(4, 300, 0.95))
    whole, prefill = model.run_s(100, 64, 16, 4, 8), model.prefill_s(100)
    assert scaled.run_s(100, 64, 16, 4, 8) == pytest.approx(2 * prefill + 3 * (whole - prefill))
    assert corrected(model, Factors()) is model


def test_the_decode_prediction_follows_the_rows_a_run_kept():
    model = _model()
    steps = [5, 3, 3]  # three rows for 3 steps, then one row for 2
    expected = sum(float(model.step_s(3, 10 + t)) for t in range(3)) + sum(
        float(model.step_s(1, 10 + t)) for t in range(3, 5)
    )
    assert predicted_decode_s(model, 10, steps) == pytest.approx(expected)
    assert predicted_decode_s(model, 10, []) == 0.0
    prefill, decode = ratios(model, 10, 2 * float(model.prefill_s(10)), 1.5 * expected, steps)
    assert prefill == pytest.approx(2.0) and decode == pytest.approx(1.5)


def test_drift_needs_several_runs_in_a_row_outside_the_profiles_band():
    model = _model()
    low, high = correction.band(model)
    assert low <= 0.9 and high >= 1.1
    state = Correction()
    for _ in range(correction.DRIFT_RUNS - 1):
        state.observe("m", 1.0, 3.0)
    assert not state.drifting("m", model)
    state.observe("m", 1.0, 3.0)
    assert state.drifting("m", model)
    state.observe("m", 1.0, 1.0)
    assert not state.drifting("m", model), "one run back in the band ends the streak"


def test_the_state_survives_a_restart_and_a_damaged_file_says_what_to_do(tmp_path):
    path = tmp_path / "dev.correction.yaml"
    state = Correction(path)
    for value in (1.5, 1.6, 1.7):
        state.observe("m", value, value * 2)
    state.save()
    again = Correction.load(path)
    assert again.factors("m") == state.factors("m") == Factors(1.6, 3.2, 3)
    assert Correction.load(tmp_path / "none.yaml").factors("m") == Factors()
    path.write_text("models: [not, a, mapping]\n")
    with pytest.raises(EdgeTTSError, match="delete it"):
        Correction.load(path)
