"""Program-aided answers (PAL, program of thoughts): the number a model-written
``def solution(): ...`` returns, computed without trusting the program.

A small model that gets 17 * 23 wrong in prose often writes ``return 17 * 23`` right, so running
what it wrote turns its arithmetic slips into a number. Running it must not hand the model the
process: model-written code never runs through exec/eval, only through a whitelisting evaluator
with limits. The evaluator is asteval (PyPI ``asteval``, the ``program`` extra): it walks the
parsed tree and evaluates each node with its own handlers against a symbol table it is given, so
the program never becomes bytecode and nothing it says reaches Python's exec, eval or compile; it
runs ``def``, ``for``, ``while`` and ``if``, which a solution needs, and it is maintained.
RestrictedPython compiles the restricted source to bytecode and exec()s it (against the rule);
simpleeval evaluates single expressions (no def, no loops).

Three layers:

1. A static check of the parsed tree, before anything runs: a whitelist of node types (no
   class, try, with, del, global, yield, async, f-strings, ``*args``), no name or attribute that
   starts with ``__``, attributes only ``math.<name>`` and a few list/dict methods, imports only
   of math. Names are checked as Python resolves them: the parser NFKC-normalises identifiers,
   so a look-alike ``ｅｖａｌ`` is checked (and looked up) as ``eval``, ``_＿import＿_`` as
   ``__import__``.
2. asteval, configured minimally: a symbol table of a dozen builtins and a ``math`` namespace,
   all read-only, no numpy, the node types above switched off in it too, and its own guards
   (exponents up to 10 000, shifts up to 1 000, string repetition up to 256 KiB, dunder
   attributes refused).
3. The limits asteval lacks (it has no step count, clock, integer size, list size or call
   depth): checked as every node is evaluated, and before the operations whose result Python
   would build in full before any check could see it (``**``, ``<<``, ``*``, ``+``, ``pow``,
   ``round``, ``math.factorial``, ...).

A limit or a refusal stops the program with an exception that is not an ``Exception``, so that
neither asteval's error bookkeeping (which catches ``Exception`` and records it) nor the program
can swallow it. ``run`` never raises for a program: a refused or failed one is an ``Outcome``
with no value and a one-line reason.

Not bounded by the clock: one C-level operation. A list that holds one list 10 000 times, which
then grows by ``append``, can make a single comparison cost up to ``max_sequence_len``² element
steps (0.1 s measured for 10 000 x 5 000); everything else a program can do in one step is
bounded by the limits above.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import math
import re
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from ..errors import EdgeTTSError
from .answers import normalize_number

MIN_SECONDS = 0.005  # the least wall-clock a program is given, however close the deadline


@dataclass(frozen=True)
class Limits:
    """What one program may spend. ``max_seconds`` is wall-clock for parsing, checking and
    running together: a correct GSM8K program is a few hundred nodes at a few µs each, about a
    millisecond, and 50 ms (some 15 000 nodes: loops of thousands of turns) stops only a
    runaway; it is what three or four decode steps of the ladder's models take on the project's
    CPU box (13–15 ms per token, README), spent once per sample after its last token.
    ``max_steps`` counts evaluated nodes (a sequence built by ``*``, ``+`` or slicing costs one
    per element, so what a program allocates is bounded too). ``max_int_bits`` is far above any
    answer and stops 10**10**10 or repeated squaring; ``max_sequence_len`` bounds lists,
    strings, ranges and what nested lists hold in all; ``max_depth`` bounds nested calls
    (recursion), well inside Python's own recursion limit."""

    max_steps: int = 100_000
    max_seconds: float = 0.05
    max_source_chars: int = 4000
    max_int_bits: int = 256
    max_sequence_len: int = 10_000
    max_depth: int = 50


@dataclass(frozen=True)
class Outcome:
    """``value``: the finite number ``solution()`` returned, or None with ``error`` saying why
    (refused, stopped at a limit, failed, or not a number). ``steps``: nodes evaluated."""

    value: float | None
    error: str | None
    steps: int
    elapsed_s: float


DEFAULT_LIMITS = Limits()


@functools.cache  # asked on every plan (planner/candidates.py): a package does not appear mid-run
def available() -> bool:
    """Whether the ``program`` extra (asteval) is installed."""
    return importlib.util.find_spec("asteval") is not None


def answer(text: str, limits: Limits = DEFAULT_LIMITS) -> Outcome:
    """The number the program in a model's output computes."""
    program = extract(text)
    if program is None:
        return Outcome(None, "no program", 0, 0.0)
    return run(program, limits)


def vote_key(outcome: Outcome) -> str | None:
    """The outcome's number as the vote counts numbers (answers.normalize_number: "18", not
    "18.0"), so that a program's answer and a step-by-step sample's are one vote; rounded to six
    decimals first, so that float noise (0.1 + 0.2) does not split a vote or miss "0.3"."""
    return None if outcome.value is None else normalize_number(f"{outcome.value:.6f}")


# ---- extraction ------------------------------------------------------------------------------

_FENCE = re.compile(r"^\s*```\s*([\w+-]*)")  # an opening or closing fence; group: the language
_PYTHON = ("", "python", "py", "python3")
_SOLUTION = re.compile(r"^def solution\(", re.MULTILINE)


def extract(text: str) -> str | None:
    """The program in a model's output: the first ```python (or bare ```) block that defines
    ``solution``, to its closing fence or, as models often stop without one, to the end; else,
    unfenced, the ``def solution(`` line and its indented body (prose after it would not parse).
    None when there is no ``def solution(``."""
    for body in _python_blocks(text):
        if _SOLUTION.search(body):
            return body
    start = _SOLUTION.search(text)
    if start is None:
        return None
    lines = text[start.start() :].split("\n")
    end = next((i for i in range(1, len(lines)) if lines[i].strip() and not lines[i][0].isspace()), None)
    return "\n".join(lines[:end]).rstrip() + "\n"


def _python_blocks(text: str) -> Iterator[str]:
    """The bodies of the fenced Python (or unlabelled) blocks, in order, dedented."""
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if _FENCE.match(lines[j])), len(lines))
        if opening.group(1).lower() in _PYTHON:
            yield textwrap.dedent("\n".join(lines[i + 1 : end]))
        i = end + 1


# ---- the static check ------------------------------------------------------------------------

_MATH_PLAIN = (
    "pi", "e", "tau", "inf", "nan", "ceil", "floor", "trunc", "sqrt", "isqrt", "exp", "expm1", "log",
    "log2", "log10", "log1p", "pow", "fabs", "fmod", "remainder", "modf", "frexp", "ldexp", "copysign",
    "hypot", "dist", "degrees", "radians", "sin", "cos", "tan", "asin", "acos", "atan", "atan2", "sinh",
    "cosh", "tanh", "asinh", "acosh", "atanh", "isclose", "isfinite", "isinf", "isnan", "gcd", "fsum",
)  # fmt: skip
_MATH_GUARDED = ("factorial", "comb", "perm", "prod", "lcm")  # cost grows with the arguments
_MATH_NAMES = frozenset(_MATH_PLAIN + _MATH_GUARDED)
# Methods a program may call. Each adds at most one element or reads in place; not extend, copy,
# index (its error message prints the value looked for) or any str method (join, replace, ljust
# and format build strings of any size in one call).
_METHODS = frozenset({"append", "pop", "insert", "count", "reverse", "get", "keys", "values", "items"})
_CONSTANTS = (int, float, str, bool, type(None))

_ALLOWED = frozenset({
    ast.Module, ast.FunctionDef, ast.Return, ast.Assign, ast.AugAssign, ast.For, ast.While, ast.If,
    ast.Break, ast.Continue, ast.Pass, ast.Expr, ast.Import, ast.ImportFrom,
    ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.IfExp, ast.Compare, ast.Call, ast.Constant, ast.Name,
    ast.Attribute, ast.Subscript, ast.Slice, ast.List, ast.Tuple, ast.Dict, ast.Set, ast.ListComp,
    ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.Lambda,
    ast.arguments, ast.arg, ast.keyword, ast.alias, ast.comprehension, ast.Load, ast.Store,
    ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.LShift, ast.RShift,
    ast.BitOr, ast.BitXor, ast.BitAnd, ast.UAdd, ast.USub, ast.Not, ast.Invert, ast.And, ast.Or,
    ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Is, ast.IsNot, ast.In, ast.NotIn,
})  # fmt: skip
# Lambdas stay: a lambda is asteval's Procedure, as a def is, and opens nothing a def does not
# (``max(d, key=lambda k: d[k])`` is how models pick the largest).
_MAIN_GUARD = ast.dump(ast.parse('__name__ == "__main__"', mode="eval").body)


def _check_name(node: ast.Name) -> str | None:
    return f"the name {node.id} is not allowed" if node.id.startswith("__") else None


def _check_attribute(node: ast.Attribute) -> str | None:
    if not isinstance(node.ctx, ast.Load):
        return "assigning to an attribute is not allowed"
    if isinstance(node.value, ast.Name) and node.value.id == "math":
        return None if node.attr in _MATH_NAMES else f"math.{node.attr} is not allowed"
    return None if node.attr in _METHODS else f"the attribute .{node.attr} is not allowed"


def _check_import(node: ast.Import) -> str | None:
    plain_math = [(alias.name, alias.asname) for alias in node.names] == [("math", None)]
    return None if plain_math else "only `import math` is allowed"


def _check_import_from(node: ast.ImportFrom) -> str | None:
    names_ok = all(alias.name in _MATH_NAMES and alias.asname is None for alias in node.names)
    return None if node.module == "math" and node.level == 0 and names_ok else "only math may be imported"


def _check_arguments(node: ast.arguments) -> str | None:
    extra = node.vararg or node.kwarg or node.kwonlyargs or node.posonlyargs
    return "*args, **kwargs and keyword-only parameters are not allowed" if extra else None


_CHECKS = {
    ast.Name: _check_name,
    ast.Attribute: _check_attribute,
    ast.Import: _check_import,
    ast.ImportFrom: _check_import_from,
    ast.arguments: _check_arguments,
    ast.FunctionDef: lambda node: "decorators are not allowed" if node.decorator_list else None,
    ast.keyword: lambda node: "**kwargs is not allowed" if node.arg is None else None,
    ast.comprehension: lambda node: "async is not allowed" if node.is_async else None,
    ast.Constant: lambda node: None if type(node.value) in _CONSTANTS else "that constant is not allowed",
}


def _refusal(tree: ast.Module) -> str | None:
    """Why the program is refused before it runs, or None."""
    for node in ast.walk(tree):
        if type(node) not in _ALLOWED:
            return f"{type(node).__name__} is not allowed"
        check = _CHECKS.get(type(node))
        reason = check(node) if check else None
        if reason:
            return reason
    return None


def _plain(body: list[ast.stmt]) -> list[ast.stmt]:
    """``body`` as it is run: ``print(...)`` statements and ``if __name__ == "__main__":``
    blocks become ``pass`` (models end programs with them; output goes nowhere here, so
    f-strings and their format widths are never evaluated, and an imported module does not run
    its main block), and ``x: float = 2.5`` becomes ``x = 2.5`` (asteval has no annotated
    assignment; the annotation is never evaluated, as in a function)."""
    kept = []
    for stmt in body:
        if _is_print(stmt) or (isinstance(stmt, ast.If) and ast.dump(stmt.test) == _MAIN_GUARD):
            stmt = ast.copy_location(ast.Pass(), stmt)
        elif isinstance(stmt, ast.AnnAssign):
            plain = ast.Assign(targets=[stmt.target], value=stmt.value) if stmt.value else ast.Pass()
            stmt = ast.copy_location(plain, stmt)
        for field in ("body", "orelse"):
            if isinstance(getattr(stmt, field, None), list):
                setattr(stmt, field, _plain(getattr(stmt, field)))
        kept.append(stmt)
    return kept


def _is_print(stmt: ast.stmt) -> bool:
    call = stmt.value if isinstance(stmt, ast.Expr) else None
    return isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "print"


def _checked_tree(source: str, limits: Limits) -> ast.Module:
    """The program's tree (ast.parse builds a tree, not code), ready for asteval."""
    if len(source) > limits.max_source_chars:
        raise _Refusal(f"the program is longer than {limits.max_source_chars} characters")
    tree = ast.parse(source)
    tree.body = _plain(tree.body)
    reason = _refusal(tree)
    if reason:
        raise _Refusal(reason)
    return tree


# ---- the limits asteval lacks ----------------------------------------------------------------

_SIZED = (str, list, tuple, dict, set, range)
_CONTAINERS = (list, tuple, dict, set)
_NESTED = (str, *_CONTAINERS)
# Nodes that build a new structure: its size is counted through nested containers, as a list can
# hold one list 10 000 times. Of these, BinOp and slices copy: they cost a step per element.
_BUILDERS = (
    ast.List, ast.Tuple, ast.Set, ast.Dict, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp,
    ast.BinOp,
)  # fmt: skip
# More digits than any float or bounded integer has; round(1, -10**9) would compute 10**10**9.
_MAX_ROUND_DIGITS = 100
# Off in asteval as well (the static check refuses them first); "print" off makes print a no-op.
_ASTEVAL_OFF = (
    "import", "importfrom", "try", "with", "delete", "raise", "assert", "formattedvalue", "joinedstr",
    "print",
)  # fmt: skip


class _Refusal(BaseException):
    """The program is refused, stopped at a limit or gave no number. A BaseException so that
    asteval (which catches Exception to record it) lets it through to ``run``."""


def _is_int(value: Any) -> bool:
    return isinstance(value, int)


def _length(value: Any) -> int:
    try:
        return len(value)
    except OverflowError:  # a range longer than sys.maxsize
        return sys.maxsize


def _weight(value: Any, budget: int) -> int:
    """The elements ``value`` holds through nested containers (and the characters of strings in
    it), counted until past ``budget``: what hashing, comparing or printing it costs."""
    total, stack = 0, [value]
    while stack and total <= budget:
        item = stack.pop()
        if isinstance(item, _NESTED):
            total += len(item)
        if isinstance(item, _CONTAINERS) and total <= budget:
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend(child for child in children if isinstance(child, _NESTED))
    return total


def _check_power(base: Any, exponent: Any, max_bits: int) -> None:
    """Refuses an integer power of at least 2**max_bits before Python computes all of it."""
    if not (_is_int(base) and _is_int(exponent)) or exponent <= 0:
        return
    if (abs(base).bit_length() - 1) * exponent >= max_bits:  # base**exponent >= 2**that
        raise _Refusal(f"a power over {max_bits} bits")


def _check_operands(op: ast.operator, left: Any, right: Any, limits: Limits) -> None:
    """Refuses an operation whose result would be over a limit, before it runs: Python builds
    ``[0] * 10**9`` or ``1 << 10**9`` whole before any check could see it."""
    kind, most = type(op), limits.max_sequence_len
    ints = _is_int(left) and _is_int(right)
    if kind is ast.Pow:
        _check_power(left, right, limits.max_int_bits)
    elif kind is ast.LShift and ints and left.bit_length() + right > limits.max_int_bits:
        raise _Refusal(f"a shift over {limits.max_int_bits} bits")
    elif kind is ast.Mult and any(
        isinstance(seq, _SIZED) and _is_int(count) and _length(seq) * count > most
        for seq, count in ((left, right), (right, left))
    ):  # asteval checks only str * int, and not int * str
        raise _Refusal(f"a repetition longer than {most}")
    elif kind is ast.Add and isinstance(left, _SIZED) and isinstance(right, _SIZED):
        if len(left) + len(right) > most:
            raise _Refusal(f"a concatenation longer than {most}")
    elif kind is ast.Mod and isinstance(left, str):
        raise _Refusal("%-formatting is not allowed")  # "%1000000000d" % 1 is a gigabyte


class _Guarded:
    """The builtins and math functions whose cost grows with their arguments, bounded first;
    what they return is then checked like every value."""

    def __init__(self, max_int_bits: int):
        self.bits = max_int_bits

    def pow(self, base: Any, exponent: Any) -> Any:  # two arguments only
        _check_power(base, exponent, self.bits)
        return base**exponent

    def round(self, number: Any, ndigits: Any = None) -> Any:
        if ndigits is not None and abs(ndigits) > _MAX_ROUND_DIGITS:
            raise _Refusal(f"round() to more than {_MAX_ROUND_DIGITS} digits")
        return round(number, ndigits)

    def sum(self, values: Any, start: Any = 0) -> Any:
        if not isinstance(start, int | float):  # sum(lists, []) concatenates in C
            raise _Refusal("sum() adds numbers only")
        return sum(values, start)

    def factorial(self, n: Any) -> Any:
        if _is_int(n) and n > self.bits:  # n! > 2**n
            raise _Refusal(f"factorial() over {self.bits} bits")
        return math.factorial(n)

    def comb(self, n: Any, k: Any) -> Any:
        if _is_int(n) and _is_int(k) and min(k, n - k) > self.bits:  # comb(n, k) >= 2**min(k, n-k)
            raise _Refusal(f"comb() over {self.bits} bits")
        return math.comb(n, k)

    def perm(self, n: Any, k: Any = None) -> Any:
        if _is_int(n) and (n if k is None else k) > self.bits:
            raise _Refusal(f"perm() over {self.bits} bits")
        return math.perm(n, k)

    def prod(self, values: Any, start: Any = 1) -> Any:
        return math.prod(self._factors([*values, start], "prod"))

    def lcm(self, *values: Any) -> Any:
        return math.lcm(*self._factors(values, "lcm"))

    def _factors(self, values: Any, name: str) -> Any:
        """Numbers whose product stays within the integer limit (its bits are at most the sum)."""
        if not all(isinstance(value, int | float) for value in values):
            raise _Refusal(f"{name}() multiplies numbers only")
        if sum(abs(value).bit_length() for value in values if _is_int(value)) > self.bits:
            raise _Refusal(f"{name}() over {self.bits} bits")
        return values


def _symbols(limits: Limits) -> dict[str, Any]:
    """All a program starts with (asteval adds ``print``, a no-op here). ``math`` is a plain
    namespace of the whitelisted functions, not the module, so nothing else in it is reachable."""
    guarded = _Guarded(limits.max_int_bits)
    math_names = {name: getattr(math, name) for name in _MATH_PLAIN}
    math_names.update({name: getattr(guarded, name) for name in _MATH_GUARDED})
    names = {"abs": abs, "min": min, "max": max, "len": len, "int": int, "float": float, "divmod": divmod}
    names.update(range=range, round=guarded.round, sum=guarded.sum, pow=guarded.pow)
    return {**names, "math": SimpleNamespace(**math_names)}


class _Limited:
    """The limits, mixed in before asteval's Interpreter: its ``run`` evaluates every node, so
    wrapping it counts steps, watches the clock and checks every value; ``on_binop`` and
    ``on_call`` are replaced to check operands first and to count call depth, ``node_assign``
    to drop a check that costs more than the assignment."""

    _operator: Any  # asteval's op2func, Procedure and RESERVED_WORDS, set where the class is built
    _procedure: type
    _reserved: tuple[str, ...]

    def __init__(self, limits: Limits, deadline: float):
        self.limits, self.deadline, self.steps, self.depth = limits, deadline, 0, 0
        config = dict.fromkeys(_ASTEVAL_OFF, False)
        super().__init__(symtable=_symbols(limits), use_numpy=False, builtins_readonly=True, config=config)
        # Set directly: asteval's set_nodehandler("import") would allow importing any module.
        self.node_handlers["import"] = lambda node: None  # `import math`: math is there already
        self.node_handlers["importfrom"] = self._from_math
        self.node_handlers["generatorexp"] = self.on_listcomp  # eagerly, as a list: sum(x for x in xs)

    def solve(self, tree: ast.Module, source: str) -> Any:
        """Runs the program's top level, then calls its ``solution()``."""
        self.run(tree, expr=source)
        solution = self.symtable.get("solution")
        if not isinstance(solution, self._procedure):
            raise _Refusal("the program defines no solution()")
        return solution()

    def run(self, node: Any, expr: Any = None, lineno: Any = None, with_raise: bool = True) -> Any:
        self._spend(1)
        value = super().run(node, expr=expr, lineno=lineno, with_raise=with_raise)
        self._check_value(node, value)
        return value

    def on_binop(self, node: ast.BinOp) -> Any:
        left, right = self.run(node.left), self.run(node.right)
        _check_operands(node.op, left, right, self.limits)
        return self._operator(node.op)(left, right)

    def on_call(self, node: ast.Call) -> Any:
        """asteval's on_call, less its error message, which prints the arguments whole."""
        function = self.run(node.func)
        args = [self.run(arg) for arg in node.args]
        kwargs = {keyword.arg: self.run(keyword.value) for keyword in node.keywords}
        if not callable(function):
            raise TypeError(f"{type(function).__name__!r} object is not callable")
        self.depth += 1
        try:
            if self.depth > self.limits.max_depth:
                raise _Refusal(f"calls nested more than {self.limits.max_depth} deep")
            return function(*args, **kwargs)
        finally:
            self.depth -= 1

    def node_assign(self, node: Any, val: Any) -> None:
        """asteval's, less its check that a plain name is an identifier (a tokenizer run per
        assignment, ~20 µs, most of a loop's time); the parser made it one already, so what is
        left to refuse is a read-only or reserved name."""
        if not isinstance(node, ast.Name):
            return super().node_assign(node, val)
        if node.id in self.readonly_symbols or node.id in self._reserved:
            self.raise_exception(node, exc=NameError, msg=f"invalid symbol name (reserved word?) {node.id}")
        self.symtable[node.id] = val

    def _from_math(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            self.symtable[alias.name] = getattr(self.symtable["math"], alias.name)

    def _spend(self, steps: int) -> None:
        self.steps += steps
        if self.steps > self.limits.max_steps:
            raise _Refusal(f"more than {self.limits.max_steps} steps")
        if time.perf_counter() > self.deadline:
            raise _Refusal(f"longer than {self.limits.max_seconds} s")

    def _check_value(self, node: Any, value: Any) -> None:
        limits = self.limits
        if _is_int(value) and value.bit_length() > limits.max_int_bits:
            raise _Refusal(f"an integer over {limits.max_int_bits} bits")
        if not isinstance(value, _SIZED):
            return
        built = isinstance(node, _BUILDERS)
        size = _weight(value, limits.max_sequence_len) if built else _length(value)
        if size > limits.max_sequence_len:
            raise _Refusal(f"a sequence of more than {limits.max_sequence_len} elements")
        sliced = isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Slice)
        if sliced or isinstance(node, ast.BinOp):  # a new sequence: a step per element
            self._spend(size)


@functools.cache
def _sandbox_class() -> type:
    """asteval's Interpreter with the limits mixed in, built on first use so that importing
    edgetts does not need the extra."""
    try:
        from asteval import Interpreter
        from asteval.astutils import RESERVED_WORDS, Procedure, op2func
    except ImportError:
        raise EdgeTTSError("program-aided answers need asteval: pip install 'edgetts[program]'") from None
    members = {"_operator": staticmethod(op2func), "_procedure": Procedure, "_reserved": RESERVED_WORDS}
    return type("Sandbox", (_Limited, Interpreter), members)


def run(source: str, limits: Limits = DEFAULT_LIMITS) -> Outcome:
    """Defines the program and calls its ``solution()``. Never raises for the program (only
    EdgeTTSError when asteval is not installed): what it did wrong is the outcome's error."""
    sandbox_class = _sandbox_class()  # the first call imports asteval: before the clock starts
    started = time.perf_counter()
    sandbox = None
    try:
        tree = _checked_tree(source, limits)
        sandbox = sandbox_class(limits, started + limits.max_seconds)
        value, error = _number(sandbox.solve(tree, source)), None
    except _Refusal as refusal:
        value, error = None, str(refusal)
    except Exception as exc:  # a failing program: NameError, ZeroDivisionError, RecursionError, ...
        value, error = None, _describe(exc, sandbox.error if sandbox else [])
    steps = sandbox.steps if sandbox else 0
    return Outcome(value, error, steps, time.perf_counter() - started)


def _number(value: Any) -> float:
    """``solution()``'s value as a finite number: an int or float, or a number written as text
    ("12"); a bool is not one."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise _Refusal("solution() returned text, not a number") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Refusal(f"solution() returned a {type(value).__name__}, not a number")
    if not math.isfinite(value):
        raise _Refusal(f"solution() returned {value}")
    return float(value)


def _describe(exc: Exception, recorded: list) -> str:
    """One line on what failed. asteval records errors in ``Interpreter.error`` and re-raises
    the class with an often empty message, so its first record with a message is read first."""
    for holder in recorded:
        if holder.msg:
            return _one_line(f"{getattr(holder.exc, '__name__', 'Error')}: {holder.msg}")
    return _one_line(f"{type(exc).__name__}: {exc}")


def _one_line(text: str) -> str:
    return text.strip().split("\n")[0][:200]
