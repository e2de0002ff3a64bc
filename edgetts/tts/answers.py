"""Pull the final answer out of a model's text and normalise it, so that votes compare values,
not spellings: "$1,234.00", "1234" and "\\boxed{1234}" are one answer.

Where the answer is looked for, in order: the last ``\\boxed{…}``; the text after the last
answer phrase ("the final answer is", "the answer is", "answer:", GSM8K's "####"); otherwise the
whole text. Within that span the first number (or a lone multiple-choice letter) wins: a
forced answer cue is followed by the answer, not by more working. Hand-written because no
maintained library does this for free-form math text (math-verify pulls in sympy and antlr).
"""

from __future__ import annotations

import re
from fractions import Fraction

_BOXED = re.compile(r"\\boxed\s*\{((?:[^{}]|\{[^{}]*\})*)\}")
_CUE = re.compile(r"(?:final answer is|the answer is|answer is|answer\s*:|####)", re.IGNORECASE)
_NUMBER = re.compile(r"(?<![\w.])(-?\s?\$?\s?-?\d[\d,]*(?:\.\d+)?(?:\s*/\s*\d+(?:\.\d+)?)?)(?:\s*%)?")
_LATEX_FRAC = re.compile(r"\\d?frac\s*\{\s*(-?\d+)\s*\}\s*\{\s*(-?\d+)\s*\}")
_CHOICE = re.compile(r"^\s*\(?\s*([A-E])\s*\)?(?:[\s.:,)]|$)")


def normalize_number(raw: str) -> str | None:
    """Canonical text of a number: no $ or thousands commas, integers without ".0", fractions
    reduced (and as integers where they are whole), decimals without trailing zeros."""
    text = raw.replace("$", "").replace(",", "").replace(" ", "")
    if not text or text in ("-", "."):
        return None
    try:
        value = Fraction(text) if "/" not in text else Fraction(*map(Fraction, text.split("/", 1)))
    except (ValueError, ZeroDivisionError):
        return None
    if value.denominator == 1:
        return str(value.numerator)
    if "/" in text:
        return f"{value.numerator}/{value.denominator}"
    return format(float(value), "f").rstrip("0").rstrip(".")


def _first_answer(span: str) -> str | None:
    span = _LATEX_FRAC.sub(r"\1/\2", span)
    choice = _CHOICE.match(span)
    number = _NUMBER.search(span)
    if choice and (number is None or choice.start(1) < number.start()):
        return choice.group(1)
    return normalize_number(number.group(1)) if number else None


def extract_answer(text: str) -> str | None:
    """The normalised final answer in ``text``, or None when it holds none."""
    boxed = _BOXED.findall(text)
    if boxed:
        content = _LATEX_FRAC.sub(r"\1/\2", boxed[-1]).strip()
        whole = normalize_number(content)
        if whole is not None:
            return whole
        if re.match(r"^[-$\d]", content):  # "42 apples"
            return _first_answer(content)
        return content.replace(" ", "") or None
    cues = list(_CUE.finditer(text))
    if cues:
        found = _first_answer(text[cues[-1].end() :])
        if found is not None:
            return found
    numbers = _NUMBER.findall(_LATEX_FRAC.sub(r"\1/\2", text))
    return normalize_number(numbers[-1]) if numbers else None


def gsm8k_reference(answer_field: str) -> str | None:
    """The reference answer of a GSM8K record ("… #### 72")."""
    return extract_answer(answer_field[answer_field.rfind("####") :]) if "####" in answer_field else None
