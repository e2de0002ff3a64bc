"""Stop strings: text that ends a sample where no stop *token* does.

Why: a base model (no chat template, e.g. the Gemma 3 270M GGUF) answers in a plain
"Question: … Answer: …" frame and, having answered, goes on to invent the next "Question:"; only
<eos> would stop it. Like llama.cpp's ``--reverse-prompt`` / the ``stop`` field of OpenAI-style
servers, a sample ends as soon as its text contains a stop string, and what follows the stop
string is never read for the answer.

Only the tail of a row's tokens is decoded at each step (a stop string of c characters lies
within its last c + 1 tokens: every token but a byte piece decodes to at least one character,
and the extra token covers a string that starts inside a token), so the check costs microseconds
whatever the length of the reasoning.
"""

from __future__ import annotations

from tokenizers import Tokenizer

# Byte-fallback pieces (<0xE2>…) decode to nothing until their character is complete: allow a
# full UTF-8 character's worth of them on top of one token per character.
_BYTE_SLACK = 4


class StopStrings:
    def __init__(self, tokenizer: Tokenizer, strings: list[str]):
        self._decode = tokenizer.decode
        self.strings = [s for s in strings if s]
        self._window = max((len(s) for s in self.strings), default=0) + 1 + _BYTE_SLACK

    def hit(self, tokens: list[int]) -> bool:
        """Whether the text of ``tokens`` has come to contain a stop string (checked after every
        appended token, so only the tail can hold a new one)."""
        if not self.strings or not tokens:
            return False
        tail = self._decode(tokens[-self._window :])
        return any(s in tail for s in self.strings)

    def trim(self, text: str) -> str:
        """``text`` up to the first stop string (the rest is the model talking past its answer)."""
        cut = min((i for i in (text.find(s) for s in self.strings) if i >= 0), default=len(text))
        return text[:cut]
