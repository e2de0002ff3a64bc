"""Every (model, budget, N) a device profile and the calibration tables allow, with predictions.

Latency is predicted at an upper quantile of the profile's held-out residuals (a deadline must
hold on most runs, not on the average one), for the request's own prompt length; memory is the
resident model plus the KV cache of N rows; energy is the profile's power × predicted time.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tokenizers import Tokenizer

from .. import store
from ..calibration import tables
from ..manifest import MANIFEST_NAME, PromptFormat
from ..profiling.device_profile import DeviceProfile, ModelProfile
from ..runtime.prompting import build_prompt, force_text
from ..tts.answer_types import ANSWER_TOKENS, NUMBER, AnswerType
from .scheduler import Candidate, CandidateSet, Config

QUANTILE = 0.95
# For models that are not in the local store (published profiles): no tokenizer to count with.
CHARS_PER_TOKEN, TEMPLATE_TOKENS, FORCE_TOKENS = 4, 40, 8


@dataclass
class PromptCost:
    direct: int  # prompt tokens at budget 0
    thinking: int  # prompt tokens at budget > 0
    force: int  # forcing-text tokens


@functools.lru_cache(maxsize=32)
def _prompt_tools(name: str, manifest_mtime: float) -> tuple[Tokenizer, PromptFormat]:
    """A store entry's tokenizer and prompt format, loaded once per process (and again only if
    the entry is converted anew): planning runs on every request, inside its deadline."""
    entry = store.get(name)
    return Tokenizer.from_file(str(entry.path / "tokenizer.json")), entry.manifest.prompt


def prompt_cost(name: str, question: str, answer_type: AnswerType = NUMBER) -> PromptCost:
    """Exact token counts with the model's own tokenizer and template where it is in the store
    (the answer type words the prompt and lists a choice's options)."""
    manifest = store.entry_path(name) / MANIFEST_NAME
    if not manifest.exists():
        estimate = TEMPLATE_TOKENS + len(answer_type.question_text(question)) // CHARS_PER_TOKEN
        return PromptCost(estimate, estimate, FORCE_TOKENS)
    return _counted_cost(name, question, answer_type, manifest.stat().st_mtime)


@functools.lru_cache(maxsize=1024)
def _counted_cost(name: str, question: str, answer_type: AnswerType, manifest_mtime: float) -> PromptCost:
    """Counted once per (model, question): a request is planned at arrival and again when it
    starts, and a server sees the same questions again."""
    tokenizer, fmt = _prompt_tools(name, manifest_mtime)

    def count(text: str) -> int:
        return len(tokenizer.encode(text, add_special_tokens=False).ids)

    return PromptCost(
        count(build_prompt(fmt, question, 0, answer_type)),
        count(build_prompt(fmt, question, 1, answer_type)),
        count(force_text(fmt)),
    )


def predicted_run_s(
    name: str,
    model: ModelProfile,
    question: str,
    budget: int,
    samples: int,
    answer_tokens: int = ANSWER_TOKENS,
) -> float:
    """The upper-quantile latency of one configuration given by the caller (not planned), so that
    the requests queued behind it know how long it holds the CPU."""
    cost = prompt_cost(name, question)
    prompt, force = (cost.direct, 0) if budget == 0 else (cost.thinking, cost.force)
    return float(model.latency.run_s(prompt, budget, answer_tokens, samples, force, QUANTILE))


@functools.lru_cache(maxsize=64)
def calibration(name: str, eval_name: str, version: float | None) -> tables.Calibration | None:
    """The calibration, read once per file version (``version`` keys the cache)."""
    return tables.load(name, eval_name)


@functools.lru_cache(maxsize=128)
def accuracy_table(
    name: str, eval_name: str, version: float | None, kind: str = "number"
) -> tables.AccuracyTable | None:
    """The table for questions of answer type ``kind``, computed once per file version."""
    found = calibration(name, eval_name, version)
    return None if found is None else found.table_for(kind)


def default_kind(names: Sequence[str], eval_name: str) -> str:
    """The answer type of a question no rule types (tts/answer_types.py): ``number`` where the
    tables of ``names`` on ``eval_name`` hold numbers only (GSM8K) or there are none, ``text``
    where the set mixes types."""
    kinds: set[str] = set()
    for name in names:
        found = calibration(name, eval_name, tables.version(name, eval_name))
        if found is not None and found.published is None:
            kinds |= set(found.kinds())
    return "number" if kinds <= {"number"} else "text"


def constrained(name: str, eval_name: str, kind: str) -> bool:
    """Whether a run of ``name`` decodes a ``kind`` answer under its grammar: always for yes/no,
    choices, texts and JSON (a free answer of those types is often unreadable); a number as its
    calibration on ``eval_name`` was read, so that a plan's predicted accuracy is that of what
    runs (the GSM8K tables shipped before the grammar were read unconstrained); constrained
    where there is no calibration."""
    if kind != "number":
        return True
    found = calibration(name, eval_name, tables.version(name, eval_name))
    return True if found is None else found.constrained


def model_candidates(
    name: str, model: ModelProfile, table: tables.AccuracyTable, cost: PromptCost, answer_tokens: int
) -> list[Candidate]:
    budgets = np.array(table.budgets, dtype=np.float64)[:, None]
    samples = np.array(table.samples, dtype=np.float64)[None, :]
    prompt = np.where(budgets == 0, cost.direct, cost.thinking)
    force = np.where(budgets == 0, 0, cost.force)
    steps = budgets + answer_tokens

    def run(quantile: float) -> np.ndarray:
        return model.latency.run_s(prompt, budgets, answer_tokens, samples, force, quantile)

    upper, mean = run(QUANTILE), run(0.5)
    prefill = model.latency.prefill_s(prompt) * np.ones_like(mean)
    energy = model.energy_j(prefill, mean - prefill, samples)
    memory = model.memory_bytes(samples, prompt + steps + force)
    out = []
    for i, budget in enumerate(table.budgets):
        for j, n in enumerate(table.samples):
            out.append(
                Candidate(
                    config=Config(name, model.quant, int(budget), int(n)),
                    latency_s=float(upper[i, j]),
                    latency_mean_s=float(mean[i, j]),
                    accuracy=float(table.mean[i, j]),
                    accuracy_low=float(table.low[i, j]),
                    accuracy_high=float(table.high[i, j]),
                    energy_j=None if energy is None else float(energy[i, j]),
                    memory_bytes=int(memory[i, j]),
                )
            )
    return out


def build(
    profile: DeviceProfile,
    question: str,
    eval_name: str = "gsm8k",
    answer_tokens: int = ANSWER_TOKENS,
    models: Sequence[str] | None = None,
    answer_type: AnswerType = NUMBER,
) -> tuple[CandidateSet, list[str]]:
    """Candidates of every profiled model (or of ``models`` among them) that has a calibration
    on ``eval_name``, with its accuracies for answers of ``answer_type``; the notes say which
    models were left out and why."""
    candidates: list[Candidate] = []
    notes: list[str] = []
    for name, model in sorted(profile.models.items()):
        if models is not None and name not in models:
            continue
        table = accuracy_table(name, eval_name, tables.version(name, eval_name), answer_type.kind)
        if table is None:
            notes.append(f"{name}: no {eval_name} calibration (run `edgetts calibrate {name}`)")
            continue
        cost = prompt_cost(name, question, answer_type)
        candidates += model_candidates(name, model, table, cost, answer_tokens)
    return CandidateSet(candidates), notes
