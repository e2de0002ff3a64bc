"""The robotics eval set: deterministic per seed, train and test apart, and every answer right —
checked by reading the numbers back out of each question's text and computing the answer a
second, independent way (none of the generator's code or variables is used here)."""

from __future__ import annotations

import re
from collections import Counter
from fractions import Fraction

import pytest

from edgetts import evals
from edgetts.evals import robotics
from edgetts.tts.answer_types import infer


def _num(text: str) -> Fraction:
    return Fraction(text)


def _find(pattern: str, text: str) -> re.Match:
    found = re.search(pattern, text)
    assert found, f"{pattern!r} not in {text!r}"
    return found


def _kg(value: str, unit: str) -> Fraction:
    return _num(value) / (1000 if unit == "g" else 1)


def battery(q: str, difficulty: int) -> str:
    charge = int(_find(r"battery is at (\d+)%", q)[1])
    if difficulty == 1:
        need = Fraction(_find(r"trip needs (\d+)%", q)[1])
    else:
        rate = int(_find(r"uses (\d+)% of the battery per 100 m", q)[1])
        metres = int(_find(r"drive (\d+) m", q)[1])
        trips = 2 if "and back" in q else 1
        reserve = re.search(r"at least (\d+)% left", q)
        need = Fraction(rate * metres * trips, 100) + (int(reserve[1]) if reserve else 0)
    return "yes" if charge >= need else "no"


def payload(q: str, difficulty: int) -> str:
    limit = _num(_find(r"lift at most (\S+) kg", q)[1])
    if difficulty == 1:
        total = _num(_find(r"object weighs (\S+) kg", q)[1])
    else:
        box = _num(_find(r"box of (\S+) kg", q)[1])
        count, each, unit = _find(r"holding (\d+) parts of (\S+) (kg|g) each", q).groups()
        gripper = re.search(r"gripper itself weighs (\S+) kg", q)
        total = box + int(count) * _kg(each, unit) + (_num(gripper[1]) if gripper else 0)
    return "yes" if total <= limit else "no"


def deadline(q: str, difficulty: int) -> str:
    closes = int(_find(r"closes in (\d+) s", q)[1])
    if difficulty == 1:
        needed = Fraction(_find(r"needs (\d+) s", q)[1])
    else:
        value, unit = _find(r"moves at (\S+) (m/s|cm/s)", q).groups()
        speed = _num(value) / (100 if unit == "cm/s" else 1)
        wait = re.search(r"wait (\d+) s", q)
        needed = int(_find(r"door is (\d+) m away", q)[1]) / speed + (int(wait[1]) if wait else 0)
    return "yes" if needed < closes else "no"


def gripper(q: str, _difficulty: int, choices: list[str]) -> str:
    under = int(_find(r"flat objects under (\d+) kg", q)[1])
    fragility, shape, material, weight, unit = _find(
        r"pick up an? (fragile|sturdy) (flat|round) (\w+) part weighing (\S+) (kg|g)", q
    ).groups()
    if fragility == "fragile":
        name = "soft fingers"
    elif material == "steel":
        name = "magnetic gripper"
    elif shape == "flat" and _kg(weight, unit) < under:
        name = "vacuum cup"
    else:
        name = "parallel jaw"
    return "ABCD"[choices.index(name)]


def route(q: str, _difficulty: int, choices: list[str]) -> str:
    lengths = {c: int(m) for c, m in re.findall(r"corridor (\d) is (\d+) m", q)}
    blocked_sentence = _find(r"\. (Corridor [^.]*) (?:is|are) blocked", q)[1]
    blocked = set(re.findall(r"\d", blocked_sentence))
    best = None
    for letter, a, b, total in re.findall(r"route ([A-D]) uses corridors (\d) and (\d)(?: \((\d+) m\))?", q):
        length = int(total) if total else lengths[a] + lengths[b]
        if {a, b} & blocked:
            continue
        if best is None or length < best[0]:
            best = (length, letter)
    assert best is not None and f"route {best[1]}" in choices
    return best[1]


def sensor(q: str, difficulty: int) -> Fraction:
    if difficulty == 1:
        return _num(_find(r"reads (\d+) cm", q)[1]) / 100
    if difficulty == 2:
        metres, seconds = _find(r"drove (\S+) m in (\d+) s", q).groups()
        return _num(metres) / int(seconds)
    per_rev = int(_find(r"gives (\d+) ticks per revolution", q)[1])
    circumference = _num(_find(r"circumference is (\S+) m", q)[1])
    ticks = int(_find(r"counted (\d+) ticks", q)[1])
    metres = Fraction(ticks, per_rev) * circumference
    seconds = re.search(r"ticks in (\d+) s", q)
    return metres if seconds is None else metres * 100 / int(seconds[1])


def charge(q: str, difficulty: int) -> Fraction:
    level = int(_find(r"battery is at (\d+)%", q)[1])
    if difficulty == 4:
        hours, drain, idle = _find(
            r"drives for (\d+) hours using (\d+)% per hour, then waits using (\d+)%", q
        ).groups()
        low = int(_find(r"reaches (\d+)%", q)[1])
        return Fraction(level - int(hours) * int(drain) - low, int(idle))
    rate = int(_find(r"uses (\d+)% per hour", q)[1])
    low = 0 if "is empty" in q else int(_find(r"reaches (\d+)%", q)[1])
    hours = Fraction(level - low, rate)
    return hours * 60 if "How many minutes" in q else hours


def waypoint(q: str, _difficulty: int) -> str:
    order = _find(r"in order: (.*?)(; after the last it goes back to the first)?\.", q)
    stops = order[1].split(", ")
    at = stops.index(_find(r"It is at the (.+?)[.,]", q)[1])
    closed = re.search(r"the ([a-z ]+?) is closed", q)
    ahead = re.search(r"after (\d+) more stops", q)
    steps = int(ahead[1]) if ahead else 1
    position = at
    for _ in range(steps):
        position += 1
        if order[2] is None:
            assert position < len(stops), "a patrol that does not loop cannot pass its last stop"
        if closed and stops[position % len(stops)] == closed[1]:
            position += 1
    return stops[position % len(stops)]


def object_(q: str, difficulty: int) -> str:
    if difficulty == 1:
        return _find(r"from left to right, are the (\w+), the (\w+) and the (\w+)", q)[2]
    if difficulty == 2:
        left = _find(r"The (\w+) is to the left of the (\w+)\.", q).groups()
        right = _find(r"The (\w+) is to the right of the (\w+)\.", q).groups()
        assert left[1] == right[1]
        return left[1]
    weights = {name: _kg(value, unit) for name, value, unit in re.findall(r"the (\w+) (\d[\d.]*) (kg|g)", q)}
    limit = re.search(r"lift at most (\d+) g", q)
    if limit:
        weights = {name: w for name, w in weights.items() if w <= _num(limit[1]) / 1000}
    return max(weights, key=weights.__getitem__)


CHECKS = {
    "battery": battery,
    "payload": payload,
    "deadline": deadline,
    "sensor": sensor,
    "charge": charge,
    "waypoint": waypoint,
    "object": object_,
}


def test_every_answer_is_right_by_a_second_computation():
    for record in robotics.records():
        q, family, difficulty = record["question"], record["family"], record["difficulty"]
        if family in ("gripper", "route"):
            expected = {"gripper": gripper, "route": route}[family](q, difficulty, record["choices"])
        else:
            expected = CHECKS[family](q, difficulty)
        if record["type"] == "number":
            assert Fraction(record["answer"]) == expected, record
        else:
            assert record["answer"] == expected, record


def test_the_set_is_deterministic_per_seed_and_another_seed_gives_another(monkeypatch):
    first = robotics.records(range(72))
    robotics._all.cache_clear()
    assert robotics.records(range(72)) == first  # made again from scratch: the same questions
    monkeypatch.setattr(robotics, "SEED", robotics.SEED + 1)
    robotics._all.cache_clear()
    try:
        other = robotics.records(range(72))
    finally:
        monkeypatch.undo()
        robotics._all.cache_clear()
    assert [r["question"] for r in other] != [r["question"] for r in first]
    assert [(r["family"], r["difficulty"]) for r in other] == [(r["family"], r["difficulty"]) for r in first]


def test_train_and_test_are_apart_and_every_family_and_difficulty_is_in_both():
    train = robotics.records(robotics.TRAIN)
    test = robotics.records(robotics.TEST)
    assert not {r["question"] for r in train} & {r["question"] for r in test}
    cells = {(f, d) for f, _ in robotics.FAMILIES for d in range(1, 5)}
    for split in (train, test, robotics.records(range(36))):
        assert {(r["family"], r["difficulty"]) for r in split} == cells
    kinds = Counter(r["type"] for r in robotics.records(range(180)))
    assert kinds == {"yesno": 60, "choice": 40, "number": 40, "text": 40}
    yes_no = Counter(r["answer"] for r in train if r["type"] == "yesno")
    assert 0.4 < yes_no["yes"] / sum(yes_no.values()) < 0.6, yes_no


def test_loading_the_named_set_types_each_question():
    problems = evals.load("robotics", 500, 36)
    assert [p.index for p in problems] == list(range(500, 536))
    assert {p.kind for p in problems} == {"yesno", "choice", "number", "text"}
    choice = next(p for p in problems if p.kind == "choice")
    assert choice.reference in choice.answer_type.letters and len(choice.answer_type.choices) >= 2
    assert evals.name_of("Robotics") == "robotics"
    assert "seed" in evals.source("robotics")
    with pytest.raises(evals.EdgeTTSError, match="questions 0 to 999"):
        evals.load("robotics", 1000)


def test_the_inference_rule_types_every_robotics_question():
    """Given the options, the documented rule (tts/answer_types.py) finds each question's type,
    with text as the default of a set that mixes types."""
    for record in robotics.records():
        found = infer(record["question"], tuple(record.get("choices", ())), default="text")
        assert found.kind == record["type"], record["question"]
