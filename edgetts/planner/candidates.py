"""Every (model, mode, budget, N) a device profile and the calibration tables allow, with predictions.

A model's step-by-step table (budget 0: the direct answer) gives its ``steps`` candidates; where
it also has a ``program`` table and the question wants a number, its program-aided candidates
join them (they need the ``program`` extra's evaluator, tts/program.py).

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
from ..calibration.lengths import decode_steps as lengths_steps
from ..manifest import MANIFEST_NAME, PromptFormat
from ..profiling.device_profile import DeviceProfile, ModelProfile
from ..profiling.latency_model import LatencyModel
from ..runtime.prompting import PROGRAM, STEPS, build_prompt, force_text
from ..tts.answer_types import ANSWER_TOKENS, NUMBER, AnswerType
from .scheduler import Candidate, CandidateSet, Config

QUANTILE = 0.95
# For models that are not in the local store (published profiles): no tokenizer to count with.
CHARS_PER_TOKEN, TEMPLATE_TOKENS, FORCE_TOKENS = 4, 40, 8


@dataclass
class PromptCost:
    direct: int  # prompt tokens at budget 0
    thinking: int  # prompt tokens at budget > 0 (in program mode: the program prompt's)
    force: int  # forcing-text tokens (in program mode: closing the code, then the cue)


@functools.lru_cache(maxsize=32)
def _prompt_tools(name: str, manifest_mtime: float) -> tuple[Tokenizer, PromptFormat]:
    """A store entry's tokenizer and prompt format, loaded once per process (and again only if
    the entry is converted anew): planning runs on every request, inside its deadline."""
    entry = store.get(name)
    return Tokenizer.from_file(str(entry.path / "tokenizer.json")), entry.manifest.prompt


def prompt_cost(name: str, question: str, answer_type: AnswerType = NUMBER, mode: str = STEPS) -> PromptCost:
    """Exact token counts with the model's own tokenizer and template where it is in the store
    (the answer type words the prompt and lists a choice's options; ``mode`` says which
    reasoning prompt and forcing text the thinking counts are for)."""
    manifest = store.entry_path(name) / MANIFEST_NAME
    if not manifest.exists():
        estimate = TEMPLATE_TOKENS + len(answer_type.question_text(question)) // CHARS_PER_TOKEN
        return PromptCost(estimate, estimate, FORCE_TOKENS)
    return _counted_cost(name, question, answer_type, mode, manifest.stat().st_mtime)


@functools.lru_cache(maxsize=1024)
def _counted_cost(
    name: str, question: str, answer_type: AnswerType, mode: str, manifest_mtime: float
) -> PromptCost:
    """Counted once per (model, question, mode): a request is planned at arrival and again when
    it starts, and a server sees the same questions again."""
    tokenizer, fmt = _prompt_tools(name, manifest_mtime)

    def count(text: str) -> int:
        return len(tokenizer.encode(text, add_special_tokens=False).ids)

    return PromptCost(
        count(build_prompt(fmt, question, 0, answer_type)),
        count(build_prompt(fmt, question, 1, answer_type, mode)),
        count(force_text(fmt, mode)),
    )


def predicted_run_s(
    name: str,
    model: ModelProfile,
    question: str,
    budget: int,
    samples: int,
    answer_tokens: int = ANSWER_TOKENS,
    mode: str = STEPS,
) -> float:
    """The upper-quantile latency of one configuration given by the caller (not planned), so that
    the requests queued behind it know how long it holds the CPU."""
    cost = prompt_cost(name, question, NUMBER, mode)
    prompt, force = (cost.direct, 0) if budget == 0 else (cost.thinking, cost.force)
    return float(model.latency.run_s(prompt, budget, answer_tokens, samples, force, QUANTILE))


@functools.lru_cache(maxsize=64)
def calibration(
    name: str, eval_name: str, version: float | None, mode: str = STEPS
) -> tables.Calibration | None:
    """The calibration, read once per file version (``version`` keys the cache)."""
    return tables.load(name, eval_name, mode)


@functools.lru_cache(maxsize=128)
def accuracy_table(
    name: str, eval_name: str, version: float | None, kind: str = "number", mode: str = STEPS
) -> tables.AccuracyTable | None:
    """The table for questions of answer type ``kind``, computed once per file version."""
    found = calibration(name, eval_name, version, mode)
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


def constrained(name: str, eval_name: str, kind: str, mode: str = STEPS) -> bool:
    """Whether a run of ``name`` decodes a ``kind`` answer under its grammar: always for yes/no,
    choices, texts and JSON (a free answer of those types is often unreadable); a number as its
    calibration on ``eval_name`` was read, so that a plan's predicted accuracy is that of what
    runs (the GSM8K tables shipped before the grammar were read unconstrained); constrained
    where there is no calibration."""
    if kind != "number":
        return True
    found = calibration(name, eval_name, tables.version(name, eval_name, mode), mode)
    return True if found is None else found.constrained


@functools.lru_cache(maxsize=128)
def recorded_steps(
    name: str, eval_name: str, version: float | None, kind: str, force_tokens: int, answer_tokens: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """Program-aided runs' decode steps per (budget, N) of the table — at QUANTILE and on average
    over the calibration's questions — from the lengths its programs had (calibration/lengths.py);
    None where the calibration kept no lengths (then the budget is what a run may take)."""
    found = calibration(name, eval_name, version, PROGRAM)
    lengths = None if found is None else found.lengths_for(kind)
    if found is None or lengths is None:
        return None
    table = found.table_for(kind)
    extra = LatencyModel.forced_steps(table.samples, force_tokens, answer_tokens).tolist()
    cap = max(found.budgets)
    upper = lengths_steps(lengths, cap, table.budgets, table.samples, extra, QUANTILE)
    return upper, lengths_steps(lengths, cap, table.budgets, table.samples, extra, None)


def model_candidates(
    name: str, model: ModelProfile, table: tables.AccuracyTable, cost: PromptCost, answer_tokens: int,
    mode: str = STEPS, steps_taken: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[Candidate]:  # fmt: skip
    """Every (budget, N) of ``table`` for one model; ``steps_taken``: the decode steps that runs of
    each took (at QUANTILE, on average) where the calibration recorded them, else each runs to its
    budget and is forced."""
    budgets = np.array(table.budgets, dtype=np.float64)[:, None]
    samples = np.array(table.samples, dtype=np.float64)[None, :]
    prompt = np.where(budgets == 0, cost.direct, cost.thinking)
    force = np.where(budgets == 0, 0, cost.force)
    steps = budgets + answer_tokens

    def run(quantile: float, taken: np.ndarray | None) -> np.ndarray:
        if taken is None:
            return model.latency.run_s(prompt, budgets, answer_tokens, samples, force, quantile)
        return model.latency.run_s(prompt, taken, 0, samples, 0, quantile)

    taken_upper, taken_mean = (None, None) if steps_taken is None else steps_taken
    upper, mean = run(QUANTILE, taken_upper), run(0.5, taken_mean)
    prefill = model.latency.prefill_s(prompt) * np.ones_like(mean)
    energy = model.energy_j(prefill, mean - prefill, samples)
    memory = model.memory_bytes(samples, prompt + steps + force, budgets)
    out = []
    for i, budget in enumerate(table.budgets):
        for j, n in enumerate(table.samples):
            out.append(
                Candidate(
                    config=Config(name, model.quant, int(budget), int(n), mode),
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
    modes: Sequence[str] | None = None,
) -> tuple[CandidateSet, list[str]]:
    """Candidates of every profiled model (or of ``models`` among them) that has a calibration
    on ``eval_name``, with its accuracies for answers of ``answer_type``, in each reasoning mode
    it was calibrated in (``modes``: only these of direct, steps, program); the notes say which
    models were left out and why."""
    candidates: list[Candidate] = []
    notes = [
        f"{name}: not in the profile of {profile.device_id} (run `edgetts profile --models {name}`)"
        for name in models or ()
        if name not in profile.models
    ]
    for name, model in sorted(profile.models.items()):
        if models is not None and name not in models:
            continue
        table = accuracy_table(name, eval_name, tables.version(name, eval_name), answer_type.kind)
        if table is None:
            notes.append(f"{name}: no {eval_name} calibration (run `edgetts calibrate -m {name}`)")
            continue
        cost = prompt_cost(name, question, answer_type)
        candidates += model_candidates(name, model, table, cost, answer_tokens)
        if answer_type.kind == "number" and _writes_programs(name):
            version = tables.version(name, eval_name, PROGRAM)
            program_table = accuracy_table(name, eval_name, version, answer_type.kind, PROGRAM)
            if program_table is not None:
                cost = prompt_cost(name, question, answer_type, PROGRAM)
                taken = recorded_steps(name, eval_name, version, answer_type.kind, cost.force, answer_tokens)
                candidates += model_candidates(
                    name, model, program_table, cost, answer_tokens, PROGRAM, taken
                )  # fmt: skip
    if modes is not None:
        candidates = [c for c in candidates if c.config.reasoning in modes]
        if not candidates:
            notes.append(f"no calibrated configuration reasons as {' or '.join(modes)}")
    return CandidateSet(candidates), notes


def _writes_programs(name: str) -> bool:
    """Whether ``name``'s programs can run here: the evaluator is installed, and the model is an
    instruct model (or not in the store, planned from a published profile and table)."""
    from ..tts import program

    if not program.available():
        return False
    manifest = store.entry_path(name) / MANIFEST_NAME
    return not manifest.exists() or _prompt_tools(name, manifest.stat().st_mtime)[1].style == "instruct"
