"""Show a bench summary: rich tables for the terminal, a markdown report, an accuracy-latency PNG.

The rows are built once as strings (:func:`target_rows`, :func:`check_rows`, :func:`fixed_rows`)
and rendered twice, so the terminal and ``report.md`` cannot disagree. Energy nothing measured is
written "unavailable", never 0 J. matplotlib stays optional (``edgetts[plot]``), imported only to
draw.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.table import Table

from ..planner.report import save_png
from ..planner.scheduler import format_duration
from .stats import PERCENTILES, frontier
from .summary import GAIN_GOAL, ORACLE_GOAL, P99_GOAL

# The planner's columns first, then the baselines: (a) greedy with no cap, the oracle, and the ratios.
TARGET_HEADERS = (
    "target", "planned acc. (95 % CI)", "hit rate", "p50", "p95", "p99", "tokens", "J/query", "J/correct",
    "(a) acc.", "oracle acc.", "oracle configuration", "vs oracle", "vs (a)",
)  # fmt: skip
CHECK_HEADERS = (
    "target",
    f"p99 ≤ {P99_GOAL:.2f}× target",
    f"planned ≥ {ORACLE_GOAL:.0%} of oracle",
    f"≥ {GAIN_GOAL:g} points over (a)",
)
FIXED_HEADERS = ("configuration", "accuracy (95 % CI)", "p50", "p95", "p99", "tokens", "J/query", "hit rate")
PLOT_NAME = "accuracy-latency.png"


def _ms(value: float) -> str:
    return format_duration(value / 1000)


def _accuracy(arm: dict[str, Any]) -> str:
    return f"{arm['accuracy']:.1%} ({100 * arm['accuracy_low']:.0f}–{100 * arm['accuracy_high']:.0f})"


def _joules(arm: dict[str, Any]) -> tuple[str, str]:
    """J/query and J/correct: "unavailable" where no meter measured, "n/a (0 correct)" where no
    answer was right."""
    if arm["energy_per_query_j"] is None:
        return "unavailable", "unavailable"
    correct = arm["energy_per_correct_j"]
    return f"{arm['energy_per_query_j']:.3g} J", "n/a (0 correct)" if correct is None else f"{correct:.3g} J"


def target_rows(summary: dict[str, Any]) -> list[list[str]]:
    rows = []
    for entry in summary["targets"]:
        planned, greedy, oracle = entry["planned"], entry["greedy"], entry["oracle"]
        if planned is None:
            measured = ["—"] * 8
        else:
            measured = [
                _accuracy(planned), f"{planned['hit_rate']:.0%}",
                *(_ms(planned[f"p{q}_ms"]) for q in PERCENTILES),
                f"{planned['mean_tokens']:.0f}", *_joules(planned),
            ]  # fmt: skip
        ratio, gain = entry["planned_over_oracle"], entry["gain_points"]
        rows.append([
            _ms(entry["target_ms"]),
            *measured,
            "—" if greedy is None else f"{greedy['accuracy']:.1%}",
            "none fits" if oracle is None else f"{oracle['accuracy']:.1%}",
            "—" if oracle is None else oracle["label"],
            "—" if ratio is None else f"{ratio:.2f}",
            "—" if gain is None else f"{gain:+.1f} pts",
        ])  # fmt: skip
    return rows


CHECK_UNITS = {  # how each check's value reads
    "p99_within_target": lambda v: f"p99 {v:.2f}× target",
    "accuracy_vs_oracle": lambda v: f"{v:.0%} of oracle",
    "gain_over_greedy": lambda v: f"{v:+.1f} pts",
}


BASELINE_NAMES = {"accuracy_vs_oracle": "oracle", "gain_over_greedy": "(a)"}


def _verdict(name: str, check: dict[str, Any]) -> str:
    value = None if check["value"] is None else CHECK_UNITS[name](check["value"])
    paired = check["paired"]
    if paired:
        value = f"{value or check['note']}; {_paired(paired, BASELINE_NAMES[name])}"
    if check["met"] is None:
        return f"n/a: {check['note']}" + (f" ({value})" if value else "")
    return ("met" if check["met"] else "NOT met") + f" ({value or check['note']})"


def _paired(paired: dict[str, Any], baseline: str) -> str:
    return (
        f"right only planned {paired['only_first']}, only {baseline} {paired['only_second']}: "
        f"McNemar p = {paired['p_value']:.2f}"
    )


def check_rows(summary: dict[str, Any]) -> list[list[str]]:
    return [
        [_ms(e["target_ms"]), *(_verdict(name, c) for name, c in e["checks"].items())]
        for e in summary["targets"]
    ]


def fixed_rows(summary: dict[str, Any]) -> list[list[str]]:
    rows = []
    for arm in summary["fixed"]:
        hits = ", ".join(f"{_ms(t['target_ms'])}: {t['hit_rate']:.0%}" for t in arm["targets"])
        rows.append([
            arm["label"], _accuracy(arm), *(_ms(arm[f"p{q}_ms"]) for q in PERCENTILES),
            f"{arm['mean_tokens']:.0f}", _joules(arm)[0], hits,
        ])  # fmt: skip
    return rows


def status_line(summary: dict[str, Any]) -> str:
    questions = summary["questions"]
    if summary["partial"]:
        return (
            f"PARTIAL: {questions['done']} of {questions['total']} questions complete; "
            "run the same command again to resume"
        )
    return f"complete: {questions['total']} questions"


def rich_tables(summary: dict[str, Any]) -> list[Table]:
    settings = summary["settings"]
    main = Table(
        title=f"edgetts bench: {settings['eval']} on {settings['device']} ({status_line(summary)})",
        caption=f"energy: {_sources(summary)}; latency is the wall time of each call",
    )
    for header in TARGET_HEADERS:
        main.add_column(header, justify="left" if header == "oracle configuration" else "right")
    for row in target_rows(summary):
        main.add_row(*row)
    checks = Table(title="the issue's targets")
    for header in CHECK_HEADERS:
        checks.add_column(header)
    for row in check_rows(summary):
        checks.add_row(*row)
    return [main, checks]


def _sources(summary: dict[str, Any]) -> str:
    arms = [e["planned"] for e in summary["targets"] if e["planned"]] + summary["fixed"]
    return ", ".join(sorted({a["energy_source"] for a in arms})) or "no runs yet"


def _type_lines(summary: dict[str, Any]) -> list[str]:
    """Accuracy per answer type per target, where the eval set mixes types."""
    rows = []
    for entry in summary["targets"]:
        for arm in ("planned", "greedy"):
            by_type = (entry[arm] or {}).get("by_type")
            if by_type:
                cells = [f"{kind} {v['accuracy']:.0%} ({v['runs']})" for kind, v in by_type.items()]
                rows.append(
                    [_ms(entry["target_ms"]), "planned" if arm == "planned" else "(a)", ", ".join(cells)]
                )
    if not rows:
        return []
    return [
        "",
        "## Accuracy per answer type",
        "",
        *_markdown_table(["target", "arm", "accuracy (runs)"], rows),
    ]


def _markdown_table(headers: Sequence[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return lines + ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]


def markdown(summary: dict[str, Any], plot_note: str) -> str:
    settings = summary["settings"]
    indices = summary["questions"]["indices"]
    lines = [
        f"# edgetts bench: {settings['eval']} on {settings['device']}",
        "",
        f"**{status_line(summary)}.**",
        "",
        f"- date: {settings['date']}; edgetts {settings['edgetts']}",
        f"- eval set: {settings['eval_path']}, questions from line {settings['from']}"
        + (f" ({min(indices)}–{max(indices)} complete)" if indices else ""),
        f"- models: {', '.join(settings['models'])}; seed {settings['seed']}; threads {settings['threads']}",
        f"- targets: {', '.join(_ms(t) for t in settings['targets_ms'])}",
        f"- fixed configurations ({settings['fixed_mode']}): {'; '.join(settings['fixed']) or 'none'}",
        f"- energy: {_sources(summary)}",
        "",
        "## Per target",
        "",
        *_markdown_table(TARGET_HEADERS, target_rows(summary)),
        "",
        "## The issue's targets",
        "",
        *_markdown_table(CHECK_HEADERS, check_rows(summary)),
        "",
        "## What ran",
        "",
    ]
    for entry in summary["targets"]:
        planned, greedy = entry["planned"], entry["greedy"]
        if planned is None:
            continue
        chosen = ", ".join(f"{label} ×{count}" for label, count in planned["configs"].items())
        models = ", ".join(f"{name} ×{count}" for name, count in greedy["models"].items())
        best = f"; {planned['best_effort_runs']} best effort" if planned["best_effort_runs"] else ""
        lines.append(
            f"- {_ms(entry['target_ms'])}: planned {chosen} (predicted accuracy "
            f"{planned['predicted_accuracy']:.1%}{best}); baseline (a) on {models}"
        )
    lines += _type_lines(summary)
    lines += [
        "",
        "## Fixed configurations",
        "",
        *_markdown_table(FIXED_HEADERS, fixed_rows(summary)),
        "",
        "## Method",
        "",
        "- Questions are ones no calibration used. Latency is the wall time of each call, planning "
        "included; hit rate is the share of runs within the target.",
        "- Baseline (a): greedy, no reasoning cap (budget -1), 1 sample, on the largest model whose "
        "direct answer is predicted to fit the target (else the smallest), under the same deadline guard.",
        "- Fixed configurations run once per question under the largest target; one meets target t on a "
        "question when it ended within t. The oracle at t is the most accurate one whose p99 is within t.",
        "- Accuracy intervals are 95 % Wilson intervals over questions. The accuracy checks also count "
        "the questions only the planner or only the baseline got right, with the exact McNemar p-value "
        "of that split (small: the difference is more than chance; the oracle is picked in hindsight "
        "on these same questions, which favours it).",
        "",
        plot_note,
        "",
    ]
    return "\n".join(lines)


def _close(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Two plotted points a label would overlap on (log latency axis)."""
    return abs(a[0] - b[0]) <= 0.15 * max(a[0], b[0]) and abs(a[1] - b[1]) <= 0.02


def plot(summary: dict[str, Any], path: Path) -> bool:
    """Accuracy against measured p99 latency: the fixed configurations and their frontier, the
    planner at every target, baseline (a), and the targets. False (nothing written) without
    matplotlib."""
    try:
        from matplotlib.figure import Figure  # no pyplot: no global backend or figure registry
    except ImportError:
        return False
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    axes = figure.add_subplot()
    fixed = [(a["p99_ms"] / 1000, a["accuracy"]) for a in summary["fixed"]]
    if fixed:
        axes.scatter(*zip(*fixed, strict=True), s=12, color="0.6", label="fixed configurations")
        best = [fixed[i] for i in frontier(fixed)]
        axes.plot(
            *zip(*best, strict=True), drawstyle="steps-post", marker="o", markersize=3, color="tab:blue",
            label="fixed frontier (the oracle)",
        )  # fmt: skip
    for kind, marker, color, label in (
        ("planned", "*", "tab:red", "planned"),
        ("greedy", "s", "tab:orange", "(a) greedy, no cap"),
    ):
        points = [(e[kind]["p99_ms"] / 1000, e[kind]["accuracy"]) for e in summary["targets"] if e[kind]]
        if points:
            axes.scatter(*zip(*points, strict=True), s=90, marker=marker, color=color, zorder=3, label=label)
    labels: dict[tuple[float, float], list[str]] = {}  # targets whose planned points coincide
    for entry in summary["targets"]:
        axes.axvline(entry["target_ms"] / 1000, color="0.8", linestyle=":", linewidth=1)
        if entry["planned"]:
            point = (entry["planned"]["p99_ms"] / 1000, entry["planned"]["accuracy"])
            near = next((p for p in labels if _close(p, point)), point)
            labels.setdefault(near, []).append(_ms(entry["target_ms"]))
    for point, names in labels.items():
        axes.annotate(", ".join(names), point, textcoords="offset points", xytext=(6, -12), fontsize=7)
    # The accuracies the ladder reaches, not the whole [0, 1]: small models score low.
    highest = max([a["accuracy_high"] for a in summary["fixed"]] + [
        e[k]["accuracy_high"] for e in summary["targets"] for k in ("planned", "greedy") if e[k]
    ] + [0.1])  # fmt: skip
    axes.set_ylim(-0.01, min(1.02, 1.1 * highest))
    axes.set_xscale("log")
    axes.set_xlabel("measured p99 latency (s); dotted: targets")
    axes.set_ylabel("accuracy")
    axes.legend(loc="upper left", fontsize="small")
    save_png(figure, path)
    return True
