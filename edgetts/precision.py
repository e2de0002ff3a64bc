"""Which precisions this machine can run, so that a model it cannot run is refused up front
with a message naming what it has, instead of failing (or silently emulating) deep in a kernel.

FP8 needs FP8 tensor cores (compute capability 8.9+: Ada, Hopper, Blackwell incl. Jetson Thor)
and a runtime that uses them (TensorRT). Jetson Orin (Ampere, 8.7) and every CPU have none.
"""

from __future__ import annotations

import onnxruntime as ort

from .errors import UnsupportedPrecisionError

_BASE = ("fp32", "fp16", "int8", "int4")


def gpu_info() -> tuple[str, tuple[int, int]] | None:
    """Name and CUDA compute capability of GPU 0 through NVML (nvidia-ml-py, an optional extra);
    None where there is no NVIDIA GPU or no NVML."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        name = pynvml.nvmlDeviceGetName(handle)
        capability = tuple(pynvml.nvmlDeviceGetCudaComputeCapability(handle))
    except pynvml.NVMLError:
        return None
    return (name.decode() if isinstance(name, bytes) else name), capability  # type: ignore[return-value]


def available_precisions() -> tuple[str, ...]:
    providers = ort.get_available_providers()
    if "TensorrtExecutionProvider" in providers:
        gpu = gpu_info()
        if gpu is not None and gpu[1] >= (8, 9):
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
