"""edgetts: the most accurate answer a small reasoning LLM can give within a latency budget,
on Jetson-class GPUs and plain CPUs. See README.md and design.md.

The public names are importable from here (``from edgetts import Engine``) and stay stable;
they load on first use (PEP 562), so that ``import edgetts`` — for ``__version__``, the CLI's
``--help`` or a ROS 2 launch file — does not start onnxruntime.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_PUBLIC = {
    "Engine": "edgetts.engine",
    "Answer": "edgetts.answer",
    "Delta": "edgetts.answer",
    "Prediction": "edgetts.answer",
    "TokenCounts": "edgetts.answer",
    "Planned": "edgetts.engine",
    "SamplingParams": "edgetts.runtime.sampling",
    "Config": "edgetts.planner.scheduler",
    "Plan": "edgetts.planner.scheduler",
    "EdgeTTSError": "edgetts.errors",
    "ModelNotFoundError": "edgetts.errors",
    "ConversionError": "edgetts.errors",
    "CorruptModelError": "edgetts.errors",
    "UnsupportedPrecisionError": "edgetts.errors",
    "NoFeasiblePlanError": "edgetts.errors",
    "DeadlineUnreachableError": "edgetts.errors",
    "RequestCancelledError": "edgetts.errors",
    "EngineClosedError": "edgetts.errors",
    "NoAnswerError": "edgetts.errors",
    "DeadlineMissedError": "edgetts.errors",
}
__all__ = [
    "__version__",
    "Engine",
    "Answer",
    "Delta",
    "Prediction",
    "TokenCounts",
    "Planned",
    "SamplingParams",
    "Config",
    "Plan",
    "EdgeTTSError",
    "ModelNotFoundError",
    "ConversionError",
    "CorruptModelError",
    "UnsupportedPrecisionError",
    "NoFeasiblePlanError",
    "DeadlineUnreachableError",
    "RequestCancelledError",
    "EngineClosedError",
    "NoAnswerError",
    "DeadlineMissedError",
]

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ loads them
    from .answer import Answer, Delta, Prediction, TokenCounts
    from .engine import Engine, Planned
    from .errors import (
        ConversionError,
        CorruptModelError,
        DeadlineMissedError,
        DeadlineUnreachableError,
        EdgeTTSError,
        EngineClosedError,
        ModelNotFoundError,
        NoAnswerError,
        NoFeasiblePlanError,
        RequestCancelledError,
        UnsupportedPrecisionError,
    )
    from .planner.scheduler import Config, Plan
    from .runtime.sampling import SamplingParams


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'edgetts' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
