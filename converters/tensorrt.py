"""Build a TensorRT engine from the converted ONNX model (``--format tensorrt``).

An engine is tied to the GPU model and the TensorRT version that built it, so both are recorded
in the manifest (``graph.tensorrt``). Nothing checks them yet: the runtime does not load engines
(it runs ``model.onnx`` on onnxruntime's CPU provider), so an engine built elsewhere is not
rebuilt; convert again on the target machine (``edgetts convert --format tensorrt --force``).
Engines take the precision from the ONNX graph (fp32, fp16, or FP8 E4M3 Q/DQ) plus the matching
builder flags. INT8 and INT4 entries are refused for now: their ONNX graphs use onnxruntime's
dynamic-quantization and MatMulNBits operators, which TensorRT does not parse (TensorRT wants
static Q/DQ for those).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConversionError
from ..manifest import Architecture
from ..precision import gpu_info

TENSORRT_QUANTS = ("fp32", "fp16", "fp8")
MAX_BATCH = 16  # parallel samples the runtime decodes together (design.md: N stays small)
MAX_CONTEXT = 4096


def check_available(quant: str) -> None:
    """Fail before the slow export when no engine can be built here."""
    if quant not in TENSORRT_QUANTS:
        raise ConversionError(
            f"--format tensorrt builds fp32, fp16 or fp8 engines, not {quant}; use --quant fp16 "
            f"(or fp8 on Ada/Hopper/Blackwell), or --format onnx for {quant}"
        )
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        raise ConversionError(
            "TensorRT is not installed: on a machine with an NVIDIA GPU run "
            "`pip install 'edgetts[tensorrt]'` (Jetson: use the JetPack TensorRT), or use --format onnx"
        ) from None
    gpu = gpu_info()
    if gpu is None:
        raise ConversionError("no NVIDIA GPU found (NVML); TensorRT engines need one: use --format onnx")
    if quant == "fp8" and gpu[1] < (8, 9):
        raise ConversionError(
            f"{gpu[0]} (compute capability {gpu[1][0]}.{gpu[1][1]}) has no FP8 tensor cores; "
            "use --quant fp16 for TensorRT on this GPU"
        )


def _profile_shapes(name: str, dims: tuple[int, ...], arch: Architecture) -> tuple[tuple[int, ...], ...]:
    """min/opt/max shapes: batch 1..MAX_BATCH, sequence 1..context, past 0..context."""
    context = min(arch.context_length, MAX_CONTEXT)
    if name.startswith("past_key_values"):
        _, heads, _, head_dim = dims
        return ((1, heads, 0, head_dim), (1, heads, 256, head_dim), (MAX_BATCH, heads, context, head_dim))
    return ((1, 1), (1, 256), (MAX_BATCH, context))


def build_engine(onnx_path: Path, engine_path: Path, quant: str, arch: Architecture) -> dict[str, Any]:
    """Build and write the engine; return what the manifest records about it."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        first = parser.get_error(0) if parser.num_errors else "unknown error"
        raise ConversionError(f"TensorRT cannot parse {onnx_path.name}: {first}")
    config = builder.create_builder_config()
    if quant in ("fp16", "fp8"):
        config.set_flag(trt.BuilderFlag.FP16)
    if quant == "fp8":
        config.set_flag(trt.BuilderFlag.FP8)
    profile = builder.create_optimization_profile()
    for index in range(network.num_inputs):
        tensor = network.get_input(index)
        profile.set_shape(tensor.name, *_profile_shapes(tensor.name, tuple(tensor.shape), arch))
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ConversionError("TensorRT could not build an engine (see its log above); try --quant fp16")
    engine_path.write_bytes(bytes(serialized))
    gpu = gpu_info()
    return {
        "tensorrt": trt.__version__,
        "gpu": gpu[0] if gpu else "unknown",
        "compute_capability": ".".join(map(str, gpu[1])) if gpu else "unknown",
        "max_batch": MAX_BATCH,
        "max_context": min(arch.context_length, MAX_CONTEXT),
    }
