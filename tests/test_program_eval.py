"""Program-aided answers: the evaluator runs what models write (GSM8K-style solution() functions,
in fences, half-fenced or bare) to the right number, and refuses or stops a catalogue of hostile
programs within its limits, each for its own reason, leaving the process as it was."""

from __future__ import annotations

import builtins
import re
import subprocess
import sys
import threading
import time

import pytest

from edgetts.tts.program import Limits, answer, available, extract, run, vote_key

pytest.importorskip("asteval", reason="the program extra (asteval) is not installed")

RECURSION_LIMIT = sys.getrecursionlimit()


def solution(*lines: str) -> str:
    """A ``def solution():`` with these body lines."""
    return "def solution():\n" + "".join(f"    {line}\n" for line in lines)


DUCKS = solution("eggs = 16 - 3 - 4", "return eggs * 2")
PROGRAMS = [
    ("ducks", DUCKS, 18),
    ("loop", solution("total = 0", "for day in range(1, 8):", "    total += day * 3", "return total"), 84),
    (
        "helper_function",
        "def discounted(price, percent):\n    return price * (100 - percent) / 100\n\n"
        + solution("return discounted(80, 25) + discounted(20, 50)"),
        70,
    ),
    ("import_math_ceil", "import math\n\n" + solution("buses = math.ceil(130 / 40)", "return buses"), 4),
    ("from_math_import", "from math import floor, sqrt\n" + solution("return floor(sqrt(50))"), 7),
    (
        "integer_division",
        solution("boxes = 100 // 7", "full, rest = divmod(100, 7)", "return boxes + rest"),
        16,
    ),
    (
        "dict_of_prices",
        solution(
            'prices = {"apple": 0.5, "banana": 0.25, "cherry": 3}',
            'bought = {"apple": 6, "banana": 4, "cherry": 2}',
            "return sum(prices[fruit] * count for fruit, count in bought.items())",
        ),
        10,
    ),
    ("float_answer", solution("return 5 / 2"), 2.5),
    (
        "while_and_append",
        solution("saved = []", "while sum(saved) < 100:", "    saved.append(15)", "return len(saved)"),
        7,
    ),
    (
        "print_and_main_guard",
        solution("cost = 12 * 3", 'print(f"cost: {cost:>10}")', "return cost")
        + 'if __name__ == "__main__":\n    print(solution())\n',
        36,
    ),
    (
        "lambda_key",
        solution(
            'heights = {"ann": 150, "bob": 172, "cy": 165}',
            "tallest = max(heights, key=lambda name: heights[name])",
            "return heights[tallest] - min(heights.values())",
        ),
        22,
    ),
    (
        "recursion_within_limit",
        "def fact(n):\n    return 1 if n <= 1 else n * fact(n - 1)\n" + solution("return fact(10)"),
        3628800,
    ),
    (
        "fibonacci_unpacking",
        solution("a, b = 0, 1", "for _ in range(10):", "    a, b = b, a + b", "return a"),
        55,
    ),
    (
        "grid",
        solution(
            "grid = [[r * c for c in range(3)] for r in range(3)]", "return sum(sum(row) for row in grid)"
        ),
        9,
    ),
    (
        "annotations_and_docstring",
        'def solution() -> float:\n    """Half of 9."""\n'
        + "".join(f"    {line}\n" for line in ("half: float", "nine: int = 9", "return nine / 2")),
        4.5,
    ),
    ("numeric_text", solution('return "12"'), 12),
    ("round", solution("return round(19.987, 2)"), 19.99),
]

TEXTS = [
    (
        "fenced_with_prose",
        "Let's write a program.\n\n```python\n" + solution("pens = 3 * 12", "return pens - 5") + "```\n\n"
        "The answer is 31.",
        31,
    ),
    ("unclosed_fence", "```python\n" + solution("speed = 60", "hours = 2.5", "return speed * hours"), 150),
    ("bare_fence", "Here:\n```\n" + solution("return 2 + 2") + "```", 4),
    (
        "python_block_after_other_block",
        "```text\n17 * 3\n```\n```python\n" + solution("return 17 * 3") + "```",
        51,
    ),
    ("prompt_opened", solution("apples = 7", "return apples * 4") + "```\nSo the answer is 28.", 28),
    ("unfenced_then_prose", "Sure.\n" + solution("return 6 * 7") + "\nThe answer is 42.", 42),
    ("indented_block", "1. Code:\n   ```python\n   def solution():\n       return 9\n   ```", 9),
]


@pytest.mark.parametrize(
    ("source", "expected"), [case[1:] for case in PROGRAMS], ids=[c[0] for c in PROGRAMS]
)
def test_programs_compute_the_right_number(source, expected):
    outcome = run(source)
    assert outcome.error is None
    assert outcome.value == pytest.approx(expected)
    assert outcome.steps > 0 and outcome.elapsed_s < 1.0


@pytest.mark.parametrize(("text", "expected"), [case[1:] for case in TEXTS], ids=[c[0] for c in TEXTS])
def test_programs_are_read_out_of_model_outputs(text, expected):
    outcome = answer(text)
    assert (outcome.value, outcome.error) == (pytest.approx(expected), None)


def test_text_without_a_solution_is_no_program():
    assert extract("The answer is 12.") is None
    assert extract("```python\nx = 3\n```") is None  # a block that defines no solution()
    assert answer("The answer is 12.").error == "no program"


def test_vote_key_is_the_vote_s_number():
    assert vote_key(run(DUCKS)) == "18"
    assert vote_key(run(solution("return 5 / 2"))) == "2.5"
    assert vote_key(run(solution("return 1 / 0"))) is None


def test_available_and_imported_only_when_run():
    assert available()
    probe = "import sys, edgetts.tts.program; sys.exit('asteval' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe], timeout=60).returncode == 0


NOT_DEFINED = "is not defined"
RECURSION = r"nested more than|Recursion"
HOSTILE = [
    ("import_os", "import os\n" + solution("return 1"), "only `import math`"),
    ("import_subprocess", "import subprocess\n" + solution("return 1"), "only `import math`"),
    ("import_math_as", "import math as m\n" + solution("return 1"), "only `import math`"),
    ("from_os_import", "from os import system\n" + solution("return 1"), "only math may be imported"),
    ("from_math_star", "from math import *\n" + solution("return 1"), "only math may be imported"),
    ("dunder_import", solution("return __import__('os')"), "name __import__"),
    ("open_passwd", solution("return len(open('/etc/passwd'))"), NOT_DEFINED),
    ("eval", solution("return eval('1')"), NOT_DEFINED),
    ("exec", solution("exec('x = 1')", "return 1"), NOT_DEFINED),
    ("compile", solution("return compile('1', 'f', 'eval')"), NOT_DEFINED),
    ("getattr", solution("return getattr(1, '__class__')"), NOT_DEFINED),
    ("subclasses", solution("return ().__class__.__mro__[1].__subclasses__()"), r"attribute \.__"),
    ("int_class", solution("return (1).__class__"), r"attribute \.__class__"),
    ("list_base", solution("return [].__class__.__base__"), r"attribute \.__"),
    ("function_globals", solution("return solution.__globals__"), r"attribute \.__globals__"),
    ("math_dict", solution("return math.__dict__"), r"math\.__dict__ is not allowed"),
    ("math_loader", solution("return math.__loader__"), r"math\.__loader__ is not allowed"),
    ("math_outside_whitelist", solution("return math.ulp(1.0)"), r"math\.ulp is not allowed"),
    ("type", solution("return type(1)"), NOT_DEFINED),
    ("globals", solution("return globals()"), NOT_DEFINED),
    ("locals", solution("return locals()"), NOT_DEFINED),
    ("vars", solution("return vars()"), NOT_DEFINED),
    ("builtins", solution("return __builtins__"), "name __builtins__"),
    ("breakpoint", solution("breakpoint()", "return 1"), NOT_DEFINED),
    ("input", solution("return input()"), NOT_DEFINED),
    ("help", solution("help()", "return 1"), NOT_DEFINED),
    ("exit", solution("exit()"), NOT_DEFINED),
    ("quit", solution("quit()"), NOT_DEFINED),
    ("while_true", solution("while True:", "    pass"), r"steps|longer than"),
    ("while_one", solution("while 1:", "    x = 1"), r"steps|longer than"),
    ("huge_range", solution("for i in range(10**12):", "    pass", "return 1"), "sequence of more than"),
    ("power_tower_9", solution("return 9**9**9"), "power over"),
    ("power_tower_10", solution("return 10**10**10"), "power over"),
    (
        "repeated_squaring",
        solution("x = 2", "for _ in range(40):", "    x = x * x", "return x"),
        "integer over",
    ),
    ("pow_builtin", solution("return pow(10, 10**6)"), "power over"),
    ("shift", solution("return 1 << 10**9"), "shift over"),
    ("big_literal", solution("return " + "9" * 100), "integer over"),
    ("list_repeat", solution("return len([0] * 10**9)"), "repetition longer"),
    ("str_repeat", solution("return len('a' * 10**9)"), "repetition longer"),
    ("int_times_str", solution("return len(10**9 * 'a')"), "repetition longer"),
    ("list_of_range", solution("return len(list(range(10**9)))"), NOT_DEFINED),
    (
        "nested_aliases",
        solution("a = (0,) * 1000", "b = (a,) * 1000", "return len(b)"),
        "sequence of more than",
    ),
    ("sum_of_lists", solution("rows = [[0] * 50] * 50", "return len(sum(rows, []))"), "adds numbers only"),
    (
        "extend_doubling",
        solution("a = [0]", "for _ in range(40):", "    a.extend(a)", "return len(a)"),
        r"\.extend",
    ),
    ("str_join", solution("return len(','.join(['a'] * 5000))"), r"\.join"),
    ("percent_format", solution("return len('%1000000000d' % 1)"), "formatting"),
    ("fstring_width", solution("return len(f'{1:>1000000000}')"), "JoinedStr"),
    ("round_digits", solution("return round(1, -10**9)"), "round"),
    ("factorial", solution("return math.factorial(10**6)"), "factorial"),
    ("comb", solution("return math.comb(10**6, 5 * 10**5)"), "comb"),
    ("deep_recursion", "def f(n):\n    return f(n + 1)\n" + solution("return f(0)"), RECURSION),
    (
        "mutual_recursion",
        "def even(n):\n    return n == 0 or odd(n - 1)\ndef odd(n):\n    return n != 0 and even(n - 1)\n"
        + solution("return 1 if even(1000) else 0"),
        RECURSION,
    ),
    ("recursion_through_key", "def f(x):\n    return max([x], key=f)\n" + solution("return f(1)"), RECURSION),
    ("deep_expression", solution("return " + "-" * 400 + "1"), "Recursion"),
    ("lambda_import", solution("return (lambda: __import__('os'))()"), "name __import__"),
    ("fullwidth_eval", solution("return ｅｖａｌ('1')"), "'eval' is not defined"),
    ("fullwidth_dunder", solution("return _＿import＿_('os')"), "name __import__"),
    ("class", "class A:\n    pass\n" + solution("return 1"), "ClassDef is not allowed"),
    (
        "try_swallows_limit",
        solution("try:", "    while True:", "        pass", "except BaseException:", "    return 1"),
        "Try is not allowed",
    ),
    ("with_open", solution("with open('/etc/passwd') as f:", "    return 1"), "With is not allowed"),
    ("generator", solution("yield 1"), "Yield is not allowed"),
    ("async_def", "async def solution():\n    return 1\n", "AsyncFunctionDef is not allowed"),
    ("global", solution("global x", "x = 1", "return x"), "Global is not allowed"),
    ("del_math", solution("del math", "return 1"), "Delete is not allowed"),
    ("assign_attribute", solution("math.pi = 3", "return math.pi"), "assigning to an attribute"),
    ("abs_is_eval", solution("abs = eval", "return abs('1')"), NOT_DEFINED),
    ("rebind_builtin", solution("abs = 5", "return abs"), "invalid symbol name"),
    ("star_args", solution("return max(*[1, 2])"), "Starred is not allowed"),
    ("kwargs_unpack", solution("return max(**{'key': 1})"), r"\*\*kwargs is not allowed"),
    ("walrus", solution("return (y := 5)"), "NamedExpr is not allowed"),
    ("bytes", solution("return len(b'a' * 10)"), "constant is not allowed"),
    ("decorator", "@abs\ndef f():\n    return 1\n" + solution("return 1"), "decorators are not allowed"),
    ("call_a_number", solution("x = 5", "return x()"), "not callable"),
    ("top_level_return", "return 1\n" + solution("return 2"), "cannot return at top level"),
    ("too_long", solution("return 1") + "#" * 5000, "longer than 4000 characters"),
    ("no_solution", "x = 5\n", "defines no solution"),
    ("returns_text", solution("return 'hello'"), "text, not a number"),
    ("returns_none", solution("return None"), "NoneType, not a number"),
    ("returns_list", solution("return [1, 2]"), "list, not a number"),
    ("returns_true", solution("return True"), "bool, not a number"),
    ("returns_inf", solution("return float('inf')"), "returned inf"),
    ("returns_nan", solution("return float('nan')"), "returned nan"),
    ("division_by_zero", solution("return 1 / 0"), "ZeroDivisionError"),
    ("syntax_error", "def solution(:\n    return 1\n", "SyntaxError"),
]


@pytest.mark.parametrize(("source", "reason"), [case[1:] for case in HOSTILE], ids=[c[0] for c in HOSTILE])
def test_hostile_programs_are_refused_or_stopped(source, reason):
    started = time.perf_counter()
    outcome = run(source)
    assert time.perf_counter() - started < 1.0
    assert outcome.value is None and outcome.error
    assert re.search(reason, outcome.error), outcome.error


def test_each_limit_stops_on_its_own():
    loop = solution("n = 0", "while True:", "    n += 1")
    assert "1000 steps" in run(loop, Limits(max_steps=1000, max_seconds=10)).error
    timed = run(loop, Limits(max_steps=10**9, max_seconds=0.02))
    assert "longer than 0.02 s" in timed.error and timed.elapsed_s < 0.5
    assert "8 bits" in run(solution("return 2**10"), Limits(max_int_bits=8)).error
    six = solution("return len([1, 2, 3, 4, 5, 6])")
    assert "more than 5 elements" in run(six, Limits(max_sequence_len=5)).error
    deep = "def f(n):\n    return 0 if n == 0 else f(n - 1)\n"
    assert run(deep + solution("return f(9)"), Limits(max_depth=10)).value == 0
    assert "nested more than 10" in run(deep + solution("return f(20)"), Limits(max_depth=10)).error
    assert "characters" in run(DUCKS, Limits(max_source_chars=10)).error


def test_the_process_is_unharmed():
    """Last in the module: after every hostile program the evaluator and the process work as
    before (no recursion limit changed, no thread left behind, no builtin rebound)."""
    before = set(threading.enumerate())  # other tests' daemon workers may be alive: not ours
    assert run(DUCKS).value == 18
    assert run(solution("while True:\n        pass")).value is None
    assert sys.getrecursionlimit() == RECURSION_LIMIT
    assert set(threading.enumerate()) <= before, "the evaluator left a thread behind"
    assert builtins.abs is abs and builtins.pow(2, 3) == 8 and "eval" in vars(builtins)
