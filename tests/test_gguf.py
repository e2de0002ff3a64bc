"""The GGUF import path on a tiny GGUF that the test writes itself with the `gguf` package."""

from __future__ import annotations

import numpy as np
import pytest

from edgetts import store
from edgetts.converters.pipeline import convert
from edgetts.converters.quantize import QuantSettings
from edgetts.errors import ConversionError
from edgetts.runtime.onnx_model import OnnxCausalLM

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def tiny_gguf(tiny_models, tmp_path_factory):
    from gguf_writer import write_llama_gguf

    folder, model = tiny_models["llama"]
    return write_llama_gguf(folder, model, tmp_path_factory.mktemp("gguf") / "tiny-llama.gguf"), model


def test_gguf_converts_to_onnx_matching_pytorch(tiny_gguf):
    path, model = tiny_gguf
    entry = convert(str(path), QuantSettings(type="fp32"))
    assert entry.name == "tiny-llama-fp32"
    assert entry.manifest.source["kind"] == "gguf"
    assert entry.manifest.source["sha256"] == store.sha256_file(path)
    lm = OnnxCausalLM(entry.path)
    ids = np.random.default_rng(2).integers(3, 400, size=(2, 16), dtype=np.int64)
    logits, _ = lm.forward(ids, lm.empty_past(2))
    with torch.no_grad():
        reference = model(torch.from_numpy(ids)).logits.numpy()
    np.testing.assert_allclose(logits, reference, atol=1e-4)


def test_a_conversion_parses_the_gguf_once(tiny_gguf, monkeypatch):
    """transformers reads a GGUF four times and edgetts once more (a parse of a large vocabulary
    takes seconds): sources.one_parse_per_file shares one reader per file, and restores gguf."""
    import gguf

    path, _ = tiny_gguf
    parsed: list[str] = []

    class CountingReader(gguf.GGUFReader):
        def __init__(self, file, mode="r"):
            parsed.append(str(file))
            super().__init__(file, mode)

    monkeypatch.setattr(gguf, "GGUFReader", CountingReader)
    convert(str(path), QuantSettings(type="int4"), name="parsed-once")
    assert len(parsed) == 1, parsed
    assert gguf.GGUFReader is CountingReader


def test_folder_holding_one_gguf_is_accepted(tiny_gguf, tmp_path):
    path, _ = tiny_gguf
    (tmp_path / path.name).write_bytes(path.read_bytes())
    entry = convert(str(tmp_path), QuantSettings(type="int4"), name="from-folder")
    assert entry.manifest.source["kind"] == "gguf"


def test_truncated_gguf_is_refused_and_leaves_nothing(tiny_gguf, tmp_path, edgetts_home):
    path, _ = tiny_gguf
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ConversionError, match="truncated"):
        convert(str(cut), QuantSettings(type="int4"))
    assert list((edgetts_home / "models").iterdir()) == []


def test_file_that_is_not_gguf_is_refused(tmp_path):
    bogus = tmp_path / "weights.gguf"
    bogus.write_bytes(b"PK\x03\x04 this is a zip file")
    with pytest.raises(ConversionError, match="not a GGUF file"):
        convert(str(bogus), QuantSettings(type="int4"))
