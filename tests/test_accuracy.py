"""The vote-accuracy estimator against brute force over the runtime's own vote, and the table."""

from __future__ import annotations

import itertools
import json
import random

import numpy as np
import pytest
import yaml

from edgetts.calibration.accuracy import AccuracyTable, accuracy_table, anchored_vote_accuracy, vote_accuracy
from edgetts.errors import EdgeTTSError
from edgetts.tts.vote import majority


def brute_force(answers: list[str | None], reference: str, n: int) -> float:
    """Every n-subset in every order the runtime could number it: all ordered n-tuples of
    distinct samples, each voted with the runtime's ``majority``."""
    tuples = list(itertools.permutations(range(len(answers)), n))
    wins = sum(majority([answers[i] for i in chosen])[0] == reference for chosen in tuples)
    return wins / len(tuples)


def random_case(rng: random.Random, size: int) -> list[str | None]:
    kind = rng.random()
    if kind < 0.1:
        return [None] * size
    if kind < 0.2:
        return ["a"] * size
    if kind < 0.3:  # an exact tie between the reference and another answer
        half = ["a", "b"] * (size // 2) + [None] * (size % 2)
        rng.shuffle(half)
        return half
    return [rng.choice(["a", "a", "b", "c", "d", None]) for _ in range(size)]


def test_equals_brute_force_on_random_cases():
    rng = random.Random(7)
    for _ in range(120):
        answers = random_case(rng, rng.randint(1, 7))
        for n in range(1, len(answers) + 1):
            assert vote_accuracy(answers, "a", n) == pytest.approx(brute_force(answers, "a", n), abs=1e-12)


def test_equals_brute_force_on_larger_k_small_n():
    rng = random.Random(11)
    for _ in range(15):
        answers = random_case(rng, rng.randint(8, 10))
        for n in (1, 2, 3):
            assert vote_accuracy(answers, "a", n) == pytest.approx(brute_force(answers, "a", n), abs=1e-12)


def test_by_hand():
    # n = 2 from [a, a, b]: {a, a} wins (1 subset), {a, b} ties and wins half the time (2 subsets)
    assert vote_accuracy(["a", "a", "b"], "a", 2) == pytest.approx(2 / 3, abs=1e-15)
    # a None does not vote, so {a, None} is a clean win
    assert vote_accuracy(["a", None, "b"], "a", 2) == pytest.approx(1 / 3 + 1 / 6, abs=1e-15)


def test_degenerate_cases():
    for n in range(1, 6):
        assert vote_accuracy(["a"] * 5, "a", n) == 1.0
        assert vote_accuracy([None] * 5, "a", n) == 0.0  # no votes is wrong
        assert vote_accuracy(["b"] * 5, "a", n) == 0.0
        assert vote_accuracy(["b", "c", None, "b", "d"], "a", n) == 0.0  # reference never sampled


def test_two_way_tie_follows_the_runtime_tie_break():
    # K = 2, one right and one wrong: n = 1 is a coin flip; n = 2 is a tie that the runtime gives
    # to its sample 0, which is either stored sample with equal chance
    for answers in (["a", "b"], ["b", "a"]):
        assert vote_accuracy(answers, "a", 1) == 0.5
        assert vote_accuracy(answers, "a", 2) == 0.5


def test_storage_order_does_not_matter():
    rng = random.Random(3)
    answers = [rng.choice(["a", "b", "c", None]) for _ in range(12)]
    shuffled = answers[:]
    rng.shuffle(shuffled)
    for n in range(1, 13):
        assert vote_accuracy(shuffled, "a", n) == pytest.approx(vote_accuracy(answers, "a", n), abs=1e-15)


def test_n_out_of_range():
    with pytest.raises(ValueError):
        vote_accuracy(["a", "b"], "a", 3)
    with pytest.raises(ValueError):
        vote_accuracy(["a", "b"], "a", 0)


def make_answers(rng: random.Random, questions: int, samples: int, budgets: int) -> list:
    """answers[q][k][b], more often right at larger budgets."""
    return [
        [
            [rng.choice(["a", "b", None]) if rng.random() > 0.3 + 0.1 * b else "a" for b in range(budgets)]
            for _ in range(samples)
        ]
        for _ in range(questions)
    ]


def test_table_is_the_mean_of_question_accuracies_with_an_interval_around_it():
    rng = random.Random(5)
    answers = make_answers(rng, questions=40, samples=6, budgets=3)
    table = accuracy_table(answers, ["a"] * 40, [0, 64, 256], max_n=4)
    assert table.budgets == [0, 64, 256]
    assert table.samples == [1, 2, 3, 4]
    assert table.questions == 40
    assert table.mean.shape == table.low.shape == table.high.shape == (3, 4)
    assert np.all((table.low <= table.mean) & (table.mean <= table.high))
    assert np.all((table.low > 0) & (table.low < table.high) & (table.high < 1))
    expected = np.mean([vote_accuracy([s[1] for s in q], "a", 3) for q in answers])
    assert table.at(64, 3) == pytest.approx(expected, abs=1e-12)


def test_interval_does_not_collapse_when_every_question_is_right():
    answers = [[["a"]] * 4 for _ in range(20)]
    table = accuracy_table(answers, ["a"] * 20, [128], max_n=4)
    assert np.all(table.mean == 1.0) and np.all(table.high == 1.0)
    assert np.all(table.low < 1.0) and np.all(table.low > 0.8)


def test_table_rejects_inconsistent_calibrations():
    good = [[["a", "b"]] * 3]
    with pytest.raises(EdgeTTSError, match="no calibration questions"):
        accuracy_table([], [], [0, 1], 2)
    with pytest.raises(EdgeTTSError, match="references"):
        accuracy_table(good, ["a", "b"], [0, 1], 2)
    with pytest.raises(EdgeTTSError, match="at least 4 samples"):
        accuracy_table(good, ["a"], [0, 1], 4)
    with pytest.raises(EdgeTTSError, match="one answer per budget"):
        accuracy_table(good, ["a"], [0, 1, 2], 2)


def test_at_rejects_what_was_not_calibrated():
    table = accuracy_table([[["a", "b"]] * 3], ["a"], [0, 32], 3)
    with pytest.raises(EdgeTTSError, match="budget 16"):
        table.at(16, 1)
    with pytest.raises(EdgeTTSError, match="4 samples"):
        table.at(0, 4)


def test_round_trip_through_json_and_yaml_is_exact():
    rng = random.Random(9)
    table = accuracy_table(make_answers(rng, 30, 8, 4), ["a"] * 30, [0, 32, 128, 512], max_n=8)
    data = table.to_dict()
    for text in (json.dumps(data), yaml.safe_dump(data)):
        back = AccuracyTable.from_dict(yaml.safe_load(text))
        assert back.to_dict() == data
        for key in ("mean", "low", "high"):
            assert np.array_equal(getattr(back, key), getattr(table, key))


def valid_dict() -> dict:
    return accuracy_table([[["a", "b"]] * 3, [["b", "a"]] * 3], ["a", "a"], [0, 32], 2).to_dict()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: [1, 2], "expected a mapping"),
        (lambda d: {k: v for k, v in d.items() if k != "high"}, "missing high"),
        (lambda d: {**d, "budgets": [0, "32"]}, "budgets"),
        (lambda d: {**d, "budgets": [True, 32]}, "budgets"),
        (lambda d: {**d, "budgets": [32, 32]}, "budgets repeat"),
        (lambda d: {**d, "samples": [0, 1]}, "samples"),
        (lambda d: {**d, "questions": 0}, "questions"),
        (lambda d: {**d, "mean": [[0.5, 0.5], [0.5]]}, "mean"),
        (lambda d: {**d, "low": [[0.1, 0.1, 0.1], [0.1, 0.1, 0.1]]}, "low has shape"),
        (lambda d: {**d, "high": [[1.5, 1.0], [1.0, 1.0]]}, "outside"),
        (lambda d: {**d, "mean": [[float("nan"), 0.5], [0.5, 0.5]]}, "outside"),
        (lambda d: {**d, "mean": [["x", 0.5], [0.5, 0.5]]}, "table of numbers"),
        (lambda d: {**d, "low": [[0.9, 0.9], [0.9, 0.9]]}, "between its low and high"),
    ],
)
def test_from_dict_rejects_malformed_tables(change, message):
    with pytest.raises(EdgeTTSError, match=message) as caught:
        AccuracyTable.from_dict(change(valid_dict()))
    assert "\n" not in str(caught.value)


def test_full_calibration_size():
    """A full calibration (500 questions, 7 budgets, K = 16): runs, with the right shape. How fast
    is a benchmark's business, not a test's."""
    rng = random.Random(1)
    budgets = [0, 32, 64, 128, 256, 512, 1024]
    answers = make_answers(rng, questions=500, samples=16, budgets=len(budgets))
    table = accuracy_table(answers, ["a"] * 500, budgets, max_n=16)
    assert table.mean.shape == (7, 16)
    assert table.questions == 500


def anchored_brute_force(anchor: str | None, answers: list[str | None], reference: str, m: int) -> float:
    """The greedy answer as runtime sample 0, then every ordered m-tuple of distinct samples."""
    tuples = list(itertools.permutations(range(len(answers)), m))
    wins = sum(majority([anchor] + [answers[i] for i in chosen])[0] == reference for chosen in tuples)
    return wins / len(tuples)


def test_anchored_equals_brute_force_on_random_cases():
    rng = random.Random(13)
    for _ in range(150):
        answers = random_case(rng, rng.randint(1, 7))
        anchor = rng.choice(["a", "b", "c", "e", None])  # "e": a greedy answer no sample gave
        for m in range(len(answers) + 1):
            assert anchored_vote_accuracy(anchor, answers, "a", m) == pytest.approx(
                anchored_brute_force(anchor, answers, "a", m), abs=1e-12
            ), (anchor, answers, m)


def test_anchored_by_hand():
    # greedy right, samples [b, b]: one sample ties 1-1 and the tie goes to greedy; two outvote it
    assert anchored_vote_accuracy("a", ["b", "b"], "a", 1) == 1.0
    assert anchored_vote_accuracy("a", ["b", "b"], "a", 2) == 0.0
    # greedy wrong (b), samples [a, a, b]: the reference needs both a's and no b (1 subset of 3)
    assert anchored_vote_accuracy("b", ["a", "a", "b"], "a", 2) == pytest.approx(1 / 3, abs=1e-15)
    # m = 0 is the greedy answer alone
    assert anchored_vote_accuracy("a", ["b"], "a", 0) == 1.0
    assert anchored_vote_accuracy(None, ["a"], "a", 0) == 0.0


def test_anchored_table_starts_at_greedy_and_reaches_k_plus_one():
    rng = random.Random(17)
    answers = make_answers(rng, questions=30, samples=4, budgets=2)
    anchors = [[rng.choice(["a", "b", None]) for _ in range(2)] for _ in range(30)]
    table = accuracy_table(answers, ["a"] * 30, [0, 64], max_n=5, anchors=anchors)
    assert table.samples == [1, 2, 3, 4, 5]
    assert table.at(64, 1) == pytest.approx(np.mean([a[1] == "a" for a in anchors]), abs=1e-12)
    pairs = zip(anchors, answers, strict=True)
    expected = np.mean([anchored_vote_accuracy(g[0], [s[0] for s in q], "a", 2) for g, q in pairs])
    assert table.at(0, 3) == pytest.approx(expected, abs=1e-12)
    with pytest.raises(EdgeTTSError, match="at least 5 samples"):
        accuracy_table(answers, ["a"] * 30, [0, 64], max_n=6, anchors=anchors)
