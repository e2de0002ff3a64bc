"""``edgetts convert``: source -> fp32 ONNX with KV cache -> graph passes -> quantized model ->
(optional TensorRT engine) -> verified model-store entry, published atomically."""

from __future__ import annotations

import errno
import json
import re
import shutil
from collections.abc import Callable
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from .. import store
from ..errors import ConversionError, EdgeTTSError
from ..manifest import MANIFEST_NAME, Architecture, Manifest
from ..paths import models_dir
from .quantize import QuantSettings

FORMATS = ("onnx", "tensorrt")
EXPORTERS = ("auto", "optimum")
FP8_OPSET = 19
# Above this, protobuf cannot hold the model in one file; weights go to model.onnx.data.
_SINGLE_FILE_LIMIT = 1_800_000_000
_TOOLS = ("edgetts", "torch", "transformers", "optimum", "optimum-onnx", "onnx", "onnxruntime", "gguf")

Progress = Callable[[str], None]


def default_name(source: str, quant: str, fmt: str) -> str:
    from .aliases import BUILTIN_MODELS

    if source in BUILTIN_MODELS:
        base = source
    else:
        path = Path(source.rstrip("/"))
        base = path.stem if path.suffix == ".gguf" else path.name
        base = re.sub(r"[^A-Za-z0-9._-]+", "-", base).strip("-._").lower() or "model"
    return f"{base}-{quant}" + ("-trt" if fmt == "tensorrt" else "")


def _source_ref(source: str) -> str:
    """How the manifest names a source: alias and hub id as given, paths absolute."""
    from .aliases import BUILTIN_MODELS

    path = Path(source).expanduser()
    return source if source in BUILTIN_MODELS or not path.exists() else str(path.resolve())


def _tool_versions() -> dict[str, str]:
    versions = {}
    for dist in _TOOLS:
        try:
            versions[dist] = version(dist)
        except PackageNotFoundError:
            continue
    return versions


def _architecture(hf_dir: Path) -> Architecture:
    config = json.loads((hf_dir / "config.json").read_text())
    config = config.get("text_config", config)
    heads = int(config["num_attention_heads"])
    hidden = int(config["hidden_size"])
    return Architecture(
        model_type=str(config["model_type"]),
        layers=int(config["num_hidden_layers"]),
        heads=heads,
        kv_heads=int(config.get("num_key_value_heads") or heads),
        head_dim=int(config.get("head_dim") or hidden // heads),
        hidden_size=hidden,
        vocab_size=int(config["vocab_size"]),
        context_length=int(config.get("max_position_embeddings") or 2048),
    )


def _io_spec(model) -> dict[str, object]:
    inputs = [i.name for i in model.graph.input]
    return {
        "inputs": inputs,
        "outputs": [o.name for o in model.graph.output],
        "past_key": "past_key_values.{layer}.key",
        "past_value": "past_key_values.{layer}.value",
        "present_key": "present.{layer}.key",
        "present_value": "present.{layer}.value",
        "kv_layout": "batch, kv_heads, sequence, head_dim",
        "kv_dtype": "float32",
        "position_ids": "position_ids" in inputs,
    }


def _estimate_needed_bytes(source: str) -> int:
    """Rough free space a conversion needs: the fp32 HF copy, the fp32 ONNX and the output.

    GGUF files hold about 4.5 bits per weight, so their fp32 form is ~7x larger.
    """
    path = Path(source).expanduser()
    from .aliases import BUILTIN_MODELS

    if source in BUILTIN_MODELS:
        sizes = {"smollm2-135m": 135e6, "gemma3-270m": 270e6, "qwen2.5-coder-0.5b": 494e6}
        fp32 = 4 * sizes[source]
    elif path.is_file():
        fp32 = 7 * path.stat().st_size
    elif path.is_dir():
        fp32 = 2 * sum(p.stat().st_size for p in path.rglob("*.safetensors"))
    else:
        fp32 = 0
    return int(3.2 * fp32)


def _check_disk(source: str) -> None:
    root = models_dir()
    root.mkdir(parents=True, exist_ok=True)
    needed = _estimate_needed_bytes(source)
    free = shutil.disk_usage(root).free
    if needed > free:
        raise ConversionError(
            f"not enough disk space: converting {source} needs about {needed / 1e9:.1f} GB free in "
            f"{root}, there is {free / 1e9:.1f} GB; free some space or set EDGETTS_HOME elsewhere"
        )


def _save_onnx(model, path: Path) -> None:
    import onnx

    weights = sum(len(init.raw_data) for init in model.graph.initializer)
    external = weights > _SINGLE_FILE_LIMIT
    onnx.save_model(
        model,
        str(path),
        save_as_external_data=external,
        all_tensors_to_one_file=True,
        location=path.name + ".data",
        size_threshold=1024,
    )


def smoke_test(entry_dir: Path, manifest: Manifest) -> None:
    """Load the finished model with onnxruntime and run a 4-token prefill: catches a graph the
    runtime cannot load or a quantization that produced NaNs before the entry is published."""
    from edgetts.runtime.onnx_model import OnnxCausalLM

    lm = OnnxCausalLM(entry_dir, manifest, threads=1)
    ids = np.array([[1, 2, 3, 4]], dtype=np.int64) % manifest.architecture.vocab_size
    logits, _ = lm.forward(ids, lm.empty_past(1))
    if not np.isfinite(logits).all():
        raise ConversionError(
            f"the {manifest.quant_type} model produces non-finite logits; try another --quant or --int4-algo"
        )


def convert(
    source: str,
    settings: QuantSettings,
    fmt: str = "onnx",
    name: str | None = None,
    install: bool = False,
    force: bool = False,
    progress: Progress = lambda step: None,
    exporter: str = "auto",
) -> store.StoreEntry:
    """Convert ``source`` into store entry ``name``; on any failure the store is unchanged.

    ``exporter``: "auto" builds llama/qwen2 graphs directly (converters.builder) and exports the
    rest with optimum; "optimum" always uses optimum's export.
    """
    settings.validate()
    if exporter not in EXPORTERS:
        raise ConversionError(f"unknown exporter {exporter!r}: choose auto or optimum")
    if fmt not in FORMATS:
        raise ConversionError(f"unknown format {fmt!r}: choose onnx or tensorrt")
    if fmt == "tensorrt":
        from .tensorrt import check_available

        check_available(settings.type)
    name = store.check_name(name or default_name(source, settings.type, fmt))
    if store.exists(name) and not force:
        existing = store.get(name)
        m = existing.manifest
        if (m.source["ref"], m.quant, m.format) == (_source_ref(source), settings.describe(), fmt):
            return existing  # already converted from the same source with the same settings
        raise EdgeTTSError(
            f"a model named {name!r} is already in the store (from {m.source['ref']}, {m.quant_type}); "
            "pass --force to replace it or --name to keep both"
        )
    store.clean_stale_staging()
    try:
        with store.staging(name, replace=force) as tmp:  # refuses an existing name without force
            _check_disk(source)
            _build_entry(source, settings, fmt, name, tmp, install, progress, exporter)
    except OSError as err:
        if err.errno == errno.ENOSPC:
            raise ConversionError(
                f"ran out of disk space in {models_dir()} while converting {source}; nothing was "
                "kept; free some space or set EDGETTS_HOME elsewhere"
            ) from None
        raise
    return store.get(name)


def _build_entry(
    source: str,
    settings: QuantSettings,
    fmt: str,
    name: str,
    tmp: Path,
    install: bool,
    progress: Progress,
    exporter: str,
) -> None:
    import onnx

    from . import builder, export, graph, quantize, sources, templates

    work = tmp / ".work"
    work.mkdir()
    progress(f"reading {source}")
    prepared = sources.prepare(source, work, install)
    export.check_supported(prepared.model_type)
    arch = _architecture(prepared.hf_dir)

    # ORT's fused and contrib ops are for ORT: TensorRT and the FP8 (TensorRT) graphs keep
    # standard ops, so they always come from optimum's export.
    for_ort = fmt == "onnx" and settings.type != "fp8"
    config = json.loads((prepared.hf_dir / "config.json").read_text())
    if for_ort and exporter == "auto" and builder.supports(config):
        progress("building the ONNX decoder (GroupQueryAttention, KV cache)")
        with export.quiet_libraries():
            model = builder.build_decoder(prepared.hf_dir)
        used = "edgetts-builder"
    else:
        progress("exporting to ONNX with KV cache")
        # FP8 Q/DQ needs opset 19; exporting at 19 spares the quantizer an in-memory opset
        # conversion, which fails beyond protobuf's 2 GB (Qwen2.5-0.5B in fp32).
        opset = FP8_OPSET if settings.type == "fp8" else None
        model = onnx.load(str(export.export_onnx(prepared.hf_dir, work / "onnx", opset=opset)))
        used = "optimum"
        if for_ort:
            progress("fusing normalization and rotary embedding")
            with export.quiet_libraries():
                model = graph.fuse_decoder(
                    model, arch.model_type, arch.heads, arch.hidden_size, arch.context_length
                )
    # Only the quantizers need the lm_head as its own initializer; fp32/fp16 files stay smaller.
    untied = graph.untie_lm_head(model) if settings.type in ("int8", "int4", "fp8") else []

    progress(f"quantizing to {settings.type}")
    with export.quiet_libraries():
        model = quantize.quantize(model, settings, arch.vocab_size, work)
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    # Also for exports that already carry the tied lm_head as a second copy (Gemma 3): the
    # check inside compares the two quantized matrices and shares only when they are identical.
    shared = settings.type == "int4" and graph.share_tied_int4_embedding(model)
    graph_facts = {
        "exporter": used,
        "lm_head_untied": bool(untied),
        "tied_embedding_shared": shared,
        "ops": graph.op_histogram(model),
    }
    io_spec = _io_spec(model)
    _save_onnx(model, tmp / "model.onnx")
    del model

    tokenizer_json = prepared.hf_dir / "tokenizer.json"
    if not tokenizer_json.is_file():
        raise ConversionError(f"{source} has no fast tokenizer (tokenizer.json); the runtime needs one")
    shutil.copyfile(tokenizer_json, tmp / "tokenizer.json")
    for extra in ("chat_template.jinja", "generation_config.json", "config.json"):
        if (prepared.hf_dir / extra).is_file():
            shutil.copyfile(prepared.hf_dir / extra, tmp / extra)
    with export.quiet_libraries():
        prompt = templates.prompt_format(prepared.hf_dir)

    if fmt == "tensorrt":
        progress("building the TensorRT engine")
        from .tensorrt import build_engine

        graph_facts["tensorrt"] = build_engine(tmp / "model.onnx", tmp / "model.engine", settings.type, arch)

    shutil.rmtree(work)
    manifest = Manifest(
        name=name,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        source={"kind": prepared.kind, "ref": prepared.ref, "sha256": prepared.sha256},
        quant=settings.describe(),
        format=fmt,
        opset=int(opset),
        architecture=arch,
        prompt=prompt,
        io=io_spec,
        files=store.file_records(tmp),
        tools=_tool_versions(),
        graph=graph_facts,
    )
    (tmp / MANIFEST_NAME).write_text(manifest.to_json())
    if settings.type != "fp8":  # FP8 runs only on GPUs that have it (TensorRT); not here
        progress("checking the converted model")
        smoke_test(tmp, manifest)
