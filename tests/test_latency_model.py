"""The fitted latency model: form selection, non-negative fits, closed-form run sums, margins."""

from __future__ import annotations

import numpy as np
import pytest

from edgetts.errors import EdgeTTSError
from edgetts.profiling.latency_model import (
    DECODE_FORMS,
    PREFILL_FORMS,
    Fit,
    LatencyModel,
    fit_decode,
    fit_nonnegative,
    fit_prefill,
    residual_summary,
)

LENGTHS = np.array([16, 40, 64, 100, 128, 200, 256, 384, 512, 1024])
BATCHES = np.repeat([1, 2, 4, 8, 16], 4)
CONTEXTS = np.tile([32, 128, 512, 1024], 5)


def test_prefill_form_is_chosen_by_held_out_error():
    quadratic = 0.01 + 2e-4 * LENGTHS + 3e-7 * LENGTHS**2
    fit = fit_prefill(LENGTHS, quadratic)
    assert fit.form == "quadratic"
    np.testing.assert_allclose(fit.coefficients, [0.01, 2e-4, 3e-7], rtol=1e-6)
    assert fit.residual["mape"] < 1e-9

    padded = np.ceil(LENGTHS / 128) * 128
    fit = fit_prefill(LENGTHS, 0.02 + 1e-4 * padded + 1e-7 * padded**2)
    assert fit.form == "padded-quadratic"

    fit = fit_prefill(LENGTHS, 0.005 + 1e-3 * LENGTHS)
    assert fit.form == "linear"  # as good as quadratic on held-out points, with fewer coefficients
    assert set(fit.candidates) == set(PREFILL_FORMS)


def test_decode_form_recovers_batch_and_context_terms():
    steps = 0.004 + 0.002 * BATCHES + 5e-6 * BATCHES * CONTEXTS
    fit = fit_decode(BATCHES, CONTEXTS, steps)
    assert fit.form == "batch-linear"
    np.testing.assert_allclose(fit.coefficients, [0.004, 0.002, 5e-6], rtol=1e-6)
    with_square = steps + 1e-4 * BATCHES**2
    assert fit_decode(BATCHES, CONTEXTS, with_square).form == "batch-quadratic"
    assert set(fit_decode(BATCHES, CONTEXTS, with_square).candidates) == set(DECODE_FORMS)


def test_fit_never_returns_negative_coefficients():
    features = np.stack([np.ones(5), np.arange(1.0, 6.0), np.arange(1.0, 6.0) ** 2], axis=1)
    measured = 1.0 + 0.5 * np.arange(1.0, 6.0) - 0.01 * np.arange(1.0, 6.0) ** 2  # concave
    coefficients = fit_nonnegative(features, measured)
    assert (coefficients >= 0).all()
    assert coefficients[2] == 0.0
    assert (features @ coefficients > 0).all()


def test_too_few_points_is_a_clear_error():
    with pytest.raises(EdgeTTSError, match="at least 3"):
        fit_prefill([16, 32], [0.1, 0.2])


def test_run_prediction_is_the_sum_of_its_steps():
    prefill = fit_prefill(LENGTHS, 0.01 + 2e-4 * LENGTHS + 3e-7 * LENGTHS**2)
    decode = fit_decode(BATCHES, CONTEXTS, 0.004 + 0.002 * BATCHES + 5e-6 * BATCHES * CONTEXTS)
    model = LatencyModel(prefill, decode)
    prompt, budget, answer, force = 90, 37, 16, 9
    for samples in (1, 8):
        steps = budget + (force if samples > 1 else 1) + answer
        explicit = model.prefill_s(prompt) + sum(model.step_s(samples, prompt + i) for i in range(steps))
        predicted = model.run_s(prompt, budget, answer, samples, force_tokens=force)
        assert predicted == pytest.approx(float(explicit), rel=1e-9)
    grid = model.run_s(prompt, np.array([[0], [64]]), answer, np.array([[1, 4, 16]]), force_tokens=force)
    assert grid.shape == (2, 3)
    assert (np.diff(grid, axis=0) > 0).all() and (np.diff(grid, axis=1) > 0).all()


def test_upper_quantile_adds_the_held_out_slowdown():
    rng = np.random.default_rng(1)
    noisy = (0.004 + 0.002 * BATCHES + 5e-6 * BATCHES * CONTEXTS) * (1 + 0.05 * rng.standard_normal(20))
    decode = fit_decode(BATCHES, CONTEXTS, noisy)
    prefill = fit_prefill(LENGTHS, 0.01 + 1e-3 * LENGTHS)
    model = LatencyModel(prefill, decode)
    mean = model.step_s(8, 300)
    upper = model.step_s(8, 300, quantile=0.95)
    assert upper == pytest.approx(mean * (1 + decode.residual["q95"]))
    assert upper > mean
    assert 0.01 < decode.residual["mape"] < 0.2


def test_residual_summary_measures_slowdown_not_speedup():
    summary = residual_summary(np.array([1.0, 1.0, 1.0, 1.0]), np.array([1.0, 1.1, 1.2, 0.9]))
    assert summary["max"] == pytest.approx(0.2 / 1.2)  # error relative to the measurement
    assert summary["q99"] == pytest.approx(0.2, abs=0.01)  # reality 20 % slower at worst
    assert summary["q50"] == pytest.approx(0.05)
    assert summary["mape"] == pytest.approx((0.1 / 1.1 + 0.2 / 1.2 + 0.1 / 0.9) / 4)


def test_fit_round_trip_and_malformed_fits():
    fit = fit_prefill(LENGTHS, 0.01 + 2e-4 * LENGTHS)
    again = Fit.from_dict(fit.to_dict(), PREFILL_FORMS, "test")
    np.testing.assert_allclose(again.coefficients, fit.coefficients, rtol=1e-5)
    assert again.form == fit.form and again.residual.keys() == fit.residual.keys()
    bad = fit.to_dict() | {"features": ["1", "L", "L^3"]}
    with pytest.raises(EdgeTTSError, match="features"):
        Fit.from_dict(bad, PREFILL_FORMS, "test")
    with pytest.raises(EdgeTTSError, match="malformed"):
        Fit.from_dict({"form": "linear"}, PREFILL_FORMS, "test")
