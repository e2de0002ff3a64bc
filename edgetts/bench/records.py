"""The bench's results log, ``results.jsonl``: one JSON line per run, appended as soon as it ends.

Why a log rather than one file rewritten atomically: a bench is hours of runs, and appending (with
fsync) makes each finished run durable at once, so Ctrl-C or a kill loses at most the run in
flight and re-running the same command skips every run the log holds. The first line holds the
settings that change what a run means (eval set, seed, models, device, reasoning modes); a log
written under other settings is refused rather than mixed. A last line torn by a kill mid-write
is dropped (the file is rewritten atomically without it) before anything is appended after it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..atomic import write_text_atomic
from ..errors import EdgeTTSError
from ..planner.scheduler import Config
from ..runtime.prompting import STEPS

SETTINGS = "settings"  # the kind of the header line


@dataclass(frozen=True)
class Run:
    """One run to make. ``planned`` and ``greedy`` runs are judged against ``target_ms`` (their
    deadline too) and choose their configuration per question; a ``fixed`` run has its
    ``config`` and runs once per question under the largest target, judged against every target
    afterwards."""

    kind: str  # planned | greedy | fixed
    question: int  # the eval set's line index
    deadline_ms: float
    target_ms: float | None = None
    config: Config | None = None

    def key(self) -> tuple:
        config = self.config
        fixed = None if config is None else (config.model, config.budget, config.samples, config.mode)
        return (self.kind, self.question, self.target_ms, fixed, self.deadline_ms)


def record_key(record: dict[str, Any]) -> tuple:
    """The :meth:`Run.key` of the run that wrote ``record``."""
    config = record["config"]
    fixed = (
        (config["model"], config["budget"], config["samples"], config.get("mode", STEPS))
        if record["kind"] == "fixed"
        else None
    )  # records from before modes are steps'
    return (record["kind"], record["question"], record["target_ms"], fixed, record["deadline_ms"])


class ResultLog:
    """The runs made so far (``records``, by key), and the file new ones are appended to."""

    def __init__(self, path: Path, settings: dict[str, Any]) -> None:
        self.path = path
        self.records: dict[tuple, dict[str, Any]] = {}
        header = {"kind": SETTINGS, **settings}
        if not path.exists():
            write_text_atomic(path, json.dumps(header) + "\n")
            return
        text = path.read_text(encoding="utf-8")
        lines = text.split("\n")
        torn = lines.pop()  # "" when the file ends with a newline, else a line a kill cut short
        rows = [self._parse(line, number) for number, line in enumerate(lines, 1) if line.strip()]
        if not rows:
            write_text_atomic(path, json.dumps(header) + "\n")
            return
        if rows[0] != header:
            raise EdgeTTSError(
                f"{path} holds a bench made with other settings ({_difference(rows[0], header)}); "
                "pass another --output or delete that folder"
            )
        for row in rows[1:]:
            self.records[record_key(row)] = row
        if torn:
            write_text_atomic(path, "".join(line + "\n" for line in lines if line.strip()))

    def _parse(self, line: str, number: int) -> dict[str, Any]:
        try:
            row = json.loads(line)
            if row["kind"] != SETTINGS:
                record_key(row)
            return row
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise EdgeTTSError(
                f"{self.path}:{number} is not a bench record ({err}); delete that line to rerun its run"
            ) from None

    def __contains__(self, run: Run) -> bool:
        return run.key() in self.records

    def append(self, record: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        self.records[record_key(record)] = record


def _difference(found: dict[str, Any], wanted: dict[str, Any]) -> str:
    keys = sorted(k for k in {*found, *wanted} if found.get(k) != wanted.get(k))
    return ", ".join(f"{k}: {found.get(k)!r} there, {wanted.get(k)!r} now" for k in keys)
