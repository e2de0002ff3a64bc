"""Eval sets: JSONL files of ``{"question", "answer", "type"?, "choices"?, "schema"?}``, and the
named sets ``gsm8k`` and ``robotics``.

A record's ``type`` (number, yesno, choice, text, json) says what answer it wants; without one,
a numeric answer (or GSM8K's ``… #### 72``) makes it a number and otherwise the question decides
(tts/answer_types.py's rule, with text as the default). The stated answer is normalised as a
sample's answer is (the vote key: "yes", an option's letter, the number, the lower-cased
phrase, the canonical JSON document), and one that its type cannot hold is a one-line error.

GSM8K itself is not shipped (licence and size): ``--eval gsm8k`` reads ``$EDGETTS_GSM8K``, then
``$EDGETTS_HOME/data/gsm8k/test.jsonl`` (the product looks nowhere else: a development
checkout's copy is passed in with EDGETTS_GSM8K, as the tests do). ``--eval robotics`` is made
by edgetts/evals/robotics.py, a seeded generator, and needs no file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from .. import paths
from ..errors import EdgeTTSError
from ..tts.answer_types import NUMBER, AnswerType, canonical_schema, infer, number_reference
from ..tts.answer_types import resolve as resolve_type

GSM8K_URL = "https://github.com/openai/grade-school-math (grade_school_math/data/test.jsonl)"
NAMED = ("gsm8k", "robotics")


@dataclass(frozen=True)
class Problem:
    index: int  # line number in the file (the question's number in a named set), 0-based: splits use it
    question: str
    reference: str  # normalised answer
    answer_type: AnswerType = NUMBER
    tags: dict = field(default_factory=dict, compare=False)  # the robotics set's family and difficulty

    @property
    def kind(self) -> str:
        return self.answer_type.kind


def gsm8k_path() -> Path:
    candidates = [
        Path(os.environ["EDGETTS_GSM8K"]) if os.environ.get("EDGETTS_GSM8K") else None,
        paths.home() / "data" / "gsm8k" / "test.jsonl",
    ]
    for candidate in candidates:
        if candidate is not None and candidate.is_file():
            return candidate
    raise EdgeTTSError(
        f"GSM8K is not on this machine; download test.jsonl from {GSM8K_URL} and pass --eval FILE "
        "(or set EDGETTS_GSM8K)"
    )


def name_of(name_or_path: str) -> str:
    """What an eval set's tables are filed under: a named set ("gsm8k", "robotics"), or a JSONL
    file's stem. Every command takes ``--eval`` as a name or a file alike (calibrate and bench
    read the questions; plan, run, serve and ros2 only need the name)."""
    lowered = name_or_path.lower()
    return lowered if lowered in NAMED else Path(name_or_path).stem


def source(name_or_path: str) -> str:
    """Where the questions come from, as calibration and bench files record it."""
    if name_or_path.lower() == "robotics":
        from . import robotics

        return f"edgetts.evals.robotics (seed {robotics.SEED}, {robotics.SIZE} questions)"
    return str(resolve(name_or_path))


def resolve(name_or_path: str) -> Path:
    if name_or_path.lower() == "gsm8k":
        return gsm8k_path()
    path = Path(name_or_path).expanduser()
    if not path.is_file():
        raise EdgeTTSError(f"eval set {name_or_path!r} is neither one of {', '.join(NAMED)} nor a JSONL file")
    return path


def problem_of(index: int, record: object, where: str) -> Problem:
    """One record as a Problem; anything its type cannot hold is a one-line error naming ``where``."""
    if not isinstance(record, dict) or "question" not in record or "answer" not in record:
        raise EdgeTTSError(f"{where} is not a JSON object with 'question' and 'answer'")
    question = str(record["question"])
    choices = record.get("choices") or ()
    if not isinstance(choices, list | tuple) or not all(isinstance(c, str) for c in choices):
        raise EdgeTTSError(f"{where}: 'choices' must be a list of option texts")
    try:
        answer_type = _type_of(record, question, tuple(choices))
        reference = answer_type.reference(record["answer"])
    except EdgeTTSError as err:
        raise EdgeTTSError(f"{where}: {err}") from None
    tags = {key: record[key] for key in ("family", "difficulty") if key in record}
    return Problem(index, question, reference, answer_type, tags)


def _type_of(record: dict, question: str, choices: tuple[str, ...]) -> AnswerType:
    kind = record.get("type")
    schema = record.get("schema")
    if kind is None and "choices" in record:  # options make a choice (and too few are an error)
        return AnswerType("choice", choices)
    if kind is not None:
        return resolve_type(question, str(kind), choices, schema=schema)
    if not choices and not schema and number_reference(str(record["answer"])) is not None:
        return NUMBER
    return infer(question, choices, default="text", schema=canonical_schema(schema))


def load(name_or_path: str, start: int = 0, limit: int | None = None) -> list[Problem]:
    """Problems ``start``… of the eval set (``limit`` of them); malformed lines are one-line errors."""
    if name_or_path.lower() == "robotics":
        return _robotics(start, limit)
    path = resolve(name_or_path)
    problems: list[Problem] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle):
            if number < start or not line.strip():
                continue
            if limit is not None and len(problems) >= limit:
                break
            where = f"{path}:{number + 1}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise EdgeTTSError(f"{where} is not JSON ({err.msg})") from None
            problems.append(problem_of(number, record, where))
    if not problems:
        raise EdgeTTSError(f"{path} has no problems from line {start + 1} on")
    return problems


def _robotics(start: int, limit: int | None) -> list[Problem]:
    from . import robotics

    stop = robotics.SIZE if limit is None else min(robotics.SIZE, start + limit)
    if start >= stop:
        raise EdgeTTSError(f"the robotics set has questions 0 to {robotics.SIZE - 1}; none from {start}")
    return [problem_of(i, robotics.record(i), f"robotics question {i}") for i in range(start, stop)]
