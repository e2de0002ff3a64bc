"""`edgetts bench`: the planner on unseen questions at several latency targets, against greedy
decoding with no reasoning cap and against every fixed configuration (the oracle)."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from .cli_plan import PLAN_MODE
from .cli_profile import ensure_profile, progress_bar, split_names, stdout_console
from .errors import EdgeTTSError
from .units import parse_duration

console = Console(stderr=True)
DEFAULT_TARGETS = "250ms,500ms,1s,2s,5s,10s"


def parse_targets(text: str) -> list[float]:
    """Latency targets in ms, ascending and distinct, from ``250ms,1s,…``."""
    targets = sorted({round(1000 * parse_duration(part), 3) for part in text.split(",") if part.strip()})
    if not targets:
        raise EdgeTTSError(f"--latency {text!r} names no target; write it like 250ms,1s,5s")
    return targets


@click.command("bench")
@click.option("--eval", "eval_set", default="gsm8k", show_default=True, help="gsm8k or a JSONL file.")
@click.option(
    "--from",
    "start",
    type=click.IntRange(min=0),
    default=500,
    show_default=True,
    help="First question (must be past every question the calibrations used).",
)
@click.option("--limit", type=click.IntRange(min=1), help="Number of questions (default: all from --from).")
@click.option("--latency", "latencies", default=DEFAULT_TARGETS, show_default=True, help="Latency targets.")
@click.option("--models", "names", help="Plan over these store entries (default: the built-in ladder).")
@click.option(
    "--fixed",
    "fixed_mode",
    type=click.Choice(["frontier", "all", "none"]),
    default="frontier",
    show_default=True,
    help="Fixed configurations to run for the oracle: the planner's frontier, every candidate, or none.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=click.IntRange(min=1), help="Intra-op threads (default: physical cores).")
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for results.jsonl and the report (default: ./edgetts-bench-<date>).",
)
@PLAN_MODE
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def bench(
    eval_set: str, start: int, limit: int | None, latencies: str, names: str | None, fixed_mode: str,
    seed: int, threads: int | None, output: Path | None, modes: list[str] | None, as_json: bool,
) -> None:  # fmt: skip
    """Measure the planner on questions no calibration used, at every latency target.

    Per target: accuracy (95 % Wilson interval), deadline hit rate, p50/p95/p99 latency, tokens and
    energy, against (a) greedy decoding with no reasoning cap on the largest model predicted to
    fit, and the oracle, the best fixed configuration in hindsight. Every run is appended to
    results.jsonl at once: Ctrl-C still writes a (partial) report, and the same command resumes.
    """
    from . import __version__, evals
    from .bench.records import ResultLog
    from .bench.runner import Runner, plan_runs
    from .bench.selection import check_unseen, survey
    from .bench.summary import bench_summary
    from .calibration import tables
    from .engine import Engine
    from .ladder import ensure_converted, shipped_models
    from .profiling.device import detect
    from .profiling.energy import meter_for

    targets_ms = parse_targets(latencies)
    problems = evals.load(eval_set, start, limit)
    name = evals.name_of(eval_set)
    models = split_names(names) or [rung[0] for rung in shipped_models(name)]
    if not models:
        raise EdgeTTSError(
            f"no model has a {name} calibration: run `edgetts calibrate -m MODEL --eval {eval_set}` "
            "and pass --models MODEL"
        )
    uncalibrated = [m for m in models if tables.load(m, name) is None]
    if uncalibrated:
        raise EdgeTTSError(
            f"{', '.join(uncalibrated)} has no {name} calibration to plan with: run "
            f"`edgetts calibrate -m {uncalibrated[0]} --eval {eval_set}` on questions before --from"
        )
    check_unseen(problems, models, name)
    if not names:
        ensure_converted(lambda text: console.print(text, highlight=False), name)
    info = detect()
    profile = ensure_profile(info.id, models, threads)
    engine = Engine(threads=threads, profile=profile, eval_name=name)
    pool = survey(engine, problems[0].question, targets_ms, fixed_mode, modes)
    folder = output or Path(f"edgetts-bench-{dt.date.today().isoformat()}")
    log = ResultLog(
        folder / "results.jsonl",
        {"eval": name, "seed": seed, "models": pool.models, "device": info.id, "modes": modes or "auto"},
    )
    runs = plan_runs(problems, targets_ms, pool.fixed)
    runner = Runner(engine, meter_for(info), pool.models, targets_ms, log, seed, modes)
    runner.warm_up()
    with progress_bar(f"bench on {name}", sum(r not in log for r in runs)) as advance:
        outcome = runner.run(problems, runs, advance)
    settings = {
        "eval": name, "eval_path": evals.source(eval_set), "from": start, "limit": limit,
        "targets_ms": targets_ms, "models": pool.models, "fixed_mode": fixed_mode, "modes": modes or "auto",
        "fixed": [c.describe() for c in pool.fixed], "seed": seed, "threads": threads or "default",
        "device": info.id, "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "edgetts": __version__,
    }  # fmt: skip
    summary = bench_summary(log.records, runs, targets_ms, pool.reasoning_fits, settings)
    summary["runs"] = {"made": outcome.made, "reused": outcome.reused, "total": len(runs)}
    summary["interrupted"] = outcome.interrupted
    summary["files"] = _write(summary, folder, log.path)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        from .bench.report import rich_tables

        for table in rich_tables(summary):
            stdout_console().print(table)
    console.print(
        f"wrote {', '.join(f for f in summary['files'].values() if f)}", highlight=False, soft_wrap=True
    )
    if outcome.interrupted:
        done = summary["questions"]
        console.print(
            f"interrupted: the report covers {done['done']} of {done['total']} questions; "
            "run the same command again to resume",
            highlight=False,
        )
        sys.exit(130)


def _write(summary: dict[str, Any], folder: Path, results: Path) -> dict[str, str | None]:
    """summary.json, report.md and the plot, each written atomically."""
    from .atomic import write_text_atomic
    from .bench.report import PLOT_NAME, markdown, plot

    plot_path = folder / PLOT_NAME
    drawn = plot(summary, plot_path)
    if drawn:
        note = f"![accuracy against measured p99 latency]({PLOT_NAME})"
    else:
        note = "No plot: matplotlib is not installed (pip install 'edgetts[plot]')."
        console.print(
            f"skipped {plot_path}: matplotlib is not installed (pip install 'edgetts[plot]')",
            markup=False,
        )
    files = {
        "results": str(results),
        "summary": str(folder / "summary.json"),
        "report": str(folder / "report.md"),
        "plot": str(plot_path) if drawn else None,
    }
    write_text_atomic(folder / "report.md", markdown(summary, note))
    write_text_atomic(folder / "summary.json", json.dumps({**summary, "files": files}, indent=2))
    return files
