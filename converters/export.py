"""Export a Hugging Face causal LM folder to ONNX with a KV cache, through optimum."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path

from ..errors import ConversionError


@contextlib.contextmanager
def quiet_libraries():
    """Silence the tracer warnings, progress bars and library chatter that optimum, torch and
    the GGUF loader print by the hundred: a converting user needs our progress line and any real
    error (raised as an exception, not printed), not TracerWarnings."""
    from transformers.utils import logging as hf_logging

    previous = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    sink = io.StringIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger("optimum").setLevel(logging.ERROR)
        try:
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                yield
        finally:
            hf_logging.set_verbosity(previous)
            hf_logging.enable_progress_bar()


def check_supported(model_type: str) -> None:
    """Fail before the slow export when optimum has no KV-cache exporter for the architecture."""
    import optimum.exporters.onnx.model_configs  # noqa: F401  (registers the ONNX exporters)
    from optimum.exporters.tasks import TasksManager

    try:
        tasks = TasksManager.get_supported_tasks_for_model_type(
            model_type, "onnx", library_name="transformers"
        )
    except KeyError:
        tasks = {}
    if "text-generation-with-past" not in tasks:
        raise ConversionError(
            f"architecture {model_type!r} cannot be exported with a KV cache by optimum "
            f"{_version('optimum-onnx')}; use a llama, qwen2, gemma3, mistral, phi3 or qwen3 model"
        )


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


def export_onnx(hf_dir: Path, out_dir: Path, opset: int | None = None) -> Path:
    """Export ``hf_dir`` to ``out_dir/model.onnx`` (fp32, inputs_ids/attention_mask/
    position_ids/past_key_values.*) and return its path."""
    from optimum.exporters.onnx import main_export

    with quiet_libraries():
        try:
            main_export(
                str(hf_dir),
                output=str(out_dir),
                task="text-generation-with-past",
                device="cpu",
                do_validation=False,
                local_files_only=True,
                opset=opset,
            )
        except (ValueError, KeyError, NotImplementedError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ConversionError(f"ONNX export of {hf_dir} failed: {first}") from None
    path = out_dir / "model.onnx"
    if not path.is_file():
        raise ConversionError(f"ONNX export of {hf_dir} produced no model.onnx")
    return path
