"""The generation engine on the tiny model: shared prefix, budget forcing, deadline guard,
thread safety, and bad requests."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from conftest import copy_entry

from edgetts.engine import Engine
from edgetts.errors import EdgeTTSError, ModelNotFoundError, UnsupportedPrecisionError
from edgetts.runtime.generator import generate
from edgetts.runtime.kv_cache import SharedKVCache
from edgetts.runtime.onnx_model import default_threads
from edgetts.runtime.sampling import SamplingParams

QUESTION = "Question: what is 12 plus 7?"
WARM = SamplingParams(temperature=1.0, top_p=0.95)


def test_shared_prefix_samples_equal_independent_runs(tiny):
    lm, tok = tiny
    together = generate(lm, tok, QUESTION, budget=12, samples=4, seed=7, sampling=WARM)
    for sample in together.samples:
        alone = generate(
            lm, tok, QUESTION, budget=12, samples=4, seed=7, sampling=WARM, sample_indices=[sample.index]
        )
        assert alone.samples[0].think == sample.think
        assert alone.samples[0].answer == sample.answer
    assert len({tuple(s.think) for s in together.samples}) > 1, "samples should differ from each other"


def test_anchored_vote_decodes_sample_0_greedily_and_the_rest_as_before(tiny):
    lm, tok = tiny
    greedy = generate(lm, tok, QUESTION, budget=12, samples=1)
    anchored = generate(lm, tok, QUESTION, budget=12, samples=4, seed=7, sampling=WARM)
    plain = generate(lm, tok, QUESTION, budget=12, samples=4, seed=7, sampling=WARM, anchor=False)
    assert anchored.samples[0].think == greedy.samples[0].think
    assert anchored.samples[0].answer == greedy.samples[0].answer
    assert plain.samples[0].think != greedy.samples[0].think, "a warm sample 0 should leave greedy"
    for with_anchor, without in zip(anchored.samples[1:], plain.samples[1:], strict=True):
        assert with_anchor.think == without.think and with_anchor.answer == without.answer


def test_budget_cap_is_exact(tiny):
    lm, tok = tiny
    for budget in (0, 1, 5, 17):
        result = generate(lm, tok, QUESTION, budget=budget, samples=3, seed=1, sampling=WARM, answer_tokens=4)
        for sample in result.samples:
            assert len(sample.think) <= budget
            if sample.forced_by == "budget":
                assert len(sample.think) == budget
            assert len(sample.answer) <= 4
        if budget == 0:
            assert all(s.think == [] for s in result.samples) and result.forced_by == "none"


def test_deadline_guard_returns_in_time_on_a_slowed_session(tiny):
    lm, tok = tiny
    step_delay = 0.03
    run = lm.run

    def slow_run(*args, **kwargs):
        time.sleep(step_delay)
        return run(*args, **kwargs)

    lm.run = slow_run  # a device far slower than its profile: every call 30 ms late
    deadline = 0.5
    result = generate(lm, tok, QUESTION, budget=150, samples=2, seed=0, sampling=WARM, deadline=deadline)
    one_step = step_delay + 0.02
    assert result.latency_ms / 1000 <= deadline + one_step, result.latency_ms
    assert result.forced_by == "deadline"
    assert all(len(s.think) < 150 for s in result.samples)


def test_four_threads_sharing_an_engine_match_one(converted_tiny, edgetts_home):
    copy_entry(converted_tiny("llama", "int4"), edgetts_home)
    engine = Engine(threads=1)
    kwargs = dict(model="llama-int4", budget=10, samples=3, seed=5, sampling=WARM)
    expected = engine.generate(QUESTION, **kwargs)
    results: list = [None] * 4

    def work(slot: int) -> None:
        results[slot] = engine.generate(QUESTION, **kwargs)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for result in results:
        assert result.samples == expected.samples and result.text == expected.text
        assert result.tokens == expected.tokens


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(prompt=""), "question is empty"),
        (dict(samples=0), "samples must be at least 1"),
        (dict(budget=-2), "budget -2 is negative"),
        (dict(prompt="word " * 300), "exceeds the model's context of 256 tokens"),
        (dict(deadline=0), "not positive"),
    ],
)
def test_bad_requests_are_clear_errors(kwargs, message, converted_tiny, edgetts_home):
    copy_entry(converted_tiny("llama", "fp32"), edgetts_home)
    args = dict(prompt=QUESTION, model="llama-fp32", budget=8, samples=1) | kwargs
    with pytest.raises(EdgeTTSError, match=message):
        Engine().generate(**args)


def test_unknown_model_and_fp8_are_refused(converted_tiny, edgetts_home):
    with pytest.raises(ModelNotFoundError):
        Engine().generate(QUESTION, model="nope")
    copy_entry(converted_tiny("llama", "fp8"), edgetts_home)
    with pytest.raises(UnsupportedPrecisionError):
        Engine().generate(QUESTION, model="llama-fp8")


def test_cli_generate_json_and_errors(converted_tiny, edgetts_home):
    import os

    copy_entry(converted_tiny("llama", "int4"), edgetts_home)
    env = {**os.environ, "EDGETTS_HOME": str(edgetts_home)}
    cmd = [
        sys.executable,
        "-m",
        "edgetts",
        "generate",
        QUESTION,
        "-m",
        "llama-int4",
        "--budget",
        "6",
        "-n",
        "2",
    ]
    result = subprocess.run([*cmd, "--json", "--deadline", "2s"], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert set(out) >= {
        "answer",
        "config",
        "latency_ms",
        "prefill_ms",
        "decode_ms",
        "tokens",
        "forced_by",
        "votes",
    }
    config = {"model": "llama-int4", "quant": "int4", "budget": 6, "samples": 2, "mode": "steps"}
    assert out["config"] == {**config, "threads": default_threads()}  # no --threads: a thread per core
    assert out["tokens"]["think"] == [6, 6] or out["forced_by"] in ("none", "deadline")
    plain = subprocess.run([*cmd, "--json", "--no-anchor"], capture_output=True, text=True, env=env)
    assert plain.returncode == 0, plain.stderr
    assert json.loads(plain.stdout)["config"]["samples"] == 2
    for bad, expected in (
        (["-n", "0"], "samples must be at least 1"),
        (["--deadline", "soon"], "500ms"),
        (["--threads", "-3"], "--threads"),
    ):
        result = subprocess.run([*cmd, *bad], capture_output=True, text=True, env=env)
        assert result.returncode != 0 and "Traceback" not in result.stderr and expected in result.stderr


def test_budget_minus_one_thinks_until_the_context_is_full(tiny):
    lm, tok = tiny
    from edgetts.runtime.prompting import force_text

    result = generate(lm, tok, QUESTION, budget=-1, samples=1, answer_tokens=4)
    sample = result.samples[0]
    forcing = len(tok.encode(force_text(lm.manifest.prompt), add_special_tokens=False).ids)
    room = lm.manifest.architecture.context_length - result.prompt_tokens - forcing - 4
    assert len(sample.think) <= room
    if sample.forced_by == "budget":
        assert len(sample.think) == room


def test_a_cache_grown_during_generation_gives_the_same_samples(tiny, monkeypatch):
    """A long budget starts with a small cache that doubles as the samples think: the tokens
    must be those of a cache reserved up front."""
    lm, tok = tiny
    from edgetts.runtime import generator

    reserved = generate(lm, tok, QUESTION, budget=24, samples=3, seed=4, sampling=WARM)
    monkeypatch.setattr(generator, "FIRST_THINK_ROOM", 2)
    growths = []
    grow = SharedKVCache._grow
    monkeypatch.setattr(
        SharedKVCache, "_grow", lambda cache, needed: growths.append(needed) or grow(cache, needed)
    )
    grown = generate(lm, tok, QUESTION, budget=24, samples=3, seed=4, sampling=WARM)
    assert growths, "the cache never had to grow: the test tests nothing"
    assert [s.think for s in grown.samples] == [s.think for s in reserved.samples]
    assert [s.answer for s in grown.samples] == [s.answer for s in reserved.samples]


def test_the_planner_charges_a_growing_cache_at_its_peak(tiny, monkeypatch):
    """While the shared cache grows, the old buffer (full) and its copy in the new one are both
    alive: generator.cache_peak_tokens, what the planner charges, must be the most positions a
    row really held, for the sizes generate gives its cache and the growth the cache does."""
    lm, tok = tiny
    from edgetts.runtime import generator

    monkeypatch.setattr(generator, "FIRST_THINK_ROOM", 2)
    sizes = []
    new_cache = lm.new_cache

    def sized(rows, capacity, max_capacity=None):
        sizes.append((capacity, max_capacity))
        return new_cache(rows, capacity, max_capacity)

    monkeypatch.setattr(lm, "new_cache", sized)
    budget = 24
    generate(lm, tok, QUESTION, budget=budget, samples=1)
    ((first, needed),) = sizes
    held = []
    grow = SharedKVCache._grow

    def growing(cache, wanted):
        held.append(2 * cache.capacity)  # the old buffer, full, and its copy
        grow(cache, wanted)

    monkeypatch.setattr(SharedKVCache, "_grow", growing)
    cache = new_cache(1, first, needed)
    for _ in range(needed):  # every position written, one token a step as a batch decodes
        lm.run(cache, np.zeros((1, 1), dtype=np.int64))
    assert held, "the cache never grew: the test tests nothing"
    assert max(*held, needed) == generator.cache_peak_tokens(needed, budget, in_place=True)
    assert generator.cache_peak_tokens(needed, budget, in_place=False) == 2 * needed


def test_slow_prefill_does_not_force_the_answer_early(tiny):
    """A long prompt's prefill says little about a decode step; with time to spare the samples
    must think to their budget, not be forced at once."""
    lm, tok = tiny
    run = lm.run

    def slow_prefill(cache, input_ids):
        if input_ids.shape[1] > 1 and cache.length == 0:
            time.sleep(0.5)
        return run(cache, input_ids)

    lm.run = slow_prefill
    result = generate(lm, tok, QUESTION, budget=10, samples=2, seed=0, sampling=WARM, deadline=5.0)
    assert result.forced_by in ("budget", "none")
    assert all(s.forced_by != "deadline" for s in result.samples)
