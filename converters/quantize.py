"""Quantization of the exported fp32 ONNX graph with onnxruntime's own quantizers.

- fp16: float16 weights and compute, fp32 inputs/outputs (the KV cache stays fp32 so that one
  runtime path serves every precision).
- int8: W8A8 dynamic (weights int8 per channel, activations quantized per call) for MatMul and
  the embedding Gather.
- int4: W4A16 MatMulNBits for every MatMul (lm_head included, see graph.untie_lm_head) and
  GatherBlockQuantized for the embedding; block 32, symmetric by default; algorithms as ORT
  offers them (default min-max, rtn, k_quant, hqq).
- fp8: E4M3 QDQ (W8A8) for TensorRT on GPUs with FP8 tensor cores; calibrated on token ids.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from ..errors import ConversionError

QUANTS = ("fp32", "fp16", "int8", "int4", "fp8")
INT4_ALGORITHMS = ("default", "rtn", "k_quant", "hqq")


@dataclass(frozen=True)
class QuantSettings:
    type: str = "int4"
    block_size: int = 32
    symmetric: bool = True
    algorithm: str = "default"
    # 4 = int8 compute inside MatMulNBits: the fast CPU path (what onnxruntime-genai uses too).
    accuracy_level: int = 4

    def validate(self) -> QuantSettings:
        if self.type not in QUANTS:
            raise ConversionError(f"unknown quantization {self.type!r}: choose one of {', '.join(QUANTS)}")
        if self.type == "int4":
            if self.block_size < 16 or self.block_size & (self.block_size - 1):
                raise ConversionError(
                    f"int4 block size {self.block_size} is not a power of two >= 16; try 32, 64 or 128"
                )
            if self.algorithm not in INT4_ALGORITHMS:
                raise ConversionError(
                    f"unknown int4 algorithm {self.algorithm!r}: choose one of {', '.join(INT4_ALGORITHMS)}"
                )
            if self.accuracy_level not in (0, 1, 2, 3, 4):
                raise ConversionError("int4 accuracy level must be 0-4 (4 = int8 compute, fastest on CPU)")
        return self

    def describe(self) -> dict[str, Any]:
        """What the manifest records: only the settings that mean something for this type."""
        if self.type == "int4":
            return {
                "type": "int4",
                "scheme": "W4A16 MatMulNBits + GatherBlockQuantized",
                "block_size": self.block_size,
                "symmetric": self.symmetric,
                "algorithm": self.algorithm,
                "accuracy_level": self.accuracy_level,
            }
        if self.type == "int8":
            return {"type": "int8", "scheme": "W8A8 dynamic (int8 weights per channel, uint8 activations)"}
        if self.type == "fp8":
            return {"type": "fp8", "scheme": "E4M3FN QDQ W8A8, calibrated"}
        return {"type": self.type}


def _quiet_ort_logging() -> None:
    """The quantizers log every node at INFO and warn that they raise the opset to 21 for INT4
    (which is what we want); a progress bar says enough."""
    from onnxruntime.quantization import matmul_nbits_quantizer  # noqa: F401  (creates its logger)

    for name in list(logging.root.manager.loggerDict):
        if name.startswith("onnxruntime"):
            logging.getLogger(name).setLevel(logging.ERROR)


def _int4(model: onnx.ModelProto, settings: QuantSettings) -> onnx.ModelProto:
    from onnxruntime.quantization import matmul_nbits_quantizer as mnb

    ops = ("MatMul", "Gather")
    axes = (("MatMul", 0), ("Gather", 1))
    if settings.algorithm == "default":
        algo: Any = mnb.DefaultWeightOnlyQuantConfig(
            block_size=settings.block_size,
            is_symmetric=settings.symmetric,
            accuracy_level=settings.accuracy_level,
            op_types_to_quantize=ops,
            quant_axes=axes,
        )
    elif settings.algorithm == "hqq":
        # HQQ has float zero points, which GatherBlockQuantized cannot take: MatMuls only.
        algo = mnb.HQQWeightOnlyQuantConfig(block_size=settings.block_size, op_types_to_quantize=("MatMul",))
    elif settings.algorithm == "rtn":
        algo = mnb.RTNWeightOnlyQuantConfig(op_types_to_quantize=("MatMul",))
    else:
        algo = mnb.KQuantWeightOnlyQuantConfig(op_types_to_quantize=("MatMul",))
    quantizer = mnb.MatMulNBitsQuantizer(
        model,
        bits=4,
        block_size=settings.block_size,
        is_symmetric=settings.symmetric,
        accuracy_level=settings.accuracy_level,
        op_types_to_quantize=ops if settings.algorithm == "default" else ("MatMul",),
        quant_axes=axes,
        algo_config=algo,
    )
    quantizer.process()
    return quantizer.model.model


def _int8(model_path: Path, out_path: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        model_path,
        out_path,
        weight_type=QuantType.QInt8,
        per_channel=True,
        op_types_to_quantize=["MatMul", "Gather"],
        use_external_data_format=True,
        # The fused RotaryEmbedding/SimplifiedLayerNormalization ops are opaque to onnx's
        # shape inference; their outputs are float.
        extra_options={"MatMulConstBOnly": True, "DefaultTensorType": onnx.TensorProto.FLOAT},
    )


def _fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    from onnxruntime.transformers.onnx_model import OnnxModel

    wrapped = OnnxModel(model)
    wrapped.convert_float_to_float16(keep_io_types=True)
    return wrapped.model


class _TokenCalibrationReader:
    """Feeds prefill-shaped batches of token ids (empty KV cache) to the FP8 calibrator.

    Why random tokens: conversion must work offline with nothing but the model; activation
    ranges of a decoder depend far more on the layer than on the text, and E4M3's dynamic range
    is wide, so a few sequences drawn from the vocabulary are enough for per-tensor scales.
    """

    def __init__(self, model: onnx.ModelProto, vocab_size: int, batches: int = 4, seq_len: int = 16):
        rng = np.random.default_rng(0)
        self._feeds: list[dict[str, np.ndarray]] = []
        for _ in range(batches):
            feed: dict[str, np.ndarray] = {}
            for inp in model.graph.input:
                dims = [d.dim_value if d.dim_value else -1 for d in inp.type.tensor_type.shape.dim]
                if inp.name == "input_ids":
                    feed[inp.name] = rng.integers(0, vocab_size, size=(1, seq_len), dtype=np.int64)
                elif inp.name == "attention_mask":
                    feed[inp.name] = np.ones((1, seq_len), dtype=np.int64)
                elif inp.name == "position_ids":
                    feed[inp.name] = np.arange(seq_len, dtype=np.int64)[None, :]
                else:  # past key/value: batch, kv_heads, 0, head_dim
                    feed[inp.name] = np.zeros((1, dims[1], 0, dims[3]), dtype=np.float32)
            self._feeds.append(feed)
        self._iter = iter(self._feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._iter, None)

    def rewind(self) -> None:
        self._iter = iter(self._feeds)


def _fp8(model_path: Path, out_path: Path, vocab_size: int) -> None:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    model = onnx.load(model_path, load_external_data=False)
    quantize_static(
        model_path,
        out_path,
        _TokenCalibrationReader(model, vocab_size),
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=["MatMul"],
        activation_type=QuantType.QFLOAT8E4M3FN,
        weight_type=QuantType.QFLOAT8E4M3FN,
        calibrate_method=CalibrationMethod.Distribution,
        use_external_data_format=True,
        extra_options={
            "scale_type": onnx.TensorProto.FLOAT,
            "MatMulConstBOnly": True,
            "DefaultTensorType": onnx.TensorProto.FLOAT,
        },
    )


def quantize(
    model: onnx.ModelProto, settings: QuantSettings, vocab_size: int, work_dir: Path
) -> onnx.ModelProto:
    """Return the quantized model (weights in memory; the caller saves it)."""
    _quiet_ort_logging()
    if settings.type == "fp32":
        return model
    if settings.type == "fp16":
        return _fp16(model)
    if settings.type == "int4":
        return _int4(model, settings)
    # The static/dynamic quantizers work file to file.
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        src, dst = Path(tmp) / "in.onnx", Path(tmp) / "out.onnx"
        onnx.save_model(model, src, save_as_external_data=True, location="in.onnx.data")
        if settings.type == "int8":
            _int8(src, dst)
        else:
            _fp8(src, dst, vocab_size)
        return onnx.load(dst)
