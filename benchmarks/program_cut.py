"""A program cut at its budget: ask for the answer (today's cue) or close the function with a
``return`` (issue 18: "measure which is better").

    python benchmarks/program_cut.py [--model qwen2.5-coder-0.5b-int4] [--from 500] [--limit 100]
                                     [--budgets 48,64,96] [--threads N] [--out FILE.json]

Greedy, one row per question, the program prompt of `--mode program`. At each budget where the
program has not ended by itself, two branches of the same cache are answered:

- ``cue``: the code block is closed and the answer cue follows (runtime/prompting.force_text),
  the answer decoded under the number grammar and read — what the runtime does today;
- ``return``: the program's last, unfinished line is dropped, ``return`` is appended at the
  function's indentation and the model writes its expression (to the end of the line, at most
  --answer-tokens tokens); the function then runs in the safe evaluator (tts/program.py).

A program that ends by itself is run, at every later budget, by both. Reported per budget:
programs cut, accuracy of each way, and how often each gives any number. Accuracy only: the run is
not timed, so it may share the machine.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from edgetts import evals, store
from edgetts.runtime.onnx_model import OnnxCausalLM
from edgetts.runtime.prompting import PROGRAM, PROGRAM_HEAD, PROGRAM_STOPS, build_prompt, force_text
from edgetts.runtime.stops import StopStrings
from edgetts.tts import constrain, program
from edgetts.tts.answer_types import NUMBER

RETURN = "    return "  # at the function body's indentation (the prompt opens `def solution():`)


def greedy_answer(lm, cache, logits, limit, stop, until, constraint=None) -> list[int]:
    """Greedy tokens on ``cache`` from ``logits`` until a stop token, ``until(tokens)`` or
    ``limit`` (under ``constraint``, a number grammar's matcher for row 0, when given)."""
    out: list[int] = []
    for _ in range(limit):
        if constraint is not None:
            constraint.mask(logits, [0])
        token = int(np.argmax(logits[0]))
        if token in stop:
            break
        out.append(token)
        if (constraint is not None and constraint.consume(0, token)) or until(out):
            break
        logits = lm.run(cache, np.array([[token]], dtype=np.int64))[:, -1]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-0.5b-int4")
    parser.add_argument("--from", dest="start", type=int, default=500)
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--budgets", default="48,64,96")
    parser.add_argument("--answer-tokens", type=int, default=24)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    budgets = sorted(int(b) for b in args.budgets.split(","))
    entry = store.get(args.model)
    lm = OnnxCausalLM(entry.path, entry.manifest, threads=args.threads)
    tokenizer = Tokenizer.from_file(str(entry.path / "tokenizer.json"))
    fmt = entry.manifest.prompt
    stop = set(fmt.stop_token_ids)
    stops = StopStrings(tokenizer, [*fmt.stop_strings, *PROGRAM_STOPS])
    cue_ids = tokenizer.encode(force_text(fmt, PROGRAM), add_special_tokens=False).ids
    room = max(len(cue_ids), 8) + args.answer_tokens

    def grammar():
        vocab = entry.manifest.architecture.vocab_size
        return constrain.AnswerConstraint(
            entry.path / "tokenizer.json", vocab, tuple(fmt.stop_token_ids), NUMBER, [0]
        )

    def run(source: str) -> str | None:
        return program.vote_key(program.run(source))

    rows = []
    for problem in evals.load("gsm8k", args.start, args.limit):
        prompt = tokenizer.encode(build_prompt(fmt, problem.question, budgets[0], NUMBER, PROGRAM)).ids
        cache = lm.new_cache(1, len(prompt) + budgets[-1] + room)
        logits = lm.run(cache, np.array([prompt], dtype=np.int64))[:, -1]
        think: list[int] = []
        row = {"index": problem.index, "reference": problem.reference, "cut": {}, "cue": {}, "return": {}}
        for step in range(budgets[-1] + 1):
            if step in budgets:
                budget = str(step)
                row["cut"][budget] = True
                branch = cache.fork(cache.length + room)
                said = greedy_answer(
                    lm, branch, lm.run(branch, np.array([cue_ids], dtype=np.int64))[:, -1],
                    args.answer_tokens, stop, lambda t: False, grammar(),
                )  # fmt: skip
                row["cue"][budget] = NUMBER.extract(stops.trim(tokenizer.decode(said)))
                text = tokenizer.decode(think)
                complete = text[: text.rfind("\n") + 1]  # the unfinished line is dropped
                opener = RETURN if text.endswith("\n") else "\n" + RETURN
                branch = cache.fork(cache.length + room)
                opened = tokenizer.encode(opener, add_special_tokens=False).ids
                expression = greedy_answer(
                    lm, branch, lm.run(branch, np.array([opened], dtype=np.int64))[:, -1],
                    args.answer_tokens, stop, lambda t: "\n" in tokenizer.decode(t),
                )  # fmt: skip
                line = tokenizer.decode(expression).split("\n")[0]
                row["return"][budget] = run(PROGRAM_HEAD + complete + RETURN + line + "\n")
                if step == budgets[-1]:
                    break
            token = int(np.argmax(logits[0]))
            ended = token in stop
            if not ended:
                think.append(token)
                ended = stops.hit(think)
            if ended:  # the program is complete: both ways run it at every later budget
                value = run(PROGRAM_HEAD + stops.trim(tokenizer.decode(think)))
                for budget in budgets:
                    if budget > step:
                        row["cut"][str(budget)] = False
                        row["cue"][str(budget)] = row["return"][str(budget)] = value
                break
            logits = lm.run(cache, np.array([[token]], dtype=np.int64))[:, -1]
        rows.append(row)
        print(json.dumps(row), flush=True)

    def right(value, reference) -> bool:  # normalised vote keys, compared as calibration does
        return value is not None and value == reference

    print(f"\n{args.model}, GSM8K {args.start}–{args.start + args.limit - 1}, greedy")
    print("| budget | programs cut | cue: accuracy (any number) | return: accuracy (any number) |")
    print("|---:|---:|---:|---:|")
    for budget in map(str, budgets):
        cut = sum(r["cut"][budget] for r in rows)
        line = [f"| {budget} | {cut}/{len(rows)}"]
        for way in ("cue", "return"):
            hits = sum(right(r[way][budget], r["reference"]) for r in rows)
            cut_hits = sum(right(r[way][budget], r["reference"]) for r in rows if r["cut"][budget])
            numbers = sum(r[way][budget] is not None for r in rows if r["cut"][budget])
            line.append(f"{100 * hits / len(rows):.1f} % ({cut_hits} right, {numbers} numbers of {cut} cut)")
        print(" | ".join(line) + " |")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
