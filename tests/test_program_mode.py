"""Program-aided answers end to end on the tiny model: calibrated into their own table, planned
where that table wins, run through the safe evaluator, and refused clearly where they cannot
apply (a yes/no question, budget 0)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import copy_entry, run_cli

pytest.importorskip("asteval")

QUESTION = "Question: what is 12 plus 7?"


def _published(mode: str, accuracy: float) -> None:
    """A published table for the tiny model on "ramp" in ``mode``: flat at ``accuracy`` past
    budget 0, so that which mode a plan picks is decided by the tables alone."""
    from edgetts.calibration.accuracy import AccuracyTable
    from edgetts.calibration.tables import Calibration

    budgets = [0, 4, 16] if mode == "steps" else [4, 16]
    mean = np.full((len(budgets), 3), accuracy)
    if mode == "steps":
        mean[0] = 0.05  # the direct answer
    table = AccuracyTable(budgets, [1, 2, 3], mean, mean, mean, questions=100)
    settings = {"budgets": budgets, "samples": 2, **({"mode": mode} if mode != "steps" else {})}
    Calibration("llama-fp32", "ramp", settings, published=table).save()


def test_the_planner_runs_programs_where_their_table_wins(tiny_service_home, monkeypatch):
    from edgetts.engine import Engine

    home, profile = tiny_service_home
    monkeypatch.setenv("EDGETTS_HOME", str(home))
    _published("steps", 0.20)
    _published("program", 0.30)
    engine = Engine(threads=1, profile=profile, eval_name="ramp")
    try:
        chosen = engine.plan(QUESTION, 30.0)[0].chosen.config
        assert chosen.mode == "program" and chosen.reasoning == "program" and chosen.budget > 0
        assert "program of" in chosen.describe()
        steps_only = engine.plan(QUESTION, 30.0, modes=["steps"])[0].chosen.config
        assert steps_only.mode == "steps" and steps_only.budget > 0
        assert engine.plan(QUESTION, 30.0, modes=["direct"])[0].chosen.config.budget == 0
        yes_no = engine.plan("Is the gripper open?", 30.0, answer_type=engine.answer_type_of("Is it open?"))
        assert yes_no[0].chosen.config.mode == "steps", "a program computes numbers only"
        answer = engine.solve(QUESTION, 30.0, best_effort=True)
        assert answer.config.mode == "program" and answer.on_time
        assert len(answer.samples) == answer.config.samples
        _published("program", 0.10)  # the table says programs lose: the plan goes back to steps
        from edgetts.planner import candidates

        candidates.calibration.cache_clear()
        candidates.accuracy_table.cache_clear()
        assert engine.plan(QUESTION, 30.0)[0].chosen.config.mode == "steps"
    finally:
        engine.close()


def test_calibrate_plan_and_generate_in_program_mode_from_the_cli(converted_tiny, edgetts_home, tmp_path):
    copy_entry(converted_tiny("llama", "fp32"), edgetts_home)
    eval_file = tmp_path / "mixed.jsonl"
    lines = [
        {"question": "Question: what is 3 plus 7?", "answer": "10"},
        {"question": "Question: what is 5 plus 7?", "answer": "12"},
        {"question": "Is the bay free?", "answer": "yes", "type": "yesno"},
    ]
    eval_file.write_text("".join(json.dumps(line) + "\n" for line in lines))
    done = run_cli("calibrate", "-m", "llama-fp32", "--eval", str(eval_file), "--mode", "program",
                   "--budgets", "0,4,8", "--samples", "2", "--answer-tokens", "4", "--json",
                   home=edgetts_home)  # fmt: skip
    assert done.returncode == 0, done.stderr
    table = json.loads(done.stdout)
    assert table["budgets"] == [4, 8] and table["questions"] == 2  # no budget 0, numbers only
    saved = json.loads((edgetts_home / "calibration" / "llama-fp32.mixed.program.json").read_text())
    assert saved["settings"]["mode"] == "program" and len(saved["results"]) == 2
    steps = run_cli("calibrate", "-m", "llama-fp32", "--eval", str(eval_file), "--budgets", "0,4",
                    "--samples", "2", "--answer-tokens", "4", home=edgetts_home)  # fmt: skip
    assert steps.returncode == 0, steps.stderr
    profiled = run_cli("profile", "--models", "llama-fp32", "--quick", "--threads", "1", home=edgetts_home)
    assert profiled.returncode == 0, profiled.stderr
    planned = run_cli("plan", "--latency", "30s", "--eval", "mixed", "--mode", "program", "--json",
                      "--answer-type", "number", "--question", QUESTION, home=edgetts_home)  # fmt: skip
    assert planned.returncode == 0, planned.stderr
    body = json.loads(planned.stdout)
    assert body["chosen"]["reasoning"] == "program" and body["chosen"]["config"]["mode"] == "program"
    assert {row["reasoning"] for row in body["frontier"]} == {"program"}
    before = run_cli("plan", "--latency", "30s", "--eval", "mixed", "--mode", "direct,steps", "--json",
                     "--answer-type", "number", "--question", QUESTION, home=edgetts_home)  # fmt: skip
    assert before.returncode == 0, before.stderr  # as before program mode existed
    assert {row["reasoning"] for row in json.loads(before.stdout)["frontier"]} <= {"direct", "steps"}
    bad = run_cli("plan", "--latency", "30s", "--mode", "steps,code", home=edgetts_home)
    assert bad.returncode == 2 and "comma list of direct, steps, program" in bad.stderr
    assert "Traceback" not in bad.stderr
    generated = run_cli("generate", QUESTION, "-m", "llama-fp32", "--mode", "program", "--budget", "8",
                        "--json", home=edgetts_home)  # fmt: skip
    assert generated.returncode == 0, generated.stderr
    assert json.loads(generated.stdout)["config"]["mode"] == "program"
    refused = run_cli("generate", "Is the bay free?", "-m", "llama-fp32", "--mode", "program",
                      home=edgetts_home)  # fmt: skip
    assert refused.returncode == 1 and "program mode answers numbers" in refused.stderr
    assert "Traceback" not in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    direct = run_cli("generate", QUESTION, "-m", "llama-fp32", "--mode", "program", "--budget", "0",
                     home=edgetts_home)  # fmt: skip
    assert direct.returncode == 1 and "needs a budget" in direct.stderr
