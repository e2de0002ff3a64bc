"""The planner on synthetic candidates: choice, tie-breaks, caps, frontier, errors, reports."""

from __future__ import annotations

import random
import sys

import pytest
from rich.console import Console

from edgetts.errors import EdgeTTSError
from edgetts.planner import Candidate, CandidateSet, Config, NoFeasiblePlanError, format_duration, plan
from edgetts.planner.report import frontier_table, plot_frontier

MiB = 1 << 20


def cand(
    model: str = "m-int4",
    budget: int = 0,
    samples: int = 1,
    latency: float = 0.5,
    accuracy: float = 0.5,
    energy: float | None = 1.0,
    memory: int = 100 * MiB,
) -> Candidate:
    return Candidate(
        config=Config(model, model.rsplit("-", 1)[-1], budget, samples),
        latency_s=latency,
        latency_mean_s=latency * 0.8,
        accuracy=accuracy,
        accuracy_low=max(0.0, accuracy - 0.05),
        accuracy_high=min(1.0, accuracy + 0.05),
        energy_j=energy,
        memory_bytes=memory,
    )


def random_candidates(rng: random.Random, count: int) -> list[Candidate]:
    """Coarse grids, so that equal latencies and equal accuracies occur."""
    return [
        cand(
            model=rng.choice(["a-int4", "b-int8", "c-fp16"]),
            budget=rng.choice([0, 64, 256]),
            samples=rng.randint(1, 8),
            latency=rng.choice([0.1, 0.2, 0.3, 0.5, 0.8, 1.3, 2.1]),
            accuracy=rng.choice([0.2, 0.4, 0.5, 0.6, 0.7, 0.9]),
            energy=rng.choice([None, 0.5, 1.0, 2.0, 4.0]),
            memory=rng.choice([100, 200, 400]) * MiB,
        )
        for _ in range(count)
    ]


def test_chooses_the_most_accurate_candidate_that_fits():
    candidates = [
        cand("a-int4", latency=0.2, accuracy=0.4),
        cand("b-int4", latency=0.5, accuracy=0.6),  # exactly on the target: fits
        cand("c-int4", latency=0.45, accuracy=0.55),
        cand("d-int4", latency=0.9, accuracy=0.8),  # more accurate, too slow
    ]
    result = plan(candidates, latency_s=0.5)
    assert result.chosen.config.model == "b-int4"
    assert result.target_s == 0.5
    assert result.fastest_s == 0.2
    assert not result.best_effort


def test_equal_accuracy_goes_to_lower_energy_then_lower_latency():
    frugal = cand("a-int4", latency=0.4, accuracy=0.7, energy=1.0)
    hungry = cand("b-int4", latency=0.1, accuracy=0.7 + 1e-12, energy=2.0)  # float noise: still a tie
    unknown = cand("c-int4", latency=0.05, accuracy=0.7, energy=None)
    assert plan([hungry, unknown, frugal], latency_s=1.0).chosen == frugal
    faster = cand("d-int4", latency=0.3, accuracy=0.7, energy=1.0)
    assert plan([hungry, unknown, frugal, faster], latency_s=1.0).chosen == faster
    assert plan([hungry, unknown], latency_s=1.0).chosen == hungry  # unknown energy sorts last


def test_a_real_accuracy_difference_is_not_a_tie():
    better = cand("a-int4", accuracy=0.7 + 1e-6, energy=5.0)
    assert plan([cand("b-int4", accuracy=0.7, energy=1.0), better], latency_s=1.0).chosen == better


def test_choice_does_not_depend_on_input_order():
    twins = [
        cand(model, budget, samples)
        for model in ("b-int4", "a-int8")
        for budget in (0, 8)
        for samples in (2, 1)
    ]
    rng = random.Random(0)
    for _ in range(5):
        rng.shuffle(twins)
        assert plan(twins, latency_s=1.0).chosen.config == Config("a-int8", "int8", 0, 1)


def test_memory_cap_excludes():
    big = cand("big-int4", accuracy=0.9, memory=2048 * MiB)
    small = cand("small-int4", accuracy=0.5, memory=300 * MiB)
    assert plan([big, small], latency_s=1.0, memory_bytes=1024 * MiB).chosen == small
    with pytest.raises(NoFeasiblePlanError, match=r"memory cap of 200 MiB .* smallest needs 300 MiB"):
        plan([big, small], latency_s=1.0, memory_bytes=200 * MiB)


def test_memory_cap_holds_even_for_best_effort():
    with pytest.raises(NoFeasiblePlanError, match="memory cap"):
        plan([cand(memory=300 * MiB)], latency_s=0.01, memory_bytes=100 * MiB, best_effort=True)


def test_energy_cap_excludes_and_unknown_energy_counts_as_over_it():
    hungry = cand("a-int4", accuracy=0.9, energy=10.0)
    unknown = cand("b-int4", accuracy=0.8, energy=None)
    frugal = cand("c-int4", accuracy=0.5, energy=2.0)
    assert plan([hungry, unknown, frugal], latency_s=1.0, energy_j=5.0).chosen == frugal
    with pytest.raises(NoFeasiblePlanError, match=r"energy cap of 1 J .* most frugal needs 2 J.*1 without"):
        plan([hungry, unknown, frugal], latency_s=1.0, energy_j=1.0)
    with pytest.raises(NoFeasiblePlanError, match="none of them has an energy estimate"):
        plan([unknown], latency_s=1.0, energy_j=100.0)


def test_latency_error_says_when_unknown_energy_hid_a_fast_enough_candidate():
    candidates = [cand("fast-int4", latency=0.1, energy=None), cand("slow-int4", latency=2.0, energy=1.0)]
    with pytest.raises(NoFeasiblePlanError, match="also excludes 1 that would meet it but have no energy"):
        plan(candidates, latency_s=0.5, energy_j=5.0)


def test_impossible_target_names_the_fastest_configuration():
    candidates = [
        cand("smollm2-135m-int4", budget=0, samples=1, latency=0.73),
        cand("smollm2-135m-int4", budget=64, samples=4, latency=2.5),
    ]
    with pytest.raises(NoFeasiblePlanError) as caught:
        plan(candidates, latency_s=0.3)
    message = str(caught.value)
    assert "300 ms latency target" in message
    assert "fastest achievable is 730 ms (smollm2-135m-int4, budget 0, 1 sample)" in message
    assert "raise the latency target" in message and "--best-effort" in message
    assert "\n" not in message


def test_best_effort_returns_the_fastest():
    fast = cand("a-int4", latency=0.73, accuracy=0.3)
    fast_better = cand("b-int4", latency=0.73, accuracy=0.4)  # same speed: the more accurate
    result = plan(
        [cand("c-int4", latency=2.0, accuracy=0.9), fast, fast_better], latency_s=0.3, best_effort=True
    )
    assert result.best_effort
    assert result.chosen == fast_better
    assert result.fastest_s == 0.73


def test_no_candidates():
    with pytest.raises(EdgeTTSError, match="no configurations"):
        plan([], latency_s=1.0)


def dominates(b: Candidate, a: Candidate) -> bool:
    return (
        b.latency_s <= a.latency_s
        and b.accuracy >= a.accuracy
        and (b.latency_s < a.latency_s or b.accuracy > a.accuracy)
    )


@pytest.mark.parametrize("caps", [{}, {"energy_j": 2.0}, {"memory_bytes": 200 * MiB}])
def test_frontier_is_exactly_the_non_dominated_set(caps):
    rng = random.Random(42)
    for _ in range(40):
        candidates = random_candidates(rng, rng.randint(1, 60))
        try:
            result = plan(candidates, latency_s=1.0, best_effort=True, **caps)
        except NoFeasiblePlanError:
            continue
        allowed = [
            c
            for c in candidates
            if c.memory_bytes <= caps.get("memory_bytes", float("inf"))
            and ("energy_j" not in caps or (c.energy_j is not None and c.energy_j <= caps["energy_j"]))
        ]
        expected = [a for a in allowed if not any(dominates(b, a) for b in allowed)]
        assert sorted(result.frontier, key=id) == sorted(expected, key=id)
        assert [c.latency_s for c in result.frontier] == sorted(c.latency_s for c in result.frontier)
        assert result.fastest_s == min(c.latency_s for c in allowed)
        fitting = [c for c in allowed if c.latency_s <= 1.0]
        if fitting:
            assert result.chosen.accuracy == max(c.accuracy for c in fitting)


def test_candidate_set_gives_the_same_plan_as_a_list():
    candidates = random_candidates(random.Random(1), 200)
    assert plan(CandidateSet(candidates), latency_s=0.5) == plan(candidates, latency_s=0.5)


def test_non_finite_predictions_are_rejected():
    with pytest.raises(ValueError, match="finite"):
        CandidateSet([cand(latency=float("nan"))])


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.73, "730 ms"),
        (0.0004, "0.4 ms"),
        (0.9996, "1 s"),
        (2.5, "2.5 s"),
        (12.34, "12.3 s"),
        (150.2, "150 s"),
    ],
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def render(table) -> str:
    console = Console(record=True, width=200)
    console.print(table)
    return console.export_text()


def test_frontier_table_marks_the_chosen_row():
    candidates = [
        cand("a-int4", latency=0.2, accuracy=0.4),
        cand("b-int4", latency=0.4, accuracy=0.6),
        cand("c-int4", latency=0.9, accuracy=0.8, energy=None),
    ]
    text = render(frontier_table(plan(candidates, latency_s=0.5)))
    chosen_rows = [line for line in text.splitlines() if "▶" in line]
    assert len(chosen_rows) == 1 and "b-int4" in chosen_rows[0]
    assert "c-int4" in text and "unknown" in text  # past the target, still shown


def test_frontier_table_adds_a_chosen_candidate_off_the_frontier():
    frugal = cand("slow-int4", latency=0.4, accuracy=0.7, energy=1.0)
    candidates = [frugal, cand("fast-int4", latency=0.1, accuracy=0.7, energy=3.0)]
    result = plan(candidates, latency_s=0.5)
    assert result.chosen == frugal and frugal not in result.frontier
    assert "slow-int4" in next(line for line in render(frontier_table(result)).splitlines() if "▶" in line)


def test_plot_is_written_atomically_as_a_png(tmp_path):
    pytest.importorskip(
        "matplotlib", reason="matplotlib is the optional plot extra: pip install 'edgetts[plot]'"
    )
    candidates = random_candidates(random.Random(3), 80)
    path = plot_frontier(plan(candidates, latency_s=0.5), candidates, tmp_path / "frontier.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["frontier.png"]  # no temporary file left


def test_plot_creates_folders_and_reports_an_unwritable_path_in_one_line(tmp_path):
    pytest.importorskip(
        "matplotlib", reason="matplotlib is the optional plot extra: pip install 'edgetts[plot]'"
    )
    candidates = [cand()]
    result = plan(candidates, latency_s=1.0)
    assert plot_frontier(result, candidates, tmp_path / "new" / "frontier.png").is_file()
    with pytest.raises(EdgeTTSError, match="cannot write the plot") as caught:
        plot_frontier(result, candidates, tmp_path / "new")  # a folder is in the way
    assert "\n" not in str(caught.value)
    assert [p.name for p in (tmp_path / "new").iterdir()] == ["frontier.png"]  # no temporary file left


def test_plot_without_matplotlib_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    candidates = [cand()]
    with pytest.raises(EdgeTTSError, match=r"pip install 'edgetts\[plot\]'"):
        plot_frontier(plan(candidates, latency_s=1.0), candidates, tmp_path / "frontier.png")
