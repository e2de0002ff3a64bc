"""Constrained answers: after the reasoning is cut (by the budget or the deadline), and in a
direct answer, the answer tokens may only spell a valid answer of the question's type, so a
forced answer is always one the robot can read.

The grammar library is llguidance (PyPI ``llguidance``, the engine onnxruntime-genai and
llama.cpp use): it reads a store entry's ``tokenizer.json`` directly (no transformers), has no
dependencies of its own, and computes a mask over Qwen's 151,936 tokens in well under a
millisecond. It is the ``grammar`` extra: without it answers are read unconstrained, as before.

The grammars are regular expressions over what follows the answer cue ("Therefore, the final
answer is"): an optional space, then the answer, then at most a full stop. A row whose matcher
has stopped (nothing more may follow) ends its sample.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from .answer_types import MAX_TEXT_WORDS, AnswerType

# What may follow the cue, per type. Numbers as GSM8K writes them (sign, $, thousands commas,
# decimals, a fraction, whose denominator is not 0: "2000/0" reads as no number); a short text
# is at most MAX_TEXT_WORDS words on one line, as extraction reads it, of words that start with
# a letter or digit and hold no punctuation or markup (no "\boxed{…}", no ", which is …", no
# lone "'" that normalises to nothing).
_NUMBER = r"-?\$?[0-9][0-9,]{0,15}(\.[0-9]{1,6})?(/[1-9][0-9]{0,5})?"
_WORD = r"[A-Za-z0-9\u00c0-\u024f][^\s.!?*,;:\\{}()\[\]<>\"`]{0,29}"
_TEXT = rf"{_WORD}( {_WORD}){{0,{MAX_TEXT_WORDS - 1}}}"


def answer_regex(answer_type: AnswerType) -> str:
    """What may follow the cue, as a regular expression (not for json: see answer_grammar)."""
    if answer_type.kind == "number":
        body = _NUMBER
    elif answer_type.kind == "yesno":
        body = "(yes|no|Yes|No)"
    elif answer_type.kind == "choice":
        body = "(" + "|".join(answer_type.letters) + ")"
    else:
        body = _TEXT
    return rf" ?(\*\*)?{body}(\*\*)?\.?"  # Markdown bold, which chat models like, at most once


def answer_grammar(answer_type: AnswerType) -> str:
    """llguidance's grammar: a JSON answer is a document valid under the schema (llguidance's
    own JSON Schema support, inside a Lark rule for the optional leading space), the others the
    regular expression above."""
    from llguidance import LLMatcher

    if answer_type.kind == "json":
        return LLMatcher.grammar_from_lark(f'start: " "? answer\nanswer: %json {answer_type.schema}')
    return LLMatcher.grammar_from_regex(answer_regex(answer_type))


def available() -> bool:
    try:
        import llguidance  # noqa: F401
    except ImportError:
        return False
    return True


@functools.lru_cache(maxsize=16)
def _tokenizer(path: str, mtime: float, vocab_size: int, stop_ids: tuple[int, ...]):
    import llguidance

    return llguidance.LLTokenizer(Path(path).read_text(), n_vocab=vocab_size, eos_token=list(stop_ids))


def tokenizer_for(tokenizer_json: Path, vocab_size: int, stop_ids: tuple[int, ...]):
    """llguidance's view of a store entry's tokenizer, built once per file (warm-up does it):
    ``vocab_size`` is the model's logits width, which may exceed the tokenizer's; ``stop_ids``
    the tokens that end a sample, which a complete answer may be followed by."""
    return _tokenizer(str(tokenizer_json), tokenizer_json.stat().st_mtime, vocab_size, tuple(stop_ids))


class AnswerConstraint:
    """One matcher per sample; ``mask`` restricts a batch's logits to the tokens each row's
    answer may continue with, ``consume`` advances a row and says whether its answer is done."""

    def __init__(
        self, tokenizer_json: Path, vocab_size: int, stop_ids: tuple[int, ...], answer_type: AnswerType,
        samples: list[int],
    ):  # fmt: skip
        from llguidance import LLMatcher

        tokenizer = tokenizer_for(tokenizer_json, vocab_size, stop_ids)
        grammar = answer_grammar(answer_type)
        self.matchers = {i: LLMatcher(tokenizer, grammar, log_level=0) for i in samples}
        self._words = (vocab_size + 31) // 32
        self._bitmask = np.zeros((len(samples), self._words), dtype=np.int32)

    def mask(self, logits: np.ndarray, samples: list[int]) -> None:
        """In place: row r of ``logits`` [rows, vocab] keeps only the tokens sample
        ``samples[r]`` may say next. Written with ``np.unpackbits`` rather than llguidance's
        numpy helper, which builds three vocabulary-sized temporaries per call."""
        bitmask = self._bitmask[: len(samples)]
        for row, sample in enumerate(samples):
            matcher = self.matchers[sample]
            if matcher.is_error():  # cannot happen with these grammars; never mask a row to nothing
                bitmask[row] = -1
                continue
            matcher.unsafe_compute_mask_ptr(bitmask[row].ctypes.data, self._words * 4)
        allowed = np.unpackbits(bitmask.view(np.uint8), axis=1, bitorder="little")[:, : logits.shape[1]]
        logits[allowed == 0] = -np.inf

    def consume(self, sample: int, token: int) -> bool:
        """Advance sample ``sample`` by ``token``; True when its answer is complete."""
        matcher = self.matchers[sample]
        matcher.consume_token(token)
        return matcher.is_stopped() or matcher.is_error()
