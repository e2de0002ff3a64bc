"""Is a decode step faster with fewer intra-op threads when other processes load the CPU?

    python benchmarks/threads.py [--models qwen2.5-coder-0.5b-int4,smollm2-135m-int4] [--out FILE.json]

For each model, thread count (1 … physical cores), condition (idle, then 1 … N cores kept busy
by busy-loop processes this script starts) and batch, the decode step as the profile measures it
(profiling/sweep.measure_decode at context 256, median of 15 after 3 warm-up). Reported as
milliseconds and as the ratio to the all-threads session in the same condition: < 1 means fewer
threads win. Issue 17, part 4: if fewer threads win under load, the profile should carry step
times per thread count and the planner pick threads for the load it sees.
Needs a quiet machine apart from the load it makes.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import psutil

from edgetts import store
from edgetts.profiling.sweep import measure_decode
from edgetts.profiling.threads import start_busy, stop_busy
from edgetts.runtime.onnx_model import OnnxCausalLM

CONTEXT = 256


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="qwen2.5-coder-0.5b-int4,smollm2-135m-int4")
    parser.add_argument("--batches", default="1,4")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    cores = psutil.cpu_count(logical=False) or 1
    batches = [int(b) for b in args.batches.split(",")]
    rows = []
    for name in args.models.split(","):
        entry = store.get(name)
        sessions = {t: OnnxCausalLM(entry.path, entry.manifest, threads=t) for t in range(1, cores + 1)}
        for loaded in range(cores + 1):
            load = start_busy(loaded)
            time.sleep(1.0)  # let the scheduler settle the busy loops
            try:
                for batch in batches:
                    for threads, lm in sessions.items():
                        point = measure_decode(lm, batch, CONTEXT, repeats=15, warmup=3)
                        rows.append({
                            "model": name, "busy_cores": loaded, "batch": batch, "threads": threads,
                            "step_ms": round(1000 * point.seconds, 2), "std_ms": round(1000 * point.std, 2),
                        })  # fmt: skip
            finally:
                stop_busy(load)
    report(rows, cores)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


def report(rows: list[dict], cores: int) -> None:
    print(
        "| model | busy cores | batch | "
        + " | ".join(f"{t} thr ms (× {cores} thr)" for t in range(1, cores + 1))
        + " |"
    )
    print("|---|---|---|" + "---|" * cores)
    keys = sorted({(r["model"], r["busy_cores"], r["batch"]) for r in rows})
    for model, loaded, batch in keys:
        cells = {
            r["threads"]: r
            for r in rows
            if (r["model"], r["busy_cores"], r["batch"]) == (model, loaded, batch)
        }
        full = cells[cores]["step_ms"]
        text = " | ".join(
            f"{cells[t]['step_ms']:.1f} (× {cells[t]['step_ms'] / full:.2f})" for t in sorted(cells)
        )
        print(f"| {model} | {loaded} | {batch} | {text} |")


if __name__ == "__main__":
    main()
