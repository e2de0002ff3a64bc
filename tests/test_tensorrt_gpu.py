"""TensorRT engines from the tiny model: runs only where TensorRT and an NVIDIA GPU exist."""

from __future__ import annotations

import pytest

from edgetts.converters.quantize import QuantSettings

pytestmark = pytest.mark.gpu
trt = pytest.importorskip("tensorrt", reason="TensorRT is not installed (CPU machine)")


def test_fp16_engine_builds_and_records_gpu(tiny_models):
    from edgetts.converters.pipeline import convert
    from edgetts.precision import gpu_info

    if gpu_info() is None:
        pytest.skip("no NVIDIA GPU visible through NVML")
    entry = convert(str(tiny_models["llama"][0]), QuantSettings(type="fp16"), fmt="tensorrt")
    assert (entry.path / "model.engine").stat().st_size > 0
    facts = entry.manifest.graph["tensorrt"]
    assert facts["tensorrt"] == trt.__version__ and facts["gpu"] != "unknown"
