"""Generation with test-time scaling: one shared prefill, N samples decoded together, budget
forcing, a deadline guard and majority vote with early stop.

KV cache: one buffer for the request (prompt + budget + forcing + answer; a long budget starts
smaller and the buffer doubles as needed) that the model writes into in place
(kv_cache.SharedKVCache; the numpy cache for graphs without GroupQueryAttention). The prompt
is prefilled once at batch 1 into row 0 and copied to N rows; rows of samples that finish are
dropped from the batch (kept rows gathered into the front of the buffer, once per finishing
event) so that they stop costing compute: measured faster than masking them (kv_cache.py has
the numbers).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from tokenizers import Tokenizer

from ..errors import EdgeTTSError, RequestCancelledError
from ..tts.answer_types import NUMBER, AnswerType
from ..tts.vote import decided, majority
from .kv_cache import KVCache
from .onnx_model import OnnxCausalLM
from .prompting import PROGRAM, PROGRAM_HEAD, PROGRAM_STOPS, STEPS, build_prompt, force_text
from .sampling import GREEDY, SamplingParams, sample_rows
from .stops import StopStrings

# Safety factor on the measured step time wherever the guard decides whether one more step (or
# the forced answer) still fits: a step can be slower than the running mean (thermal
# throttling, other load), and one late step is a missed deadline.
RESERVE_FACTOR = 1.5
UNLIMITED = -1  # budget value meaning "until the context is full"
FIRST_THINK_ROOM = 512  # thinking room a cache starts with; longer budgets grow it


@dataclass
class Sample:
    index: int
    think: list[int] = field(default_factory=list)
    answer: list[int] = field(default_factory=list)
    forced_by: str = (
        "none"  # none | budget | deadline | asked (ended by itself, then asked under the grammar)
    )
    phase: str = "think"  # think | force (being fed the forcing text) | answer
    pending: list[int] = field(default_factory=list)  # forcing tokens still to feed
    done: bool = False
    text: str = ""
    value: str | None = None


@dataclass
class Generation:
    answer: str | None
    votes: dict[str, int]
    samples: list[Sample]
    prompt_tokens: int
    prefill_ms: float
    decode_ms: float
    latency_ms: float
    forced_by: str
    stopped_early: bool


class _Batch:
    """The rows still being decoded: their samples (row i of the cache is ``samples[i]``) and
    the KV cache. Every row shares the prompt and grows by one token per step, so the cache's
    attention mask is all ones of its length."""

    def __init__(self, samples: list[Sample], cache: KVCache):
        self.samples, self.cache = samples, cache

    def keep(self, rows: list[int]) -> list[int]:
        """Drop the other rows; return the old row of each remaining row (the cache may reorder)."""
        order = self.cache.keep(rows)
        self.samples = [self.samples[r] for r in order]
        return order


def cache_peak_tokens(tokens, budget, in_place: bool) -> np.ndarray:
    """The most token positions per row that a generation's KV cache holds at once, for a
    context of ``tokens`` (prompt, budget, forcing text, answer) of which ``budget`` are thinking
    (arrays broadcast): what the planner charges as the cache's memory.

    In place (kv_cache.SharedKVCache): ``tokens``, as a step writes into the buffer it reads.
    But a budget over FIRST_THINK_ROOM starts the buffer smaller (as ``generate`` sizes it) and
    doubles it (``SharedKVCache._grow``), and while it grows the old buffer, full, and the new
    one, holding its copy, are both alive: twice the old capacity, which can exceed ``tokens``.
    Otherwise (NumpyKVCache): twice ``tokens``, as every step returns a new, longer cache while
    the old one is still alive."""
    tokens = np.asarray(tokens, np.float64)
    if not in_place:
        return 2 * tokens
    budget = np.asarray(budget, np.float64)
    tokens, capacity = np.broadcast_arrays(tokens, tokens - budget + np.minimum(budget, FIRST_THINK_ROOM))
    peak = tokens.copy()
    growing = capacity < tokens
    while growing.any():
        peak = np.where(growing, np.maximum(peak, 2 * capacity), peak)
        capacity = np.where(growing, np.minimum(tokens, 2 * capacity), capacity)
        growing = capacity < tokens
    return peak


def generate(
    lm: OnnxCausalLM,
    tokenizer: Tokenizer,
    question: str,
    budget: int,
    samples: int = 1,
    answer_tokens: int = 16,
    deadline: float | None = None,
    seed: int = 0,
    sampling: SamplingParams | None = None,
    sample_indices: list[int] | None = None,
    on_token: Callable[[int, int], None] | None = None,
    anchor: bool = True,
    stop: Sequence[str] = (),
    cancel: threading.Event | None = None,
    answer_type: AnswerType = NUMBER,
    constrain: bool | None = None,
    expected_step_s: float | None = None,
    mode: str = STEPS,
) -> Generation:
    """Answer ``question`` with ``samples`` votes, each thinking at most ``budget`` tokens
    (0 = answer directly, -1 = until the context is full).

    ``anchor``: with N ≥ 2 sampled votes, sample 0 is decoded greedily and the vote's tie-break
    (lowest sample index) goes to it. Why: on small models a temperature sample is much weaker
    than the greedy decode (Qwen2.5-0.5B on GSM8K: 16 % vs 20 % at budget 256), so a few samples
    outvoting greedy on their own lose accuracy; anchored, they only overrule it when they agree.
    The calibration tables are computed for anchored votes. ``anchor=False`` is plain
    self-consistency (every sample drawn).

    ``deadline`` (seconds from the call) is enforced: unfinished samples are forced to answer
    while the measured time still covers forcing and ``answer_tokens`` answer tokens.
    ``sample_indices`` picks which random streams to decode (tests use it to run sample i alone).
    ``stop``: stop strings for this call, on top of the model's own (llama.cpp's ``-r``, the
    ``stop`` field of OpenAI-style servers). ``on_token(sample_index, token)`` sees every token a
    sample says (thinking and answer), as it is decoded. ``cancel``: once set, the call raises
    :class:`RequestCancelledError` before its next model step (a client that went away frees the
    CPU within one step). ``answer_type`` words the prompt and reads each sample's answer (the
    vote key): a number, yes/no, an option's letter, a short text. ``constrain``: the answer
    tokens after a cut and in a direct answer may only spell a valid answer of the type
    (tts/constrain.py; needs the ``grammar`` extra, else the answer is read unconstrained).
    None (the default) constrains every type but numbers: the shipped GSM8K tables were
    calibrated reading numbers unconstrained, and a plan's predicted accuracy must be that of
    what runs; True constrains numbers too. ``expected_step_s``: what a decode step is expected
    to take, which the deadline guard uses until it has measured one (without it, the guard can
    only stop at the deadline itself before the first step is timed). ``mode``: ``steps``
    reasons in prose; ``program`` writes a function that the safe evaluator runs
    (runtime/prompting.py, tts/program.py): a program that ends by itself is run, never asked,
    and one cut by the budget or the deadline is asked for its answer with the cue.
    """
    start = time.perf_counter()
    _check_request(question, budget, samples, answer_tokens, deadline)
    fmt = lm.manifest.prompt
    params = sampling or (GREEDY if samples == 1 else SamplingParams())
    indices = sample_indices if sample_indices is not None else list(range(samples))
    anchored = anchor and samples > 1 and not params.greedy
    prompt_ids = tokenizer.encode(build_prompt(fmt, question, budget, answer_type, mode)).ids
    force_ids = tokenizer.encode(force_text(fmt, mode), add_special_tokens=False).ids
    limit = lm.manifest.architecture.context_length
    if budget == UNLIMITED:  # think until the context is full (vLLM / llama.cpp's -1)
        budget = max(0, limit - len(prompt_ids) - len(force_ids) - answer_tokens)
    needed = len(prompt_ids) + budget + len(force_ids) + answer_tokens
    if needed > limit:
        raise EdgeTTSError(
            f"prompt of {len(prompt_ids)} tokens + budget {budget} + answer {answer_tokens} exceeds the "
            f"model's context of {limit} tokens; shorten the question or lower --budget"
        )
    stop_ids = set(fmt.stop_token_ids)
    stops = StopStrings(tokenizer, [*fmt.stop_strings, *(PROGRAM_STOPS if mode == PROGRAM else ()), *stop])
    run_program = _program_runner(start, deadline) if mode == PROGRAM else None
    generators = {i: None if anchored and i == 0 else np.random.default_rng([seed, i]) for i in indices}

    if constrain is None:
        constrain = answer_type.kind != "number"
    constraint = _constraint(lm, answer_type, indices) if constrain else None
    all_samples = [Sample(i) for i in indices]
    rows = len(all_samples)
    # Owned by this call (concurrent calls never share buffers). A long (above all an unlimited)
    # budget starts with FIRST_THINK_ROOM and grows: a context-sized buffer slows the prefill.
    first = len(prompt_ids) + min(budget, FIRST_THINK_ROOM) + len(force_ids) + answer_tokens
    cache = lm.new_cache(rows, first, max_capacity=needed)
    if cancel is not None and cancel.is_set():
        raise RequestCancelledError("the request was cancelled before its prefill")
    logits = lm.run(cache, np.array([prompt_ids], dtype=np.int64))
    prefill_done = time.perf_counter()
    next_logits = np.repeat(logits[:, -1], rows, axis=0)
    cache.replicate(rows)
    batch = _Batch(all_samples, cache)
    # Until a decode step has been measured, the deadline guard only stops at the deadline
    # itself: the prefill time says little about a step (it amortises the weights over the
    # prompt), and taking it as the step time forced every long prompt to answer at once.
    # ``expected_step_s`` (the profile's step for this batch, corrected by what runs measured:
    # planner/correction.py) stands in until then; the first measured step replaces it.
    step_time = expected_step_s or 0.0
    measured = False
    stopped_early = False
    forced_by = "none"
    if budget == 0:  # the budget-0 prompt already ends with the answer cue
        for sample in all_samples:
            sample.phase = "answer"

    while batch.samples:
        if cancel is not None and cancel.is_set():
            raise RequestCancelledError("the request was cancelled while decoding")
        elapsed = time.perf_counter() - start
        thinking = [s for s in batch.samples if s.phase == "think"]
        if thinking:
            over_budget = len(thinking[0].think) >= budget  # every thinking row has thought alike
            force_steps = 1 if len(batch.samples) == 1 else len(force_ids)
            reserve = RESERVE_FACTOR * step_time * (answer_tokens + force_steps)
            late = deadline is not None and (
                elapsed + step_time + reserve >= deadline if step_time > 0 else elapsed >= deadline
            )
            if over_budget or late:
                forced_by = "budget" if over_budget else "deadline"
                for sample in thinking:
                    sample.forced_by, sample.phase, sample.pending = forced_by, "force", list(force_ids)
        if deadline is not None and elapsed + RESERVE_FACTOR * step_time >= deadline:
            # Out of time while forcing or answering (a step may take RESERVE_FACTOR x the
            # measured one: a late step is a missed deadline): keep what was said.
            for sample in batch.samples:
                if sample.phase == "answer":
                    sample.forced_by = "deadline"
            forced_by = "deadline"
            break
        lone = batch.samples[0] if len(batch.samples) == 1 else None
        if lone is not None and lone.phase == "force" and len(lone.pending) == len(force_ids):
            # GroupQueryAttention on the CPU takes several new tokens after a cache only at
            # batch 1: a lone row cut here is fed its forcing text at once, a batch one token
            # per step (as is a row that ended by itself and is asked: calibration mirrors both).
            sample = lone
            next_logits = _feed(lm, batch, [sample.pending])
            sample.pending, sample.phase = [], "answer"
            continue

        tokens = _next_tokens(next_logits, batch.samples, params, generators, constraint)
        keep = []
        for row, (sample, token) in enumerate(zip(batch.samples, tokens.tolist(), strict=True)):
            if sample.phase == "force":  # fed its next forcing token, not a sampled one
                if not sample.pending:
                    sample.phase = "answer"
                keep.append(row)
                continue
            answering = sample.phase == "answer"
            said = sample.answer if answering else sample.think
            ended = token in stop_ids
            if not ended:
                said.append(token)
                if on_token:
                    on_token(sample.index, token)
            complete = answering and constraint is not None and constraint.consume(sample.index, token)
            if not (ended or complete or (answering and len(said) >= answer_tokens) or stops.hit(said)):
                keep.append(row)
                continue
            if not answering and constraint is not None and run_program is None:
                # Ended its reasoning by itself: with the grammar it is asked for its answer as a
                # cut sample is (its stop token is not fed; the forcing text is), so that every
                # answer of a constrained type is one the grammar allows — reading free reasoning
                # ("Therefore, its next waypoint is the dock.") is where answers got lost.
                sample.forced_by, sample.phase, sample.pending = "asked", "force", list(force_ids)
                tokens[row] = sample.pending.pop(0)
                keep.append(row)
                continue
            sample.done = True
        finished = [s for s in batch.samples if s.done]
        for sample in finished:
            _finish(sample, tokenizer, stops, answer_type, run_program)
        if not keep:
            break
        if finished and decided([s.value for s in all_samples if s.done], len(keep)):
            stopped_early = True
            break
        order = batch.keep(keep)
        step_start = time.perf_counter()
        next_logits = _feed(lm, batch, tokens[order].reshape(-1, 1))
        took = time.perf_counter() - step_start
        # A moving average, but never below the last step: slow-downs must show at once.
        step_time = max(took, 0.8 * step_time + 0.2 * took) if measured else took
        measured = True
    for sample in all_samples:
        if not sample.done:  # cut by the deadline mid-answer, or cancelled by the early stop
            _finish(sample, tokenizer, stops, answer_type, run_program)
            if stopped_early:
                sample.value = None  # a cancelled sample's half-written text does not vote
    answer, votes = majority([s.value for s in all_samples])
    end = time.perf_counter()
    return Generation(
        answer=answer,
        votes=votes,
        samples=all_samples,
        prompt_tokens=len(prompt_ids),
        prefill_ms=1000 * (prefill_done - start),
        decode_ms=1000 * (end - prefill_done),
        latency_ms=1000 * (end - start),
        forced_by=forced_by,
        stopped_early=stopped_early,
    )


def _constraint(lm: OnnxCausalLM, answer_type: AnswerType, indices: list[int]):
    """The answer grammar for these samples, or None without the grammar extra."""
    from ..tts import constrain

    if not constrain.available():
        return None
    return constrain.AnswerConstraint(
        lm.model_dir / "tokenizer.json", lm.manifest.architecture.vocab_size,
        tuple(lm.manifest.prompt.stop_token_ids), answer_type, indices,
    )  # fmt: skip


def _next_tokens(
    logits: np.ndarray, samples: list[Sample], params: SamplingParams, generators: dict, constraint
) -> np.ndarray:
    """The token each row is fed next: its next forcing token, or one sampled from its stream
    (an answering row's under the answer grammar). Rows being forced draw nothing, so a
    sample's stream is the same whatever the other rows do."""
    tokens = np.zeros(len(samples), dtype=np.int64)
    drawn = [r for r, s in enumerate(samples) if s.phase != "force"]
    for r, sample in enumerate(samples):
        if sample.phase == "force":
            tokens[r] = sample.pending.pop(0)
    if not drawn:
        return tokens
    rows = logits if len(drawn) == len(samples) else logits[drawn]  # a copy only when rows differ
    answering = [p for p, r in enumerate(drawn) if samples[r].phase == "answer"]
    if constraint is not None and answering:
        masked = rows if len(answering) == len(drawn) else rows[answering]
        constraint.mask(masked, [samples[drawn[p]].index for p in answering])
        if masked is not rows:
            rows[answering] = masked
    tokens[drawn] = sample_rows(rows, params, [generators[samples[r].index] for r in drawn])
    return tokens


def _feed(lm: OnnxCausalLM, batch: _Batch, tokens) -> np.ndarray:
    """Run ``tokens`` ([rows, k] or a list shared by every row) through the batch's cache; the
    last position's logits [rows, vocab] (a view the next step overwrites)."""
    ids = np.asarray(tokens, dtype=np.int64)
    if ids.ndim == 1:
        ids = np.repeat(ids[None, :], len(batch.samples), axis=0)
    return lm.run(batch.cache, ids)[:, -1]


def _finish(
    sample: Sample, tokenizer: Tokenizer, stops: StopStrings, answer_type: AnswerType,
    run_program: Callable[[str], str | None] | None = None,
) -> None:  # fmt: skip
    think = stops.trim(tokenizer.decode(sample.think))
    answer = stops.trim(tokenizer.decode(sample.answer))
    sample.done = True
    sample.text = think + ("\n" + answer if sample.answer else "")
    if run_program is not None:  # a program that ended by itself is run; a cut one was asked
        sample.value = answer_type.extract(answer) if sample.forced_by != "none" else run_program(think)
        return
    # A forced answer is read from the answer part; a sample that ended on its own states its
    # answer in its reasoning.
    sample.value = answer_type.extract(answer if sample.answer else think)


def _program_runner(start: float, deadline: float | None) -> Callable[[str], str | None]:
    """Runs a sample's program body (what follows the prompt's ``def solution():``) under the
    evaluator's limits, its wall-clock limit cut to half the time the request has left."""
    from ..tts import program

    def run(body: str) -> str | None:
        limits = program.Limits()
        if deadline is not None:
            left = start + deadline - time.perf_counter()
            limits = replace(limits, max_seconds=min(limits.max_seconds, max(program.MIN_SECONDS, left / 2)))
        return program.vote_key(program.run(PROGRAM_HEAD + body, limits))

    return run


def _check_request(
    question: str, budget: int, samples: int, answer_tokens: int, deadline: float | None
) -> None:
    if not question or not question.strip():
        raise EdgeTTSError("the question is empty; pass the text to answer")
    if budget < UNLIMITED:
        raise EdgeTTSError(
            f"budget {budget} is negative; use 0 to answer directly, a token count, or -1 for no limit"
        )
    if samples < 1:
        raise EdgeTTSError(f"samples must be at least 1 (got {samples})")
    if answer_tokens < 1:
        raise EdgeTTSError(f"answer tokens must be at least 1 (got {answer_tokens})")
    if deadline is not None and deadline <= 0:
        raise EdgeTTSError(f"deadline {deadline} s is not positive")
