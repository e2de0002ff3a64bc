"""The default model ladder and what `edgetts run` sets up on first use.

The ladder is the built-in models whose calibration tables ship with edgetts (a model the
planner has no accuracy for cannot be planned). On a fresh machine `run` converts the missing
ones (needs the `convert` extra) and, with no profile for this device, profiles them --quick.
"""

from __future__ import annotations

from collections.abc import Callable

from . import store
from .calibration import tables
from .errors import EdgeTTSError

# (store entry, built-in source, quantization), fast/weak end first
DEFAULT_LADDER = (
    ("smollm2-135m-int4", "smollm2-135m", "int4"),
    # INT8 rungs are calibrated at budget 0 (direct answers, where their faster prefill counts:
    # SmolLM2 78 vs 158 ms at 128 tokens here; decode is slower than INT4's at batch 1).
    ("smollm2-135m-int8", "smollm2-135m", "int8"),
    # The package holds the base model: a "Question: … Answer:" frame with a stop string.
    ("gemma3-270m-int4", "gemma3-270m", "int4"),
    ("gemma3-270m-int8", "gemma3-270m", "int8"),
    ("qwen2.5-coder-0.5b-int4", "qwen2.5-coder-0.5b", "int4"),
    # INT8 (W8A8 dynamic) on the project's CPU: prefill 2.7x faster than INT4, one decode row
    # 1.6x slower, eight rows a little faster; so it can lead where prefill or wide votes
    # dominate.
    ("qwen2.5-coder-0.5b-int8", "qwen2.5-coder-0.5b", "int8"),
)


def shipped_models(eval_name: str = "gsm8k") -> list[tuple[str, str, str]]:
    return [rung for rung in DEFAULT_LADDER if tables.load(rung[0], eval_name) is not None]


def ensure_converted(say: Callable[[str], None], eval_name: str = "gsm8k") -> list[str]:
    """Convert every ladder model missing from the store; return the ladder's entry names."""
    names = []
    for name, source, quant in shipped_models(eval_name):
        if not store.exists(name):
            try:
                from .converters.pipeline import convert
                from .converters.quantize import QuantSettings
            except ImportError as err:
                raise EdgeTTSError(
                    f"{name} is not converted yet and converting needs the convert extra ({err.name} is "
                    "missing): pip install 'edgetts[convert]', or copy a converted store into $EDGETTS_HOME"
                ) from None
            say(f"first use: converting {source} ({quant}) into the model store")
            convert(
                source, QuantSettings(type=quant), name=name, install=True, progress=lambda step: say(step)
            )
        names.append(name)
    return names
