"""The in-place KV cache (GroupQueryAttention sharing past and present) against the numpy pass:
same logits through prefill, replication, steps, dropped rows and a multi-token chunk."""

from __future__ import annotations

import numpy as np
import pytest
from tokenizers import Tokenizer

from edgetts.runtime.generator import generate
from edgetts.runtime.kv_cache import NumpyKVCache, SharedKVCache
from edgetts.runtime.onnx_model import OnnxCausalLM
from edgetts.runtime.sampling import SamplingParams

ATOL = 1e-4


def numpy_steps(lm: OnnxCausalLM, prompt: np.ndarray, steps: np.ndarray, keep: list[int], at: int):
    """Reference logits [step][rows, vocab] with the numpy pass: prefill, repeat, decode, drop."""
    logits, past = lm.forward(prompt, lm.empty_past(1))
    out = [logits[:, -1]]
    rows = list(range(steps.shape[1]))
    past = {name: np.repeat(value, len(rows), axis=0) for name, value in past.items()}
    for t, tokens in enumerate(steps):
        if t == at:
            past = {name: value[keep] for name, value in past.items()}
            rows = keep
        logits, past = lm.forward(tokens[rows], past)
        out.append(logits[:, -1])
    return out


@pytest.mark.parametrize("arch", ("llama", "qwen2"))
def test_shared_cache_matches_the_numpy_pass(arch, converted_tiny):
    lm = OnnxCausalLM(converted_tiny(arch, "fp32"), threads=1)
    assert lm.shared_kv
    rng = np.random.default_rng(3)
    vocab = lm.manifest.architecture.vocab_size
    prompt = rng.integers(0, vocab, size=(1, 9))
    steps = rng.integers(0, vocab, size=(6, 4, 1))
    keep, at = [0, 2, 3], 3  # row 1 finishes: row 3 is moved into its place
    expected = numpy_steps(lm, prompt, steps, keep, at)

    cache = lm.new_cache(4, capacity=9 + len(steps) + 3)
    assert isinstance(cache, SharedKVCache)
    got = [lm.run(cache, prompt)[:, -1].copy()]
    cache.replicate(4)
    order = list(range(4))
    for t, tokens in enumerate(steps):
        if t == at:
            order = cache.keep(keep)
            assert order == [0, 3, 2]
        # Cache row i holds original row order[i]; the reference keeps the original order.
        got.append(lm.run(cache, tokens[order])[:, -1][np.argsort(order)])
    for step, (a, b) in enumerate(zip(got, expected, strict=True)):
        np.testing.assert_allclose(a, b, atol=ATOL, err_msg=f"step {step}")

    # A chunk of several tokens after the cache at batch 1 (the forcing text).
    cache.keep([0])
    chunk = rng.integers(0, vocab, size=(1, 3))
    reference = NumpyKVCache(lm.forward, lm.empty_past(1))
    reference.run(np.concatenate([prompt, steps[:, 0].reshape(1, -1)], axis=1))
    np.testing.assert_allclose(lm.run(cache, chunk), reference.run(chunk), atol=ATOL)


def test_cache_refuses_tokens_beyond_its_capacity(converted_tiny):
    lm = OnnxCausalLM(converted_tiny("llama", "fp32"), threads=1)
    cache = lm.new_cache(2, capacity=5)
    lm.run(cache, np.ones((1, 5), dtype=np.int64))
    with pytest.raises(ValueError, match="do not fit"):
        lm.run(cache, np.ones((1, 1), dtype=np.int64))


def test_cache_grows_to_its_max_capacity_keeping_the_context(converted_tiny):
    """A cache that starts small doubles when a run needs more room: the logits stay those of
    the numpy pass, and it refuses tokens past ``max_capacity``."""
    lm = OnnxCausalLM(converted_tiny("qwen2", "fp32"), threads=1)
    rng = np.random.default_rng(5)
    vocab = lm.manifest.architecture.vocab_size
    prompt, steps = rng.integers(0, vocab, size=(1, 6)), rng.integers(0, vocab, size=(7, 2, 1))
    expected = numpy_steps(lm, prompt, steps, keep=[0, 1], at=len(steps))
    cache = lm.new_cache(2, capacity=7, max_capacity=13)
    got = [lm.run(cache, prompt)[:, -1].copy()]
    cache.replicate(2)
    capacities = []
    for tokens in steps:
        got.append(lm.run(cache, tokens)[:, -1].copy())
        capacities.append(cache.capacity)
    assert capacities == [7, 13, 13, 13, 13, 13, 13]  # doubled (14) but capped at 13
    for step, (a, b) in enumerate(zip(got, expected, strict=True)):
        np.testing.assert_allclose(a, b, atol=ATOL, err_msg=f"step {step}")
    with pytest.raises(ValueError, match="do not fit"):
        lm.run(cache, steps[0])


@pytest.mark.parametrize("shared", (True, False))
def test_a_fork_decodes_apart_from_its_origin(shared, converted_tiny):
    """Calibration's branches: a fork continues exactly like its origin would, and decoding
    it leaves the origin untouched."""
    lm = OnnxCausalLM(converted_tiny("llama", "fp32"), threads=1, shared_kv=shared)
    rng = np.random.default_rng(7)
    vocab = lm.manifest.architecture.vocab_size
    prompt, a, b = (
        rng.integers(0, vocab, size=(1, 5)),
        rng.integers(0, vocab, size=(3, 1)),
        rng.integers(0, vocab, size=(3, 1)),
    )
    cache = lm.new_cache(3, capacity=5 + 2)
    lm.run(cache, prompt)
    cache.replicate(3)
    fork = cache.fork(capacity=5 + 3)
    from_fork = lm.run(fork, a).copy()
    lm.run(fork, b)
    from_origin = lm.run(cache, a).copy()
    np.testing.assert_allclose(from_fork, from_origin, atol=ATOL)
    assert (fork.length, cache.length, fork.rows) == (7, 6, 3)


def test_set_length_times_a_step_at_any_context(converted_tiny):
    """The profiler's way to time one step: a cache declared ``context`` long and rewound before
    every step; both caches give the same logits, every time."""
    ids = np.arange(3, dtype=np.int64).reshape(3, 1) + 5
    results = []
    for shared in (True, False):
        lm = OnnxCausalLM(converted_tiny("llama", "fp32"), threads=1, shared_kv=shared)
        assert lm.shared_kv == shared
        cache = lm.new_cache(3, capacity=41)
        cache.set_length(40)
        cache.replicate(3)
        for _ in range(2):
            cache.set_length(40)
            results.append(lm.run(cache, ids).copy())
            assert results[-1].shape[:2] == (3, 1) and cache.length == 41
    for logits in results[1:]:
        np.testing.assert_allclose(logits, results[0], atol=ATOL)


@pytest.mark.parametrize("exporter", ("auto", "optimum"))
def test_generation_is_the_same_on_both_caches(exporter, converted_tiny):
    path = converted_tiny("qwen2", "fp32", exporter)
    tok = Tokenizer.from_file(str(path / "tokenizer.json"))
    warm = SamplingParams(temperature=1.0, top_p=0.95)
    results = []
    for shared in (True, False):
        lm = OnnxCausalLM(path, threads=1, shared_kv=shared)
        assert lm.shared_kv == (shared and exporter == "auto")
        results.append(generate(lm, tok, "What is 3 plus 4?", budget=10, samples=4, seed=2, sampling=warm))
    assert [s.think for s in results[0].samples] == [s.think for s in results[1].samples]
    assert [s.answer for s in results[0].samples] == [s.answer for s in results[1].samples]
