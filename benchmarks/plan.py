"""Speed of ``plan`` on a realistic candidate set, against its 1 ms per request target.

    python benchmarks/plan.py [--repetitions 1000] [--json]

The set is what `edgetts plan` enumerates for a three-model ladder: 3 models x 2 quantizations x
6 budgets x N = 1..16 = 576 candidates, with synthetic (but plausibly shaped) latency, accuracy,
energy and memory. Each case plans ``--repetitions`` times over targets from 30 ms (nothing fits:
best effort) to 10 s (everything fits), after a warm-up, and reports the mean and p99 per call and
p99 / 1 ms (below 1 meets the target). ``CandidateSet`` is the intended use (arrays built once);
the plain list shows the cost of converting on every call.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import time

import numpy as np

from edgetts.planner import Candidate, CandidateSet, Config, plan

TARGET_S = 1e-3
MODELS = {"smollm2-135m": 0.3, "qwen2.5-0.5b": 1.0, "qwen2.5-1.5b": 2.5}  # relative per-token cost
QUANTS = {"int4": 0.6, "int8": 1.0}
BUDGETS = (0, 32, 64, 128, 256, 512)
SAMPLES = range(1, 17)


def synthetic_candidates(seed: int = 0) -> list[Candidate]:
    rng = random.Random(seed)
    candidates = []
    for model, size in MODELS.items():
        for quant, cost in QUANTS.items():
            for budget in BUDGETS:
                for n in SAMPLES:
                    mean = size * cost * (0.2 + (budget + 20) * 0.004 * (1 + 0.05 * n))
                    accuracy = (
                        (0.2 + 0.25 * size) * (1 - 0.6 * np.exp(-budget / 150)) * (1 + 0.12 * (n**0.5 - 1))
                    )
                    accuracy = min(0.95, accuracy * (0.97 if quant == "int4" else 1.0))
                    candidates.append(
                        Candidate(
                            config=Config(f"{model}-{quant}", quant, budget, n),
                            latency_s=mean * rng.uniform(1.1, 1.3),
                            latency_mean_s=mean,
                            accuracy=accuracy,
                            accuracy_low=max(0.0, accuracy - 0.04),
                            accuracy_high=min(1.0, accuracy + 0.04),
                            energy_j=None if rng.random() < 0.05 else mean * 8,
                            memory_bytes=int(size * cost * 1.2e9),
                        )
                    )
    return candidates


def time_case(candidates, repetitions: int, **caps) -> dict[str, float]:
    targets = np.geomspace(0.03, 10.0, 37)
    for target in targets:  # warm-up
        plan(candidates, float(target), best_effort=True, **caps)
    times = []
    for i in range(repetitions):
        target = float(targets[i % len(targets)])
        start = time.perf_counter()
        plan(candidates, target, best_effort=True, **caps)
        times.append(time.perf_counter() - start)
    mean, p99 = float(np.mean(times)), float(np.percentile(times, 99))
    return {"mean_us": mean * 1e6, "p99_us": p99 * 1e6, "p99_vs_1ms": p99 / TARGET_S}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repetitions", type=int, default=1000)
    parser.add_argument("--json", action="store_true", help="Print the results as JSON.")
    args = parser.parse_args()
    candidates = synthetic_candidates()
    prepared = CandidateSet(candidates)
    caps = {"energy_j": 12.0, "memory_bytes": 2 * 1024**3}
    results = {
        "CandidateSet": time_case(prepared, args.repetitions),
        "CandidateSet + energy/memory caps": time_case(prepared, args.repetitions, **caps),
        "list (converted per call)": time_case(candidates, args.repetitions),
    }
    conditions = {
        "candidates": len(candidates),
        "repetitions": args.repetitions,
        "python": platform.python_version(),
    }
    if args.json:
        print(json.dumps({"conditions": conditions, "results": results}, indent=2))
        return
    print(
        f"plan() over {len(candidates)} candidates, {args.repetitions} calls per case, "
        f"Python {conditions['python']}"
    )
    print(f"{'case':<36} {'mean µs':>9} {'p99 µs':>9} {'p99 / 1 ms':>11}")
    for case, r in results.items():
        print(f"{case:<36} {r['mean_us']:>9.1f} {r['p99_us']:>9.1f} {r['p99_vs_1ms']:>11.3f}")


if __name__ == "__main__":
    main()
