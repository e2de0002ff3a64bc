"""What the bench runs besides the planner, and the rule that keeps it honest.

- Unseen questions only: accuracy measured on questions the calibration also used would reward
  the planner for fitting them, so a range that overlaps any model's calibration is refused.
- Baseline (a), what one does without edgetts: greedy decoding with no reasoning cap (budget -1,
  N = 1) on the largest model (biggest resident memory in the profile) whose direct answer
  (budget 0, greedy) is predicted to fit the target; the smallest model when none is.
- Fixed configurations (the oracle's pool): ``all`` candidates of the planner, only those on its
  predicted frontier for the largest target (``frontier``, the default: a handful instead of
  models × budgets × N, and the off-frontier ones are predicted to lose anyway), or ``none``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from ..calibration import tables
from ..engine import Engine
from ..errors import EdgeTTSError
from ..evals import Problem
from ..planner.candidates import ANSWER_TOKENS, QUANTILE, prompt_cost
from ..planner.scheduler import Config
from ..profiling.device_profile import DeviceProfile
from ..runtime.generator import UNLIMITED
from ..runtime.prompting import MODES

GREEDY_BUDGET = UNLIMITED


def check_unseen(problems: Sequence[Problem], models: Sequence[str], eval_name: str) -> None:
    """Refuse questions that any model's calibration on ``eval_name`` (in any reasoning mode) used
    (by line index)."""
    indices = {p.index for p in problems}
    for model, mode in itertools.product(models, MODES):
        calibration = tables.load(model, eval_name, mode)
        used = indices & calibration.done() if calibration is not None else set()
        if used:
            count = f"{len(used)} question{'s' if len(used) != 1 else ''} ({min(used)}–{max(used)})"
            raise EdgeTTSError(
                f"{count} of this range were used to calibrate {model} on {eval_name}; bench on unseen "
                f"questions: pass --from {max(calibration.done()) + 1} or later"
            )


@dataclass(frozen=True)
class Survey:
    """What the planner's candidates for the bench's first question say (planned once, so that a
    rerun of the same command runs the same fixed configurations): the fixed configurations, the
    models planned over, and per target whether any reasoning configuration (budget > 0) is
    predicted to fit, which is where the issue asks for a gain over baseline (a)."""

    fixed: list[Config]
    models: list[str]
    reasoning_fits: dict[float, bool]  # by target in ms


def survey(
    engine: Engine, question: str, targets_ms: Sequence[float], mode: str, modes: Sequence[str] | None = None
) -> Survey:
    """``mode``: which fixed configurations (all, frontier, none); ``modes``: the reasoning modes
    the planner may use (None: every mode with a table), which the fixed ones share."""
    largest = max(targets_ms) / 1000
    chosen, candidates = engine.plan(question, largest, best_effort=True, modes=modes)
    pool = candidates.candidates
    if mode == "all":
        fixed = sorted((c.config for c in pool), key=lambda c: (c.model, c.budget, c.samples))
    elif mode == "frontier":
        fixed = [c.config for c in chosen.frontier if c.latency_s <= largest]
    else:
        fixed = []
    fits = {t: any(c.config.budget > 0 and 1000 * c.latency_s <= t for c in pool) for t in targets_ms}
    return Survey(fixed, sorted({c.config.model for c in pool}), fits)


def greedy_models(
    profile: DeviceProfile, models: Sequence[str], question: str, targets_ms: Sequence[float]
) -> dict[float, str]:
    """Baseline (a)'s model for ``question`` at each target in ms (see the module docstring)."""
    by_size = sorted(models, key=lambda m: (profile.models[m].resident_bytes, m))
    direct_ms = {}
    for name in by_size:
        latency = profile.models[name].latency
        prompt = prompt_cost(name, question).direct
        direct_ms[name] = 1000 * float(latency.run_s(prompt, 0, ANSWER_TOKENS, 1, 0, QUANTILE))
    chosen = {}
    for target in targets_ms:
        fits = [name for name in by_size if direct_ms[name] <= target]
        chosen[target] = fits[-1] if fits else by_size[0]
    return chosen
