"""Answer extraction / normalisation table, majority vote and its early stop."""

from __future__ import annotations

import itertools

import pytest

from edgetts.tts.answers import extract_answer, gsm8k_reference, normalize_number
from edgetts.tts.vote import decided, majority

CASES = [
    # plain numbers and the last-number fallback
    ("42", "42"),
    ("The total is 7 apples and then 12 pears, so 19.", "19"),
    ("She has 3 cats.", "3"),
    ("-5", "-5"),
    ("The temperature drops to -12 degrees.", "-12"),
    ("no number here", None),
    ("", None),
    # thousands separators, currency, units, percent
    ("The answer is 1,234.", "1234"),
    ("The answer is $1,234.00", "1234"),
    ("Therefore, the final answer is $18.", "18"),
    ("Therefore, the final answer is 18 dollars.", "18"),
    ("Therefore, the final answer is 2,000,000 people", "2000000"),
    ("The answer is 45%", "45"),
    ("The answer is 3.50", "3.5"),
    ("The answer is 0.25.", "0.25"),
    ("The answer is 10.0", "10"),
    ("The answer is - 7", "-7"),
    ("It costs $ 5", "5"),
    # answer phrases win over later numbers
    ("The answer is 12. Check: 3 * 4 = 12 and 5 + 7 = 12, step 2.", "12"),
    ("Therefore, the final answer is 64. That is 8 squared.", "64"),
    ("Answer: 9", "9"),
    ("answer: 17 (since 10 + 7)", "17"),
    ("#### 72", "72"),
    ("Natalia sold 48/2 = 24 clips in May.\n#### 72", "72"),
    ("THE ANSWER IS 5", "5"),
    ("The final answer is: 100", "100"),
    ("So the answer is 3 and the final answer is 4", "4"),
    # fractions
    ("The answer is 3/4", "3/4"),
    ("The answer is 6/8", "3/4"),
    ("The answer is 8/4", "2"),
    ("The answer is \\frac{1}{2}", "1/2"),
    ("The answer is \\dfrac{10}{4}", "5/2"),
    # boxed
    ("\\boxed{42}", "42"),
    ("so we get \\boxed{1,000} in total, not 5", "1000"),
    ("First \\boxed{3} then corrected: \\boxed{4}", "4"),
    ("\\boxed{\\frac{3}{6}}", "1/2"),
    ("\\boxed{-2.50}", "-2.5"),
    ("\\boxed{x+1}", "x+1"),
    # multiple choice
    ("The answer is B", "B"),
    ("The answer is (C).", "C"),
    ("Answer: D) 14", "D"),
    ("The answer is A.", "A"),
    # a cue with nothing after it falls back to the last number before
    ("We add 5 and 6 to get 11. The answer is", "11"),
    # numbers glued to words are not split from identifiers
    ("Route A2 is blocked; take 3 turns.", "3"),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


def test_table_is_large_enough():
    assert len(CASES) >= 40


@pytest.mark.parametrize(
    ("raw", "expected"), [("1,000", "1000"), ("$3", "3"), ("2.500", "2.5"), ("-0.0", "0")]
)
def test_normalize_number(raw, expected):
    assert normalize_number(raw) == expected


def test_gsm8k_reference():
    assert gsm8k_reference("Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n#### 72") == "72"
    assert gsm8k_reference("no marker") is None


def test_majority_and_tie_break_by_first_sample():
    assert majority(["5", "7", "5", None]) == ("5", {"5": 2, "7": 1})
    assert majority(["7", "5", "5", "7"])[0] == "7"  # tie: "7" voted first
    assert majority(["5", "7", "7", "5"])[0] == "5"
    assert majority([None, None]) == (None, {})


def test_decided_is_exact_against_brute_force():
    """decided() says stop only when no completion of the unfinished votes changes the winner."""
    values = ["1", "2", "3", None]
    for done in range(0, 5):
        for answers in itertools.product(values, repeat=done):
            for unfinished in range(0, 4):
                winner, _ = majority(list(answers))
                outcomes = {
                    majority(list(answers) + list(rest))[0]
                    for rest in itertools.product(values, repeat=unfinished)
                }
                if decided(list(answers), unfinished):
                    assert outcomes == {winner}, (answers, unfinished)


def test_boxed_number_with_unit():
    assert extract_answer("\\boxed{42 apples}") == "42"
