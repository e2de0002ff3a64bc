"""Threads under contention (issue 17, part 4): the profile's thread sweep under busy loops, the
choice of a thread count for the other load seen now, the load watch that sees it, and an engine
that plans and runs with the row measured under that load."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
import psutil
import pytest
from click.testing import CliRunner
from conftest import copy_entry

from edgetts import store
from edgetts.cli import cli
from edgetts.profiling import device_profile
from edgetts.profiling.device import detect
from edgetts.profiling.device_profile import DeviceProfile
from edgetts.profiling.latency_model import LatencyModel, fit_decode, fit_prefill
from edgetts.profiling.load import CpuSample, LoadWatch, others_running
from edgetts.profiling.sweep import SweepPlan
from edgetts.profiling.threads import UnderLoad, busy_levels, choose, sweep_threads, thread_counts
from edgetts.runtime.onnx_model import OnnxCausalLM, default_threads


def _latency(step_ms: float) -> LatencyModel:
    """A model whose decode step is ``step_ms`` at batch 1, growing with batch and context."""
    lengths = np.array([8, 32, 64, 128, 256])
    batches, contexts = np.meshgrid([1, 2, 4, 8], [64, 256, 512])
    batches, contexts = batches.ravel(), contexts.ravel()
    base = step_ms / 1000
    return LatencyModel(
        prefill=fit_prefill(lengths, base + base / 20 * lengths),
        decode=fit_decode(batches, contexts, base * (0.8 + 0.2 * batches) + 1e-7 * contexts),
    )


QUIET, FAST_1, SLOW_2, SLOWER_1 = _latency(10), _latency(14), _latency(25), _latency(20)
# As measured on a 2-core VM: idle, 2 threads beat 1; with a core busy, 1 beats 2.
ROWS = [
    UnderLoad(2, 0, QUIET, {}), UnderLoad(1, 0, SLOWER_1, {}),
    UnderLoad(2, 1, SLOW_2, {}), UnderLoad(1, 1, FAST_1, {}),
]  # fmt: skip


def _step(latency: LatencyModel) -> float:
    return float(latency.step_s(1, 256))


def test_thread_counts_and_load_levels_cover_small_boards_and_sample_large_ones():
    assert thread_counts(2) == [1, 2] and busy_levels(2) == [0, 1, 2]
    assert thread_counts(12) == [1, 2, 3, 6, 11, 12] and busy_levels(12) == [0, 1, 2, 3, 6, 11, 12]


def test_the_fastest_row_at_the_nearest_load_level_is_chosen():
    quiet = choose(ROWS, QUIET, 2, foreign_cores=0.2)
    assert (quiet.threads, quiet.busy_cores) == (2, None) and quiet.latency is QUIET  # the profile's own
    loaded = choose(ROWS, QUIET, 2, foreign_cores=0.9)
    assert (loaded.threads, loaded.busy_cores, loaded.latency) == (1, 1, FAST_1)
    pinned = choose(ROWS, QUIET, 2, foreign_cores=1.4, fixed=2)  # --threads 2: that row, this load
    assert (pinned.threads, pinned.busy_cores, pinned.latency) == (2, 1, SLOW_2)
    assert choose(ROWS, QUIET, 2, foreign_cores=0.5).busy_cores is None  # a tie goes to the lighter load
    beyond = choose(ROWS, QUIET, 2, foreign_cores=3.0)  # more load than measured: the heaviest row
    assert beyond.busy_cores == 1 and beyond.threads == 1
    bare = choose([], QUIET, 2, foreign_cores=1.0)  # no sweep: the profile as it is
    assert (bare.threads, bare.latency, bare.busy_cores) == (2, QUIET, None)
    faster_quiet = [UnderLoad(2, 0, SLOW_2, {}), UnderLoad(1, 0, FAST_1, {})]
    idle_one = choose(faster_quiet, QUIET, 2, foreign_cores=0.0)  # where 1 thread wins even idle
    assert (idle_one.threads, idle_one.busy_cores) == (1, 0)


def test_a_thread_sweep_round_trips_through_the_profile_file(tmp_path):
    from edgetts.profiling.device_profile import ModelProfile

    model = ModelProfile("m", "measured", "int4", 2048, QUIET, 1, 1, under_load=ROWS)
    path = DeviceProfile({"id": "here"}, {"source": "measured"}, {"m": model}).save(tmp_path / "here.yaml")
    again = device_profile.load(path).models["m"]
    assert [(r.threads, r.busy_cores) for r in again.under_load] == [(2, 0), (1, 0), (2, 1), (1, 1)]
    for before, after in zip(ROWS, again.under_load, strict=True):
        assert _step(after.latency) == pytest.approx(_step(before.latency), rel=1e-4)
    assert "under_load" not in again.details
    plain = ModelProfile("p", "measured", "int4", 2048, QUIET, 1, 1)
    assert "under_load" not in plain.to_dict()


class _Counters:
    """Scripted CPU counters: the machine's busy seconds grow by ``foreign + own`` a second."""

    def __init__(self, cpus: int, foreign_cores: float, own_cores: float):
        self.cpus, self.foreign, self.own, self.start = cpus, foreign_cores, own_cores, time.monotonic()

    def system(self) -> CpuSample:
        t = time.monotonic() - self.start
        return CpuSample(busy=(self.foreign + self.own) * t, total=self.cpus * t, steal=0.0)

    def own_seconds(self) -> float:
        return self.own * (time.monotonic() - self.start)


def test_the_load_watch_counts_other_processes_not_this_one(monkeypatch):
    monkeypatch.setattr(psutil, "cpu_count", lambda logical=True: 4)
    counters = _Counters(cpus=4, foreign_cores=1.5, own_cores=2.0)
    no_proc = LoadWatch(  # where /proc is missing: the share of CPU time others got
        window_s=0.5, interval_s=0.05, system=counters.system, own=counters.own_seconds, running=lambda: None
    )  # fmt: skip
    assert no_proc.foreign_cores() == 0.0  # nothing sampled yet: no load known
    counts = iter([3, 2, 2, 3] + [2] * 1000)
    runnable = LoadWatch(window_s=0.5, interval_s=0.05, system=counters.system, running=lambda: next(counts))
    no_proc.start(), runnable.start()
    try:
        time.sleep(0.4)
        assert no_proc.foreign_cores() == pytest.approx(1.5, abs=0.1)
        assert runnable.foreign_cores() == pytest.approx(2.0, abs=0.2)  # the window's mean
    finally:
        no_proc.stop(), runnable.stop()


def test_runnable_threads_of_other_processes_from_a_recorded_proc_tree(tmp_path):
    (tmp_path / "proc/self/task/10").mkdir(parents=True)
    (tmp_path / "proc/self/task/11").mkdir(parents=True)
    (tmp_path / "proc/stat").write_text("cpu  1 2 3 4\nprocs_running 4\nprocs_blocked 0\n")
    (tmp_path / "proc/self/task/10/stat").write_text("10 (python (x) y) R 1 1 1\n")  # a ")" in the name
    (tmp_path / "proc/self/task/11/stat").write_text("11 (onnx) S 1 1 1\n")
    assert others_running(tmp_path) == 3
    (tmp_path / "proc/stat").write_text("cpu  1 2 3 4\n")
    assert others_running(tmp_path) is None
    assert others_running(tmp_path / "nothing") is None


def _busy_loop() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def test_the_load_watch_sees_a_busy_loop_on_this_machine():
    watch = LoadWatch(window_s=1.0, interval_s=0.1).start()
    loop = _busy_loop()
    try:
        time.sleep(1.5)
        seen = watch.foreign_cores()
    finally:
        loop.kill()
        loop.wait()
        watch.stop()
    assert seen >= 0.6, f"a busy-loop process should read as about a core of other load: {seen:.2f}"


def test_the_thread_sweep_measures_every_count_under_busy_loops(converted_tiny, edgetts_home):
    copy_entry(converted_tiny("llama", "fp32"), edgetts_home)
    entry = store.get("llama-fp32")
    loaded = []

    def load_model(count: int) -> OnnxCausalLM:
        loaded.append(count)
        return OnnxCausalLM(entry.path, entry.manifest, threads=count)

    # repeats enough for windows of a few hundred ms: the kernel counts CPU time in 10 ms ticks
    plan = SweepPlan((8, 16, 32, 48), (1, 2, 4), (8, 32), repeats=40, warmup=1)
    rows = sweep_threads(load_model, cores=2, plan=plan, threads=(1, 2), levels=(1,))
    assert loaded == [1, 2]  # one session per count, kept for every load level
    assert [(r.threads, r.busy_cores) for r in rows] == [(1, 0), (2, 0), (1, 1), (2, 1)]
    for row in rows:
        assert row.load["seconds"] > 0 and _step(row.latency) > 0
    busy = [r.load["foreign_cpu"] for r in rows if r.busy_cores == 1]
    assert min(busy) > 0.2, f"a busy loop on one of the cores should read as other load: {busy}"
    assert not psutil.Process().children(), "the busy loops are stopped and reaped"


def test_profile_threads_sweep_writes_and_shows_the_rows(converted_tiny, edgetts_home, monkeypatch):
    from edgetts.profiling import threads

    copy_entry(converted_tiny("llama", "fp32"), edgetts_home)
    monkeypatch.setattr(threads, "SETTLE_S", 0.2)
    result = CliRunner().invoke(cli, ["profile", "--quick", "--models", "llama-fp32", "--threads-sweep"])
    assert result.exit_code == 0, result.output
    written = device_profile.load_for(detect().id).models["llama-fp32"]
    cores = default_threads()
    assert {(r.threads, r.busy_cores) for r in written.under_load} == {
        (t, b) for t in thread_counts(cores) for b in busy_levels(cores)
    }
    assert "decode step per thread count under busy loops" in result.stdout
    shown = CliRunner().invoke(cli, ["profile", "show"])
    assert shown.exit_code == 0 and "busy cores" in shown.stdout


class _FixedLoad:
    def __init__(self, cores: float):
        self.cores = cores

    def foreign_cores(self) -> float:
        return self.cores

    def stop(self) -> None:
        pass


def _swept_profile(tiny_service_home) -> DeviceProfile:
    """The tiny llama's measured profile with the synthetic rows above: 2 threads quiet, 1 under a
    busy core (the quiet latency is its own measurement, the rows scale it as measured here)."""
    _, profile = tiny_service_home
    model = profile.models["llama-fp32"]
    quiet = model.latency
    scaled = {
        name: LatencyModel(
            prefill=_times(quiet.prefill, factor), decode=_times(quiet.decode, factor)
        )
        for name, factor in (("slower_1", 1.6), ("slow_2", 3.0), ("fast_1", 1.3))
    }  # fmt: skip
    rows = [
        UnderLoad(2, 0, quiet, {}), UnderLoad(1, 0, scaled["slower_1"], {}),
        UnderLoad(2, 1, scaled["slow_2"], {}), UnderLoad(1, 1, scaled["fast_1"], {}),
    ]  # fmt: skip
    details = {**model.details, "measured": {**model.details.get("measured", {}), "threads": 2}}
    swept = replace(model, under_load=rows, details=details)
    return DeviceProfile(profile.device, profile.conditions, {"llama-fp32": swept})


def _times(fit, factor: float):
    from edgetts.planner.correction import _scaled

    return _scaled(fit, factor)


def test_under_load_the_engine_plans_and_runs_with_one_thread(tiny_service_home, monkeypatch):
    """With a core busy, the engine decodes with the thread count measured fastest under that
    load and predicts with that row from the first request: what a profile measured under the
    load would predict. Quiet again, it goes back to the profile's own threads."""
    from edgetts.engine import Engine

    home, _ = tiny_service_home
    monkeypatch.setenv("EDGETTS_HOME", str(home))
    profile = _swept_profile(tiny_service_home)
    row = profile.models["llama-fp32"].under_load[3]
    reference_model = replace(profile.models["llama-fp32"], latency=row.latency, under_load=[])
    reference = Engine(threads=1, profile=DeviceProfile(profile.device, profile.conditions, {
        "llama-fp32": reference_model}), eval_name="sums", correct=False)  # fmt: skip
    engine = Engine(profile=profile, eval_name="sums", correct=False)
    question = "Question: what is 4 plus 7?"
    loop = _busy_loop()
    try:
        time.sleep(0.5)
        engine.threads_now()  # starts the watch
        time.sleep(2.5)
        assert engine.other_load_cores() >= 0.6
        choice = engine.threads_now()["llama-fp32"]
        assert (choice.threads, choice.busy_cores) == (1, 1) and choice.other_load_cores > 0.5
        answer = engine.solve(question, 2.0, best_effort=True)
        assert answer.threads == 1 and answer.planned.under_load["busy_cores"] == 1
        assert answer.planned.under_load["other_load_cores"] > 0.5
        mine, candidates = engine.plan(question, 2.0, choices={"llama-fp32": choice})
        wanted, wanted_candidates = reference.plan(question, 2.0)
        assert mine.chosen.config == wanted.chosen.config
        predicted = {c.config: c.latency_s for c in wanted_candidates.candidates}
        for candidate in candidates.candidates:
            assert candidate.latency_s == pytest.approx(predicted[candidate.config], rel=1e-6)
    finally:
        loop.kill()
        loop.wait()
    engine._watch.stop()
    engine._watch = _FixedLoad(0.0)  # quiet again (a real reading may see the rest of the test run)
    try:
        again = engine.solve(question, 2.0, best_effort=True)
        assert again.threads == 2 and again.planned.under_load is None
        assert engine._thread_counts("llama-fp32") == [1, 2]  # the sessions warm() loads
    finally:
        engine.close()
        reference.close()
