"""End to end on the tiny model: `run` profiles on first use, plans from the profile and the
calibration, answers under the deadline, and refuses targets nothing can meet."""

from __future__ import annotations

import json
import time

import pytest
from conftest import copy_entry, run_cli

from edgetts.profiling.device import detect
from edgetts.profiling.energy import meter_for

QUESTION = "Question: what is 12 plus 7?"


@pytest.fixture
def calibrated_tiny(converted_tiny, edgetts_home, tmp_path):
    copy_entry(converted_tiny("llama", "fp32"), edgetts_home)
    eval_file = tmp_path / "sums.jsonl"
    lines = [{"question": f"Question: what is {a} plus 7?", "answer": f"#### {a + 7}"} for a in range(3)]
    eval_file.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    done = run_cli("calibrate", "-m", "llama-fp32", "--eval", str(eval_file), "--budgets", "0,4,16",
                   "--samples", "3", "--answer-tokens", "4", "--json", home=edgetts_home)  # fmt: skip
    assert done.returncode == 0, done.stderr
    table = json.loads(done.stdout)
    assert table["budgets"] == [0, 4, 16] and table["samples"] == [1, 2, 3, 4] and table["questions"] == 3
    return edgetts_home


def test_run_profiles_first_then_answers_within_the_target(calibrated_tiny, tmp_path):
    home = calibrated_tiny
    result = run_cli(
        "run", QUESTION, "--latency", "20s", "--models", "llama-fp32", "--eval", "sums", "--json", home=home
    )
    assert "running `edgetts profile --quick`" in result.stderr
    assert list((home / "profiles").glob("*.yaml")), "the quick profile should have been written"
    answer = json.loads(result.stdout)
    # The tiny model's weights are random: when no sample reads as a number, the JSON still
    # comes and the command fails visibly (exit 1, one line), never a silent null with exit 0.
    if answer["answer"] is None:
        assert result.returncode == 1 and "error: no sample gave a readable answer" in result.stderr
    else:
        assert result.returncode == 0, result.stderr
    assert answer["startup_ms"] > 0 and answer["deadline_ms"] == 20_000 and answer["on_time"] is True
    assert answer["config"]["model"] == "llama-fp32" and answer["config"]["budget"] in (0, 4, 16)
    assert 1 <= answer["config"]["samples"] <= 4  # the table's N: greedy + up to K = 3 sampled
    assert answer["latency_ms"] <= 20_000 and answer["predicted_ms"] <= 20_000
    # The accuracy predicted is the calibration's for the configuration chosen, and the energy
    # was read with the meter this machine has (what `edgetts devices` shows).
    table = json.loads((home / "calibration" / "llama-fp32.sums.json").read_text())["table"]
    row, column = (
        table["budgets"].index(answer["config"]["budget"]),
        table["samples"].index(answer["config"]["samples"]),
    )
    assert answer["predicted_accuracy"] == round(table["mean"][row][column], 4)
    assert answer["energy_source"] == meter_for(detect()).source
    assert {"answer", "votes", "tokens", "forced_by", "prefill_ms", "decode_ms"} <= set(answer)

    # --eval takes the file it was calibrated on as well as its name, as calibrate and bench do.
    again = run_cli(
        "run", QUESTION, "--latency", "20s", "--models", "llama-fp32", "--eval", str(tmp_path / "sums.jsonl"),
        home=home,
    )  # fmt: skip
    assert again.returncode == result.returncode, again.stderr
    assert "profile --quick" not in again.stderr  # profiled once, reused
    assert "of 20 s; start-up " in again.stderr and " not counted" in again.stderr


def test_plan_shows_the_frontier_and_impossible_targets_fail_cleanly(calibrated_tiny):
    home = calibrated_tiny
    assert run_cli("profile", "--quick", "--models", "llama-fp32", home=home).returncode == 0
    planned = run_cli("plan", "--latency", "20s", "--eval", "sums", "--json", home=home)
    assert planned.returncode == 0, planned.stderr
    data = json.loads(planned.stdout)
    latencies = [c["predicted_ms"] for c in data["frontier"]]
    assert latencies == sorted(latencies)
    accuracies = [c["accuracy"] for c in data["frontier"]]
    assert accuracies == sorted(accuracies), "a frontier gains accuracy as it spends latency"
    assert data["chosen"]["predicted_ms"] <= 20_000

    impossible = run_cli(
        "run", QUESTION, "--latency", "1ms", "--models", "llama-fp32", "--eval", "sums", home=home
    )
    assert impossible.returncode != 0
    assert "fastest achievable is" in impossible.stderr and "Traceback" not in impossible.stderr
    # one error line (and a warning line where the busy machine made the profile a busy one)
    lines = impossible.stderr.strip().splitlines()
    assert len([line for line in lines if not line.startswith("warning:")]) == 1, impossible.stderr
    flags = ["--best-effort", "--models", "llama-fp32", "--eval", "sums", "--json"]
    best = run_cli("run", QUESTION, "--latency", "1ms", *flags, home=home)
    late = json.loads(best.stdout)
    # Best effort runs the fastest configuration, which thinks for no tokens: nothing is forced by
    # the budget; the guard cuts the answer at the deadline unless it ended by itself first.
    assert late["config"]["budget"] == 0 and late["on_time"] is False
    assert late["forced_by"] in ("deadline", "none"), late
    # Best effort accepts a late answer, not a missing one.
    assert best.returncode == (1 if late["answer"] is None else 0), best.stderr


def test_engine_solve_is_thread_safe(calibrated_tiny):
    from concurrent.futures import ThreadPoolExecutor

    from edgetts import store
    from edgetts.engine import Engine
    from edgetts.profiling.device_profile import DeviceProfile
    from edgetts.profiling.profiler import profile_entry
    from edgetts.profiling.sweep import QUICK

    model = profile_entry(store.get("llama-fp32"), QUICK)
    profile = DeviceProfile({"id": "here"}, {"source": "measured"}, {"llama-fp32": model})
    engine = Engine(threads=1, profile=profile, eval_name="sums")
    alone = engine.solve(QUESTION, latency=30.0)
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda _: engine.solve(QUESTION, latency=30.0), range(4)))
    for answer in together:
        assert answer.config == alone.config and answer.threads == alone.threads
        assert answer.samples == alone.samples and answer.text == alone.text


def test_plan_for_the_published_orin_profile(edgetts_home, tmp_path):
    """No model runs: the published profile and the published (budget 0) MMLU accuracies."""
    flags = ["--device", "jetson-agx-orin-64gb", "--eval", "mmlu", "--json"]
    roomy = run_cli(
        "plan", "--latency", "5s", *flags, "--plot", str(tmp_path / "pareto.png"), home=edgetts_home
    )
    assert roomy.returncode == 0, roomy.stderr
    data = json.loads(roomy.stdout)
    assert data["device"] == "jetson-agx-orin-64gb"
    assert data["chosen"]["config"]["model"] == "deepseek-r1-distill-qwen-14b-fp16"  # 27.6 GiB fits 64 GB
    assert [c["config"]["model"] for c in data["frontier"]][0] == "deepseek-r1-distill-qwen-1.5b-fp16"
    if (tmp_path / "pareto.png").exists():  # matplotlib is an optional extra
        assert (tmp_path / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    tight = run_cli("plan", "--latency", "1s", *flags, home=edgetts_home)
    assert json.loads(tight.stdout)["chosen"]["config"]["model"] == "deepseek-r1-distill-qwen-1.5b-fp16"
    impossible = run_cli("plan", "--latency", "300ms", *flags, home=edgetts_home)
    assert impossible.returncode == 1
    assert "fastest achievable is 489 ms (deepseek-r1-distill-qwen-1.5b-fp16" in impossible.stderr


def test_solve_gives_the_guard_what_planning_left_of_the_target(calibrated_tiny, monkeypatch):
    """The caller's clock starts before planning: a slow plan shortens the generation's deadline."""
    from edgetts import store
    from edgetts.engine import Engine
    from edgetts.profiling.device_profile import DeviceProfile
    from edgetts.profiling.profiler import profile_entry
    from edgetts.profiling.sweep import QUICK

    model = profile_entry(store.get("llama-fp32"), QUICK)
    profile = DeviceProfile({"id": "here"}, {"source": "measured"}, {"llama-fp32": model})
    engine = Engine(threads=1, profile=profile, eval_name="sums")
    plan, generate = Engine.plan, Engine.generate
    deadlines = []

    def slow_plan(self, *args, **kwargs):
        time.sleep(0.2)
        return plan(self, *args, **kwargs)

    def spy(self, question, **kwargs):
        deadlines.append(kwargs["deadline"])
        return generate(self, question, **kwargs)

    monkeypatch.setattr(Engine, "plan", slow_plan)
    monkeypatch.setattr(Engine, "generate", spy)
    engine.solve(QUESTION, latency=30.0)
    assert deadlines and deadlines[0] <= 30.0 - 0.2


def test_a_typed_eval_set_calibrates_per_type_and_runs_always_read(converted_tiny, edgetts_home, tmp_path):
    """calibrate, plan and run on the user's own typed eval file (by path): yes/no and choice
    answers are decoded under their grammar, so even the tiny model's random weights give a
    readable answer and the command succeeds."""
    pytest.importorskip("llguidance")
    copy_entry(converted_tiny("llama", "fp32"), edgetts_home)
    eval_file = tmp_path / "robot.jsonl"
    records = [{"question": f"Is {a} more than 2?", "answer": "yes" if a > 2 else "no"} for a in range(4)]
    records += [{"question": "Which tool?", "answer": "B", "choices": ["hammer", "wrench"]}] * 2
    eval_file.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    done = run_cli("calibrate", "-m", "llama-fp32", "--eval", str(eval_file), "--budgets", "0,4",
                   "--samples", "2", "--answer-tokens", "4", "--json", home=edgetts_home)  # fmt: skip
    assert done.returncode == 0, done.stderr
    table = json.loads(done.stdout)
    assert table["questions"] == 6 and set(table["by_type"]) == {"yesno", "choice"}
    assert table["by_type"]["yesno"]["questions"] == 4
    saved = json.loads((edgetts_home / "calibration" / "llama-fp32.robot.json").read_text())
    assert saved["settings"]["constrained"] is True
    for result in saved["results"]:  # constrained answers always read
        assert all(a is not None for row in result["sampled"] for a in row) and None not in result["greedy"]
    assert run_cli("profile", "--quick", "--models", "llama-fp32", home=edgetts_home).returncode == 0
    planned = run_cli("plan", "--latency", "20s", "--eval", str(eval_file), "--question", "Is 5 more than 2?",
                      "--json", home=edgetts_home)  # fmt: skip
    assert planned.returncode == 0, planned.stderr
    for question, allowed in (
        ("Is 7 more than 2?", {"yes", "no"}),
        ("Which tool? A) hammer B) wrench", {"A", "B"}),
    ):
        flags = ["--latency", "20s", "--models", "llama-fp32", "--eval", str(eval_file), "--json"]
        result = run_cli("run", question, *flags, home=edgetts_home)
        assert result.returncode == 0, result.stderr
        answer = json.loads(result.stdout)
        assert answer["answer"] in allowed and answer["on_time"] is True
