"""Model store: manifest round trip, corruption detection, atomic publication."""

from __future__ import annotations

import json

import onnxruntime as ort
import pytest
from conftest import copy_entry
from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

from edgetts import store
from edgetts.converters.pipeline import convert
from edgetts.converters.quantize import QuantSettings
from edgetts.errors import CorruptModelError, EdgeTTSError, ModelNotFoundError
from edgetts.manifest import Manifest
from edgetts.runtime.onnx_model import OnnxCausalLM


@pytest.fixture
def entry(converted_tiny, edgetts_home):
    return copy_entry(converted_tiny("llama", "int4"), edgetts_home)


def test_store_lists_and_verifies_an_entry(entry):
    assert [e.name for e in store.list_entries()] == ["llama-int4"]
    verified = store.verify("llama-int4")
    assert verified.manifest.quant_type == "int4"
    assert verified.size_bytes == sum(p.stat().st_size for p in entry.iterdir() if p.name != "manifest.json")


def test_sha_mismatch_is_detected(entry):
    data = bytearray((entry / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (entry / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(CorruptModelError, match="does not match its sha256"):
        store.verify("llama-int4")


def test_truncated_onnx_is_detected_by_verify_and_by_the_runtime(entry):
    onnx_file = entry / "model.onnx"
    onnx_file.write_bytes(onnx_file.read_bytes()[: onnx_file.stat().st_size // 3])
    with pytest.raises(CorruptModelError, match="truncated"):
        store.verify("llama-int4")
    with pytest.raises(CorruptModelError, match="onnxruntime cannot load"):
        OnnxCausalLM(entry)


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (MemoryError(), "not enough memory to load"),
        (ort_state.RuntimeException("Exception during initialization: std::bad_alloc"), "not enough memory"),
        (ort_state.NotImplemented("Could not find an implementation for MatMulNBits(1)"), "cannot run"),
    ],
)
def test_a_load_that_fails_for_another_reason_is_not_called_corrupt(entry, monkeypatch, error, message):
    """Memory that ran out, or a kernel this onnxruntime lacks, is said as such (one line, an
    EdgeTTSError), never as a corrupt file; an error that is not onnxruntime's is a bug and
    keeps its traceback."""

    def failing(*_args, **_kwargs):
        raise error

    monkeypatch.setattr(ort, "InferenceSession", failing)
    with pytest.raises(EdgeTTSError, match=message) as raised:
        OnnxCausalLM(entry)
    assert not isinstance(raised.value, CorruptModelError) and "\n" not in str(raised.value)
    monkeypatch.setattr(ort, "InferenceSession", lambda *_args, **_kwargs: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        OnnxCausalLM(entry)


def test_malformed_manifest_is_a_clear_error(entry):
    (entry / "manifest.json").write_text("{ not json")
    with pytest.raises(CorruptModelError, match="not valid JSON"):
        store.get("llama-int4")
    data = {"schema_version": 99}
    (entry / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(CorruptModelError, match="schema_version 99"):
        store.get("llama-int4")


def test_manifest_missing_field_is_named(entry):
    data = json.loads((entry / "manifest.json").read_text())
    del data["architecture"]
    with pytest.raises(CorruptModelError, match="missing 'architecture'"):
        Manifest.from_dict(data, "manifest.json")


def test_unknown_entry_names_the_store():
    with pytest.raises(ModelNotFoundError, match="edgetts convert"):
        store.get("nope")


def test_failed_build_leaves_nothing_behind(edgetts_home):
    with pytest.raises(RuntimeError), store.staging("half") as tmp:
        (tmp / "model.onnx").write_bytes(b"partial")
        raise RuntimeError("killed mid-way")
    assert list((edgetts_home / "models").iterdir()) == []


def test_interrupted_convert_leaves_nothing_behind(tiny_models, edgetts_home):
    def interrupt(step: str) -> None:
        if step.startswith("quantizing"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        convert(str(tiny_models["llama"][0]), QuantSettings(type="int4"), progress=interrupt)
    assert list((edgetts_home / "models").iterdir()) == []


def test_existing_entry_is_reused_refused_or_replaced(entry, tiny_models):
    source = str(tiny_models["llama"][0])
    before = store.get("llama-int4").manifest
    # Same source, same settings: the entry is already there, nothing is redone.
    assert convert(source, QuantSettings(type="int4"), name="llama-int4").manifest == before
    # Other settings under the same name: refused without --force.
    with pytest.raises(EdgeTTSError, match="--force"):
        convert(source, QuantSettings(type="fp16"), name="llama-int4")
    replaced = convert(source, QuantSettings(type="fp16"), name="llama-int4", force=True)
    assert replaced.manifest.quant_type == "fp16"
    assert store.verify("llama-int4").manifest.created >= before.created
    assert [p.name for p in (entry.parent).iterdir()] == ["llama-int4"]


def test_stale_staging_of_a_dead_process_is_cleaned(edgetts_home):
    stale = edgetts_home / "models" / ".staging-999999999-deadbeef-x"
    stale.mkdir(parents=True)
    store.clean_stale_staging()
    assert not stale.exists()
