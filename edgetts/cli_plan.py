"""`edgetts calibrate`, `edgetts plan` and `edgetts run`: accuracy tables, the latency-target
planner, and answering a question within a latency budget."""

from __future__ import annotations

import contextlib
import json

import click
from rich.console import Console

from .cli_profile import progress_bar, setup_engine, split_names, stdout_console, warn_if_busy
from .errors import DeadlineMissedError, EdgeTTSError, NoAnswerError
from .planner.correction import MIN_RUNS
from .planner.scheduler import format_duration, parse_reasonings, plural
from .runtime.prompting import MODES, STEPS
from .tts.answer_types import KINDS, resolve
from .units import parse_duration, parse_energy

console = Console(stderr=True)

ANSWER_TYPE = click.option(
    "--answer-type",
    type=click.Choice(["auto", *KINDS]),
    default="auto",
    show_default=True,
    help="What answer to read; auto infers it (options: choice; 'Is/Can/Does …?': yesno; "
    "'how many …?': number; else the eval set's default).",
)
SCHEMA = click.option(
    "--schema", metavar="JSON|FILE", help="A json answer's JSON Schema, inline or a file (implies json)."
)


def read_schema(value: str | None) -> str | None:
    """--schema as given: a file's text where it names a file, else the JSON itself."""
    from pathlib import Path

    if value and not value.lstrip().startswith("{") and Path(value).is_file():
        return Path(value).read_text()
    return value


def _plan_modes(_ctx: click.Context, _param: click.Parameter, value: str) -> list[str] | None:
    """--mode as the planner takes it: None (auto: every mode with a table) or the modes listed."""
    try:
        return parse_reasonings(value)
    except EdgeTTSError as err:
        raise click.BadParameter(str(err).removeprefix("mode ")) from None


PLAN_MODE = click.option(
    "--mode",
    "modes",
    default="auto",
    show_default=True,
    callback=_plan_modes,
    metavar="auto|direct,steps,program",
    help="How the answer may be reasoned: auto plans over every mode with a table, else over the "
    "modes listed: direct answers at once; steps reasons in prose; program writes a function that "
    "a safe evaluator runs (numbers). E.g. direct,steps plans as before program mode existed.",
)


CHOICE = click.option(
    "--choice", "choices", multiple=True, metavar="TEXT", help="An option of a choice answer (repeatable)."
)


def parse_budgets(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(b) for b in text.split(","))
    except ValueError:
        raise EdgeTTSError(f"--budgets {text!r} is not a comma-separated list of token counts") from None


@click.command()
@click.option("--model", "-m", required=True, help="Store entry to calibrate (see `edgetts models`).")
@click.option(
    "--eval", "eval_set", default="gsm8k", show_default=True, help="gsm8k, robotics or a JSONL file."
)
@click.option(
    "--from", "start", type=click.IntRange(min=0), default=0, show_default=True, help="First question."
)
@click.option("--limit", type=click.IntRange(min=1), help="Number of questions (default: all from --from).")
@click.option("--budgets", default="0,32,64,128,256,512", show_default=True, help="Budget checkpoints.")
@click.option(
    "--samples", type=click.IntRange(min=1), default=16, show_default=True, help="K samples per question."
)
@click.option("--answer-tokens", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=click.IntRange(min=1), help="Intra-op threads (default: physical cores).")
@click.option("--restart", is_flag=True, help="Replace a calibration made with other settings.")
@click.option(
    "--constrain/--no-constrain",
    default=None,
    help="Decode answers under their type's grammar, as runs then do [default: with the grammar extra].",
)
@click.option(
    "--mode",
    type=click.Choice(MODES),
    default=STEPS,
    show_default=True,
    help="Reason in prose (budget 0: a direct answer), or write a program the evaluator runs (its own "
    "table; number questions only, budgets above 0).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the accuracy table as JSON.")
def calibrate(
    model: str, eval_set: str, start: int, limit: int | None, budgets: str, samples: int, answer_tokens: int,
    seed: int, threads: int | None, restart: bool, constrain: bool | None, mode: str, as_json: bool,
) -> None:  # fmt: skip
    """Measure a model's accuracy at every budget and sample count on an eval set.

    K samples per question are generated once up to the largest budget, with an answer probe
    at every budget checkpoint, plus the greedy answer; acc(budget, N) is the exact expectation
    of the runtime's anchored vote (the greedy answer and N - 1 of the samples; N = 1: greedy,
    N up to K + 1). Interrupted runs resume.
    """
    from rich.table import Table

    from .calibration.calibrate import calibrate as run_calibration
    from .evals import load

    checkpoints = parse_budgets(budgets)
    total = len(load(eval_set, start, limit))
    with progress_bar(f"calibrating {model}", total) as advance:
        calibration = run_calibration(
            model, eval_set, start, limit, checkpoints, samples, answer_tokens, seed, threads,
            restart, constrained=constrain, on_question=lambda i, n: advance() if i else None, mode=mode,
        )  # fmt: skip
    kinds = sorted(calibration.kinds()) if len(calibration.kinds()) > 1 else []
    if as_json:
        by_type = {kind: calibration.table(kind).to_dict() for kind in kinds}
        click.echo(json.dumps({**calibration.table().to_dict(), "by_type": by_type or None}, indent=2))
        return
    for kind in [None, *kinds]:
        table = calibration.table(kind)
        what = "" if kind is None else f" ({kind} answers)"
        how = ", programs" if calibration.mode == "program" else ""
        title = f"{model} on {calibration.eval}{what}{how}: accuracy, {table.questions} questions"
        view = Table(title=f"{title} ({calibration.path})")
        view.add_column("budget")
        shown = [n for n in table.samples if n in (1, 2, 3, 5, 9, 17) or n == table.samples[-1]]
        for n in shown:
            view.add_column(f"N={n}")
        for i, budget in enumerate(table.budgets):
            view.add_row(str(budget), *(f"{100 * table.mean[i, n - 1]:.1f} %" for n in shown))
        stdout_console().print(view)


def _engine(device_id: str | None, profile_file: str | None, eval_set: str):
    """An Engine planning with ``--profile FILE``, else ``--device``'s profile, else this device's
    (with a warning where that profile was measured under load)."""
    from pathlib import Path

    from .engine import Engine
    from .profiling.device import detect
    from .profiling.device_profile import load, load_for

    path = Path(profile_file) if profile_file else None
    target = device_id or (load(path).device_id if path else detect().id)
    profile = load_for(target, path)
    warn_if_busy(profile)
    return Engine(profile=profile, eval_name=eval_set)


@click.command("plan")
@click.option("--latency", required=True, help="Latency target, e.g. 500ms, 2s.")
@click.option("--energy", help="Energy cap per query, e.g. 5J.")
@click.option("--device", "device_id", help="Plan for another device's profile (e.g. jetson-agx-orin-64gb).")
@click.option("--profile", "profile_file", help="A profile file to plan with.")
@click.option(
    "--question",
    default="A robot picks 3 boxes per minute. How many boxes does it pick in 12 minutes?",
    show_default=False,
    help="The prompt to plan for (its length matters).",
)
@click.option("--eval", "eval_set", default="gsm8k", show_default=True, help="Whose calibration to maximise.")
@click.option(
    "--best-effort", is_flag=True, help="Plan the fastest configuration when nothing meets the target."
)
@click.option("--plot", "plot_path", help="Write the accuracy-latency frontier as a PNG.")
@click.option("--models", "names", help="Plan over these profiled entries only (default: every one).")
@ANSWER_TYPE
@CHOICE
@SCHEMA
@PLAN_MODE
@click.option("--json", "as_json", is_flag=True, help="Print the plan and the frontier as JSON.")
def plan_command(
    latency: str, energy: str | None, device_id: str | None, profile_file: str | None, question: str,
    eval_set: str, best_effort: bool, plot_path: str | None, names: str | None, answer_type: str,
    choices: tuple[str, ...],
    schema: str | None, modes: list[str] | None, as_json: bool,
) -> None:  # fmt: skip
    """Choose (model, budget, N) for a latency target and show the accuracy-latency frontier
    (with the accuracy table of the question's answer type, where the eval set has one)."""
    from .planner.report import frontier_table, plot_frontier

    target, cap = parse_duration(latency), parse_energy(energy)
    schema = read_schema(schema)
    resolve(question, answer_type, choices, schema=schema)  # bad type, options or schema: one line
    engine = _engine(device_id, profile_file, eval_set)
    kind = engine.answer_type_of(question, answer_type, choices, schema)
    engine.watch_load()
    choices = engine.threads_now()
    chosen_plan, candidates = engine.plan(
        question,
        target,
        cap,
        best_effort,
        models=split_names(names),
        answer_type=kind,
        modes=modes,
        choices=choices,
    )
    threads = {
        name: {
            "threads": choice.threads,
            "under_load_row": choice.busy_cores,
            "other_load_cores": choice.other_load_cores,
        }
        for name, choice in sorted(choices.items())
    }
    correction = {
        name: factors.to_dict()
        for name in sorted(engine.device_profile().models)
        if (factors := engine.correction().factors(name)).runs >= MIN_RUNS
    }
    if plot_path:
        plot_frontier(chosen_plan, candidates, plot_path)
    if as_json:

        def row(c):
            return {
                "config": vars(c.config), "reasoning": c.config.reasoning,
                "predicted_ms": round(1000 * c.latency_s, 1),
                "predicted_mean_ms": round(1000 * c.latency_mean_s, 1), "accuracy": c.accuracy,
                "accuracy_ci": [c.accuracy_low, c.accuracy_high], "energy_j": c.energy_j,
                "memory_bytes": c.memory_bytes,
            }  # fmt: skip

        click.echo(json.dumps({
            "device": engine.device_profile().device_id, "target_ms": 1000 * chosen_plan.target_s,
            "best_effort": chosen_plan.best_effort, "chosen": row(chosen_plan.chosen),
            "frontier": [row(c) for c in chosen_plan.frontier], "latency_correction": correction,
            "threads": threads,
        }, indent=2))  # fmt: skip
        return
    stdout_console().print(frontier_table(chosen_plan))
    for name, choice in choices.items():
        if choice.busy_cores is not None:
            console.print(
                f"other load {choice.other_load_cores:.1f} cores: {name} planned with "
                f"{plural(choice.threads, 'thread')}, its thread sweep's row at "
                f"{plural(choice.busy_cores, 'busy core')}",
                highlight=False,
                soft_wrap=True,
            )
    for name, factors in correction.items():
        console.print(
            f"latency correction in use for {name}: prefill x{factors['prefill']:g}, decode "
            f"x{factors['decode']:g} (what its last {factors['runs']} runs measured against the profile)",
            highlight=False,
            soft_wrap=True,
        )


@click.command("run")
@click.argument("question")
@click.option("--latency", required=True, help="Latency target, e.g. 500ms, 0.5s, 2s, 1m.")
@click.option("--energy", help="Energy cap per query, e.g. 5J.")
@click.option(
    "--best-effort", is_flag=True, help="Run the fastest configuration when nothing meets the target."
)
@click.option("--eval", "eval_set", default="gsm8k", show_default=True, help="Whose calibration to maximise.")
@click.option("--models", "names", help="Plan over these store entries (default: the built-in ladder).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=click.IntRange(min=1), help="Intra-op threads (default: physical cores).")
@ANSWER_TYPE
@CHOICE
@SCHEMA
@PLAN_MODE
@click.option("--json", "as_json", is_flag=True, help="Print the answer and what it cost as JSON.")
def run_command(
    question: str, latency: str, energy: str | None, best_effort: bool, eval_set: str, names: str | None,
    seed: int, threads: int | None, answer_type: str, choices: tuple[str, ...], schema: str | None,
    modes: list[str] | None, as_json: bool,
) -> None:  # fmt: skip
    """Answer QUESTION as well as this device can within the latency target.

    Start-up (first-use conversion and profile, loading the planner's tokenizers and the model
    the plan picks, one warm-up step) happens before the clock starts and is reported apart; the
    target counts from then. No answer, or a late one (without --best-effort), exits 1."""
    import time

    began = time.perf_counter()
    target = parse_duration(latency)
    cap = parse_energy(energy)
    if not question.strip():
        raise EdgeTTSError("the question is empty; pass the text to answer")
    schema = read_schema(schema)
    resolve(question, answer_type, choices, schema=schema)  # bad type, options or schema: before set-up
    engine = setup_engine(split_names(names), threads, eval_set)  # its profile holds --models only
    kind = engine.answer_type_of(question, answer_type, choices, schema)
    with console.status("warming up") if console.is_terminal else contextlib.nullcontext():
        # Which model the plan would run, so that only that one is loaded and warmed; an
        # impossible target fails here, before anything is loaded.
        expected = engine.plan(question, target, cap, best_effort, answer_type=kind, modes=modes)[
            0
        ].chosen.config.model
        engine.warm(models=[expected])
    startup_s = time.perf_counter() - began
    answer = engine.solve(
        question, target, energy=cap, best_effort=best_effort, seed=seed, answer_type=answer_type,
        choices=choices, schema=schema, modes=modes,
    )  # fmt: skip
    engine.close()
    if as_json:
        click.echo(json.dumps({**answer.to_json(), "startup_ms": round(1000 * startup_s, 1)}, indent=2))
    else:
        shown = answer.answer_type.display(answer.text)
        click.echo(shown if shown is not None else "(no answer)")
        planned = answer.planned  # solve() always plans
        assert planned is not None
        energy_text = (
            "" if planned.energy_j is None else f", {planned.energy_j:.1f} J ({planned.energy_source})"
        )
        console.print(
            f"answer in {format_duration(answer.latency_ms / 1000)} of {format_duration(target)}; "
            f"start-up {format_duration(startup_s)} not counted. "
            f"Predicted {format_duration(planned.predicted_ms / 1000)}{energy_text}; "
            f"{answer.config.describe()} on {plural(answer.threads, 'thread')}, "
            f"expected accuracy {100 * planned.predicted_accuracy:.0f} %; "
            f"votes {answer.votes or '{}'}",
            highlight=False,
            soft_wrap=True,
        )
    if answer.text is None:
        raise NoAnswerError(
            f"no sample gave a readable answer ({plural(len(answer.samples), 'sample')}, "
            f"forced by {answer.forced_by}); "
            "a longer --latency lets the model reason further"
        )
    if answer.on_time is False and not best_effort:
        raise DeadlineMissedError(
            f"the answer came {format_duration(answer.latency_ms / 1000 - target)} after the "
            f"{format_duration(target)} deadline; this device ran slower than its profile: re-profile it "
            "(`edgetts profile`)"
        )
