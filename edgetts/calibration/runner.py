"""Calibration runs: per question, K sampled answers (plus the greedy one) at every budget checkpoint,
from *one* generation up to the largest budget.

How one pass serves every budget: the thinking prompt is the same for every budget > 0 and
sample i draws from its own seeded stream, so a run with budget b thinks exactly the first b
tokens of a run with a larger budget. At each checkpoint b the rows still thinking are branched —
their KV cache forked (the generator's in-place cache, copied up to the checkpoint into a buffer
with room for the forcing and the answer) and their random streams copied — forced to answer as
the runtime would at budget b, and the main pass goes on as if nothing happened. A row that
ended on its own before b answers from its reasoning, as in the runtime.
Budget 0 uses its own direct-answer prompt.

N = 1 at run time is greedy decoding, and a vote of N ≥ 2 is the greedy answer plus N - 1 sampled
ones: so a greedy row rides along, and acc(b, N) comes from it and the K sampled rows (accuracy.py).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from tokenizers import Tokenizer

from ..runtime.kv_cache import KVCache
from ..runtime.onnx_model import OnnxCausalLM
from ..runtime.prompting import build_prompt, force_text
from ..runtime.sampling import SamplingParams, sample_rows
from ..runtime.stops import StopStrings
from ..tts.answers import extract_answer


@dataclass
class QuestionAnswers:
    """``sampled[k][j]``: sample k's answer at ``budgets[j]``; ``greedy[j]`` the greedy one's."""

    sampled: list[list[str | None]]
    greedy: list[str | None]
    think_tokens: list[list[int]]  # per row (greedy last): thought before stopping or the last budget


class _Rows:
    """Rows decoded together over one cache: row r uses ``generators[r]`` (None = greedy)."""

    def __init__(self, generators: list[np.random.Generator | None], cache: KVCache):
        self.generators, self.cache = generators, cache

    def sample(self, logits: np.ndarray, params: SamplingParams) -> np.ndarray:
        return sample_rows(logits, params, self.generators)

    def feed(self, lm: OnnxCausalLM, ids: np.ndarray) -> np.ndarray:
        return lm.run(self.cache, ids)[:, -1]

    def keep(self, rows: list[int]) -> list[int]:
        """Keep ``rows`` (ascending); return their new order (the cache may move rows)."""
        order = self.cache.keep(rows)
        self.generators = [self.generators[r] for r in order]
        return order

    def step(
        self, lm: OnnxCausalLM, tokens: np.ndarray, keep: list[int], active: list[int]
    ) -> tuple[np.ndarray, list[int]]:
        """Drop every row but the positions ``keep`` (ascending), feed the kept rows their token;
        the next logits and ``active`` (the caller's id of each row) in the cache's new order."""
        if len(keep) < len(active):
            order = self.keep(keep)
            tokens = tokens[order]
            active = [active[p] for p in order]
        return self.feed(lm, tokens.reshape(-1, 1)), active

    def branch(self, room: int) -> _Rows:
        """A copy to decode ``room`` more tokens on without touching this one."""
        generators = [copy.deepcopy(g) for g in self.generators]
        return _Rows(generators, self.cache.fork(self.cache.length + room))


def _answer(
    lm: OnnxCausalLM, rows: _Rows, logits: np.ndarray, params: SamplingParams, stop: set[int],
    stops: StopStrings, limit: int,
) -> list[list[int]]:  # fmt: skip
    """Decode up to ``limit`` answer tokens for every row; rows stop at a stop token or string."""
    out: list[list[int]] = [[] for _ in rows.generators]
    active = list(range(len(out)))
    for _ in range(limit):
        tokens = rows.sample(logits, params)
        keep = []
        for position, row in enumerate(active):
            token = int(tokens[position])
            if token in stop:
                continue
            out[row].append(token)
            if len(out[row]) < limit and not stops.hit(out[row]):
                keep.append(position)
        if not keep:
            break
        logits, active = rows.step(lm, tokens, keep, active)
    return out


def _prefill(lm: OnnxCausalLM, ids: list[int], generators, room: int) -> tuple[_Rows, np.ndarray]:
    """The prompt once, its cache replicated to one row per generator, with ``room`` tokens to go."""
    count = len(generators)
    cache = lm.new_cache(count, len(ids) + room)
    logits = lm.run(cache, np.array([ids], dtype=np.int64))
    last = np.repeat(logits[:, -1], count, axis=0)
    cache.replicate(count)
    return _Rows(generators, cache), last


def calibrate_question(
    lm: OnnxCausalLM, tokenizer: Tokenizer, question: str, budgets: list[int], samples: int,
    answer_tokens: int = 16, seed: int = 0, params: SamplingParams | None = None,
    on_step: Callable[[], None] | None = None,
) -> QuestionAnswers:  # fmt: skip
    """Answers of ``samples`` sampled rows and one greedy row at every budget in ``budgets``."""
    params = params or SamplingParams()
    fmt = lm.manifest.prompt
    stop = set(fmt.stop_token_ids)
    stops = StopStrings(tokenizer, fmt.stop_strings)

    def decode(tokens: list[int]) -> str:
        return stops.trim(tokenizer.decode(tokens))

    rows_total = samples + 1  # the greedy row is last
    answers: list[list[str | None]] = [[None] * len(budgets) for _ in range(rows_total)]
    think_tokens: list[list[int]] = [[] for _ in range(rows_total)]

    if 0 in budgets:
        generators = [np.random.default_rng([seed, i]) for i in range(samples)] + [None]
        prompt = tokenizer.encode(build_prompt(fmt, question, 0)).ids
        rows, logits = _prefill(lm, prompt, generators, answer_tokens)
        for row, tokens in enumerate(_answer(lm, rows, logits, params, stop, stops, answer_tokens)):
            answers[row][budgets.index(0)] = extract_answer(decode(tokens))
    thinking = sorted(b for b in budgets if b > 0)
    if not thinking:
        return QuestionAnswers([a for a in answers[:samples]], answers[samples], think_tokens)

    force_ids = tokenizer.encode(force_text(fmt), add_special_tokens=False).ids
    generators = [np.random.default_rng([seed, i]) for i in range(samples)] + [None]
    prompt = tokenizer.encode(build_prompt(fmt, question, thinking[0])).ids
    probe_room = len(force_ids) + answer_tokens
    rows, logits = _prefill(lm, prompt, generators, thinking[-1] + probe_room)
    active = list(range(rows_total))  # original row index of each row still thinking
    for step in range(thinking[-1] + 1):
        if step in thinking:  # checkpoint: every row still thinking is forced to answer here
            # The branch has its own cache and copies of the random streams, so the main pass
            # samples exactly what it would have without it.
            branch = rows.branch(probe_room)
            branch_logits = _force(lm, branch, force_ids)
            said = _answer(lm, branch, branch_logits, params, stop, stops, answer_tokens)
            for position, tokens in enumerate(said):
                row = active[position]  # an empty forced answer falls back to the reasoning, as at run time
                answers[row][budgets.index(step)] = extract_answer(decode(tokens or think_tokens[row]))
            if step == thinking[-1]:
                break
        tokens = rows.sample(logits, params)
        keep = []
        for position, token in enumerate(tokens.tolist()):
            row = active[position]
            if token not in stop:
                think_tokens[row].append(token)
                if not stops.hit(think_tokens[row]):
                    keep.append(position)
                    continue
            # Ended on its own (a stop token or string): answers from its reasoning at every later budget.
            value = extract_answer(decode(think_tokens[row]))
            for j, budget in enumerate(budgets):
                if budget > step:
                    answers[row][j] = value
        if not keep:
            break
        logits, active = rows.step(lm, tokens, keep, active)
        if on_step:
            on_step()
    return QuestionAnswers(answers[:samples], answers[samples], think_tokens)


def _force(lm: OnnxCausalLM, rows: _Rows, force_ids: list[int]) -> np.ndarray:
    """Feed the forcing text (one token per step in a batch: GroupQueryAttention on the CPU takes
    several new tokens after a cache only at batch 1, as in the generator)."""
    count = len(rows.generators)
    ids = np.asarray(force_ids, dtype=np.int64)
    if count == 1:
        return rows.feed(lm, ids.reshape(1, -1))
    logits = None
    for token in ids:
        logits = rows.feed(lm, np.full((count, 1), token, dtype=np.int64))
    return logits
