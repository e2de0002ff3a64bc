"""``--eval robotics``: the project's own eval set of questions a robot asks, with exact answers.

Nine families, each at difficulty 1 to 4 (the number of reasoning steps the answer takes), so
that a reasoning budget and votes visibly matter:

- yes/no feasibility: ``battery`` (charge for a trip, a round trip, with a reserve), ``payload``
  (an arm's limit against a box and its parts, the gripper's own weight, grams), ``deadline``
  (reaching a door before it closes: speed, a wait for a lift, cm/s);
- choices by stated rules: ``gripper`` (rules checked in order; the first that matches applies),
  ``route`` (the shortest route that avoids blocked corridors, lengths summed per corridor);
- numbers from sensor readings: ``sensor`` (cm to m, speed, wheel-encoder distance and speed),
  ``charge`` (hours or minutes until the battery reaches a level, in one or two phases);
- short texts: ``waypoint`` (the next stop of a patrol, looping, skipping a blocked one, k stops
  ahead), ``object`` (the middle object from relations, the heaviest one, the heaviest one the
  arm can lift, weights in g and kg).

Question i of the set is drawn from its own random stream ``default_rng([SEED, i])`` (redrawn
from ``[SEED, i, attempt]`` if an earlier question has the same text), so the set is the same on
every machine and no question repeats; families and difficulties cycle,
so every slice of 36 questions holds each (family, difficulty) once. Like GSM8K here, questions
0–499 are the calibration (train) split and 500 on the test split (bench). The answer is
computed from the same numbers the text states; tests/test_robotics_eval.py reads the numbers
back out of the text and computes every answer a second, independent way.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from fractions import Fraction

import numpy as np

SEED = 20261201
SIZE = 1000
TRAIN = range(0, 500)  # what the shipped tables were calibrated on
TEST = range(500, SIZE)  # what the README's measurements used (bench refuses the train split)

GRIPPERS = ("vacuum cup", "soft fingers", "magnetic gripper", "parallel jaw")
WAYPOINTS = ("dock", "loading bay", "shelf", "workbench", "door", "elevator", "charger", "desk")
OBJECTS = ("cup", "box", "ball", "bottle", "book", "can", "plate", "tool")


def record(index: int) -> dict:
    """Question ``index`` of the set: ``question``, ``answer``, ``type``, ``choices`` (for a
    choice), ``family``, ``difficulty``."""
    if not 0 <= index < SIZE:
        raise IndexError(f"the robotics set has questions 0 to {SIZE - 1}")
    return dict(_all()[index])


def records(indices: range = range(SIZE)) -> list[dict]:
    return [record(i) for i in indices]


@functools.cache
def _all() -> tuple[dict, ...]:
    """Every question, made once: a question whose text an earlier one already has is drawn
    again from the next stream ``[SEED, i, attempt]``, so train and test share no question."""
    seen: set[str] = set()
    made = []
    for index in range(SIZE):
        family, make = FAMILIES[index % len(FAMILIES)]
        difficulty = 1 + (index // len(FAMILIES)) % 4
        for attempt in itertools.count():
            stream = [SEED, index] if attempt == 0 else [SEED, index, attempt]
            drawn = make(np.random.default_rng(stream), difficulty)
            if drawn["question"] not in seen:
                break
        seen.add(drawn["question"])
        made.append({"index": index, "family": family, "difficulty": difficulty, **drawn})
    return tuple(made)


def number_text(value: Fraction | int) -> str:
    """A value as the answer states it: an integer, or a decimal without trailing zeros (the
    generator only makes values with a finite decimal expansion)."""
    value = Fraction(value)
    if value.denominator == 1:
        return str(value.numerator)
    text = f"{float(value):.6f}".rstrip("0").rstrip(".")
    if Fraction(text) != value:
        raise ValueError(f"{value} has no short decimal form")
    return text


def _yes_no(value: bool) -> str:
    return "yes" if value else "no"


def _pick(rng: np.random.Generator, options, k: int | None = None):
    if k is None:
        return options[int(rng.integers(len(options)))]
    return [options[int(i)] for i in rng.choice(len(options), size=k, replace=False)]


def _battery(rng: np.random.Generator, difficulty: int) -> dict:
    trips = 2 if difficulty >= 3 else 1
    while True:  # redraw until the charge is a plausible percentage on either side of the need
        feasible = bool(rng.integers(2))
        rate = int(rng.integers(1, 5))  # % per 100 m
        distance = 100 * int(rng.integers(3, 15))  # m
        reserve = 5 * int(rng.integers(1, 5)) if difficulty == 4 else 0
        need = rate * distance * trips // 100 + reserve
        if difficulty == 1:
            need = int(rng.integers(10, 70))
        charge = need + int(rng.integers(2, 12)) * (1 if feasible else -1)
        if 1 <= charge <= 100:
            break
    if difficulty == 1:
        text = f"The robot's battery is at {charge}%. The trip needs {need}% of the battery."
    else:
        trip = f"drive {distance} m to the station and back" if trips == 2 else f"drive {distance} m"
        text = (
            f"The robot's battery is at {charge}%. Driving uses {rate}% of the battery per 100 m. "
            f"It must {trip}."
        )
        if reserve:
            text += f" It must arrive with at least {reserve}% left as a reserve."
    return {
        "question": text + " Can it make the trip without recharging?",
        "answer": _yes_no(feasible),
        "type": "yesno",
    }


def _payload(rng: np.random.Generator, difficulty: int) -> dict:
    limit = int(rng.integers(3, 16))  # kg
    feasible = bool(rng.integers(2))
    if difficulty == 1:
        weight = Fraction(
            limit * 10 + (-int(rng.integers(1, 20)) if feasible else int(rng.integers(1, 20))), 10
        )
        text = f"The robot arm can lift at most {limit} kg. The object weighs {number_text(weight)} kg."
        total = weight
    else:
        parts = int(rng.integers(2, 9))
        part_g = 50 * int(rng.integers(2, 20))  # g
        box = Fraction(int(rng.integers(2, 20)), 10)  # kg
        gripper = Fraction(int(rng.integers(2, 10)), 10) if difficulty >= 3 else Fraction(0)
        total = box + gripper + Fraction(parts * part_g, 1000)
        limit = (
            int(total) + (1 if feasible else 0)
            if total.denominator != 1
            else int(total) + (1 if feasible else -1)
        )
        limit = max(limit, 1)
        part = f"{part_g} g" if difficulty == 4 else f"{number_text(Fraction(part_g, 1000))} kg"
        text = (
            f"The robot arm can lift at most {limit} kg. It must lift a box of {number_text(box)} kg "
            f"holding {parts} parts of {part} each."
        )
        if gripper:
            text += f" The gripper itself weighs {number_text(gripper)} kg, which counts against the limit."
    return {"question": text + " Can the arm lift it?", "answer": _yes_no(total <= limit), "type": "yesno"}


def _deadline(rng: np.random.Generator, difficulty: int) -> dict:
    speed = Fraction(int(rng.integers(2, 11)), 10)  # m/s: 0.2 to 1.0
    distance = int(rng.integers(4, 40))
    wait = 5 * int(rng.integers(1, 7)) if difficulty >= 3 else 0
    needed = distance / speed + wait
    closes = int(needed) + int(rng.integers(2, 10)) * (1 if rng.integers(2) else -1)
    closes = max(closes, 1)
    if difficulty == 1:
        needed = Fraction(int(rng.integers(5, 90)))
        closes = max(int(needed) + int(rng.integers(2, 10)) * (1 if rng.integers(2) else -1), 1)
        text = f"The robot needs {needed} s to reach the door. The door closes in {closes} s."
    else:
        shown = f"{number_text(speed * 100)} cm/s" if difficulty == 4 else f"{number_text(speed)} m/s"
        text = f"The robot moves at {shown}. The door is {distance} m away and closes in {closes} s."
        if wait:
            text += f" On the way it must wait {wait} s for a lift."
    return {
        "question": text + " Does the robot reach the door before it closes?",
        "answer": _yes_no(needed < closes),
        "type": "yesno",
    }


_MATERIALS = ("steel", "plastic", "glass", "cardboard", "wood")


def _gripper(rng: np.random.Generator, difficulty: int) -> dict:
    """Rules in order; the object is drawn so that the first matching rule is rule
    ``difficulty`` (difficulty 4: no rule matches, the default applies) — the answer takes that
    many checks — and at difficulty 4 its weight is stated in grams."""
    limit = int(rng.integers(1, 4))  # kg, for the vacuum rule
    rules = (
        "Use the soft fingers for fragile objects. Otherwise use the magnetic gripper for steel "
        f"objects. Otherwise use the vacuum cup for flat objects under {limit} kg. Otherwise use "
        "the parallel jaw."
    )
    target = difficulty  # 1 fragile, 2 steel, 3 flat and light, 4 none
    fragile = target == 1
    material = "steel" if target == 2 else _pick(rng, ("plastic", "cardboard", "wood"))
    if target == 1:
        material = _pick(rng, ("glass", "plastic"))
    flat = target == 3 or bool(rng.integers(2))
    weight_g = (
        100 * int(rng.integers(1, 10 * limit))
        if target == 3
        else 100 * int(rng.integers(10 * limit + 1, 10 * limit + 30))
    )
    if target == 4 and not flat:
        weight_g = 100 * int(rng.integers(1, 40))
    weight = f"{weight_g} g" if difficulty == 4 else f"{number_text(Fraction(weight_g, 1000))} kg"
    shape = "flat" if flat else "round"
    description = f"a {'fragile' if fragile else 'sturdy'} {shape} {material} part weighing {weight}"
    first = next(
        name
        for name, applies in (
            ("soft fingers", fragile),
            ("magnetic gripper", material == "steel"),
            ("vacuum cup", flat and weight_g < 1000 * limit),
            ("parallel jaw", True),
        )
        if applies
    )
    options = list(GRIPPERS)
    rng.shuffle(options)
    return {
        "question": f"{rules} The robot must pick up {description}. Which gripper should it use?",
        "answer": "ABCD"[options.index(first)],
        "type": "choice",
        "choices": options,
    }


def _route(rng: np.random.Generator, difficulty: int) -> dict:
    """Routes through numbered corridors; some corridors are blocked; the shortest open route.
    Difficulty: 2 routes, one blocked (1); 3 routes (2); corridor lengths given, route lengths
    to be summed (3); and 4 routes with two blocked corridors (4)."""
    count = {1: 2, 2: 3, 3: 3, 4: 4}[difficulty]
    corridors = np.arange(1, 7)
    while True:
        blocked = sorted(
            int(c) for c in rng.choice(corridors, size=2 if difficulty == 4 else 1, replace=False)
        )
        length = {int(c): 5 * int(rng.integers(2, 13)) for c in corridors}
        routes = [sorted(int(c) for c in rng.choice(corridors, size=2, replace=False)) for _ in range(count)]
        totals = [sum(length[c] for c in route) for route in routes]
        open_routes = [i for i, route in enumerate(routes) if not set(route) & set(blocked)]
        distinct = len({tuple(r) for r in routes}) == count and len(set(totals)) == count
        # Difficulty 1: one route left open; otherwise at least two open routes to compare.
        if distinct and (len(open_routes) == 1 if difficulty == 1 else len(open_routes) >= 2):
            break
    letters = "ABCD"[:count]
    if difficulty >= 3:
        used = sorted({c for route in routes for c in route})
        lengths = ", ".join(f"corridor {c} is {length[c]} m" for c in used)
        described = "; ".join(
            f"route {letter} uses corridors {a} and {b}"
            for letter, (a, b) in zip(letters, routes, strict=True)
        )
        described = f"{described}. The lengths: {lengths}"
    else:
        described = "; ".join(
            f"route {letter} uses corridors {a} and {b} ({total} m)"
            for letter, (a, b), total in zip(letters, routes, totals, strict=True)
        )
    blocked_text = " and ".join(f"corridor {c}" for c in blocked)
    verb = "are" if len(blocked) > 1 else "is"
    best = min(open_routes, key=lambda i: totals[i])
    question = (
        f"The robot can reach the loading bay by {count} routes: {described}. "
        f"{blocked_text[0].upper() + blocked_text[1:]} {verb} blocked. Which is the shortest open route?"
    )
    return {
        "question": question,
        "answer": letters[best],
        "type": "choice",
        "choices": [f"route {letter}" for letter in letters],
    }


def _sensor(rng: np.random.Generator, difficulty: int) -> dict:
    if difficulty == 1:
        reading = int(rng.integers(20, 900))
        return _number(f"The lidar reads {reading} cm. How many meters is that?", Fraction(reading, 100))
    if difficulty == 2:
        speed = Fraction(int(rng.integers(1, 20)), 4)  # m/s in quarters
        seconds = int(rng.integers(2, 13))
        distance = speed * seconds
        return _number(
            f"The robot drove {number_text(distance)} m in {seconds} s at a steady speed. "
            "What was its speed in m/s?",
            speed,
        )
    per_rev = _pick(rng, (500, 1000, 1024, 2000, 2048, 4096))
    circumference = Fraction(int(rng.integers(2, 9)), 10)  # m
    revs = int(rng.integers(2, 30))
    ticks = per_rev * revs
    distance = circumference * revs
    text = (
        f"The wheel encoder gives {per_rev} ticks per revolution and the wheel's circumference "
        f"is {number_text(circumference)} m. The encoder counted {ticks} ticks"
    )
    if difficulty == 3:
        return _number(text + ". How many meters did the robot travel?", distance)
    seconds = _pick(rng, (2, 4, 5, 8, 10))
    return _number(text + f" in {seconds} s. What was the robot's speed in cm/s?", distance * 100 / seconds)


def _charge(rng: np.random.Generator, difficulty: int) -> dict:
    while True:  # redraw until the starting charge is a whole percentage of at most 100
        rate = int(rng.integers(2, 21))  # % per hour
        low = 5 * int(rng.integers(1, 5)) if difficulty > 1 else 0
        hours = Fraction(int(rng.integers(2, 17)), 2) if difficulty > 1 else Fraction(int(rng.integers(1, 9)))
        drive_rate, idle, drive_hours = (
            rate + int(rng.integers(5, 15)),
            max(1, rate // 2),
            int(rng.integers(1, 4)),
        )
        charge = low + (drive_rate * drive_hours + idle * hours if difficulty == 4 else rate * hours)
        if charge <= 100 and charge.denominator == 1:
            break
    start = f"The robot's battery is at {charge}%"
    if difficulty == 1:
        return _number(
            f"{start} and it uses {rate}% per hour. How many hours until the battery is empty?", hours
        )
    if difficulty == 2:
        return _number(
            f"{start} and it uses {rate}% per hour. How many hours until it reaches {low}%?", hours
        )
    if difficulty == 3:
        return _number(
            f"{start} and it uses {rate}% per hour. How many minutes until it reaches {low}%?", hours * 60
        )
    return _number(
        f"{start}. It drives for {drive_hours} hours using {drive_rate}% per hour, then waits using "
        f"{idle}% per hour. How many hours can it wait before the battery reaches {low}%?",
        hours,
    )


def _number(question: str, value: Fraction) -> dict:
    return {"question": question, "answer": number_text(value), "type": "number"}


def _waypoint(rng: np.random.Generator, difficulty: int) -> dict:
    count = int(rng.integers(4, 7))
    stops = _pick(rng, WAYPOINTS, count)
    order = ", ".join(stops)
    loop = "; after the last it goes back to the first" if difficulty >= 2 else ""
    text = f"The robot patrols these waypoints in order: {order}{loop}."
    if difficulty == 1:
        at = int(rng.integers(0, count - 1))
        return _text(f"{text} It is at the {stops[at]}. What is its next waypoint?", stops[at + 1])
    if difficulty == 2:
        at = count - 1 if rng.integers(2) else count - 2
        return _text(f"{text} It is at the {stops[at]}. What is its next waypoint?", stops[(at + 1) % count])
    if difficulty == 3:
        at = int(rng.integers(0, count))
        skipped = (at + 1) % count
        return _text(
            f"{text} It is at the {stops[at]}, and the {stops[skipped]} is closed, so it skips it. "
            "What is its next waypoint?",
            stops[(at + 2) % count],
        )
    at, ahead = int(rng.integers(0, count)), int(rng.integers(2, 7))
    return _text(
        f"{text} It is at the {stops[at]}. At which waypoint will it be after {ahead} more stops?",
        stops[(at + ahead) % count],
    )


def _object(rng: np.random.Generator, difficulty: int) -> dict:
    if difficulty <= 2:
        a, b, c = _pick(rng, OBJECTS, 3)  # left to right
        if difficulty == 1:
            return _text(
                f"On the table, from left to right, are the {a}, the {b} and the {c}. "
                "Which object is in the middle?",
                b,
            )
        facts = [f"The {a} is to the left of the {b}.", f"The {c} is to the right of the {b}."]
        if rng.integers(2):
            facts.reverse()
        return _text(
            f"Three objects stand in a row on the table. {' '.join(facts)} Which object is in the middle?", b
        )
    names = _pick(rng, OBJECTS, 3)
    while True:
        grams = [50 * int(rng.integers(2, 50)) for _ in names]
        if len(set(grams)) == 3:
            break
    weights = ", ".join(
        f"the {name} {number_text(Fraction(g, 1000))} kg" if g >= 1000 or i == 1 else f"the {name} {g} g"
        for i, (name, g) in enumerate(zip(names, grams, strict=True))
    )
    if difficulty == 3:
        heaviest = names[grams.index(max(grams))]
        return _text(f"The robot weighs three objects: {weights}. Which object is the heaviest?", heaviest)
    limit = sorted(grams)[1] + 50 * int(rng.integers(0, 2))  # at least two objects are liftable
    liftable = [g for g in grams if g <= limit]
    best = names[grams.index(max(liftable))]
    return _text(
        f"The robot weighs three objects: {weights}. It can lift at most {limit} g. "
        "Which is the heaviest object it can lift?",
        best,
    )


def _text(question: str, answer: str) -> dict:
    return {"question": question, "answer": answer, "type": "text"}


FAMILIES: tuple[tuple[str, Callable[[np.random.Generator, int], dict]], ...] = (
    ("battery", _battery),
    ("payload", _payload),
    ("deadline", _deadline),
    ("gripper", _gripper),
    ("route", _route),
    ("sensor", _sensor),
    ("charge", _charge),
    ("waypoint", _waypoint),
    ("object", _object),
)
