"""A SentencePiece-BPE vocabulary read from GGUF tokenizes as SentencePiece itself does.

The reference is SentencePiece's own BPE encoder over the same pieces: for a vocabulary the test
trains itself (written to a GGUF the way llama.cpp's converter writes Gemma's) and, where the
package is installed, for the built-in Gemma 3 GGUF (with llama.cpp's whole-piece matching of
user-defined pieces). transformers' own reading of the same GGUF segments differently.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

spm = pytest.importorskip("sentencepiece")
pytest.importorskip("gguf")
pytest.importorskip("transformers")

from gguf_writer import write_spm_tokenizer_gguf  # noqa: E402
from sentencepiece import sentencepiece_model_pb2  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

from edgetts.converters import aliases  # noqa: E402
from edgetts.converters.sources import save_gguf_tokenizer  # noqa: E402
from edgetts.converters.spm_tokenizer import gguf_spm_vocabulary  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SAMPLES = [
    "hi there",
    "Janet’s ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes "
    "muffins for her friends every day with four.",
    "How much in dollars does she make every day at the farmers' market? $18",
    "  leading spaces,\ttabs\nand\n\nnew lines  ",
    "1,234.56 + 7/8 = ? Therefore, the final answer is \\boxed{42}.",
    "Ünïcödé, émojis 🤖 and 漢字 fall back to bytes",
    "<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n",
]


def _train() -> bytes:
    """A small SentencePiece BPE model trained like Gemma's: byte fallback, digits split, no
    dummy prefix, whitespace kept, chat markers as user-defined pieces."""
    model = io.BytesIO()
    text = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter([line for line in text if line.strip()]),
        model_writer=model,
        model_type="bpe",
        vocab_size=600,
        byte_fallback=True,
        split_digits=True,
        add_dummy_prefix=False,
        remove_extra_whitespaces=False,
        normalization_rule_name="identity",
        user_defined_symbols=["<start_of_turn>", "<end_of_turn>"],
        unk_id=3,
        bos_id=2,
        eos_id=1,
        pad_id=0,
        minloglevel=2,
    )
    return model.getvalue()


def _reference(proto: bytes) -> spm.SentencePieceProcessor:
    return spm.SentencePieceProcessor(model_proto=proto)


def _ids(tokenizer_json: Path, text: str) -> list[int]:
    return Tokenizer.from_file(str(tokenizer_json)).encode(text, add_special_tokens=False).ids


def test_trained_vocabulary_tokenizes_like_sentencepiece(tmp_path):
    proto = _train()
    gguf_path = write_spm_tokenizer_gguf(proto, tmp_path / "tiny.gguf")
    reference = _reference(proto)
    out = tmp_path / "hf"
    save_gguf_tokenizer(gguf_path, out)
    model = json.loads((out / "tokenizer.json").read_text())["model"]
    assert model["type"] == "BPE"
    for text in SAMPLES:
        assert _ids(out / "tokenizer.json", text) == reference.encode(text), text


def test_unigram_reading_of_the_same_vocabulary_differs(tmp_path):
    """What the repair is for: transformers' own reading of this GGUF segments differently."""
    from transformers import AutoTokenizer

    proto = _train()
    gguf_path = write_spm_tokenizer_gguf(proto, tmp_path / "tiny.gguf")
    reference = _reference(proto)
    tokenizer = AutoTokenizer.from_pretrained(str(tmp_path), gguf_file=gguf_path.name)
    assert any(tokenizer.encode(t, add_special_tokens=False) != reference.encode(t) for t in SAMPLES)


@pytest.mark.skipif(
    aliases.lookup("gemma3-270m").missing_packages() != [],
    reason="the gemma3-270m weight packages are not installed (see README's test command)",
)
def test_builtin_gemma3_tokenizes_like_llama_cpp(tmp_path):
    """Reference: SentencePiece's BPE over the GGUF's pieces, with user-defined pieces (Gemma's
    runs of spaces, tabs, new lines) matched whole in the raw text first, as llama.cpp does."""
    model = aliases.lookup("gemma3-270m")
    gguf_path = model.assemble(model, tmp_path)
    pieces, scores, types = gguf_spm_vocabulary(gguf_path)
    proto = sentencepiece_model_pb2.ModelProto()
    proto.trainer_spec.model_type = sentencepiece_model_pb2.TrainerSpec.BPE
    proto.trainer_spec.byte_fallback = True
    proto.normalizer_spec.name = "identity"
    proto.normalizer_spec.add_dummy_prefix = False
    proto.normalizer_spec.remove_extra_whitespaces = False
    for piece, score, kind in zip(pieces, scores, types, strict=True):
        proto.pieces.add(piece=piece, score=score, type=kind)
    reference = _reference(proto.SerializeToString())
    ids = {piece: i for i, piece in enumerate(pieces)}
    user_defined = sorted((p for p, kind in zip(pieces, types, strict=True) if kind == 4), key=len)
    whole = re.compile("|".join(re.escape(piece) for piece in reversed(user_defined)))  # longest first

    def llama_cpp(text: str) -> list[int]:
        found, at = [], 0
        for match in whole.finditer(text):
            found += reference.encode(text[at : match.start()]) if match.start() > at else []
            found.append(ids[match.group()])
            at = match.end()
        return found + (reference.encode(text[at:]) if at < len(text) else [])

    out = tmp_path / "hf"
    save_gguf_tokenizer(gguf_path, out)
    tokenizer = out / "tokenizer.json"
    assert [pieces[i] for i in _ids(tokenizer, "hi there")] == ["hi", "▁there"]
    for text in SAMPLES[:-1] + ["a    b\n\n\nc", "x  ", *_gsm8k_questions(100)]:
        assert _ids(tokenizer, text) == llama_cpp(text), text
    chat = _ids(tokenizer, "<start_of_turn>user\nhi<end_of_turn>")
    assert [pieces[i] for i in chat] == ["<start_of_turn>", "user", "\n", "hi", "<end_of_turn>"]
    assert Tokenizer.from_file(str(tokenizer)).decode(_ids(tokenizer, SAMPLES[3])) == SAMPLES[3]


def _gsm8k_questions(count: int) -> list[str]:
    """The first GSM8K test questions where ../shared has them (what the model will read)."""
    path = REPO.parent / "shared" / "data" / "gsm8k" / "test.jsonl"
    if not path.is_file():
        return []
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line)["question"] for _, line in zip(range(count), lines, strict=False)]
