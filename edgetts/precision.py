"""Which precisions this machine can run, so that a model it cannot run is refused up front
with a message naming what it has, instead of failing (or silently emulating) deep in a kernel.

FP8 needs FP8 tensor cores (compute capability 8.9+: Ada, Hopper, Blackwell incl. Jetson Thor)
and a runtime that uses them (TensorRT). Jetson Orin (Ampere, 8.7) and every CPU have none.
"""

from __future__ import annotations

import onnxruntime as ort

from .errors import UnsupportedPrecisionError

_BASE = ("fp32", "fp16", "int8", "int4")


def _gpu_compute_capability() -> tuple[int, int] | None:
    try:
        import pynvml  # optional extra (nvidia-ml-py)
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        return tuple(pynvml.nvmlDeviceGetCudaComputeCapability(handle))  # type: ignore[return-value]
    except pynvml.NVMLError:
        return None


def available_precisions() -> tuple[str, ...]:
    providers = ort.get_available_providers()
    if "TensorrtExecutionProvider" in providers:
        capability = _gpu_compute_capability()
        if capability is not None and capability >= (8, 9):
            return (*_BASE, "fp8")
    return _BASE


def device_description() -> str:
    providers = [
        p.replace("ExecutionProvider", "") for p in ort.get_available_providers() if not p.startswith("Azure")
    ]
    return "this device (onnxruntime providers: " + ", ".join(providers) + ")"


def require_precision(model_name: str, quant: str) -> None:
    have = available_precisions()
    if quant not in have:
        raise UnsupportedPrecisionError(
            f"{model_name} is {quant.upper()}, which {device_description()} cannot run; it runs "
            f"{', '.join(have)}: convert the model with --quant int4 (or another of those)"
        )
