"""`edgetts profile` and `edgetts profile show [--check]`: measure this device, read profiles back."""

from __future__ import annotations

import json
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click
import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from . import first_use
from .profiling import device_profile
from .profiling.device_profile import DeviceProfile, ProfileError

if TYPE_CHECKING:
    from .profiling.load import LoadReading
    from .profiling.profiler import CheckRow

console = Console(stderr=True)
CHECK_TARGET = 0.08  # the MAPE target for held-out configurations on this machine


@contextmanager
def progress_bar(description: str, total: int):
    """A bar with ETA on a terminal, silence elsewhere; yields ``advance(label=None)``."""
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=console, disable=not console.is_terminal, transient=True,
    ) as progress:  # fmt: skip
        task = progress.add_task(description, total=total)

        def advance(label: str | None = None) -> None:
            progress.update(task, advance=1, **({"description": label} if label else {}))

        yield advance


def stdout_console() -> Console:
    """Tables on stdout; piped or captured output gets a wide page instead of rich's 80 columns."""
    out = Console()
    if not out.is_terminal:
        out.width = 160
    return out


def split_names(text: str | None) -> list[str] | None:
    return [n.strip() for n in text.split(",") if n.strip()] if text else None


def say(text: str) -> None:
    """A first-use line (edgetts/first_use.py) on stderr, as typed (no rich markup)."""
    console.print(text, highlight=False, soft_wrap=True, markup=False)


def warn_if_busy(profile: DeviceProfile) -> None:
    """One line on stderr where ``profile`` was measured under load: plans made with it may
    choose less than the device can do on a quiet machine (and a check against it fails once
    the load is gone)."""
    if (warning := first_use.busy_warning(profile)) is not None:
        console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)


def ensure_profile(device_id: str, models: list[str], threads: int | None) -> DeviceProfile:
    """first_use.ensure_profile, saying so on stderr with a progress bar on a terminal."""
    return first_use.ensure_profile(device_id, models, threads, say, progress_bar)


def setup_engine(
    names: list[str] | None, threads: int | None, eval_name: str = "gsm8k", auto_reprofile: bool = False
):
    """first_use.setup_engine, saying so on stderr with a progress bar on a terminal."""
    return first_use.setup_engine(names, threads, eval_name, auto_reprofile, say, progress_bar)


def summary_table(profile: DeviceProfile) -> Table:
    table = Table(title=f"{profile.device_id} ({profile.conditions.get('source', '?')}) {profile.path or ''}")
    for column in (
        "model",
        "source",
        "prefill 128",
        "step N=1",
        "step N=8",
        "forms",
        "held-out MAPE",
        "q95 margin",
    ):
        table.add_column(column, no_wrap=True)
    for name, model in sorted(profile.models.items()):
        latency = model.latency
        mape = max(latency.prefill.residual.get("mape", np.nan), latency.decode.residual.get("mape", np.nan))
        table.add_row(
            name,
            model.source,
            f"{1000 * float(latency.prefill_s(128)):.1f} ms",
            f"{1000 * float(latency.step_s(1, 256)):.2f} ms",
            f"{1000 * float(latency.step_s(8, 256)):.2f} ms",
            f"{latency.prefill.form} / {latency.decode.form}",
            f"{100 * mape:.1f} %",
            f"{100 * latency.decode.margin(0.95):.1f} %",
        )
    return table


def under_load_table(profile: DeviceProfile) -> Table:
    """The thread sweep's rows: the step a plan would use per thread count and busy cores."""
    table = Table(title="decode step per thread count under busy loops (profile --threads-sweep)")
    for column in ("model", "busy cores", "threads", "step N=1", "step N=4", "other load measured"):
        table.add_column(column, no_wrap=True)
    for name, model in sorted(profile.models.items()):
        for row in model.under_load:
            table.add_row(
                name, str(row.busy_cores), str(row.threads),
                f"{1000 * float(row.latency.step_s(1, 256)):.2f} ms",
                f"{1000 * float(row.latency.step_s(4, 256)):.2f} ms",
                f"{100 * float(row.load.get('foreign_cpu') or 0):.0f} % of the CPU",
            )  # fmt: skip
    return table


@click.group(invoke_without_command=True)
@click.option("--models", "names", help="Comma-separated store entries (default: all of them).")
@click.option(
    "--quick", is_flag=True, help="Fewer points and repeats: about a minute for the default ladder."
)
@click.option("--threads", type=click.IntRange(min=1), help="Intra-op threads (default: physical cores).")
@click.option(
    "--threads-sweep",
    is_flag=True,
    help="Also measure every thread count with 0 … all cores kept busy by busy loops it starts, so "
    "that the engine picks threads for the load it sees (a few minutes per model).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the written profile as JSON.")
@click.pass_context
def profile(
    ctx: click.Context, names: str | None, quick: bool, threads: int | None, threads_sweep: bool,
    as_json: bool,
) -> None:  # fmt: skip
    """Measure prefill and decode latency of store entries on this device and fit the latency model.

    Writes $EDGETTS_HOME/profiles/<device-id>.yaml atomically (an interrupted run keeps the old
    file). Subcommand: show.
    """
    if ctx.invoked_subcommand is not None:
        return
    result = first_use.profile_this_device(
        split_names(names), quick, threads, threads_sweep, say, progress_bar
    )
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        stdout_console().print(summary_table(result))
        if any(m.under_load for m in result.models.values()):
            stdout_console().print(under_load_table(result))
        console.print(f"wrote {result.path}", highlight=False)
    warn_if_busy(result)


@profile.command()
@click.option("--device", "device_id", help="Device id (default: this device); published ones included.")
@click.option(
    "--file", "path", type=click.Path(dir_okay=False, path_type=str), help="A profile file to read."
)
@click.option("--check", "run_check", is_flag=True, help="Re-measure random held-out configurations.")
@click.option(
    "--count", type=click.IntRange(min=1), default=9, show_default=True, help="Configurations per model."
)
@click.option(
    "--max-error",
    type=click.FloatRange(min=0, min_open=True),
    default=CHECK_TARGET,
    show_default=True,
    help="With --check: fail (exit 1) when the held-out MAPE is over this (0.08: 8 %).",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=click.IntRange(min=1), help="Intra-op threads (default: physical cores).")
@click.option("--json", "as_json", is_flag=True, help="Print the profile (and the check) as JSON.")
def show(
    device_id: str | None, path: str | None, run_check: bool, count: int, max_error: float, seed: int,
    threads: int | None, as_json: bool,
) -> None:  # fmt: skip
    """Print a device profile; with --check, its prediction error on fresh measurements (over
    --max-error exits 1)."""
    from pathlib import Path

    from .profiling.device import detect

    here = detect().id
    target = device_id or (device_profile.load(Path(path)).device_id if path else here)
    loaded = device_profile.load_for(target, Path(path) if path else None)
    if not run_check:
        if as_json:
            click.echo(json.dumps(loaded.to_dict(), indent=2))
        else:
            stdout_console().print(summary_table(loaded))
            if any(m.under_load for m in loaded.models.values()):
                stdout_console().print(under_load_table(loaded))
        return
    if loaded.device_id != here:
        raise ProfileError(
            f"--check re-measures on this device ({here}), but the profile is of {loaded.device_id}; "
            "run the check on that device"
        )
    check_profile(loaded, count, seed, threads, as_json, max_error)


def check_profile(
    loaded: DeviceProfile, count: int, seed: int, threads: int | None, as_json: bool, max_error: float
) -> None:
    """Re-measure held-out configurations under a load meter; a MAPE over ``max_error`` fails
    (exit 1) with the loads now and at profile time, which say whether re-profiling will help."""
    from . import store
    from .profiling.load import LoadMeter
    from .profiling.profiler import check

    names = [n for n, m in sorted(loaded.models.items()) if m.source == "measured" and store.exists(n)]
    if not names:
        raise ProfileError(
            f"none of the measured models in {loaded.path} is in the model store; nothing to check"
        )
    meter = LoadMeter()
    meter.begin()
    with progress_bar("checking", count * len(names)) as advance:
        rows = check(loaded, names, count=count, seed=seed, threads=threads, tick=advance)
    now = meter.end()
    mape = float(np.mean([abs(r.error) for r in rows]))
    passed = mape <= max_error
    if as_json:
        click.echo(json.dumps({
            "mape": mape, "max_error": max_error, "passed": passed, "load": now.to_dict(),
            "profile_load": loaded.measured_load(),
            "rows": [{"model": r.model, "phase": r.phase, "config": r.config, "measured_s": r.measured_s,
                      "predicted_s": r.predicted_s, "error": r.error} for r in rows],
        }, indent=2))  # fmt: skip
    else:
        print_check(loaded, rows, mape, max_error, now)
    if not passed:
        raise ProfileError(check_failure(loaded, mape, max_error, now))


def print_check(
    loaded: DeviceProfile, rows: list[CheckRow], mape: float, max_error: float, now: LoadReading
) -> None:
    table = Table(title=f"held-out check of {loaded.path}")
    for column in ("model", "phase", "configuration", "measured", "predicted", "error"):
        table.add_column(column, no_wrap=True)
    for r in rows:
        table.add_row(
            r.model, r.phase, r.config, f"{1000 * r.measured_s:.2f} ms", f"{1000 * r.predicted_s:.2f} ms",
            f"{100 * r.error:+.1f} %",
        )  # fmt: skip
    stdout_console().print(table)
    verdict = "[green]within[/]" if mape <= max_error else "[red]over[/]"
    console.print(
        f"MAPE {100 * mape:.1f} % over {len(rows)} configurations, {verdict} --max-error "
        f"{100 * max_error:g} %; during the check {now.describe()}",
        highlight=False,
        soft_wrap=True,
    )


def check_failure(loaded: DeviceProfile, mape: float, max_error: float, now: LoadReading) -> str:
    """Why a check failed, in one line: the profile no longer predicts this machine, and the
    loads now and then tell a busy check (wait for quiet) from a busy profile (re-profile)."""
    from .profiling.load import LoadReading

    then = loaded.measured_load()
    recorded = "not recorded" if then is None else LoadReading.from_dict(then).describe()
    if now.busy:
        advice = "the machine is busy now: check again on a quiet machine, and re-profile if it still fails"
    else:
        advice = "re-profile on this quiet machine (`edgetts profile`)"
    return (
        f"the profile of {loaded.device_id} mispredicts held-out configurations by {100 * mape:.1f} % "
        f"(MAPE), over --max-error {100 * max_error:g} %: {advice}; load during the check: "
        f"{now.describe()}; at profile time: {recorded}"
    )
