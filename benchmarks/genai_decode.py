"""Decode timing of onnxruntime-genai on its own builder's model; run by benchmarks/decode.py
inside the separate virtualenv that onnxruntime-genai needs (its builder imports transformers
5.x, which edgetts' converter cannot use). Prints one JSON object.

    python genai_decode.py MODEL_DIR PROMPT_IDS_JSON --batches 1,4,8,16 --steps 32 --repetitions 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import onnxruntime_genai as og


def run(model: og.Model, ids: np.ndarray, batch: int, steps: int) -> tuple[float, float]:
    """(prefill ms, mean decode-step ms) for one generation of ``steps`` tokens at ``batch``."""
    params = og.GeneratorParams(model)
    params.set_search_options(max_length=ids.shape[0] + steps + 1, batch_size=batch, do_sample=False)
    generator = og.Generator(model, params)
    start = time.perf_counter()
    generator.append_tokens(np.tile(ids, (batch, 1)))  # genai prefills every row of the batch
    prefill = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(steps):
        generator.generate_next_token()
    return 1000 * prefill, 1000 * (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model_dir")
    parser.add_argument("prompt_ids")
    parser.add_argument("--batches", default="1,4,8,16")
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--repetitions", type=int, default=5)
    args = parser.parse_args()
    model = og.Model(args.model_dir)
    ids = np.array(json.loads(args.prompt_ids), dtype=np.int32)
    result: dict = {"prefill_ms": {}, "step_ms": {}}
    for batch in (int(b) for b in args.batches.split(",")):
        run(model, ids, batch, 4)  # warm-up
        runs = [run(model, ids, batch, args.steps) for _ in range(args.repetitions)]
        result["prefill_ms"][batch] = (
            statistics.mean(r[0] for r in runs),
            statistics.pstdev(r[0] for r in runs),
        )
        result["step_ms"][batch] = (
            statistics.mean(r[1] for r in runs),
            statistics.pstdev(r[1] for r in runs),
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
