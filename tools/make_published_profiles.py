"""Write profiles/jetson-agx-orin-64gb.yaml from EdgeReasoning's published figures.

    python tools/make_published_profiles.py

The numbers below are copied from ../shared/reference/edgereasoning.md (EdgeReasoning, arXiv
2511.01866, and its repository's latency_model.py / analytic.yaml / token2metrics data); this
script only converts them into the profile schema and computes, honestly, how well the published
formulas reproduce the paper's own measured points (the residual spread the planner's
upper-quantile margin comes from). Run by hand when the reference changes; the output is
committed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgetts.profiling.device_profile import DeviceProfile, ModelProfile, PowerModel
from edgetts.profiling.latency_model import DECODE_FORMS, PREFILL_FORMS, Fit, LatencyModel, residual_summary

REFERENCE = "EdgeReasoning (arXiv 2511.01866), github.com/edge-inference/edgereasoning"
OUT = Path(__file__).resolve().parents[1] / "profiles" / "jetson-agx-orin-64gb.yaml"
BATCHES = [1, 2, 4, 8, 16, 32]

MODELS = {
    "deepseek-r1-distill-qwen-1.5b-fp16": {
        # unpadded prefill quadratic over 129..4097 tokens: a, b, c
        "prefill": (5.3506e-09, 1.3026e-04, 0.030478),
        "prefill_points": [(129, 0.050), (513, 0.101), (1027, 0.174), (2049, 0.326), (4097, 0.649)],
        "decode": (0.0236339, 1.4968e-07),  # n (s/token), m (s/token/context token)
        "runs": [(128, 3.80), (256, 7.14), (512, 13.92), (1024, 27.72)],  # O tokens after I = 512
        "parallel": [3.63, 3.91, 4.29, 4.84, 6.20, 8.69],  # 128 tokens at N = BATCHES
        "power_prefill": 6.687e-05 * 512 + 5.499,
        "power_parallel": [13.6, 14.5, 16.2, 18.6, 21.1, 25.3],
        # Qwen2 1.5B config: 28 layers, 2 KV heads, head_dim 128; fp16 weights 1.78 B params
        "kv": 28 * 2 * 2 * 128 * 2,
        "weights": int(1.78e9 * 2),
        "context": 131072,
    },
    "deepseek-r1-distill-llama-8b-fp16": {
        "prefill": (1.8154e-08, 8.7879e-04, 0.044164),
        "prefill_points": [(129, 0.188), (513, 0.544), (1027, 0.989), (2049, 1.967), (4097, 3.513)],
        "decode": (0.1003843, 6.9202e-07),
        "runs": [(128, 12.91), (256, 26.11), (512, 52.17), (1024, 104.54)],
        "parallel": [14.27, 14.30, 15.44, 17.92, 22.35, 32.59],
        "power_prefill": 5.658,
        "power_parallel": [23.6, 24.9, 26.1, 27.7, 30.8, 34.2],
        "kv": 32 * 2 * 8 * 128 * 2,
        "weights": int(8.03e9 * 2),
        "context": 131072,
    },
    "deepseek-r1-distill-qwen-14b-fp16": {
        "prefill": (1.3441e-08, 1.6057e-03, 0.096726),
        "prefill_points": [(129, 0.339), (513, 0.997), (1027, 1.824), (2049, 3.740), (4097, 6.633)],
        "decode": (0.1865537, 1.1302e-06),
        "runs": [(128, 23.75), (256, 47.47), (512, 95.36), (1024, 190.46)],
        "parallel": [25.13, 26.07, 28.06, 32.41, 40.39, 58.30],
        "power_prefill": 10.258,
        "power_parallel": [26.1, 26.8, 27.8, 29.5, 32.2, 35.8],
        "kv": 48 * 2 * 8 * 128 * 2,
        "weights": int(14.8e9 * 2),
        "context": 131072,
    },
}


def batch_slope(times: list[float]) -> float:
    """k in T(N) = T(1)·(1 + k·N)/(1 + k), least squares on the parallel-sampling ratios."""
    ratios = np.asarray(times) / times[0]
    batches = np.asarray(BATCHES, np.float64)
    grid = np.linspace(0.0, 0.2, 20001)
    errors = [np.sum(((1 + k * batches) / (1 + k) / ratios - 1) ** 2) for k in grid]
    return float(grid[int(np.argmin(errors))])


def model_profile(name: str, figures: dict) -> ModelProfile:
    a, b, c = figures["prefill"]
    lengths, prefill_s = zip(*figures["prefill_points"], strict=True)
    prefill_fit = Fit("quadratic", PREFILL_FORMS["quadratic"], np.array([c, b, a]), {}, {})
    prefill_fit.residual = residual_summary(
        LatencyModel(prefill_fit, prefill_fit).prefill_s(np.array(lengths)), np.array(prefill_s)
    )
    # The k-th decode token costs n + m·context at N = 1; a batch of N multiplies a step by
    # (1 + k·N)/(1 + k) (the parallel-sampling table), which is the batch-linear+context form.
    n, m = figures["decode"]
    k = batch_slope(figures["parallel"])
    scale = 1 / (1 + k)
    decode_fit = Fit(
        "batch-linear+context", DECODE_FORMS["batch-linear+context"],
        np.array([n * scale, k * n * scale, m * scale, k * m * scale]), {}, {},
    )  # fmt: skip
    model = LatencyModel(prefill_fit, decode_fit)
    outputs, run_s = zip(*figures["runs"], strict=True)
    predicted_runs = model.run_s(512, np.array(outputs), 0, 1)
    ratio = np.asarray(figures["parallel"]) / figures["parallel"][0]
    predicted_ratio = (1 + k * np.asarray(BATCHES)) / (1 + k)
    decode_fit.residual = residual_summary(
        np.concatenate([predicted_runs, predicted_ratio]), np.concatenate([np.array(run_s), ratio])
    )
    return ModelProfile(
        name=name,
        source="published",
        quant="fp16",
        context_length=figures["context"],
        latency=model,
        resident_bytes=figures["weights"],
        kv_bytes_per_token=figures["kv"],
        power=PowerModel(
            "published", figures["power_prefill"], list(zip(BATCHES, figures["power_parallel"], strict=True))
        ),
        points={
            "prefill": [[length, s] for length, s in figures["prefill_points"]],  # [prompt tokens, s]
            "runs": [[512, o, 1, s] for o, s in figures["runs"]],  # [prompt, output tokens, N, s]
            "parallel": [[bn, 128, s] for bn, s in zip(BATCHES, figures["parallel"], strict=True)],
        },
        details={
            "published": {
                "reference": REFERENCE,
                "tables": "prefill: unpadded quadratic to 4k tokens; decode: n + m·context per token; "
                "batch: parallel-sampling table (Fig. 6, 128 tokens); power: mean board power per N",
                "batch_slope_k": round(k, 5),
                "memory": "weights and KV bytes computed from the models' configs (fp16), not measured",
            }
        },
    )


def main() -> None:
    profile = DeviceProfile(
        device={
            "id": "jetson-agx-orin-64gb",
            "spec": "jetson-agx-orin-64gb",
            "name": "NVIDIA Jetson AGX Orin 64GB",
            "power_mode": "MAXN (the data's 65 W ceiling)",
            "runtime": "vLLM 0.8.6, jetson-containers, L4T r36.4",
        },
        conditions={
            "source": "published",
            "reference": REFERENCE,
            "note": "batch 1 unless noted; precision not stated by the paper (vLLM's half-precision default)",
        },
        models={name: model_profile(name, figures) for name, figures in MODELS.items()},
    )
    profile.save(OUT)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
