"""The Python API: the public names import from ``edgetts`` itself, and ``import edgetts``
stays light (the names load on first use)."""

from __future__ import annotations

import subprocess
import sys

import pytest

import edgetts


def test_the_public_names_are_the_modules_own():
    from edgetts import answer, engine, errors
    from edgetts.planner import scheduler
    from edgetts.runtime import sampling

    assert edgetts.Engine is engine.Engine and edgetts.Answer is answer.Answer
    assert edgetts.Prediction is answer.Prediction and edgetts.TokenCounts is answer.TokenCounts
    assert edgetts.Planned is engine.Planned
    assert edgetts.SamplingParams is sampling.SamplingParams
    assert edgetts.Config is scheduler.Config and edgetts.Plan is scheduler.Plan
    for name in edgetts.__all__:
        value = getattr(edgetts, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert value is getattr(errors, name) and issubclass(value, errors.EdgeTTSError)
    assert set(dir(edgetts)) == set(edgetts.__all__)
    with pytest.raises(AttributeError, match="no attribute 'Engin'"):
        edgetts.Engin  # noqa: B018


def test_import_edgetts_loads_no_runtime():
    code = (
        "import sys, edgetts; print(edgetts.__version__); "
        "print(sorted(m for m in ('onnxruntime', 'numpy', 'tokenizers', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == [edgetts.__version__, "[]"]
