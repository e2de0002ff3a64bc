"""What kind of answer a question wants — a number, yes/no, one of a set of options, a short text
— and how that kind is asked for, read out of a sample's text and compared in the vote.

A robot acts on yes/no, on one option of a set, or on a value; an answer it cannot read is
worse than a late one. So the type decides the instruction in the prompt ("Answer yes or no."),
the extraction (a normalised value: "yes", the option's letter, the number, the lower-cased
phrase) and therefore the vote key, so that "Yes." and "yes, because …" are one vote.

Inference (when the caller names no type), in order: a schema makes ``json``; options given by
the caller, or listed in the question as "A) … B) …" / "(a) … (b) …", make a ``choice``; then
the asking sentence (the last one ending in "?", as a robot states its facts first) decides: one
that opens with an auxiliary verb ("Is …", "Can …", "Does …", …) is ``yesno``, one that asks
"how many/much/far/long/fast …" or for a value in a unit ("… in m/s?") is a ``number``;
otherwise the caller's default (``number`` for an eval set of numbers such as GSM8K, else
``text``; planner/candidates.default_kind).

Hand-written rather than a library: the patterns are a robot's few answer shapes, and no
maintained package extracts them from free text (grammar libraries constrain what is generated,
they do not read what was).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from ..errors import EdgeTTSError
from .answers import extract_answer, gsm8k_reference, normalize_number

KINDS = ("number", "yesno", "choice", "text", "json")
LETTERS = "ABCDEFGHIJ"
MAX_TEXT_WORDS = 12  # a "short text" answer: longer spans are working, not an answer
ANSWER_TOKENS = 16  # what an answer may take after the cue (the planner predicts with it)
JSON_ANSWER_TOKENS = 96  # a JSON document needs room: braces, keys, quotes

_CUE = re.compile(r"(?:final answer is|the answer is|answer is|answer\s*:|####)", re.IGNORECASE)
_YES_NO = re.compile(r"\b(yes|no)\b", re.IGNORECASE)
_AUXILIARY = re.compile(
    r"^\s*(?:is|are|am|was|were|can|could|do|does|did|will|would|should|shall|has|have|had|may|might|must)\b",
    re.IGNORECASE,
)
_LATEX_TEXT = re.compile(r"\\(?:boxed|text|textbf|mathrm)\s*\{([^{}]*)\}")
# A question for a quantity: "how many/much/far/long/…", or a value asked in a unit ("… in m/s?").
_QUANTITY = re.compile(
    r"\bhow (?:many|much|far|long|fast|old|high|tall|wide|heavy|often)\b"
    r"|\bin (?:mm|cm|m|km|g|kg|s|ms|min|h|minutes|hours|seconds|metres|meters|m/s|cm/s|km/h|%|percent"
    r"|degrees)\W*$",
    re.IGNORECASE,
)
# "A) vacuum B) soft fingers", "(a) left (b) right", "A. red B. blue": a letter, then text up to
# the next letter of the same shape.
_INLINE = (
    re.compile(r"(?:^|\s)\(([A-Ja-j])\)\s*(.+?)(?=\s+\([A-Ja-j]\)\s|\s*$)", re.DOTALL),
    re.compile(r"(?:^|\s)([A-J])\)\s*(.+?)(?=\s+[A-J]\)\s|\s*$)", re.DOTALL),
    re.compile(r"(?:^|\s)([A-J])\.\s+(.+?)(?=\s+[A-J]\.\s|\s*$)", re.DOTALL),
)


@dataclass(frozen=True)
class AnswerType:
    kind: str = "number"
    choices: tuple[str, ...] = ()  # the options' texts, lettered A, B, … in order
    schema: str = ""  # json: the JSON Schema, as canonical JSON text (hashable, printable)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise EdgeTTSError(f"unknown answer type {self.kind!r}: use one of {', '.join(KINDS)}")
        if self.kind == "choice":
            _check_choices(self.choices)
        elif self.choices:
            raise EdgeTTSError(
                f"options were given for a {self.kind} answer; options need --answer-type choice"
            )
        if self.kind == "json":
            _check_schema(self.schema)
        elif self.schema:
            raise EdgeTTSError(
                f"a schema was given for a {self.kind} answer; a schema needs --answer-type json"
            )

    @property
    def answer_tokens(self) -> int:
        return JSON_ANSWER_TOKENS if self.kind == "json" else ANSWER_TOKENS

    @property
    def letters(self) -> str:
        return LETTERS[: len(self.choices)]

    def direct_instruction(self) -> str:
        """What a direct (budget 0) prompt asks for; the numeric wording is the one the shipped
        GSM8K tables were calibrated with."""
        return {
            "number": "Give only the final answer.",
            "yesno": "Answer only yes or no.",
            "choice": "Answer only with the letter of one option.",
            "text": "Give only the answer, in a few words.",
            "json": f"Answer only with a JSON object that matches this JSON Schema: {self.schema}",
        }[self.kind]

    def reasoning_instruction(self) -> str:
        return {
            "number": "Solve this step by step, then give the final answer.",
            "yesno": "Think step by step, then answer yes or no.",
            "choice": "Think step by step, then answer with the letter of one option.",
            "text": "Think step by step, then give the answer in a few words.",
            "json": f"Think step by step, then answer with a JSON object valid under: {self.schema}",
        }[self.kind]

    def question_text(self, question: str) -> str:
        """The question as the model sees it: options the caller passed apart are listed."""
        if self.kind != "choice" or _inline_options(question):
            return question
        listed = "\n".join(
            f"{letter}) {text}" for letter, text in zip(self.letters, self.choices, strict=True)
        )
        return f"{question}\n{listed}"

    def extract(self, text: str) -> str | None:
        """The normalised answer in ``text`` (the vote key), or None when it holds none."""
        if self.kind == "number":
            return extract_answer(text)
        cues = list(_CUE.finditer(text))
        after = text[cues[-1].end() :] if cues else None
        readers = {"yesno": _yes_no, "choice": self._choice, "text": _short_text, "json": _json_object}
        return readers[self.kind](text, after)

    def reference(self, answer: object) -> str:
        """A stated (true) answer as a sample's answer of this type is normalised, so that the
        two compare: an eval record's answer. One the type cannot hold raises EdgeTTSError."""
        text = (
            answer if isinstance(answer, str) else json.dumps(answer) if self.kind == "json" else str(answer)
        )
        if self.kind == "number":
            value = number_reference(text)
        elif self.kind == "yesno":
            lowered = text.strip().lower().rstrip(".")
            value = {"yes": "yes", "no": "no", "true": "yes", "false": "no"}.get(lowered)
        elif self.kind == "choice":
            stripped = text.strip().strip("()").rstrip(".)").strip()
            if len(stripped) == 1 and stripped.upper() in self.letters:
                value = stripped.upper()
            else:
                named = [i for i, c in enumerate(self.choices) if c.strip().lower() == text.strip().lower()]
                value = self.letters[named[0]] if named else None
        elif self.kind == "text":
            value = _short_text(text, None)
        else:
            value = _json_object(text, None)
        if value is None:
            wanted = {
                "number": "a number", "yesno": "yes or no", "text": f"a text of 1 to {MAX_TEXT_WORDS} words",
                "choice": f"one of the letters {', '.join(self.letters)} or an option's text",
                "json": "a JSON object",
            }[self.kind]  # fmt: skip
            raise EdgeTTSError(f"the answer {text!r} is not {wanted}, as a {self.kind} answer must be")
        return value

    def display(self, value: str | None) -> str | None:
        """How an answer reads to a person: a choice's letter with its option's text."""
        if value is None or self.kind != "choice":
            return value
        return f"{value}) {self.choices[self.letters.index(value)]}"

    def _choice(self, text: str, after: str | None) -> str | None:
        text, after = _plain(text), None if after is None else _plain(after)
        letters = self.letters
        letter = re.compile(rf"(?<![A-Za-z])\(?([{letters}{letters.lower()}])(?:\)|\.|:|,|\s|$)")
        if after is not None:
            span = after.strip()
            found = letter.match(span) or _option_text(span, self.choices, first=True)
            if found is not None:
                return found if isinstance(found, str) else found.group(1).upper()
        opening = letter.match(text.strip())
        if opening is not None:
            return opening.group(1).upper()
        mentions = list(
            re.finditer(rf"(?:option|choice|answer)\s*\(?([{letters}{letters.lower()}])\b", text, re.I)
        )
        mentions += list(re.finditer(rf"\(([{letters}])\)", text))
        if mentions:
            return max(mentions, key=lambda m: m.start()).group(1).upper()
        return _option_text(text, self.choices, first=False)


NUMBER = AnswerType("number")  # GSM8K's kind, and the default where nothing says otherwise


def infer(
    question: str, choices: tuple[str, ...] = (), default: str = "number", schema: str = ""
) -> AnswerType:
    """The answer type a question asks for (module docstring: the rule)."""
    if schema:
        return AnswerType("json", schema=schema)
    if choices:
        return AnswerType("choice", tuple(choices))
    inline = _inline_options(question)
    if inline:
        return AnswerType("choice", inline)
    asked = _asked_sentence(question)
    if _AUXILIARY.match(asked):
        return AnswerType("yesno")
    if _QUANTITY.search(asked):
        return AnswerType("number")
    return AnswerType(default)


def _asked_sentence(question: str) -> str:
    """The sentence that asks: the last one ending in "?" (a robot's question states its facts
    first: "The battery is at 6 %. … Can it make the trip?"), else the last sentence."""
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", question.strip()) if s]
    asking = [s for s in sentences if s.rstrip().endswith("?")]
    return (asking or sentences or [""])[-1]


def resolve(
    question: str, kind: str | None = None, choices: tuple[str, ...] = (), default: str = "number",
    schema: object = None,
) -> AnswerType:  # fmt: skip
    """The caller's type (``kind``; None or "auto": inferred), with a choice's options taken from
    ``choices`` or, failing that, from the question itself, and a json answer's ``schema`` (a
    dict, or its JSON text)."""
    schema_text = canonical_schema(schema)
    if kind in (None, "auto"):
        return infer(question, choices, default, schema_text)
    if kind == "json" and not schema_text:
        raise EdgeTTSError("a json answer needs a JSON Schema: pass it (--schema FILE or JSON; schema={...})")
    if kind == "json":
        return AnswerType("json", schema=schema_text)
    if kind == "choice" and not choices:
        choices = _inline_options(question)
        if not choices:
            raise EdgeTTSError(
                "a choice answer needs options: pass them (--choice TEXT, repeatable; choices=[...]) "
                "or list them in the question as 'A) … B) …'"
            )
    return AnswerType(kind, tuple(choices), schema_text)


def canonical_schema(schema: object) -> str:
    """A schema given as a dict or as JSON text, as canonical JSON text ("" for none)."""
    if schema is None or schema == "":
        return ""
    if isinstance(schema, str):
        try:
            schema = json.loads(schema)
        except ValueError as err:
            raise EdgeTTSError(f"the schema is not JSON ({err})") from None
    if not isinstance(schema, dict):
        raise EdgeTTSError("the schema must be a JSON object (a JSON Schema)")
    return json.dumps(schema, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def number_reference(text: str) -> str | None:
    """A stated number: GSM8K's "… #### 72" or a plain value, normalised (None: not a number)."""
    return gsm8k_reference(text) if "####" in text else normalize_number(text.strip())


def _check_schema(schema: str) -> None:
    """A JSON Schema, checked by llguidance where it is installed (the grammar extra compiles
    it for the constrained answer anyway); without it only its being a JSON object is checked."""
    if not schema:
        raise EdgeTTSError("a json answer needs a JSON Schema")
    canonical_schema(schema)
    try:
        from llguidance import LLMatcher
    except ImportError:
        return
    try:
        error = LLMatcher.validate_grammar(LLMatcher.grammar_from_json_schema(schema))
    except (ValueError, TypeError) as err:
        error = str(err)
    if error:
        raise EdgeTTSError(f"the schema is not a valid JSON Schema: {error.splitlines()[0]}")


def _check_choices(choices: tuple[str, ...]) -> None:
    if not 2 <= len(choices) <= len(LETTERS):
        raise EdgeTTSError(f"a choice needs 2 to {len(LETTERS)} options (got {len(choices)})")
    cleaned = [c.strip().lower() for c in choices]
    if any(not c for c in cleaned):
        raise EdgeTTSError("an option is empty; every option needs a text")
    if len(set(cleaned)) != len(cleaned):
        raise EdgeTTSError(f"options are duplicated: {list(choices)}")


def _inline_options(question: str) -> tuple[str, ...]:
    """Options listed in the question with consecutive letters from A, or ()."""
    for pattern in _INLINE:
        found = pattern.findall(question)
        letters = "".join(letter.upper() for letter, _ in found)
        if len(found) >= 2 and LETTERS.startswith(letters):
            return tuple(text.strip().rstrip(".;,").strip() for _, text in found)
    return ()


def _plain(text: str) -> str:
    """Without Markdown emphasis ("**B**"), which small chat models like to add."""
    return re.sub(r"[*`]+", "", text)


def _yes_no(text: str, after: str | None) -> str | None:
    if after is not None:
        found = _YES_NO.search(after)
        if found:
            return found.group(1).lower()
    opening = re.match(r"\W*(yes|no)\b", text, re.IGNORECASE)
    if opening:
        return opening.group(1).lower()
    mentions = _YES_NO.findall(text)
    return mentions[-1].lower() if mentions else None


def _option_text(text: str, choices: tuple[str, ...], first: bool):
    """The letter of the option whose text ``text`` names (the first or last mention)."""
    lowered = text.lower()
    hits = []
    for i, option in enumerate(choices):
        at = lowered.find(option.lower()) if first else lowered.rfind(option.lower())
        if at >= 0:
            hits.append((at, -len(option), LETTERS[i]))
    if not hits:
        return None
    return (min(hits) if first else max(hits, key=lambda h: (h[0], h[1])))[2]


def _json_object(text: str, after: str | None) -> str | None:
    """The first JSON object in the answer (after the cue, else anywhere), canonical: the vote
    key of two documents that differ only in spacing or key order is one."""
    span = after if after is not None else text
    decoder = json.JSONDecoder()
    for start in [m.start() for m in re.finditer(r"\{", span)]:
        try:
            value, _ = decoder.raw_decode(span, start)
        except ValueError:
            continue
        if isinstance(value, dict):
            return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return None


def _short_text(text: str, after: str | None) -> str | None:
    span = after if after is not None else text
    for _ in range(3):  # "\boxed{\text{bottle}}" is bottle, one wrapper at a time
        span = _LATEX_TEXT.sub(r"\1", span)
    line = next((line for line in span.strip().lstrip(":-– ").splitlines() if line.strip()), "")
    value = re.sub(r"\s+", " ", line).strip().strip("\"'`*").strip()
    value = re.sub(r"[.!?;,:]+$", "", value).strip().lower()
    # SQuAD's answer normalisation drops a leading article too: "the loading bay" is "loading bay".
    value = re.sub(r"^(?:the|a|an)\s+", "", value)
    if not value or len(value.split()) > MAX_TEXT_WORDS:
        return None
    return value
