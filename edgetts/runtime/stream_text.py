"""Token ids to text as they are decoded, per sample: what streaming callers read (the Python
API's Engine.stream, the HTTP service's server-sent chunks)."""

from __future__ import annotations

from tokenizers import Tokenizer
from tokenizers.decoders import DecodeStream


class StreamText:
    """Token ids to text deltas per sample. tokenizers' DecodeStream keeps the byte-fallback
    and SentencePiece-space state, so a multi-byte character split over tokens comes out whole."""

    def __init__(self, tokenizer: Tokenizer):
        self.tokenizer = tokenizer
        self.streams: dict[int, DecodeStream] = {}

    def delta(self, sample: int, token: int) -> str:
        stream = self.streams.setdefault(sample, DecodeStream(skip_special_tokens=True))
        return stream.step(self.tokenizer, token) or ""
