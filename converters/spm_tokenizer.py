"""Give a GGUF's SentencePiece-BPE vocabulary back its BPE model in ``tokenizer.json``.

Why this exists: llama.cpp stores a SentencePiece vocabulary (``tokenizer.ggml.model = "llama"``)
as pieces, scores and piece types, without merges; for a BPE-trained SentencePiece model (Gemma)
the score is the merge priority, and both SentencePiece and llama.cpp tokenize by repeatedly
merging the adjacent pair whose merged piece scores highest. transformers 4.57's GGUF converter
for Gemma builds a *Unigram* model from those scores instead, which segments ordinary text
differently ("hi there" -> ``hi ▁t he re``, where Gemma's own tokenizer gives ``hi ▁there``): the
model then reads text it was never trained on and answers badly, with no error anywhere.

The repair keeps what transformers wrote around the model (normalizer, post-processor, decoder,
its special tokens) and swaps the Unigram model for a byte-fallback BPE over the GGUF's own
pieces (transformers respells some: Gemma's byte piece ``<0x09>`` becomes a second "\t"), with
merges ordered by the merged piece's score — the construction transformers itself uses for
SentencePiece files (``convert_slow_tokenizer.generate_merges``), over normal pieces only (BPE
never merges into control, byte, unused or user-defined pieces; user-defined ones are matched
whole, as added tokens). The tests compare it with SentencePiece's own BPE encoder over the same
pieces, and on the built-in Gemma 3 vocabulary with llama.cpp's reading of user-defined pieces.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..atomic import write_text_atomic

# gguf.TokenType values (llama.cpp's llama_token_type), spelled out so that reading a
# tokenizer.json does not need the gguf package.
NORMAL, UNKNOWN, CONTROL, USER_DEFINED = 1, 2, 3, 4


def gguf_spm_vocabulary(gguf_path: Path) -> tuple[list[str], list[float], list[int]] | None:
    """Pieces, scores and piece types of a GGUF whose vocabulary is SentencePiece's
    (``tokenizer.ggml.model`` is ``llama``); None for any other tokenizer (BPE with merges, ...)."""
    import gguf

    fields = gguf.GGUFReader(gguf_path).fields
    keys = [f"tokenizer.ggml.{key}" for key in ("model", "tokens", "scores", "token_type")]
    if any(key not in fields for key in keys) or fields[keys[0]].contents() != "llama":
        return None
    return (
        [str(piece) for piece in fields[keys[1]].contents()],
        [float(score) for score in fields[keys[2]].contents()],
        [int(kind) for kind in fields[keys[3]].contents()],
    )


def bpe_model(pieces: list[str], scores: list[float], types: list[int]) -> dict:
    """A ``tokenizers`` BPE model (as tokenizer.json holds it) equivalent to SentencePiece's BPE
    over these pieces: ids are list positions, merges rank by the merged piece's score."""
    from transformers.convert_slow_tokenizer import generate_merges

    vocab = {piece: i for i, piece in enumerate(pieces)}
    normal = {pieces[i]: scores[i] for i, kind in enumerate(types) if kind == NORMAL}
    merges = generate_merges({piece: vocab[piece] for piece in normal}, normal)
    unknown = next((pieces[i] for i, kind in enumerate(types) if kind == UNKNOWN), None)
    return {
        "type": "BPE",
        "dropout": None,
        "unk_token": unknown,
        "continuing_subword_prefix": None,
        "end_of_word_suffix": None,
        "fuse_unk": True,
        "byte_fallback": True,
        "ignore_merges": False,
        "vocab": vocab,
        "merges": [list(pair) for pair in merges],
    }


def _with_spm_added_tokens(added: list[dict], pieces: list[str], types: list[int]) -> list[dict]:
    """``added`` plus every control and user-defined piece it lacks, as llama.cpp reads them:
    user-defined pieces (Gemma's runs of spaces, tabs and new lines) match whole in the raw text,
    before anything else; control pieces are special tokens, so that a chat prefix such as
    ``<start_of_turn>user`` reaches the model as one id (llama.cpp with special parsing on)."""
    have = {token["id"] for token in added}
    extra = [
        {"id": i, "content": pieces[i], "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": kind == CONTROL}
        for i, kind in enumerate(types)
        if kind in (CONTROL, USER_DEFINED) and i not in have
    ]  # fmt: skip
    return sorted(added + extra, key=lambda token: token["id"])


def repair_tokenizer_json(tokenizer_json: Path, gguf_path: Path) -> bool:
    """Rewrite ``tokenizer_json`` (atomically) with a BPE model over the GGUF's own pieces where
    transformers built a Unigram one from a SentencePiece vocabulary; return whether it did."""
    data = json.loads(tokenizer_json.read_text(encoding="utf-8"))
    if data.get("model", {}).get("type") != "Unigram":
        return False
    vocabulary = gguf_spm_vocabulary(gguf_path)
    if vocabulary is None or len(vocabulary[0]) != len(data["model"]["vocab"]):
        return False
    pieces, scores, types = vocabulary
    data["model"] = bpe_model(pieces, scores, types)
    data["added_tokens"] = _with_spm_added_tokens(data.get("added_tokens") or [], pieces, types)
    write_text_atomic(tokenizer_json, json.dumps(data, ensure_ascii=False))
    return True
