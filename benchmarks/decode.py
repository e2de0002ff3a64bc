"""Decode speed of edgetts against baselines measured in the same run (by hand, not in CI).

    python benchmarks/decode.py [--models smollm2-135m-int4,qwen2.5-coder-0.5b-int4]
                                [--batches 1,4,8,16] [--steps 32] [--repetitions 5] [--threads N]
                                [--numpy-kv] [--finish-half] [--genai] [--torch] [--output md|json]

For each store entry: prefill of the prompt at batch 1, decode-step latency at each N after the
prompt's KV cache is replicated to N rows (what self-consistency does), time to first token for
N = 8 (shared prefill + replication: the first token comes from the prefill's logits), and
tokens/s. edgetts runs as the generator does (runtime.kv_cache: the cache the model writes
into in place, for graphs with GroupQueryAttention).

Baselines, measured in the same run (ratios are baseline / edgetts):
- ``--numpy-kv``: edgetts with the numpy KV cache (the whole cache passed in and returned anew
  every step; what optimum-exported graphs still use).
- ``--genai``: onnxruntime-genai 0.18 on its own builder's INT4 model of the same source. Its
  builder imports transformers 5.x, which edgetts' converter cannot use, so it gets its own
  virtualenv under ``--work-dir`` (created on first use; PyPI access needed once).
- ``--torch``: PyTorch eager (fp32, from the same source; needs the convert extra).

``--finish-half`` also times dropping finished rows against masking them (bench_finish_half).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import onnxruntime as ort
import psutil

# A GSM8K-style question: 74 tokens with SmolLM2's chat template, 73 with Qwen2.5's.
PROMPT = (
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
    "How many clips did Natalia sell altogether in April and May? Think step by step."
)


def timed(fn, repetitions: int) -> tuple[float, float]:
    return interleaved({"": fn}, repetitions)[""]


def interleaved(fns: dict, repetitions: int) -> dict[str, tuple[float, float]]:
    """Mean and standard deviation in ms of each function, taking turns every repetition so that
    a change in the machine's load (it is shared) hits every contender alike."""
    for fn in fns.values():
        fn()  # warm-up
    samples: dict[str, list[float]] = {key: [] for key in fns}
    for _ in range(repetitions):
        for key, fn in fns.items():
            start = time.perf_counter()
            fn()
            samples[key].append(1000 * (time.perf_counter() - start))
    return {key: (statistics.mean(v), statistics.pstdev(v)) for key, v in samples.items()}


def load_edgetts(name: str, threads: int | None):
    """The store entry's model and the benchmark prompt in its chat template."""
    from tokenizers import Tokenizer

    from edgetts import store
    from edgetts.runtime.onnx_model import OnnxCausalLM

    entry = store.get(name)
    lm = OnnxCausalLM(entry.path, entry.manifest, threads=threads)
    tokenizer = Tokenizer.from_file(str(entry.path / "tokenizer.json"))
    fmt = entry.manifest.prompt
    return lm, np.array([tokenizer.encode(fmt.prefix + PROMPT + fmt.suffix).ids], dtype=np.int64)


def bench_edgetts(
    lm, ids: np.ndarray, batches: list[int], steps: int, repetitions: int, numpy_kv: bool
) -> dict:
    """Prefill, step and time to first token, measured the way the generator runs them: a cache
    sized for the request, the prompt prefilled into row 0 at batch 1, copied to N rows, then
    N-row steps (each repetition rewinds the cache to the prompt and decodes ``steps`` tokens
    again). With ``numpy_kv`` the numpy cache is measured too, in turns with the in-place one
    and on the same session: two sessions in one process slow each other down (each has its
    own spinning thread pool), which would blur the comparison."""
    from edgetts.runtime.kv_cache import NumpyKVCache

    prompt = ids.shape[1]
    caches = {"edgetts": lm.new_cache}
    if numpy_kv:
        caches["edgetts-numpy"] = lambda batch, capacity: NumpyKVCache(lm.forward, lm.empty_past(1))

    def prefill(new_cache) -> None:
        lm.run(new_cache(1, prompt), ids)

    def decode(new_cache, n: int):
        cache = new_cache(n, prompt + steps)
        lm.run(cache, ids)
        cache.replicate(n)
        token = np.full((n, 1), 1, dtype=np.int64)

        def run() -> None:
            cache.set_length(prompt)
            for _ in range(steps):
                lm.run(cache, token)

        return run

    def first_token(new_cache, n: int = 8) -> None:
        cache = new_cache(n, prompt + 1)
        logits = lm.run(cache, ids)
        cache.replicate(n)
        np.repeat(logits[:, -1], n, axis=0).argmax(-1)

    prefills = interleaved({name: lambda c=c: prefill(c) for name, c in caches.items()}, repetitions)
    results = {name: {"prompt_tokens": prompt, "prefill_ms": ms, "prefill_sd": sd, "step_ms": {}}
               for name, (ms, sd) in prefills.items()}  # fmt: skip
    for n in batches:
        runs = interleaved({name: decode(c, n) for name, c in caches.items()}, repetitions)
        for name, (mean, sd) in runs.items():
            results[name]["step_ms"][n] = (mean / steps, sd / steps)
    ttfts = interleaved({name: lambda c=c: first_token(c) for name, c in caches.items()}, repetitions)
    for name, ttft in ttfts.items():
        results[name]["ttft_n8_ms"] = ttft
    return results


def bench_finish_half(
    lm, ids: np.ndarray, repetitions: int, n: int = 8, before: int = 32, after: int = 64
) -> dict:
    """Dropping finished rows against masking them: N rows decode ``before`` steps, then half of
    them finish and ``after`` more steps follow, either with the finished rows dropped (the
    kept rows gathered into the front of the cache) or still decoded and ignored (masked)."""
    prompt = ids.shape[1]
    token = np.full((n, 1), 1, dtype=np.int64)
    # The even rows finish: with rows 0 and 2 gone from the front, two rows move.
    kept = list(range(1, n, 2))
    cache = lm.new_cache(n, prompt + before + after)
    lm.run(cache, ids)

    def run(drop: bool) -> None:
        cache.set_length(prompt)
        cache.replicate(n)
        for _ in range(before):
            lm.run(cache, token)
        if drop:
            cache.keep(kept)
        for _ in range(after):
            lm.run(cache, token[: cache.rows])

    return interleaved({"drop": lambda: run(True), "mask": lambda: run(False)}, repetitions)


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


GENAI_PACKAGES = [
    "onnxruntime-genai==0.18.0", "torch==2.13.0", "transformers>=5",
    "onnx", "onnx-ir", "sentencepiece", "protobuf",
]  # fmt: skip


def bench_genai(name: str, batches: list[int], steps: int, repetitions: int, work_dir: Path) -> dict:
    """Build onnxruntime-genai's INT4 model of the entry's source and time it in its own venv."""
    import subprocess
    import sys

    from tokenizers import Tokenizer

    from edgetts import store
    from edgetts.converters import sources

    venv = work_dir / "genai-venv"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *GENAI_PACKAGES], check=True)
    entry = store.get(name)
    model_dir = work_dir / f"genai-{name}"
    if not (model_dir / "genai_config.json").exists():
        ref = entry.manifest.source["ref"]
        if entry.manifest.source["kind"] == "hf-dir":
            hf_dir = Path(ref)
        else:
            (work_dir / f"src-{name}").mkdir(exist_ok=True)
            hf_dir = sources.prepare(ref, work_dir / f"src-{name}").hf_dir
        subprocess.run(
            [str(python), "-m", "onnxruntime_genai.models.builder", "-i", str(hf_dir), "-o", str(model_dir),
             "-p", "int4", "-e", "cpu", "-c", str(work_dir / "genai-cache")],
            check=True, capture_output=True,
        )  # fmt: skip
    tokenizer = Tokenizer.from_file(str(entry.path / "tokenizer.json"))
    fmt = entry.manifest.prompt
    ids = tokenizer.encode(fmt.prefix + PROMPT + fmt.suffix).ids
    script = Path(__file__).with_name("genai_decode.py")
    out = subprocess.run(
        [str(python), str(script), str(model_dir), json.dumps(ids), "--batches", ",".join(map(str, batches)),
         "--steps", str(steps), "--repetitions", str(repetitions)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    raw = json.loads(out.stdout)
    return {
        "prefill_ms": raw["prefill_ms"][str(batches[0])][0],
        "prefill_sd": raw["prefill_ms"][str(batches[0])][1],
        "prefill_ms_by_n": {int(k): v for k, v in raw["prefill_ms"].items()},
        "step_ms": {int(k): tuple(v) for k, v in raw["step_ms"].items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default="smollm2-135m-int4,qwen2.5-coder-0.5b-int4")
    parser.add_argument("--batches", default="1,4,8,16")
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--numpy-kv", action="store_true", help="Also measure edgetts' numpy KV cache.")
    parser.add_argument("--finish-half", action="store_true", help="Also time dropping vs masking rows.")
    parser.add_argument("--torch", action="store_true", help="Also measure PyTorch eager (fp32).")
    parser.add_argument("--genai", action="store_true", help="Also measure onnxruntime-genai (own venv).")
    parser.add_argument("--work-dir", default="bench-out", help="Where the genai venv and models go.")
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
        lm, ids = load_edgetts(name, threads)
        row = bench_edgetts(lm, ids, batches, args.steps, args.repetitions, args.numpy_kv)
        if args.finish_half:
            row["finish_half"] = bench_finish_half(lm, ids, args.repetitions)
        del lm
        if args.genai:
            work_dir = Path(args.work_dir).resolve()
            work_dir.mkdir(parents=True, exist_ok=True)
            row["genai"] = bench_genai(name, batches, args.steps, args.repetitions, work_dir)
        if args.torch:
            row["torch"] = bench_torch(name, batches, args.steps, args.repetitions, threads)
        report["models"][name] = row
    if args.output == "json":
        print(json.dumps(report, indent=2))
        return
    print(f"Measured {conditions}.\n")
    engines = (("edgetts-numpy", args.numpy_kv), ("genai", args.genai), ("torch", args.torch))
    baselines = [e for e, on in engines if on]
    print(
        "| model | engine | prefill ms | " + " | ".join(f"step ms N={n}" for n in batches) + " | tok/s N=1 |"
    )
    print("|" + " --- |" * (3 + len(batches) + 1))
    for name, row in report["models"].items():
        for engine in ["edgetts", *baselines]:
            r = row[engine]
            steps = [f"{r['step_ms'][n][0]:.2f} ± {r['step_ms'][n][1]:.2f}" for n in batches]
            cells = [name, engine, f"{r['prefill_ms']:.1f} ± {r['prefill_sd']:.1f}", *steps]
            print("| " + " | ".join(cells) + f" | {1000 / r['step_ms'][batches[0]][0]:.1f} |")
        for base in baselines:
            ratios = [f"{row[base]['step_ms'][n][0] / row['edgetts']['step_ms'][n][0]:.2f}x" for n in batches]
            prefill = f"{row[base]['prefill_ms'] / row['edgetts']['prefill_ms']:.2f}x"
            print("| " + " | ".join([name, f"{base} / edgetts", prefill, *ratios]) + " | |")
        ttft = row["edgetts"]["ttft_n8_ms"]
        line = f"\n{name}: time to first token at N=8: edgetts {ttft[0]:.1f} ± {ttft[1]:.1f} ms"
        if args.genai and 8 in row["genai"]["prefill_ms_by_n"]:
            genai_ttft = row["genai"]["prefill_ms_by_n"][8][0] + row["genai"]["step_ms"][8][0]
            line += (
                f"; onnxruntime-genai (prefill at batch 8 + one step) {genai_ttft:.1f} ms "
                f"({genai_ttft / ttft[0]:.1f}x)"
            )
        print(line + "\n")
        if "finish_half" in row:
            ways = ", ".join(
                f"{way} {mean:.0f} ± {sd:.0f} ms" for way, (mean, sd) in row["finish_half"].items()
            )
            print(f"{name}: N=8, 32 steps, half the rows finish, 64 more steps: {ways}\n")


if __name__ == "__main__":
    main()
