"""Make the bench's runs and log each one as soon as it ends.

Per question: the planner (``Engine.solve``) and baseline (a) at every target, each under the
deadline guard at that target; then every fixed configuration once, under the largest target.
Why once: a fixed configuration's run depends on the target only through the deadline guard, so
one run per question under the loosest deadline, judged afterwards against each target (it meets
target t when it ended within t), costs 1/len(targets) of running it at every target.

Latency is the wall time of the call as a caller waits for it: for the planner that includes
planning (the prompt's token count, the candidate table), which a caller pays too; the runtime's
own figure is kept as ``runtime_ms``. Ctrl-C ends the loop between log writes, so the log always
holds whole runs and the caller can still write its (partial) report.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..engine import Answer, Engine
from ..evals import Problem
from ..planner.scheduler import Config
from ..profiling.energy import EnergyMeter
from ..runtime.prompting import STEPS
from .records import ResultLog, Run
from .selection import GREEDY_BUDGET, greedy_models

WARM_UP_QUESTION = "What is 1 + 1?"


def plan_runs(problems: Sequence[Problem], targets_ms: Sequence[float], fixed: Sequence[Config]) -> list[Run]:
    """Every run of the bench, question by question (so an interruption leaves whole questions)."""
    largest = max(targets_ms)
    runs = []
    for problem in problems:
        for target in targets_ms:
            runs += [
                Run("planned", problem.index, target, target),
                Run("greedy", problem.index, target, target),
            ]
        runs += [Run("fixed", problem.index, largest, config=config) for config in fixed]
    return runs


@dataclass(frozen=True)
class Outcome:
    made: int  # runs made by this call
    reused: int  # runs the log already held
    interrupted: bool


class Runner:
    """Runs :func:`plan_runs`' list with one engine, one energy meter and one seed."""

    def __init__(
        self, engine: Engine, meter: EnergyMeter, models: Sequence[str], targets_ms: Sequence[float],
        log: ResultLog, seed: int, modes: Sequence[str] | None = None,
    ) -> None:  # fmt: skip
        self.engine, self.meter, self.models, self.targets_ms = engine, meter, models, targets_ms
        self.log, self.seed, self.modes = log, seed, modes
        self._greedy: dict[int, dict[float, str]] = {}  # the current question's baseline models

    def warm_up(self) -> None:
        """Load every model and answer one short question with each before the timed runs: a
        deployment loads its models at start-up, and the first call's session creation (1.1 s
        for Qwen2.5 here, which made the first question's runs miss 250 ms and 500 ms targets)
        and onnxruntime's first-run allocations are no part of a request's latency."""
        for model in self.models:
            self.engine.generate(WARM_UP_QUESTION, model=model, budget=0, samples=1, seed=self.seed)

    def run(self, problems: Sequence[Problem], runs: Sequence[Run], on_run: Callable[[], None]) -> Outcome:
        """Make the runs the log lacks; stop cleanly on Ctrl-C."""
        by_index = {p.index: p for p in problems}
        pending = [r for r in runs if r not in self.log]
        made = 0
        try:
            for run in pending:
                self.log.append(self._make(run, by_index[run.question]))
                made += 1
                on_run()
        except KeyboardInterrupt:
            return Outcome(made, len(runs) - len(pending), interrupted=True)
        return Outcome(made, len(runs) - len(pending), interrupted=False)

    def _greedy_model(self, problem: Problem, target_ms: float) -> str:
        if problem.index not in self._greedy:
            profile = self.engine.device_profile()
            self._greedy = {
                problem.index: greedy_models(profile, self.models, problem.question, self.targets_ms)
            }
        return self._greedy[problem.index][target_ms]

    def _make(self, run: Run, problem: Problem) -> dict[str, Any]:
        deadline = run.deadline_ms / 1000
        start = time.perf_counter()
        if run.kind == "planned":
            kind = problem.answer_type
            answer = self.engine.solve(
                problem.question, deadline, best_effort=True, seed=self.seed, answer_type=kind.kind,
                choices=kind.choices, schema=kind.schema or None, modes=self.modes,
            )  # fmt: skip
            latency_ms = 1000 * (time.perf_counter() - start)
            planned = answer.planned
            assert planned is not None  # solve() always plans
            extra = {
                "predicted_ms": planned.predicted_ms,
                "predicted_accuracy": planned.predicted_accuracy,
                "best_effort": planned.predicted_ms > run.deadline_ms,  # nothing was predicted to fit
            }
            energy, source = planned.energy_j, planned.energy_source
        else:
            config = run.config
            model, budget, samples, mode = (
                (config.model, config.budget, config.samples, config.mode)
                if config is not None
                else (self._greedy_model(problem, run.deadline_ms), GREEDY_BUDGET, 1, STEPS)
            )
            self.meter.begin()
            answer = self.engine.generate(
                problem.question,
                model=model,
                budget=budget,
                samples=samples,
                deadline=deadline,
                seed=self.seed,
                answer_type=problem.answer_type,
                answer_tokens=problem.answer_type.answer_tokens,
                mode=mode,
            )
            reading = self.meter.end()
            latency_ms = 1000 * (time.perf_counter() - start)
            extra = {}
            energy = None if reading.joules is None else round(reading.joules, 3)
            source = reading.source
        return {
            "kind": run.kind,
            "question": run.question,
            "target_ms": run.target_ms,
            "deadline_ms": run.deadline_ms,
            **_result(answer, problem),
            "latency_ms": round(latency_ms, 2),
            "energy_j": energy,
            "energy_source": source,
            **extra,
        }


def _result(answer: Answer, problem: Problem) -> dict[str, Any]:
    return {
        "config": answer.to_json()["config"],
        "answer": answer.text,
        "reference": problem.reference,
        "type": problem.kind,
        "correct": answer.text == problem.reference,
        "runtime_ms": round(answer.latency_ms, 2),
        "tokens": answer.tokens.generated,
        "forced_by": answer.forced_by,
    }
