"""Step-by-step reasoning against program-aided answers: accuracy and tokens, greedy and voted.

    python benchmarks/program.py [--model qwen2.5-coder-0.5b-int4] [--from 500] [--limit 100]
                                 [--budgets 64,128,256] [--samples 4] [--threads N] [--out FILE.md]

Both modes are calibrated on the same GSM8K questions (default 500–599, none of the 0–499 the
tables are made from) into a scratch EDGETTS_HOME, at each budget, with K samples and the greedy
row each (what `edgetts calibrate` does, so the numbers are the planner's kind). Reported per
mode and budget: greedy accuracy, the anchored vote of K + 1, unreadable greedy answers, and the
mean tokens the greedy row and all rows spent reasoning (a program's tokens are its code, capped
at the budget). Accuracy only: the run is not timed, so it may share the machine. With --out the
two calibration files are kept next to the table (FILE.steps.json, FILE.program.json).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

from edgetts import store
from edgetts.calibration.calibrate import calibrate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-0.5b-int4")
    parser.add_argument("--from", dest="start", type=int, default=500)
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--budgets", default="64,128,256")
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    budgets = tuple(sorted(int(b) for b in args.budgets.split(",")))
    entry = store.get(args.model)  # the user's store, read before the scratch home replaces it
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["EDGETTS_HOME"] = scratch
        (Path(scratch) / "models").mkdir()
        (Path(scratch) / "models" / entry.name).symlink_to(entry.path)
        for mode in ("steps", "program"):
            done = calibrate(
                args.model, "gsm8k", args.start, args.limit, budgets, args.samples, threads=args.threads,
                mode=mode,
                on_question=lambda i, n, mode=mode: print(f"{mode}: question {i + 1}/{n}", flush=True),
            )  # fmt: skip
            if args.out and done.path:
                shutil.copy(done.path, args.out.with_suffix(f".{mode}.json"))
            table = done.table()
            tokens = [r["think_tokens"] for r in done.results]
            row_count = sum(len(t) for t in tokens)
            for j, budget in enumerate(budgets):
                greedy = [r["greedy"][j] for r in done.results]
                rows.append({
                    "mode": mode,
                    "budget": budget,
                    "greedy": table.at(budget, 1),
                    "vote": table.at(budget, args.samples + 1),
                    "unreadable": sum(g is None for g in greedy) / len(greedy),
                    "greedy_tokens": sum(min(t[-1], budget) for t in tokens) / len(tokens),
                    "all_tokens": sum(min(n, budget) for t in tokens for n in t) / row_count,
                })  # fmt: skip
    lines = [
        f"{args.model}, GSM8K {args.start}–{args.start + args.limit - 1}, K = {args.samples} (+ greedy)",
        "",
        f"| mode | budget | greedy | anchored vote of {args.samples + 1} | greedy unreadable | "
        "mean tokens (greedy) | mean tokens (all rows) |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {r['mode']} | {r['budget']} | {100 * r['greedy']:.1f} % | {100 * r['vote']:.1f} % | "
            f"{100 * r['unreadable']:.1f} % | {r['greedy_tokens']:.0f} | {r['all_tokens']:.0f} |"
            for r in rows
        ),
    ]
    print("\n".join(lines))
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
