"""The run-time latency correction on its own: medians, bounds, drift, the scaled model, the
decode prediction for what a run actually did, and persistence."""

from __future__ import annotations

import time

import numpy as np
import pytest

from edgetts.planner import correction
from edgetts.planner.correction import Correction, Factors, corrected, predicted_decode_s, ratios
from edgetts.profiling.device_profile import DeviceProfile
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


def test_the_state_survives_a_restart_and_a_damaged_file_is_kept_aside(tmp_path, caplog):
    path = tmp_path / "dev.correction.yaml"
    state = Correction(path)
    for value in (1.5, 1.6, 1.7):
        state.observe("m", value, value * 2)
    state.save()
    again = Correction.load(path)
    assert again.factors("m") == state.factors("m") == Factors(1.6, 3.2, 3)
    assert Correction.load(tmp_path / "none.yaml").factors("m") == Factors()
    path.write_text("models: [not, a, mapping]\n")
    fresh = Correction.load(path)  # plans go on, corrected afresh
    assert fresh.factors("m") == Factors() and fresh.path == path
    assert not path.exists() and (tmp_path / "dev.correction.yaml.damaged").read_text().startswith("models")
    assert "not a latency correction" in caplog.text and "dev.correction.yaml.damaged" in caplog.text
    for value in (1.2, 1.2, 1.2):
        fresh.observe("m", value, value)
    fresh.save()
    assert Correction.load(path).factors("m") == Factors(1.2, 1.2, 3)


def _slowed(monkeypatch, seconds: float) -> None:
    """Every model call of the tiny model takes ``seconds`` more: a device slower than before."""
    from edgetts.runtime.onnx_model import OnnxCausalLM

    run = OnnxCausalLM.run

    def slow_run(self, cache, input_ids):
        time.sleep(seconds)
        return run(self, cache, input_ids)

    monkeypatch.setattr(OnnxCausalLM, "run", slow_run)


def _profiled(seconds: float, monkeypatch) -> DeviceProfile:
    from edgetts import store
    from edgetts.profiling.profiler import profile_entry
    from edgetts.profiling.sweep import QUICK

    with monkeypatch.context() as patch:
        _slowed(patch, seconds)
        model = profile_entry(store.get("llama-fp32"), QUICK, threads=1)
    return DeviceProfile({"id": "here"}, {"source": "measured"}, {"llama-fp32": model})


def _ramp_table() -> None:
    """A table where accuracy grows with budget and votes (the tiny model's own is all zeros, on
    which every plan is the fastest one), published so that no run has to earn it."""
    from edgetts.calibration.accuracy import AccuracyTable
    from edgetts.calibration.tables import Calibration

    mean = np.array([[0.10, 0.12, 0.13, 0.14], [0.20, 0.24, 0.26, 0.28], [0.40, 0.46, 0.50, 0.52]])
    table = AccuracyTable([0, 4, 16], [1, 2, 3, 4], mean, mean, mean, questions=100)
    Calibration("llama-fp32", "ramp", {"budgets": [0, 4, 16], "samples": 3}, published=table).save()


def test_the_correction_converges_on_a_slowed_session_and_the_plan_follows(tiny_service_home, monkeypatch):
    """Profiled at 4 ms a model call, then run at 10 ms: within a few runs the planner predicts
    what a profile taken at 10 ms predicts, and chooses what that profile would choose."""
    from edgetts.engine import Engine

    home, _ = tiny_service_home
    monkeypatch.setenv("EDGETTS_HOME", str(home))
    _ramp_table()
    before, after = _profiled(0.004, monkeypatch), _profiled(0.010, monkeypatch)
    engine = Engine(threads=1, profile=before, eval_name="ramp")
    reference = Engine(threads=1, profile=after, eval_name="ramp", correct=False)
    _slowed(monkeypatch, 0.010)
    try:
        question = "Question: what is 4 plus 7?"
        target = 2.0
        for seed in range(correction.MIN_RUNS + 2):
            answer = engine.solve(question, target, seed=seed, best_effort=True)
            assert answer.planned.latency_correction["runs"] == seed + 1
        factors = engine.correction().factors("llama-fp32")
        assert 1.6 < factors.decode < 3.2 and 1.3 < factors.prefill < 3.5, factors
        assert not answer.planned.drift or factors.decode > 1.9  # outside a tight band: drift may show
        corrected_plan, corrected_candidates = engine.plan(question, target)
        wanted_plan, wanted_candidates = reference.plan(question, target)
        predicted = {c.config: c.latency_s for c in wanted_candidates.candidates}
        for candidate in corrected_candidates.candidates:
            assert candidate.latency_s == pytest.approx(predicted[candidate.config], rel=0.35)
        uncorrected = Engine(threads=1, profile=before, eval_name="ramp", correct=False)
        frontier = sorted({round(c.latency_s, 4) for c in wanted_plan.frontier})
        gaps = [(b / a, (a * b) ** 0.5) for a, b in zip(frontier, frontier[1:], strict=False) if b / a > 1.4]
        assert gaps, f"the slowed profile's frontier should have a clear step: {frontier}"
        for _, middle in gaps:  # targets where the slowed profile's choice is unambiguous
            chosen = engine.plan(question, middle)[0].chosen.config
            assert chosen == reference.plan(question, middle)[0].chosen.config
        assert any(
            engine.plan(question, m)[0].chosen.config != uncorrected.plan(question, m)[0].chosen.config
            for _, m in gaps
        ), "the correction should change some plan"
        assert corrected_plan.chosen.latency_s <= target
    finally:
        engine.close()
        reference.close()


def test_a_drifting_model_is_reprofiled_between_requests(tiny_service_home, monkeypatch, tmp_path):
    """auto_reprofile: after DRIFT_RUNS slowed runs the engine measures the model again in the
    background, never while a request runs, and then plans with (and saves) what it measured,
    its correction started afresh."""
    import threading

    from edgetts.engine import Engine
    from edgetts.profiling.device_profile import load
    from edgetts.runtime.onnx_model import OnnxCausalLM

    home, _ = tiny_service_home
    monkeypatch.setenv("EDGETTS_HOME", str(home))
    _ramp_table()
    before = _profiled(0.004, monkeypatch)
    before.conditions = {"source": "measured", "date": "2026-12-01T00:00:00+00:00"}
    path = before.save(tmp_path / "here.yaml")
    engine = Engine(threads=1, profile=load(path), eval_name="ramp", auto_reprofile=True)
    _slowed(monkeypatch, 0.010)
    running, most = [0], [0]
    lock = threading.Lock()
    slow_run = OnnxCausalLM.run

    def counted_run(self, cache, input_ids):  # how many model calls overlap
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            return slow_run(self, cache, input_ids)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(OnnxCausalLM, "run", counted_run)
    question = "Question: what is 4 plus 7?"
    try:
        states = []
        for seed in range(correction.DRIFT_RUNS + 4):
            answer = engine.solve(question, 2.0, seed=seed, best_effort=True)
            states.append(answer.planned.reprofile)
            assert answer.on_time
        assert states[: correction.DRIFT_RUNS - 1] == [None] * (correction.DRIFT_RUNS - 1), states
        assert states[correction.DRIFT_RUNS - 1] == "queued", states  # the first drifting run asks
        engine._reprofiler.join(timeout=60)
        assert most[0] == 1, "a re-profile pass ran while a request decoded"
        step = engine.device_profile().models["llama-fp32"].latency.step_s(1, 64)
        assert step > 1.6 * before.models["llama-fp32"].latency.step_s(1, 64)  # slowed ×2.5 or so
        saved = load(path)
        assert saved.models["llama-fp32"].latency.step_s(1, 64) == pytest.approx(step, rel=1e-4)  # as written
        assert saved.conditions["date"] > "2026-12-01T00:00:00+00:00"
        assert engine.correction().factors("llama-fp32").runs == 0
        again = engine.solve(question, 2.0, seed=99, best_effort=True)
        assert again.planned.drift is False and again.planned.latency_correction["runs"] == 1
    finally:
        engine.close()
