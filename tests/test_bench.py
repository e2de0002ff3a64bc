"""`edgetts bench` on the tiny model: questions 0-2 calibrate it, 3-5 are benched at two targets."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner
from conftest import copy_entry, run_cli

from edgetts.cli import cli

TARGETS = "20ms,3s"  # the tiny model answers in milliseconds: 20 ms makes some runs miss


@pytest.fixture(scope="module")
def prepared(converted_tiny, tmp_path_factory):
    """A home with the tiny model calibrated on questions 0-2 of a six-question eval set and
    profiled --quick, built once and copied into each test's own home."""
    home = tmp_path_factory.mktemp("bench-home")
    copy_entry(converted_tiny("llama", "fp32"), home)
    eval_file = tmp_path_factory.mktemp("bench-eval") / "sums.jsonl"
    lines = [{"question": f"Question: what is {a} plus 7?", "answer": f"#### {a + 7}"} for a in range(6)]
    eval_file.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    done = run_cli("calibrate", "-m", "llama-fp32", "--eval", str(eval_file), "--limit", "3",
                   "--budgets", "0,4,16", "--samples", "3", "--answer-tokens", "4", home=home)  # fmt: skip
    assert done.returncode == 0, done.stderr
    profiled = run_cli("profile", "--quick", "--models", "llama-fp32", home=home)
    assert profiled.returncode == 0, profiled.stderr
    return home, eval_file


@pytest.fixture
def bench_args(prepared, edgetts_home, tmp_path):
    home, eval_file = prepared
    shutil.copytree(home, edgetts_home, dirs_exist_ok=True)
    output = tmp_path / "out"
    args = ["bench", "--eval", str(eval_file), "--from", "3", "--latency", TARGETS, "--models", "llama-fp32",
            "--output", str(output), "--json"]  # fmt: skip
    return args, output


def bench(args: list[str]):
    result = CliRunner().invoke(cli, args)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def records(output) -> list[dict]:
    lines = (output / "results.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["kind"] == "settings"
    return [json.loads(line) for line in lines[1:]]


def test_bench_numbers_are_consistent_and_a_rerun_resumes(bench_args):
    args, output = bench_args
    result = bench([*args, "--fixed", "frontier"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary == json.loads((output / "summary.json").read_text())
    assert not summary["partial"] and summary["questions"] == {"done": 3, "total": 3, "indices": [3, 4, 5]}
    fixed = summary["fixed"]
    assert fixed and len(fixed) == len(summary["settings"]["fixed"])
    assert summary["runs"]["made"] == summary["runs"]["total"] == 3 * (2 * 2 + len(fixed))
    assert [t["target_ms"] for t in summary["targets"]] == [20.0, 3000.0]
    for entry in summary["targets"]:
        target = entry["target_ms"]
        for arm in (entry["planned"], entry["greedy"]):
            assert arm["runs"] == 3 and 0.0 <= arm["hit_rate"] <= 1.0
            assert arm["p50_ms"] <= arm["p95_ms"] <= arm["p99_ms"]
            assert arm["accuracy_low"] <= arm["accuracy"] <= arm["accuracy_high"]
            assert arm["mean_tokens"] >= 0 and arm["energy_source"]
            assert arm["energy_per_query_j"] is None or arm["energy_per_query_j"] > 0
        # Greedy decodes with no reasoning cap, so it always spends tokens; a planned run at 20 ms
        # may spend none on a busy machine (its guard stops it before the first token), and then
        # it cannot have answered.
        assert entry["greedy"]["mean_tokens"] > 0
        assert entry["planned"]["mean_tokens"] > 0 or entry["planned"]["accuracy"] == 0.0
        assert entry["greedy"]["models"] == {"llama-fp32": 3}
        qualifying = [a for a in fixed if a["p99_ms"] <= target]
        assert [
            a for a in fixed if next(t for t in a["targets"] if t["target_ms"] == target)["qualifies"]
        ] == (qualifying)
        if qualifying:
            assert all(entry["oracle"]["accuracy"] >= a["accuracy"] for a in qualifying)
        else:
            assert entry["oracle"] is None and entry["checks"]["accuracy_vs_oracle"]["met"] is None
        assert entry["checks"]["p99_within_target"]["met"] == (entry["planned"]["p99_ms"] <= target)
        assert entry["gain_points"] == pytest.approx(
            100 * (entry["planned"]["accuracy"] - entry["greedy"]["accuracy"]), abs=0.01
        )
    written = records(output)
    assert len(written) == summary["runs"]["total"]
    assert {r["config"]["budget"] for r in written if r["kind"] == "greedy"} == {-1}
    assert all(r["latency_ms"] <= 3000 + 500 for r in written if r["kind"] == "fixed")  # the largest deadline
    for name in ("report.md", "summary.json", "accuracy-latency.png"):
        assert (output / name).stat().st_size > 0, name
    assert summary["files"]["plot"] == str(output / "accuracy-latency.png")
    report = (output / "report.md").read_text()
    assert "complete: 3 questions" in report and "The issue's targets" in report
    assert "0 J" not in report.replace("0 J/", "")  # energy nothing measured is never shown as 0 J

    again = json.loads(bench([*args, "--fixed", "frontier"]).stdout)
    assert again["runs"] == {"made": 0, "reused": summary["runs"]["total"], "total": summary["runs"]["total"]}
    assert len(records(output)) == len(written)

    lines = (output / "results.jsonl").read_text().splitlines(keepends=True)
    dropped = [json.loads(lines[i]) for i in (2, 5, len(lines) - 1)]
    (output / "results.jsonl").write_text(
        "".join(line for i, line in enumerate(lines) if i not in (2, 5, len(lines) - 1))
    )
    third = json.loads(bench([*args, "--fixed", "frontier"]).stdout)
    assert third["runs"]["made"] == 3
    rerun = records(output)[-3:]
    key = ("kind", "question", "target_ms", "deadline_ms")
    assert [tuple(r[k] for k in key) for r in rerun] == [tuple(r[k] for k in key) for r in dropped]


def test_every_model_answers_once_before_the_timed_runs(bench_args, monkeypatch):
    """Model loading and onnxruntime's first run are start-up costs, not a request's latency."""
    from edgetts.bench.runner import WARM_UP_QUESTION
    from edgetts.engine import Engine

    calls = []
    generate = Engine.generate

    def spy(self, question, **kwargs):
        calls.append((question, kwargs["model"]))
        return generate(self, question, **kwargs)

    monkeypatch.setattr(Engine, "generate", spy)
    args, output = bench_args
    result = bench([*args, "--fixed", "none"])
    assert result.exit_code == 0, result.output
    models = json.loads(result.stdout)["settings"]["models"]
    assert calls[: len(models)] == [(WARM_UP_QUESTION, m) for m in models]
    assert sum(q == WARM_UP_QUESTION for q, _ in calls) == len(models)
    assert all(r["kind"] in ("planned", "greedy") for r in records(output))


def test_without_fixed_configurations_there_is_no_oracle(bench_args):
    args, output = bench_args
    summary = json.loads(bench([*args, "--fixed", "none", "--limit", "1"]).stdout)
    assert summary["fixed"] == [] and summary["runs"]["total"] == 4
    for entry in summary["targets"]:
        assert entry["oracle"] is None and entry["planned_over_oracle"] is None
        assert entry["checks"]["accuracy_vs_oracle"] == {
            "met": None, "value": None, "note": "no fixed configurations were run", "paired": None,
        }  # fmt: skip


def test_bench_refuses_questions_the_calibration_used(prepared, edgetts_home, tmp_path):
    home, eval_file = prepared
    shutil.copytree(home, edgetts_home, dirs_exist_ok=True)
    args = ["--from", "1", "--latency", TARGETS, "--models", "llama-fp32", "--output", str(tmp_path / "out")]
    result = run_cli("bench", "--eval", str(eval_file), *args, home=edgetts_home)
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert "2 questions (1–2)" in result.stderr and "--from 3" in result.stderr
    assert not (tmp_path / "out").exists()


def test_interrupted_bench_writes_a_partial_report_and_resumes(bench_args, monkeypatch):
    from edgetts.engine import Engine

    args, output = bench_args
    args = [*args, "--fixed", "none"]
    solve = Engine.solve
    calls = {"count": 0}

    def interrupted_solve(self, *a, **k):
        calls["count"] += 1
        if calls["count"] == 3:  # the first planned run of the second question
            raise KeyboardInterrupt
        return solve(self, *a, **k)

    monkeypatch.setattr(Engine, "solve", interrupted_solve)
    result = bench(args)
    assert result.exit_code == 130
    assert "the report covers 1 of 3 questions" in result.stderr
    summary = json.loads((output / "summary.json").read_text())
    assert summary["partial"] and summary["interrupted"] and summary["questions"]["done"] == 1
    assert summary["runs"]["made"] == 4 and len(records(output)) == 4
    assert all(e["planned"]["runs"] == 1 for e in summary["targets"])
    assert "PARTIAL: 1 of 3 questions" in (output / "report.md").read_text()

    monkeypatch.setattr(Engine, "solve", solve)
    finished = json.loads(bench(args).stdout)
    assert finished["runs"] == {"made": 8, "reused": 4, "total": 12} and not finished["partial"]


def test_a_torn_last_line_is_dropped_and_other_settings_are_refused(tmp_path):
    from edgetts.bench.records import ResultLog
    from edgetts.errors import EdgeTTSError

    path = tmp_path / "results.jsonl"
    log = ResultLog(path, {"eval": "sums", "seed": 0})
    record = {"kind": "planned", "question": 3, "target_ms": 20.0, "deadline_ms": 20.0, "config": {}}
    log.append(record)
    with path.open("a") as handle:
        handle.write('{"kind": "gre')  # a kill mid-write
    again = ResultLog(path, {"eval": "sums", "seed": 0})
    assert list(again.records.values()) == [record]
    assert path.read_text().endswith("}\n")
    with pytest.raises(EdgeTTSError, match="other settings .*seed: 0 there, 1 now"):
        ResultLog(path, {"eval": "sums", "seed": 1})


@pytest.mark.parametrize(
    ("only_first", "only_second", "p_value"),
    [(0, 0, 1.0), (1, 1, 1.0), (0, 5, 0.0625), (2, 8, 0.1094), (9, 1, 0.0215), (0, 20, 0.0)],
)
def test_paired_counts_discordant_questions_and_gives_the_exact_mcnemar_p(only_first, only_second, p_value):
    from edgetts.bench.stats import paired

    # 3 questions both got right and 4 both missed never change the test; the last question, right
    # but run by ``second`` only, is not compared.
    differ = only_first + only_second
    first = [{"question": q, "correct": q < only_first + 3} for q in range(differ + 7)]
    second = [
        {"question": q, "correct": q < 3 or only_first + 3 <= q < differ + 3 or q == differ + 7}
        for q in range(differ + 8)
    ]
    result = paired(first, second)
    assert (result["only_first"], result["only_second"]) == (only_first, only_second)
    assert result["p_value"] == pytest.approx(p_value, abs=1e-4)


def test_summary_oracle_ratios_and_checks_on_known_records():
    from edgetts.bench.records import record_key
    from edgetts.bench.report import check_rows, markdown, target_rows
    from edgetts.bench.runner import plan_runs
    from edgetts.bench.summary import bench_summary
    from edgetts.evals import Problem
    from edgetts.planner.scheduler import Config

    fast, slow, middle = (Config("m", "int4", b, n) for b, n in ((0, 1), (64, 4), (16, 2)))
    problems = [Problem(i, f"q{i}", "1") for i in range(4)]
    runs = plan_runs(problems, [100.0, 1000.0], [fast, slow, middle])
    outcomes = {  # (kind, target or config budget) -> (latencies, which questions are right)
        ("planned", 100.0): ([40, 60, 80, 120], {0, 1}),
        ("planned", 1000.0): ([300, 400, 500, 600], {0, 1, 2}),
        ("greedy", 100.0): ([90, 90, 90, 90], {0}),
        ("greedy", 1000.0): ([900, 900, 900, 900], {0, 1, 2}),
        ("fixed", 0): ([50, 50, 50, 50], {0, 1}),
        ("fixed", 64): ([700, 750, 800, 800], {0, 1, 2, 3}),
        ("fixed", 16): ([500, 500, 500, 500], {0}),
    }
    records = {}
    for run in runs:
        config = run.config or Config("m", "int4", -1 if run.kind == "greedy" else 16, 1)
        latencies, right = outcomes[(run.kind, run.target_ms if run.config is None else config.budget)]
        record = {
            "kind": run.kind, "question": run.question, "target_ms": run.target_ms,
            "deadline_ms": run.deadline_ms, "config": vars(config), "correct": run.question in right,
            "latency_ms": latencies[run.question], "tokens": 10, "energy_j": None,
            "energy_source": "unavailable", "best_effort": False, "predicted_accuracy": 0.5,
        }  # fmt: skip
        records[record_key(record)] = record
    settings = {"eval": "e", "device": "d", "date": "now", "edgetts": "0", "eval_path": "e.jsonl", "from": 0,
                "models": ["m"], "seed": 0, "threads": 1, "targets_ms": [100.0, 1000.0], "fixed_mode": "all",
                "fixed": []}  # fmt: skip
    summary = bench_summary(records, runs, [100.0, 1000.0], {100.0: False, 1000.0: True}, settings)
    tight, loose = summary["targets"]
    assert tight["planned"]["hit_rate"] == 0.75 and tight["planned"]["accuracy"] == 0.5
    assert tight["oracle"]["config"]["budget"] == 0 and tight["planned_over_oracle"] == 1.0
    assert loose["oracle"]["config"]["budget"] == 64 and loose["planned_over_oracle"] == 0.75
    assert tight["gain_points"] == 25.0 and loose["gain_points"] == 0.0
    assert {k: c["met"] for k, c in tight["checks"].items()} == {
        "p99_within_target": False, "accuracy_vs_oracle": True, "gain_over_greedy": None,
    }  # fmt: skip
    assert {k: c["met"] for k, c in loose["checks"].items()} == {
        "p99_within_target": True, "accuracy_vs_oracle": False, "gain_over_greedy": False,
    }  # fmt: skip
    # Question by question: at 1 s only the oracle got question 3 right; at 100 ms only the planner
    # got question 1 right against (a); one discordant question is a fair coin's p = 1.
    assert loose["checks"]["accuracy_vs_oracle"]["paired"] == {
        "only_first": 0,
        "only_second": 1,
        "p_value": 1.0,
    }
    assert tight["checks"]["gain_over_greedy"]["paired"] == {
        "only_first": 1,
        "only_second": 0,
        "p_value": 1.0,
    }
    assert tight["checks"]["p99_within_target"]["paired"] is None
    assert "right only planned 0, only oracle 1: McNemar p = 1.00" in check_rows(summary)[1][2]
    assert [[t["qualifies"] for t in arm["targets"]] for arm in summary["fixed"]] == [
        [True, True], [False, True], [False, True],
    ]  # fmt: skip
    rows = target_rows(summary)
    assert rows[0][7:9] == ["unavailable", "unavailable"]  # no meter: never 0 J
    assert check_rows(summary)[0][3].startswith("n/a: no reasoning configuration")
    assert "0 J" not in markdown(summary, "no plot")
    assert tight["planned"]["by_type"] is None and "per answer type" not in markdown(summary, "no plot")
    for record in records.values():  # questions 0 and 1 ask yes/no, 2 and 3 numbers
        record["type"] = "yesno" if record["question"] < 2 else "number"
    typed = bench_summary(records, runs, [100.0, 1000.0], {100.0: False, 1000.0: True}, settings)
    assert typed["targets"][1]["planned"]["by_type"] == {
        "number": {"runs": 2, "accuracy": 0.5}, "yesno": {"runs": 2, "accuracy": 1.0},
    }  # fmt: skip
    assert "| 1 s | planned | number 50% (2), yesno 100% (2) |" in markdown(typed, "no plot")

    del records[record_key(next(r for r in records.values() if r["question"] == 3))]
    partial = bench_summary(records, runs, [100.0, 1000.0], {100.0: False, 1000.0: True}, settings)
    assert partial["partial"] and partial["questions"]["done"] == 3
    assert partial["targets"][0]["planned"]["runs"] == 3 and partial["fixed"][0]["runs"] == 3
    assert "PARTIAL: 3 of 4 questions" in markdown(partial, "no plot")


def test_bench_in_program_mode_plans_and_runs_programs_only(bench_args, edgetts_home):
    """--mode program: the planner may only write programs, and the fixed configurations it
    surveyed run as programs too (their mode is part of what a record is)."""
    pytest.importorskip("asteval")
    args, output = bench_args
    eval_file = args[args.index("--eval") + 1]
    made = run_cli("calibrate", "-m", "llama-fp32", "--eval", eval_file, "--limit", "3", "--mode", "program",
                   "--budgets", "4,16", "--samples", "3", "--answer-tokens", "4",
                   home=edgetts_home)  # fmt: skip
    assert made.returncode == 0, made.stderr
    summary = json.loads(bench([*args, "--mode", "program", "--limit", "1"]).stdout)
    assert summary["settings"]["modes"] == ["program"] and summary["fixed"]
    assert all("program of" in label for label in summary["settings"]["fixed"])
    found = records(output)
    assert {r["config"]["mode"] for r in found if r["kind"] in ("planned", "fixed")} == {"program"}
    # A log made in another mode is refused rather than mixed with this one.
    refused = run_cli(*args, "--mode", "steps", "--limit", "1", home=edgetts_home)
    assert refused.returncode == 1 and "other settings" in refused.stderr


def test_bench_refuses_questions_a_program_calibration_used(prepared, edgetts_home, tmp_path):
    pytest.importorskip("asteval")
    home, eval_file = prepared
    shutil.copytree(home, edgetts_home, dirs_exist_ok=True)
    made = run_cli("calibrate", "-m", "llama-fp32", "--eval", str(eval_file), "--from", "3", "--limit", "1",
                   "--mode", "program", "--budgets", "4", "--samples", "2", "--answer-tokens", "4",
                   home=edgetts_home)  # fmt: skip
    assert made.returncode == 0, made.stderr
    args = ["--from", "3", "--latency", TARGETS, "--models", "llama-fp32", "--output", str(tmp_path / "out")]
    result = run_cli("bench", "--eval", str(eval_file), *args, home=edgetts_home)
    assert result.returncode == 1 and "1 question (3–3)" in result.stderr and "--from 4" in result.stderr
