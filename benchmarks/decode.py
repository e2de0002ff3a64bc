"""Decode speed of edgetts against baselines measured in the same run (by hand, not in CI).

    python benchmarks/decode.py [--models smollm2-135m-int4,qwen2.5-coder-0.5b-int4]
                                [--batches 1,4,8,16] [--steps 32] [--repetitions 5] [--threads N]
                                [--torch] [--output table|md|json]

For each store entry: prefill of an 82-token prompt at batch 1, decode-step latency at each N
after the prompt's KV cache is replicated to N rows (what self-consistency does), time to first
token for N = 8 (shared prefill + replication + first step), and tokens/s. ``--torch`` adds
PyTorch eager (fp32, from the same GGUF, needs the convert extra) as a baseline; ratios are
baseline / edgetts. The onnxruntime-genai comparison of the issue is not wired in yet.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from datetime import datetime, timezone

import numpy as np
import onnxruntime as ort
import psutil

# A GSM8K-style question; with SmolLM2's chat template it is 82 tokens.
PROMPT = (
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
    "How many clips did Natalia sell altogether in April and May? Think step by step."
)


def timed(fn, repetitions: int) -> tuple[float, float]:
    fn()  # warm-up
    samples = []
    for _ in range(repetitions):
        start = time.perf_counter()
        fn()
        samples.append(1000 * (time.perf_counter() - start))
    return statistics.mean(samples), statistics.pstdev(samples)


def bench_edgetts(name: str, batches: list[int], steps: int, repetitions: int, threads: int | None) -> dict:
    from tokenizers import Tokenizer

    from edgetts import store
    from edgetts.runtime.onnx_model import OnnxCausalLM

    entry = store.get(name)
    lm = OnnxCausalLM(entry.path, entry.manifest, threads=threads)
    tokenizer = Tokenizer.from_file(str(entry.path / "tokenizer.json"))
    fmt = entry.manifest.prompt
    ids = np.array([tokenizer.encode(fmt.prefix + PROMPT + fmt.suffix).ids], dtype=np.int64)
    prefill_ms, prefill_sd = timed(lambda: lm.forward(ids, lm.empty_past(1)), repetitions)
    _, past = lm.forward(ids, lm.empty_past(1))
    result = {
        "prompt_tokens": int(ids.shape[1]),
        "prefill_ms": prefill_ms,
        "prefill_sd": prefill_sd,
        "step_ms": {},
    }
    for n in batches:
        rows = {k: np.repeat(v, n, axis=0) for k, v in past.items()}

        def decode(rows=rows, n=n) -> None:
            cache = rows
            token = np.full((n, 1), 1, dtype=np.int64)
            for step in range(steps):
                mask = np.ones((n, ids.shape[1] + step + 1), dtype=np.int64)
                _, cache = lm.forward(token, cache, mask)

        mean, sd = timed(decode, repetitions)
        result["step_ms"][n] = (mean / steps, sd / steps)

    def first_token(n: int = 8) -> None:
        logits, cache = lm.forward(ids, lm.empty_past(1))
        _ = {k: np.repeat(v, n, axis=0) for k, v in cache.items()}
        np.repeat(logits[:, -1], n, axis=0).argmax(-1)

    result["ttft_n8_ms"] = timed(first_token, repetitions)
    return result


def bench_torch(name: str, batches: list[int], steps: int, repetitions: int, threads: int | None) -> dict:
    import tempfile
    from pathlib import Path

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from edgetts import store
    from edgetts.converters import sources

    entry = store.get(name)
    torch.set_num_threads(threads or psutil.cpu_count(logical=False) or 1)
    with tempfile.TemporaryDirectory() as tmp:
        ref = entry.manifest.source["ref"]
        if entry.manifest.source["kind"] == "hf-dir":
            hf_dir = Path(ref)
        else:
            prepared = sources.prepare(ref, Path(tmp), install=False)
            hf_dir = prepared.hf_dir
        model = AutoModelForCausalLM.from_pretrained(str(hf_dir), dtype=torch.float32).eval()
        tokenizer = AutoTokenizer.from_pretrained(str(hf_dir))
    fmt = entry.manifest.prompt
    ids = torch.tensor([tokenizer(fmt.prefix + PROMPT + fmt.suffix)["input_ids"]])
    with torch.inference_mode():
        prefill_ms, prefill_sd = timed(lambda: model(ids, use_cache=True), repetitions)
        out = model(ids, use_cache=True)
        result = {"prefill_ms": prefill_ms, "prefill_sd": prefill_sd, "step_ms": {}}
        for n in batches:

            def decode(n=n) -> None:
                cache = type(out.past_key_values)()
                for layer, (k, v) in enumerate(
                    zip(out.past_key_values.key_cache, out.past_key_values.value_cache, strict=True)
                ):
                    cache.update(k.repeat(n, 1, 1, 1), v.repeat(n, 1, 1, 1), layer)
                token = torch.ones((n, 1), dtype=torch.long)
                for _ in range(steps):
                    cache = model(token, past_key_values=cache, use_cache=True).past_key_values

            mean, sd = timed(decode, repetitions)
            result["step_ms"][n] = (mean / steps, sd / steps)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default="smollm2-135m-int4,qwen2.5-coder-0.5b-int4")
    parser.add_argument("--batches", default="1,4,8,16")
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--torch", action="store_true", help="Also measure PyTorch eager (fp32).")
    parser.add_argument("--output", choices=("md", "json"), default="md")
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    threads = args.threads or psutil.cpu_count(logical=False)
    conditions = (
        f"{datetime.now(timezone.utc):%Y-%m-%d}, {platform.machine()}, {threads} threads, "
        f"onnxruntime {ort.__version__}, {args.steps} steps x {args.repetitions} repetitions after warm-up"
    )
    report = {"conditions": conditions, "models": {}}
    for name in args.models.split(","):
        row = {"edgetts": bench_edgetts(name, batches, args.steps, args.repetitions, threads)}
        if args.torch:
            row["torch"] = bench_torch(name, batches, args.steps, args.repetitions, threads)
        report["models"][name] = row
    if args.output == "json":
        print(json.dumps(report, indent=2))
        return
    print(f"Measured {conditions}.\n")
    engines = ["edgetts"] + (["torch"] if args.torch else [])
    header = (
        "| model | engine | prefill ms | " + " | ".join(f"step ms N={n}" for n in batches) + " | tok/s N=1 |"
    )
    print(header)
    print("|" + " --- |" * (3 + len(batches) + 1))
    for name, row in report["models"].items():
        for engine in engines:
            r = row[engine]
            steps = [f"{r['step_ms'][n][0]:.2f} ± {r['step_ms'][n][1]:.2f}" for n in batches]
            print(
                f"| {name} | {engine} | {r['prefill_ms']:.1f} ± {r['prefill_sd']:.1f} | "
                + " | ".join(steps)
                + f" | {1000 / r['step_ms'][batches[0]][0]:.1f} |"
            )
        if args.torch:
            ratios = [
                f"{row['torch']['step_ms'][n][0] / row['edgetts']['step_ms'][n][0]:.2f}x" for n in batches
            ]
            print(
                f"| {name} | torch / edgetts | "
                f"{row['torch']['prefill_ms'] / row['edgetts']['prefill_ms']:.2f}x | "
                + " | ".join(ratios)
                + " | |"
            )
        ttft = row["edgetts"]["ttft_n8_ms"]
        print(f"\n{name}: edgetts time to first token at N=8: {ttft[0]:.1f} ± {ttft[1]:.1f} ms\n")


if __name__ == "__main__":
    main()
