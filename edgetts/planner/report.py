"""Show a plan: the frontier as a rich table for the terminal, or as a PNG plot.

matplotlib is an optional extra (``edgetts[plot]``): a robot never plots, so the runtime does not
carry it, and it is imported only when a plot is asked for.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

from rich.table import Table

from ..atomic import write_bytes_atomic
from ..errors import EdgeTTSError
from .scheduler import Candidate, CandidateSet, Plan, format_bytes, format_duration


def frontier_table(plan: Plan) -> Table:
    """The frontier, fastest first, with the chosen configuration marked (and added if it is not
    on the frontier: an equally accurate, more frugal pick can be slower than a frontier point).
    Rows past the latency target are dimmed."""
    rows = list(plan.frontier)
    if plan.chosen is not None and plan.chosen not in rows:
        rows = sorted([*rows, plan.chosen], key=lambda c: c.latency_s)
    caption = (
        "best effort: nothing meets the target, so the fastest configuration runs"
        if plan.best_effort
        else None
    )
    table = Table(
        title=f"Accuracy–latency frontier (target {format_duration(plan.target_s)})", caption=caption
    )
    table.add_column("")
    left = ("model", "quant", "reasoning")
    for header in (*left, "budget", "samples", "latency", "mean latency", "accuracy (95 % CI)"):
        table.add_column(header, justify="left" if header in left else "right")
    table.add_column("energy", justify="right")
    table.add_column("memory", justify="right")
    for c in rows:
        chosen = c == plan.chosen
        table.add_row(
            "▶" if chosen else "",
            c.config.model,
            c.config.quant,
            c.config.reasoning,
            str(c.config.budget),
            str(c.config.samples),
            format_duration(c.latency_s),
            format_duration(c.latency_mean_s),
            f"{c.accuracy:.1%} ({c.accuracy_low:.1%}–{c.accuracy_high:.1%})",
            "unknown" if c.energy_j is None else f"{c.energy_j:.3g} J",
            format_bytes(c.memory_bytes),
            style="bold" if chosen else "dim" if c.latency_s > plan.target_s else None,
        )
    return table


def plot_frontier(
    plan: Plan, candidates: Sequence[Candidate] | CandidateSet, path: str | os.PathLike
) -> Path:
    """Accuracy against predicted latency: every candidate faint, the frontier as a staircase,
    the chosen point and the target. Written atomically (missing folders are created), so a
    reader never sees half a PNG."""
    try:
        from matplotlib.figure import Figure  # no pyplot: no global backend or figure registry
    except ImportError:
        raise EdgeTTSError("plotting the frontier needs matplotlib: pip install 'edgetts[plot]'") from None
    everything = candidates.candidates if isinstance(candidates, CandidateSet) else candidates
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    axes = figure.add_subplot()
    axes.scatter(
        [c.latency_s for c in everything],
        [c.accuracy for c in everything],
        s=10,
        color="0.6",
        alpha=0.35,
        label="configurations",
    )
    axes.plot(
        [c.latency_s for c in plan.frontier],
        [c.accuracy for c in plan.frontier],
        drawstyle="steps-post",
        marker="o",
        markersize=3,
        color="tab:blue",
        label="frontier",
    )
    if plan.chosen is not None:
        axes.scatter(
            [plan.chosen.latency_s],
            [plan.chosen.accuracy],
            s=120,
            marker="*",
            color="tab:red",
            zorder=3,
            label=f"chosen: {plan.chosen.config.describe()}",
        )
    axes.axvline(plan.target_s, color="tab:red", linestyle="--", linewidth=1, label="target")
    axes.set_xscale("log")
    axes.set_xlabel("predicted latency, upper quantile (s)")
    axes.set_ylabel("expected accuracy")
    axes.legend(loc="lower right", fontsize="small")
    return save_png(figure, Path(path))


def save_png(figure, path: Path) -> Path:
    """Write a matplotlib figure as PNG atomically (a reader never sees half an image); an
    unwritable path is a one-line error."""
    image = io.BytesIO()
    figure.savefig(image, format="png", dpi=150)
    try:
        write_bytes_atomic(path, image.getvalue())
    except OSError as err:
        raise EdgeTTSError(f"cannot write the plot to {path}: {err.strerror or err}") from None
    return path
