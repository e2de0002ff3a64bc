"""Eval sets: JSONL files of ``{"question": …, "answer": …}``; GSM8K's ``#### N`` answers understood.

GSM8K itself is not shipped (licence and size): ``--eval gsm8k`` reads ``$EDGETTS_GSM8K``, then
``$EDGETTS_HOME/data/gsm8k/test.jsonl`` (the product looks nowhere else: a development
checkout's copy is passed in with EDGETTS_GSM8K, as the tests do).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from . import paths
from .errors import EdgeTTSError
from .tts.answers import gsm8k_reference, normalize_number

GSM8K_URL = "https://github.com/openai/grade-school-math (grade_school_math/data/test.jsonl)"


@dataclass(frozen=True)
class Problem:
    index: int  # line number in the file, 0-based: calibration and bench split on it
    question: str
    reference: str  # normalised answer


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
    """What an eval set's tables are filed under: "gsm8k", or a JSONL file's stem. Every command
    takes ``--eval`` as a name or a file alike (calibrate and bench read the file; plan, run,
    serve and ros2 only need the name)."""
    return "gsm8k" if name_or_path.lower() == "gsm8k" else Path(name_or_path).stem


def resolve(name_or_path: str) -> Path:
    if name_or_path.lower() == "gsm8k":
        return gsm8k_path()
    path = Path(name_or_path).expanduser()
    if not path.is_file():
        raise EdgeTTSError(f"eval set {name_or_path!r} is neither 'gsm8k' nor a JSONL file")
    return path


def reference_of(answer: object) -> str | None:
    """A GSM8K ``… #### 72`` answer, or a plain value (number or text)."""
    text = str(answer)
    if "####" in text:
        return gsm8k_reference(text)
    return normalize_number(text) or (text.strip() or None)


def load(name_or_path: str, start: int = 0, limit: int | None = None) -> list[Problem]:
    """Problems ``start``… of the eval set (``limit`` of them); malformed lines are one-line errors."""
    path = resolve(name_or_path)
    problems: list[Problem] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle):
            if number < start or not line.strip():
                continue
            if limit is not None and len(problems) >= limit:
                break
            try:
                record = json.loads(line)
                question, reference = record["question"], reference_of(record["answer"])
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                raise EdgeTTSError(
                    f"{path}:{number + 1} is not a JSON object with 'question' and 'answer' ({err})"
                ) from None
            if reference is None:
                raise EdgeTTSError(f"{path}:{number + 1}: cannot read an answer from {record['answer']!r}")
            problems.append(Problem(number, str(question), reference))
    if not problems:
        raise EdgeTTSError(f"{path} has no problems from line {start + 1} on")
    return problems
