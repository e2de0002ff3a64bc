"""The manifest of a model-store entry: everything the runtime, the profiler and the planner
need to know about a converted model without importing torch or re-reading the source.

It is plain JSON so that a robot's own tooling (or a person) can read it; ``from_dict`` checks
the shape so that a hand-edited or truncated manifest fails with a message, not a KeyError deep
inside the runtime.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import CorruptModelError

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
# The graph input through which the runtime asks for the last position's logits only: the
# converter's builder adds it, the runtime binds it where the graph has it. Named here because
# both read the manifest's contract, and the converter must not import the runtime.
LOGITS_TO_KEEP = "logits_to_keep"


@dataclass
class Architecture:
    """Shape facts the runtime needs to size KV buffers and the profiler needs to model cost."""

    model_type: str
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    hidden_size: int
    vocab_size: int
    context_length: int


@dataclass
class PromptFormat:
    """How to talk to the model without jinja: the chat template rendered once at convert time
    around a placeholder, plus the family's budget-forcing strings (see design.md, s1)."""

    prefix: str
    suffix: str
    style: str  # "instruct" (step-by-step prompt, cut, answer cue) or "think" (<think>…</think>)
    answer_cue: str
    stop_token_ids: list[int]
    think_start: str | None = None
    think_end: str | None = None
    # Text that ends a sample (a base model's "\nQuestion:"); older manifests have none.
    stop_strings: list[str] = field(default_factory=list)


@dataclass
class Manifest:
    name: str
    created: str
    source: dict[str, Any]  # kind (alias|gguf|hf-dir|hub), ref, sha256
    quant: dict[str, Any]  # type (fp32|fp16|int8|int4|fp8) and the quantizer's settings
    format: str  # "onnx" or "tensorrt"
    opset: int
    architecture: Architecture
    prompt: PromptFormat
    io: dict[str, Any]  # input/output names, KV dtype and layout
    files: dict[str, dict[str, Any]]  # relative path -> {size, sha256}
    tools: dict[str, str]  # versions of everything that touched the model
    graph: dict[str, Any] = field(default_factory=dict)  # what the graph passes did
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Manifest:
        """Build from parsed JSON, failing with a one-line message on any missing or odd field."""

        def bad(why: str) -> CorruptModelError:
            return CorruptModelError(
                f"{where} is malformed ({why}); convert the model again with `edgetts convert`"
            )

        if not isinstance(data, dict):
            raise bad("not a JSON object")
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise bad(f"schema_version {version!r}, this edgetts reads {SCHEMA_VERSION}")
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in data:
                if f.name == "graph":
                    continue
                raise bad(f"missing '{f.name}'")
            values[f.name] = data[f.name]
        try:
            values["architecture"] = Architecture(**values["architecture"])
            values["prompt"] = PromptFormat(**values["prompt"])
        except TypeError as err:
            raise bad(str(err)) from None
        if not isinstance(values["files"], dict) or not values["files"]:
            raise bad("'files' lists no file")
        return cls(**values)

    @classmethod
    def load(cls, path: Path) -> Manifest:
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise CorruptModelError(
                f"{path} is missing; the entry is incomplete, convert the model again"
            ) from None
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise CorruptModelError(
                f"{path} is not valid JSON ({err.msg if hasattr(err, 'msg') else err}); "
                "convert the model again with `edgetts convert`"
            ) from None
        return cls.from_dict(data, str(path))

    @property
    def quant_type(self) -> str:
        return str(self.quant["type"])
