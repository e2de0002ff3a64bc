"""What constraining the answer costs per decode step, against the step itself, in one run.

    python benchmarks/constrain.py [--model qwen2.5-coder-0.5b-int4] [--repetitions 50]

For each answer type and N in {1, 4, 8}: the time of ``AnswerConstraint.mask`` (llguidance's
mask for every row, applied to the logits) for an answer's first token, where the most tokens
are still possible, next to the model's own decode step at that N measured in the same run; the
ratio is the share constraining adds to a step. Also the one-off cost of building llguidance's
tokenizer from the entry's tokenizer.json (warm-up pays it). Run on a quiet machine.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from edgetts import store
from edgetts.runtime.onnx_model import OnnxCausalLM
from edgetts.tts import constrain
from edgetts.tts.answer_types import AnswerType

TYPES = [
    AnswerType("number"),
    AnswerType("yesno"),
    AnswerType("choice", ("vacuum", "soft fingers", "magnetic")),
    AnswerType("text"),
]


def step_seconds(lm: OnnxCausalLM, rows: int, repetitions: int) -> float:
    cache = lm.new_cache(rows, 64 + repetitions + 4)
    lm.run(cache, np.array([[1] * 64], dtype=np.int64))
    cache.replicate(rows)
    ids = np.ones((rows, 1), dtype=np.int64)
    times = []
    for _ in range(repetitions):
        start = time.perf_counter()
        lm.run(cache, ids)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-0.5b-int4")
    parser.add_argument("--repetitions", type=int, default=50)
    args = parser.parse_args()
    entry = store.get(args.model)
    lm = OnnxCausalLM(entry.path, entry.manifest)
    vocab = lm.manifest.architecture.vocab_size
    stops = tuple(lm.manifest.prompt.stop_token_ids)
    start = time.perf_counter()
    constrain.tokenizer_for(entry.path / "tokenizer.json", vocab, stops)
    print(f"{args.model}: llguidance tokenizer built in {1000 * (time.perf_counter() - start):.0f} ms (once)")
    print("| type | N | mask ms | step ms | mask / step |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for rows in (1, 4, 8):
        step = step_seconds(lm, rows, args.repetitions)
        for answer_type in TYPES:
            gate = constrain.AnswerConstraint(
                entry.path / "tokenizer.json", vocab, stops, answer_type, list(range(rows))
            )
            logits = np.random.default_rng(0).standard_normal((rows, vocab)).astype(np.float32)
            times = []
            for _ in range(args.repetitions):
                work = logits.copy()
                begin = time.perf_counter()
                gate.mask(work, list(range(rows)))
                times.append(time.perf_counter() - begin)
            mask = float(np.median(times))
            print(
                f"| {answer_type.kind} | {rows} | {1000 * mask:.2f} | {1000 * step:.1f} | {mask / step:.1%} |"
            )


if __name__ == "__main__":
    main()
