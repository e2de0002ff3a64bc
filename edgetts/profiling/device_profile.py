"""Device profiles: ``<device-id>.yaml`` files holding, per model, the fitted latency model, the
raw points it was fitted on, memory and power — and where every number came from.

Measured profiles live in ``$EDGETTS_HOME/profiles``; published ones (from papers, for devices we
cannot measure here) ship with the package in ``profiles/``. Each model section carries its own
``source`` (measured | published), so that a file can never mix the two silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from .. import paths
from ..atomic import write_text_atomic
from ..errors import EdgeTTSError
from ..runtime.generator import cache_peak_tokens
from .latency_model import LatencyModel
from .threads import UnderLoad

SCHEMA_VERSION = 1
SOURCES = ("measured", "published")
# a model section's own keys; any other key is a detail kept as written (measured:, reference:)
SECTION_KEYS = frozenset(
    ("source", "quant", "context_length", "memory", "latency", "power", "points", "under_load")
)


class _Dumper(yaml.SafeDumper):
    """Block style for mappings, flow style for lists of plain values: a raw point stays one
    line (``[16, 0.0277, 0.0009, null]``), so a profile stays readable and diffable."""


def _represent_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    flat = all(isinstance(item, (int, float, str, type(None))) for item in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flat)


_Dumper.add_representer(list, _represent_list)


class ProfileError(EdgeTTSError):
    """A profile file is missing, malformed, of another schema, or of another device."""


@dataclass
class PowerModel:
    """Mean power while prefilling and while decoding N rows (interpolated between measured N)."""

    source: str  # rapl | nvml | ina3221 | estimated | published
    prefill_w: float
    decode_w: list[tuple[int, float]]  # (batch, watts), batch ascending

    def decode_watts(self, samples) -> np.ndarray:
        batches, watts = zip(*self.decode_w, strict=True)
        return np.interp(np.asarray(samples, np.float64), batches, watts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "prefill_w": round(self.prefill_w, 3),
            "decode_w": [[b, round(w, 3)] for b, w in self.decode_w],
        }

    @classmethod
    def from_dict(cls, data: dict, where: str) -> PowerModel:
        try:
            pairs = sorted((int(b), float(w)) for b, w in data["decode_w"])
            if not pairs:
                raise ValueError("no decode_w points")
            return cls(str(data["source"]), float(data["prefill_w"]), pairs)
        except (KeyError, TypeError, ValueError) as err:
            raise ProfileError(f"{where}: malformed power section ({err})") from None


@dataclass
class ModelProfile:
    name: str
    source: str
    quant: str
    context_length: int
    latency: LatencyModel
    resident_bytes: int  # process memory the loaded model adds (weights + runtime arenas)
    kv_bytes_per_token: int  # KV cache bytes per token per sample
    # The runtime's cache is updated in place (kv_cache.SharedKVCache), not returned anew every
    # step; False also for profiles written before it was recorded (charged as copied).
    kv_in_place: bool = False
    power: PowerModel | None = None
    points: dict[str, list] = field(default_factory=dict)  # raw measurements / published points
    details: dict[str, Any] = field(default_factory=dict)  # e.g. the reference of published numbers
    # latency per thread count under other load (`profile --threads-sweep`, profiling/threads.py)
    under_load: list[UnderLoad] = field(default_factory=list)

    def memory_bytes(self, samples, tokens, budget) -> np.ndarray:
        """Resident model + the KV cache of ``samples`` rows at its peak, for a context of
        ``tokens`` of which ``budget`` are thinking: ``tokens`` per row for a cache updated in
        place, more while it grows, twice ``tokens`` for one copied every step
        (generator.cache_peak_tokens)."""
        samples = np.asarray(samples, np.float64)
        peak = cache_peak_tokens(tokens, budget, self.kv_in_place)
        return self.resident_bytes + self.kv_bytes_per_token * samples * peak

    def energy_j(self, prefill_s, decode_s, samples) -> np.ndarray | None:
        if self.power is None:
            return None
        return self.power.prefill_w * prefill_s + self.power.decode_watts(samples) * decode_s

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "source": self.source,
            "quant": self.quant,
            "context_length": self.context_length,
            "memory": {
                "resident_bytes": self.resident_bytes,
                "kv_bytes_per_token": self.kv_bytes_per_token,
                "kv_in_place": self.kv_in_place,
            },
            "latency": self.latency.to_dict(),
            "power": self.power.to_dict() if self.power else None,
            "points": self.points,
        }
        if self.under_load:
            data["under_load"] = [row.to_dict() for row in self.under_load]
        data.update(self.details)
        return data

    @classmethod
    def from_dict(cls, name: str, data: Any, where: str) -> ModelProfile:
        where = f"{where}, model {name}"
        if not isinstance(data, dict):
            raise ProfileError(f"{where}: expected a mapping")
        try:
            source = str(data["source"])
            if source not in SOURCES:
                raise ValueError(f"source {source!r} is neither measured nor published")
            memory = data["memory"]
            in_place = memory.get("kv_in_place", False)
            if not isinstance(in_place, bool):
                raise ValueError(f"kv_in_place {in_place!r} is neither true nor false")
            return cls(
                name=name,
                source=source,
                quant=str(data["quant"]),
                context_length=int(data["context_length"]),
                latency=LatencyModel.from_dict(data["latency"], where),
                resident_bytes=int(memory["resident_bytes"]),
                kv_bytes_per_token=int(memory["kv_bytes_per_token"]),
                kv_in_place=in_place,
                power=PowerModel.from_dict(data["power"], where) if data.get("power") else None,
                points=dict(data.get("points") or {}),
                details={k: v for k, v in data.items() if k not in SECTION_KEYS},
                under_load=[UnderLoad.from_dict(row, where) for row in data.get("under_load") or []],
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ProfileError(f"{where}: malformed ({err}); run `edgetts profile` again") from None


@dataclass
class DeviceProfile:
    device: dict[str, Any]  # id, spec, name, power mode … (see profiling.device.describe)
    conditions: dict[str, Any]  # date, versions, threads, meter — or the published reference
    models: dict[str, ModelProfile]
    path: Path | None = None
    schema_version: int = SCHEMA_VERSION

    @property
    def device_id(self) -> str:
        return str(self.device["id"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "device": self.device,
            "conditions": self.conditions,
            "models": {name: model.to_dict() for name, model in sorted(self.models.items())},
        }

    def save(self, path: Path | None = None) -> Path:
        target = path or self.path or profile_path(self.device_id)
        text = yaml.dump(self.to_dict(), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
        write_text_atomic(target, text)
        self.path = target
        return target

    def measured_load(self) -> dict[str, Any] | None:
        """The machine's other load its models were measured under (profiling.load's reading as
        recorded): the busiest model's — busy first, then the largest foreign CPU share — else
        the conditions' own; None where nothing was recorded (profiles made before edgetts
        recorded load, published ones). Only the models it holds count, so a profile cut down
        to the models a plan uses speaks for those."""
        measured = [m.details.get("measured") for m in self.models.values()]
        recorded = [d["load"] for d in measured if isinstance(d, dict) and isinstance(d.get("load"), dict)]
        if recorded:
            return max(recorded, key=lambda d: (bool(d.get("busy")), float(d.get("foreign_cpu") or 0)))
        load = self.conditions.get("load")
        return load if isinstance(load, dict) else None

    def busy_load(self) -> dict[str, Any] | None:
        """:meth:`measured_load` where it says busy, else None (not known busy)."""
        load = self.measured_load()
        return load if load is not None and load.get("busy") else None

    def model(self, name: str) -> ModelProfile:
        if name not in self.models:
            raise ProfileError(
                f"the profile of {self.device_id} has no model {name!r} (it has: "
                f"{', '.join(sorted(self.models)) or 'none'}); run `edgetts profile --models {name}`"
            )
        return self.models[name]


def profiles_dir() -> Path:
    return paths.home() / "profiles"


def profile_path(device_id: str) -> Path:
    return profiles_dir() / f"{device_id}.yaml"


def parse(text: str, where: str) -> DeviceProfile:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark else ""
        raise ProfileError(
            f"{where} is not valid YAML{line}; fix it or run `edgetts profile` again"
        ) from None
    if not isinstance(data, dict):
        raise ProfileError(f"{where} is not a profile (expected a mapping); run `edgetts profile` again")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ProfileError(
            f"{where} has schema version {version!r}; this edgetts reads version {SCHEMA_VERSION}: "
            "run `edgetts profile` again (or upgrade edgetts)"
        )
    device = data.get("device")
    if not isinstance(device, dict) or not device.get("id"):
        raise ProfileError(f"{where} names no device id; run `edgetts profile` again")
    models = data.get("models") or {}
    if not isinstance(models, dict):
        raise ProfileError(f"{where}: models must be a mapping; run `edgetts profile` again")
    return DeviceProfile(
        device=device,
        conditions=dict(data.get("conditions") or {}),
        models={str(n): ModelProfile.from_dict(str(n), m, where) for n, m in models.items()},
    )


def load(path: Path) -> DeviceProfile:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ProfileError(f"cannot read the profile {path} ({err.strerror})") from None
    profile = parse(text, str(path))
    profile.path = path
    return profile


def find(device_id: str) -> DeviceProfile | None:
    """The measured profile of ``device_id`` if there is one, else the published one, else None."""
    measured = profile_path(device_id)
    if measured.exists():
        return load(measured)
    shipped = resources.files("edgetts.profiles") / f"{device_id}.yaml"
    if shipped.is_file():
        profile = parse(shipped.read_text(encoding="utf-8"), f"the published profile {device_id}.yaml")
        return profile
    return None


def load_for(device_id: str, path: Path | None = None) -> DeviceProfile:
    """The profile to plan with: ``path`` if given (and of ``device_id``), else :func:`find`."""
    if path is not None:
        profile = load(path)
        if profile.device_id != device_id:
            raise ProfileError(
                f"{path} is a profile of {profile.device_id}, not of {device_id}; pass --device "
                f"{profile.device_id} to plan for that device, or run `edgetts profile` here"
            )
        return profile
    profile = find(device_id)
    if profile is None:
        raise ProfileError(
            f"no profile for device {device_id}; run `edgetts profile` (about a minute with --quick)"
        )
    return profile
