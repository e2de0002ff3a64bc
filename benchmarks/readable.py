"""How many samples hold no readable answer, without and with constrained answers, in one run.

    python benchmarks/readable.py --eval robotics --from 500 --limit 100 \\
        [--models qwen2.5-coder-0.5b-int4,...] [--budgets 0,64,256] [--samples 2] [--out FILE.json]

For each model, the calibration runner (the same code, and so the same answers, as `edgetts
calibrate` and as the runtime at each budget) answers every question twice: reading the answers
as the model writes them (before: how edgetts answered until the grammar), and decoding them
under the question's answer grammar, where a sample that ends without an answer is asked for
one (after). Reported per answer type and budget: the share of answers (the K samples and the
greedy one) that hold no readable answer, and the greedy answer's accuracy. Accuracy, not time,
is measured, so other load does not change the numbers (it only slows the run).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
from collections import defaultdict
from pathlib import Path

import onnxruntime as ort
from tokenizers import Tokenizer

from edgetts import __version__, evals, store
from edgetts.calibration.runner import calibrate_question
from edgetts.profiling.device import detect
from edgetts.runtime.onnx_model import OnnxCausalLM

LADDER = ("qwen2.5-coder-0.5b-int4", "gemma3-270m-int4", "smollm2-135m-int4")


def measure(model: str, problems: list, budgets: list[int], samples: int, constrained: bool) -> dict:
    """{kind: {budget: [unreadable, answers, greedy right, questions]}} for one model and mode."""
    entry = store.get(model)
    lm = OnnxCausalLM(entry.path, entry.manifest)
    tokenizer = Tokenizer.from_file(str(entry.path / "tokenizer.json"))
    counts: dict = defaultdict(lambda: defaultdict(lambda: [0, 0, 0, 0]))
    for problem in problems:
        got = calibrate_question(
            lm, tokenizer, problem.question, budgets, samples, seed=0, answer_type=problem.answer_type,
            answer_tokens=problem.answer_type.answer_tokens, constrain=constrained,
        )  # fmt: skip
        for j, budget in enumerate(budgets):
            answers = [row[j] for row in got.sampled] + [got.greedy[j]]
            cell = counts[problem.kind][budget]
            cell[0] += sum(a is None for a in answers)
            cell[1] += len(answers)
            cell[2] += got.greedy[j] == problem.reference
            cell[3] += 1
    return {kind: {str(b): c for b, c in by.items()} for kind, by in counts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval", dest="eval_set", default="robotics")
    parser.add_argument("--from", dest="start", type=int, default=500)
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--models", default=",".join(LADDER))
    parser.add_argument("--budgets", default="0,64,256")
    parser.add_argument("--samples", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    problems = evals.load(args.eval_set, args.start, args.limit)
    budgets = [int(b) for b in args.budgets.split(",")]
    started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    results = {}
    for model in args.models.split(","):
        for constrained in (False, True):
            mode = "constrained" if constrained else "free"
            results[f"{model} {mode}"] = measure(model, problems, budgets, args.samples, constrained)
            print_rows(model, mode, results[f"{model} {mode}"], flush=True)
    if args.out:
        args.out.write_text(json.dumps({
            "date": started, "device": detect().id, "load_average": os.getloadavg(), "edgetts": __version__,
            "onnxruntime": ort.__version__, "eval": evals.source(args.eval_set), "from": args.start,
            "limit": args.limit, "budgets": budgets, "samples": args.samples, "results": results,
        }, indent=1))  # fmt: skip


def print_rows(model: str, mode: str, result: dict, flush: bool) -> None:
    for kind, by_budget in sorted(result.items()):
        cells = []
        for budget, (unreadable, answers, right, questions) in by_budget.items():
            share, accuracy = 100 * unreadable / answers, 100 * right / questions
            cells.append(f"b={budget}: {share:.1f} % unreadable, {accuracy:.0f} % right")
        print(f"| {model} | {mode} | {kind} | " + " | ".join(cells) + " |", flush=flush)


if __name__ == "__main__":
    main()
