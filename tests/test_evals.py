"""Eval records with answer types: the type comes from the record or the documented rule, the
stated answer is normalised as a sample's answer is, and a record its type cannot hold is a
one-line error — in the loader and on the command line."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli

from edgetts import evals
from edgetts.calibration import tables
from edgetts.calibration.tables import MIN_TYPE_QUESTIONS, Calibration
from edgetts.errors import EdgeTTSError

SCHEMA = {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"]}


def _write(tmp_path, records, name="mine.jsonl"):
    path = tmp_path / name
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return str(path)


def test_records_are_typed_by_their_field_or_by_the_rule(tmp_path):
    path = _write(tmp_path, [
        {"question": "How far is it?", "answer": "#### 1,200"},
        {"question": "Is the door open?", "answer": "Yes."},
        {"question": "Which gripper? A) vacuum B) soft fingers", "answer": "(b)"},
        {"question": "Which gripper?", "answer": "soft fingers", "choices": ["vacuum", "soft fingers"]},
        {"question": "Name the next waypoint.", "answer": "The Loading Bay."},
        {"question": "Where next?", "answer": "dock", "type": "text"},
        {"question": "Is it 3?", "answer": 3, "type": "number"},
        {"question": "Where?", "answer": {"x": 2, "y": 1}, "type": "json", "schema": SCHEMA},
        {"question": "Go?", "answer": True, "type": "yesno"},
    ])  # fmt: skip
    problems = evals.load(path)
    assert [(p.kind, p.reference) for p in problems] == [
        ("number", "1200"),
        ("yesno", "yes"),
        ("choice", "B"),
        ("choice", "B"),
        ("text", "loading bay"),
        ("text", "dock"),
        ("number", "3"),
        ("json", '{"x":2,"y":1}'),
        ("yesno", "yes"),
    ]
    assert problems[2].answer_type.choices == ("vacuum", "soft fingers")


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"question": "Go?", "answer": "maybe", "type": "yesno"}, "'maybe' is not yes or no"),
        ({"question": "How many?", "answer": "lots", "type": "number"}, "'lots' is not a number"),
        ({"question": "Which?", "answer": "C", "choices": ["a", "b"]}, "not one of the letters A, B"),
        ({"question": "Which?", "answer": "A", "type": "choice"}, "a choice answer needs options"),
        ({"question": "Which?", "answer": "A", "choices": ["a", "a"]}, "options are duplicated"),
        ({"question": "Which?", "answer": "A", "choices": []}, "a choice needs 2 to 10 options"),
        ({"question": "Q?", "answer": "x", "type": "colour"}, "unknown answer type 'colour'"),
        ({"question": "Q?", "answer": {"x": 1}, "type": "json"}, "needs a JSON Schema"),
        (
            {"question": "Q?", "answer": "{}", "type": "json", "schema": {"type": "nonsense"}},
            "not a valid JSON Schema",
        ),
        ({"question": "Q?", "answer": "[1]", "type": "json", "schema": SCHEMA}, "is not a JSON object"),
        ({"question": "Q?", "answer": " ".join(["word"] * 20), "type": "text"}, "1 to 12 words"),
        ({"question": "Q?"}, "not a JSON object with 'question' and 'answer'"),
        ({"question": "Q?", "answer": "a", "choices": "a b"}, "'choices' must be a list"),
    ],
)
def test_a_record_its_type_cannot_hold_is_a_one_line_error(tmp_path, record, message):
    if "schema" in record and record["schema"].get("type") == "nonsense":
        pytest.importorskip("llguidance")
    good = {"question": "Q?", "answer": "1"}
    path = _write(tmp_path, [good, record])
    with pytest.raises(EdgeTTSError, match=message) as caught:
        evals.load(path)
    assert "mine.jsonl:2" in str(caught.value) and "\n" not in str(caught.value)


def test_the_cli_reports_a_bad_record_in_one_line(tmp_path, edgetts_home):
    path = _write(tmp_path, [{"question": "Go?", "answer": "perhaps", "type": "yesno"}])
    for command in (
        ["calibrate", "-m", "llama-fp32", "--eval", path],
        ["bench", "--eval", path, "--from", "0", "--latency", "1s"],
    ):
        result = run_cli(*command, home=edgetts_home)
        assert result.returncode != 0
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "mine.jsonl:1" in lines[0] and "Traceback" not in result.stderr, (
            result.stderr
        )


def _result(index: int, kind: str, right: bool) -> dict:
    answer = "yes" if right else "no"
    return {
        "index": index,
        "type": kind,
        "reference": "yes",
        "sampled": [[answer, answer]],
        "greedy": [answer, answer],
    }


def test_tables_per_type_and_what_the_planner_uses():
    yesno = [_result(i, "yesno", True) for i in range(MIN_TYPE_QUESTIONS)]
    text = [_result(100 + i, "text", False) for i in range(MIN_TYPE_QUESTIONS - 1)]
    calibration = Calibration("m", "mine", {"budgets": [0, 8], "samples": 1}, results=yesno + text)
    assert calibration.kinds() == {"yesno": MIN_TYPE_QUESTIONS, "text": MIN_TYPE_QUESTIONS - 1}
    assert calibration.table("yesno").at(0, 1) == 1.0 and calibration.table("text").at(0, 1) == 0.0
    assert calibration.table_for("yesno").at(8, 2) == 1.0  # enough yes/no questions: their own table
    overall = calibration.table().at(0, 1)
    assert 0 < overall < 1 and calibration.table_for("text").at(0, 1) == overall  # too few: the whole set's
    assert calibration.table_for("number").at(0, 1) == overall
    saved = calibration.to_dict()
    assert (
        set(saved["by_type"]) == {"yesno", "text"}
        and saved["by_type"]["yesno"]["questions"] == MIN_TYPE_QUESTIONS
    )
    old = Calibration("m", "gsm8k", {"budgets": [0, 8], "samples": 1}, results=[{**_result(0, "x", True)}])
    del old.results[0]["type"]
    assert old.kinds() == {"number": 1} and not old.constrained and old.to_dict()["by_type"] is None


def test_numbers_are_constrained_as_their_table_was_calibrated(tmp_path, edgetts_home, monkeypatch):
    from edgetts.planner import candidates

    for kind in ("yesno", "choice", "text", "json"):
        assert candidates.constrained("no-such-model", "mine", kind)
    assert candidates.constrained("no-such-model", "mine", "number")  # no table: constrained
    calibration = Calibration("m", "mine", {"budgets": [0, 8], "samples": 1, "constrained": False})
    calibration.results = [_result(0, "number", True)]
    calibration.save()
    candidates.calibration.cache_clear()
    assert not candidates.constrained("m", "mine", "number")
    calibration.settings["constrained"] = True
    calibration.save()
    assert tables.load("m", "mine").constrained
    assert candidates.constrained("m", "mine", "number")


def test_the_default_type_is_number_only_for_a_set_of_numbers(edgetts_home):
    from edgetts.planner import candidates

    assert candidates.default_kind(["m"], "none-yet") == "number"
    numbers = Calibration(
        "m", "sums", {"budgets": [0, 8], "samples": 1}, results=[_result(0, "number", True)]
    )
    numbers.save()
    mixed = Calibration("m", "robot", {"budgets": [0, 8], "samples": 1}, results=[_result(0, "number", True)])
    mixed.results.append(_result(1, "yesno", True))
    mixed.save()
    candidates.calibration.cache_clear()
    assert candidates.default_kind(["m"], "sums") == "number"
    assert candidates.default_kind(["m", "other"], "robot") == "text"
