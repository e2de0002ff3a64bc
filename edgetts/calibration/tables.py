"""Calibration files: the raw answers of every question and the accuracy table made from them.

One JSON file per (model, eval set, reasoning mode): ``<model>.<eval>.json`` for step-by-step
reasoning (whose budget 0 is the direct answer) and ``<model>.<eval>.program.json`` for
program-aided answers (runtime/prompting.py); the user's own runs are kept in
``$EDGETTS_HOME/calibration/``, the default ladder's tables ship in ``edgetts/calibration/tables/``.
The file is rewritten atomically after every question, so a long calibration that is interrupted
keeps what it did and resumes where it stopped when run again with the same settings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from .. import paths
from ..atomic import write_text_atomic
from ..errors import EdgeTTSError
from ..runtime.prompting import STEPS
from .accuracy import AccuracyTable, accuracy_table

SCHEMA_VERSION = 1
# A table per answer type needs this many questions of the type; with fewer the planner uses the
# eval set's table over all questions (a Wilson interval on 5 questions says little).
MIN_TYPE_QUESTIONS = 20


@dataclass
class Calibration:
    model: str
    eval: str  # "gsm8k" or the file's stem
    settings: dict[str, Any]  # budgets, samples, answer_tokens, seed, temperature, top_p
    conditions: dict[str, Any] = field(default_factory=dict)  # date, versions, threads, quant
    results: list[dict[str, Any]] = field(default_factory=list)  # index, reference, sampled, greedy
    path: Path | None = None
    published: AccuracyTable | None = None  # a paper's table, for models we cannot run here

    @property
    def source(self) -> str:
        return "published" if self.published is not None else "measured"

    @property
    def budgets(self) -> list[int]:
        return list(self.settings["budgets"])

    @property
    def mode(self) -> str:
        """How its samples reasoned: ``steps`` (files from before modes existed) or ``program``."""
        return str(self.settings.get("mode", STEPS))

    @property
    def constrained(self) -> bool:
        """Whether the answers were decoded under their type's grammar (files from before the
        setting existed were not), which the runtime then does too for this table."""
        return bool(self.settings.get("constrained", False))

    def done(self) -> set[int]:
        return {int(r["index"]) for r in self.results}

    def kinds(self) -> dict[str, int]:
        """Questions per answer type (records from before types were kept are numbers)."""
        counts: dict[str, int] = {}
        for result in self.results:
            kind = result.get("type", "number")
            counts[kind] = counts.get(kind, 0) + 1
        return counts

    def table(self, kind: str | None = None) -> AccuracyTable:
        """acc(b, N) for the runtime's anchored votes: N = 1 is the greedy answer, N ≥ 2 the
        greedy answer plus N - 1 of the K sampled ones (exact expectation, accuracy.py), so N
        runs to K + 1. ``kind``: over the questions of that answer type only."""
        if self.published is not None:
            return self.published
        results = [r for r in self.results if kind is None or r.get("type", "number") == kind]
        if not results:
            what = "" if kind is None else f"{kind} "
            raise EdgeTTSError(f"the calibration of {self.model} on {self.eval} has no {what}questions yet")
        return accuracy_table(
            [r["sampled"] for r in results],
            [r["reference"] for r in results],
            self.budgets,
            int(self.settings["samples"]) + 1,
            anchors=[r["greedy"] for r in results],
        )

    def lengths_for(self, kind: str) -> list[list[int]] | None:
        """The recorded row lengths behind :meth:`table_for` ``(kind)`` — per question the sampled
        rows', then the greedy row's tokens until it ended or reached the largest budget — or None
        for a published table or records from before lengths were kept."""
        by_type = self.kinds().get(kind, 0) >= MIN_TYPE_QUESTIONS
        results = [r for r in self.results if not by_type or r.get("type", "number") == kind]
        if self.published is not None or not results or any("think_tokens" not in r for r in results):
            return None
        return [list(r["think_tokens"]) for r in results]

    def table_for(self, kind: str) -> AccuracyTable:
        """What the planner uses for a question of answer type ``kind``: that type's table where
        the set has MIN_TYPE_QUESTIONS of it, else the table over every question."""
        if self.published is None and self.kinds().get(kind, 0) >= MIN_TYPE_QUESTIONS:
            return self.table(kind)
        return self.table()

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "source": self.source,
            "model": self.model,
            "eval": self.eval,
            "settings": self.settings,
            "conditions": self.conditions,
            "questions": len(self.results),
            "table": self.table().to_dict() if self.results or self.published else None,
            "by_type": {kind: self.table(kind).to_dict() for kind in sorted(self.kinds())}
            if self.published is None and len(self.kinds()) > 1
            else None,
            "results": self.results,
        }

    def save(self) -> Path:
        target = self.path or calibration_path(self.model, self.eval, self.mode)
        write_text_atomic(target, json.dumps(self.to_dict(), separators=(",", ":")))
        self.path = target
        return target


def calibration_dir() -> Path:
    return paths.home() / "calibration"


def file_name(model: str, eval_name: str, mode: str = STEPS) -> str:
    return f"{model}.{eval_name}.json" if mode == STEPS else f"{model}.{eval_name}.{mode}.json"


def calibration_path(model: str, eval_name: str, mode: str = STEPS) -> Path:
    return calibration_dir() / file_name(model, eval_name, mode)


def parse(text: str, where: str) -> Calibration:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise EdgeTTSError(
            f"{where} is not valid JSON ({err.msg} at line {err.lineno}); run `edgetts calibrate` again"
        ) from None
    if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION:
        raise EdgeTTSError(
            f"{where} is not a calibration file of schema version {SCHEMA_VERSION}; "
            "run `edgetts calibrate` again"
        )
    try:
        published = data.get("source") == "published"
        calibration = Calibration(
            model=str(data["model"]),
            eval=str(data["eval"]),
            settings=dict(data["settings"]),
            conditions=dict(data.get("conditions") or {}),
            results=list(data["results"]),
            published=AccuracyTable.from_dict(data["table"]) if published else None,
        )
        for result in calibration.results:
            if len(result["greedy"]) != len(calibration.budgets) or len(result["sampled"]) != int(
                calibration.settings["samples"]
            ):
                raise ValueError(f"question {result['index']} has the wrong number of answers")
    except (KeyError, TypeError, ValueError) as err:
        raise EdgeTTSError(f"{where} is malformed ({err}); run `edgetts calibrate` again") from None
    return calibration


def version(model: str, eval_name: str = "gsm8k", mode: str = STEPS) -> float | None:
    """The modification time of the user's calibration file (None: the shipped one or none), so
    that callers can cache a table until the file changes."""
    own = calibration_path(model, eval_name, mode)
    return own.stat().st_mtime if own.exists() else None


def load(model: str, eval_name: str = "gsm8k", mode: str = STEPS) -> Calibration | None:
    """The user's calibration of ``model`` on ``eval_name`` in ``mode``, else the shipped one,
    else None."""
    own = calibration_path(model, eval_name, mode)
    if own.exists():
        calibration = parse(own.read_text(encoding="utf-8"), str(own))
        calibration.path = own
        return calibration
    name = file_name(model, eval_name, mode)
    shipped = resources.files("edgetts.calibration") / "tables" / name
    if shipped.is_file():
        return parse(shipped.read_text(encoding="utf-8"), f"the shipped calibration {name}")
    return None
