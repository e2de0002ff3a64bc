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

Each question is asked as its answer type asks it (the prompt's wording, tts/answer_types.py)
and its answers read as that type reads them; with ``constrain`` the forced and direct answers
are decoded under the type's grammar (tts/constrain.py), exactly as the runtime decodes them, so
that a table's accuracy is that of what runs.

N = 1 at run time is greedy decoding, and a vote of N ≥ 2 is the greedy answer plus N - 1 sampled
ones: so a greedy row rides along, and acc(b, N) comes from it and the K sampled rows (accuracy.py).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from tokenizers import Tokenizer

from ..errors import EdgeTTSError
from ..runtime.kv_cache import KVCache
from ..runtime.onnx_model import OnnxCausalLM
from ..runtime.prompting import PROGRAM, PROGRAM_HEAD, PROGRAM_STOPS, STEPS, build_prompt, force_text
from ..runtime.sampling import SamplingParams, sample_rows
from ..runtime.stops import StopStrings
from ..tts import constrain
from ..tts.answer_types import NUMBER, AnswerType


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
    stops: StopStrings, limit: int, grammar: Callable[[list[int]], object] | None = None,
) -> list[list[int]]:  # fmt: skip
    """Decode up to ``limit`` answer tokens for every row; rows stop at a stop token or string,
    or (with ``grammar``, which makes an AnswerConstraint for these rows) when the answer is
    complete."""
    out: list[list[int]] = [[] for _ in rows.generators]
    active = list(range(len(out)))
    constraint = grammar(active) if grammar is not None else None
    for _ in range(limit):
        if constraint is not None:
            constraint.mask(logits, active)
        tokens = rows.sample(logits, params)
        keep = []
        for position, row in enumerate(active):
            token = int(tokens[position])
            if token in stop:
                continue
            out[row].append(token)
            complete = constraint is not None and constraint.consume(row, token)
            if not complete and len(out[row]) < limit and not stops.hit(out[row]):
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
    on_step: Callable[[], None] | None = None, answer_type: AnswerType = NUMBER, constrain: bool = False,
    mode: str = STEPS,
) -> QuestionAnswers:  # fmt: skip
    """Answers of ``samples`` sampled rows and one greedy row at every budget in ``budgets``,
    asked and read as ``answer_type``; ``constrain``: answers decoded under its grammar;
    ``mode``: ``program`` asks for a function and runs each program that ends by itself (as
    the generator does), reading cut ones from their forced answer."""
    params = params or SamplingParams()
    fmt = lm.manifest.prompt
    extract = answer_type.extract
    grammar = _grammar(lm, answer_type) if constrain else None
    stop = set(fmt.stop_token_ids)
    program = mode == PROGRAM
    stops = StopStrings(tokenizer, [*fmt.stop_strings, *(PROGRAM_STOPS if program else ())])
    if program and 0 in budgets:
        raise EdgeTTSError("program mode has no budget 0 (a direct answer is the steps table's)")

    def decode(tokens: list[int]) -> str:
        return stops.trim(tokenizer.decode(tokens))

    rows_total = samples + 1  # the greedy row is last
    answers: list[list[str | None]] = [[None] * len(budgets) for _ in range(rows_total)]
    think_tokens: list[list[int]] = [[] for _ in range(rows_total)]

    if 0 in budgets:
        generators = [np.random.default_rng([seed, i]) for i in range(samples)] + [None]
        prompt = tokenizer.encode(build_prompt(fmt, question, 0, answer_type)).ids
        rows, logits = _prefill(lm, prompt, generators, answer_tokens)
        said = _answer(lm, rows, logits, params, stop, stops, answer_tokens, grammar)
        for row, tokens in enumerate(said):
            answers[row][budgets.index(0)] = extract(decode(tokens))
    thinking = sorted(b for b in budgets if b > 0)
    if not thinking:
        return QuestionAnswers([a for a in answers[:samples]], answers[samples], think_tokens)

    force_ids = tokenizer.encode(force_text(fmt, mode), add_special_tokens=False).ids
    generators = [np.random.default_rng([seed, i]) for i in range(samples)] + [None]
    prompt = tokenizer.encode(build_prompt(fmt, question, thinking[0], answer_type, mode)).ids
    probe_room = len(force_ids) + answer_tokens
    rows, logits = _prefill(lm, prompt, generators, thinking[-1] + probe_room)
    active = list(range(rows_total))  # original row index of each row still thinking
    for step in range(thinking[-1] + 1):
        if step in thinking:  # checkpoint: every row still thinking is forced to answer here
            # The branch has its own cache and copies of the random streams, so the main pass
            # samples exactly what it would have without it.
            branch = rows.branch(probe_room)
            branch_logits = _force(lm, branch, force_ids)
            said = _answer(lm, branch, branch_logits, params, stop, stops, answer_tokens, grammar)
            for position, tokens in enumerate(said):
                row = active[position]  # an empty forced answer falls back to the reasoning, as at run time
                answers[row][budgets.index(step)] = extract(
                    decode(tokens if program else tokens or think_tokens[row])
                )
            if step == thinking[-1]:
                break
        tokens = rows.sample(logits, params)
        keep, asked = [], []
        for position, token in enumerate(tokens.tolist()):
            row = active[position]
            if token not in stop:
                think_tokens[row].append(token)
                if not stops.hit(think_tokens[row]):
                    keep.append(position)
                    continue
            # Ended on its own (a stop token or string): answers from its reasoning at every
            # later budget; with the grammar it is asked for its answer, as the runtime asks it.
            if program:  # a complete program is run, as the generator runs it
                value = run_program(PROGRAM_HEAD + decode(think_tokens[row]))
            else:
                value = extract(decode(think_tokens[row]))
                if grammar is not None:
                    asked.append(position)
            for j, budget in enumerate(budgets):
                if budget > step:
                    answers[row][j] = value
        if asked:
            for row, value in _ask(
                lm,
                rows,
                asked,
                active,
                force_ids,
                probe_room,
                params,
                stop,
                stops,
                answer_tokens,
                grammar,
                lambda t, r: extract(decode(t or think_tokens[r])),
            ):
                for j, budget in enumerate(budgets):
                    if budget > step:
                        answers[row][j] = value
        if not keep:
            break
        logits, active = rows.step(lm, tokens, keep, active)
        if on_step:
            on_step()
    return QuestionAnswers(answers[:samples], answers[samples], think_tokens)


def run_program(source: str) -> str | None:
    """A program's vote key under the evaluator's default limits (calibration has no deadline)."""
    from ..tts import program

    return program.vote_key(program.run(source))


def _ask(
    lm: OnnxCausalLM, rows: _Rows, positions: list[int], active: list[int], force_ids: list[int], room: int,
    params: SamplingParams, stop: set[int], stops: StopStrings, answer_tokens: int, grammar,
    read: Callable[[list[int], int], str | None],
) -> list[tuple[int, str | None]]:  # fmt: skip
    """The rows at ``positions``, which ended their reasoning by themselves, asked for their
    answer on a branch: forced one token per step (as the runtime feeds a row that ended so)
    and answered under the grammar; (row, answer) for each."""
    branch = rows.branch(room)
    order = branch.keep(positions)
    logits = _force(lm, branch, force_ids, at_once=False)
    said = _answer(lm, branch, logits, params, stop, stops, answer_tokens, grammar)
    return [(active[p], read(tokens, active[p])) for p, tokens in zip(order, said, strict=True)]


def _grammar(lm: OnnxCausalLM, answer_type: AnswerType) -> Callable[[list[int]], object]:
    """What makes the answer grammar's matchers for a set of rows (the grammar extra)."""
    if not constrain.available():
        raise EdgeTTSError("constrained calibration needs the grammar extra: pip install 'edgetts[grammar]'")

    def make(rows: list[int]) -> constrain.AnswerConstraint:
        return constrain.AnswerConstraint(
            lm.model_dir / "tokenizer.json", lm.manifest.architecture.vocab_size,
            tuple(lm.manifest.prompt.stop_token_ids), answer_type, rows,
        )  # fmt: skip

    return make


def _force(lm: OnnxCausalLM, rows: _Rows, force_ids: list[int], at_once: bool = True) -> np.ndarray:
    """Feed the forcing text (one token per step in a batch: GroupQueryAttention on the CPU takes
    several new tokens after a cache only at batch 1, as in the generator, which feeds a lone
    row cut by the budget at once and a row that ended by itself token by token)."""
    count = len(rows.generators)
    ids = np.asarray(force_ids, dtype=np.int64)
    if count == 1 and at_once:
        return rows.feed(lm, ids.reshape(1, -1))
    logits = None
    for token in ids:
        logits = rows.feed(lm, np.full((count, 1), token, dtype=np.int64))
    return logits
