"""The model store: ``<home>/models/<name>/`` holding model.onnx (+ external data),
tokenizer.json and manifest.json.

Entries appear atomically: a conversion builds in a hidden staging folder on the same file
system and renames it into place at the end, so an interrupted or failed convert leaves nothing
half-written where the runtime would find it.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil

from .errors import CorruptModelError, EdgeTTSError, ModelNotFoundError
from .manifest import MANIFEST_NAME, Manifest
from .paths import models_dir

_STAGING_PREFIX = ".staging-"
_VALID_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def file_records(folder: Path) -> dict[str, dict[str, object]]:
    """Size and sha256 of every file under ``folder`` except the manifest itself."""
    records: dict[str, dict[str, object]] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if rel == MANIFEST_NAME:
            continue
        records[rel] = {"size": path.stat().st_size, "sha256": sha256_file(path)}
    return records


def check_name(name: str) -> str:
    if not _VALID_NAME.match(name):
        raise EdgeTTSError(
            f"invalid model name {name!r}: use letters, digits, '.', '_' and '-' (at most 128)"
        )
    return name


@dataclass(frozen=True)
class StoreEntry:
    path: Path
    manifest: Manifest

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def size_bytes(self) -> int:
        return sum(int(rec["size"]) for rec in self.manifest.files.values())


def entry_path(name: str) -> Path:
    return models_dir() / check_name(name)


def exists(name: str) -> bool:
    return (entry_path(name) / MANIFEST_NAME).is_file()


def get(name: str) -> StoreEntry:
    path = entry_path(name)
    if not path.is_dir():
        known = ", ".join(e.name for e in list_entries()) or "none yet"
        raise ModelNotFoundError(
            f"no model named {name!r} in the store ({models_dir()}; converted: {known}); "
            f"run `edgetts convert SOURCE --name {name}` first"
        )
    return StoreEntry(path, Manifest.load(path / MANIFEST_NAME))


def list_entries() -> list[StoreEntry]:
    """Every readable entry; a broken one is skipped here and reported by ``verify``."""
    root = models_dir()
    if not root.is_dir():
        return []
    entries = []
    for path in sorted(root.iterdir()):
        if path.name.startswith(".") or not path.is_dir():
            continue
        try:
            entries.append(StoreEntry(path, Manifest.load(path / MANIFEST_NAME)))
        except CorruptModelError:
            continue
    return entries


def verify(name: str) -> StoreEntry:
    """Re-hash every file of an entry against its manifest; raise on the first mismatch."""
    entry = get(name)
    for rel, record in entry.manifest.files.items():
        path = entry.path / rel
        if not path.is_file():
            raise CorruptModelError(
                f"{name}: {rel} is missing; convert the model again with `edgetts convert --force`"
            )
        size = path.stat().st_size
        if size != record["size"]:
            raise CorruptModelError(
                f"{name}: {rel} is {size} bytes, the manifest says {record['size']} (truncated or "
                "replaced); convert the model again with `edgetts convert --force`"
            )
        if sha256_file(path) != record["sha256"]:
            raise CorruptModelError(
                f"{name}: {rel} does not match its sha256 in the manifest (corrupted or edited); "
                "convert the model again with `edgetts convert --force`"
            )
    return entry


def remove(name: str) -> None:
    path = entry_path(name)
    if not path.exists():
        raise ModelNotFoundError(f"no model named {name!r} in the store ({models_dir()})")
    shutil.rmtree(path)


@contextmanager
def staging(name: str, replace: bool = False) -> Iterator[Path]:
    """Yield an empty folder to build entry ``name`` in; publish it atomically on success.

    On any exception (KeyboardInterrupt included) the folder is deleted and the store is as it
    was. With ``replace`` an existing entry is swapped out only after the new one is complete.
    """
    check_name(name)
    root = models_dir()
    root.mkdir(parents=True, exist_ok=True)
    target = root / name
    if target.exists() and not replace:
        raise EdgeTTSError(
            f"a model named {name!r} is already in the store; pass --force to replace it "
            "or --name to keep both"
        )
    tmp = root / f"{_STAGING_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}-{name}"
    tmp.mkdir()
    try:
        yield tmp
        if target.exists():
            old = root / f"{_STAGING_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}-old-{name}"
            os.rename(target, old)
            os.rename(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def clean_stale_staging() -> None:
    """Remove staging folders left by a process that was killed (SIGKILL, power loss) and so
    could not clean up; folders of a conversion still running are left alone."""
    root = models_dir()
    if not root.is_dir():
        return
    for path in root.glob(f"{_STAGING_PREFIX}*"):
        pid = path.name[len(_STAGING_PREFIX) :].split("-", 1)[0]
        if not pid.isdigit() or not psutil.pid_exists(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
