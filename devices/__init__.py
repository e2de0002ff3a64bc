"""Device specs: what a board *is* (memory, bandwidth, power modes, precisions, power sensors),
as opposed to a profile, which is what it was *measured* to do.

Specs are YAML files next to this module, so that adding a board is a data file, not code.
Device detection maps a board to its spec id and takes the GPU and power-mode names from it
where the board does not report them; the INA3221 meter reads the rails it names, and the
energy estimator its idle and maximum watts where the board has no sensor; the planner caps
memory at its ``memory_bytes`` when it plans with that board's profile on another machine.
``precisions`` are only listed (`edgetts devices`): what this machine can run is asked of
onnxruntime and its GPU (edgetts/precision.py). A file that is malformed fails loudly with one
line naming the file, the field and the fix, because a silently wrong spec would make every plan
on that board wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from edgetts.errors import EdgeTTSError

SCHEMA_VERSION = 1
KINDS = ("jetson", "sbc", "cpu")
PRECISIONS = ("fp32", "fp16", "int8", "int4", "fp8", "fp4")
SENSOR_KINDS = ("ina3221", "rapl", "nvml", "none")
_DIR = Path(__file__).resolve().parent
_EXAMPLE = "devices/jetson-orin-nano-8gb.yaml"


@dataclass(frozen=True)
class CpuSpec:
    arch: str  # x86_64 | arm64
    cores: int | None  # None: read at run time (the generic CPUs)


@dataclass(frozen=True)
class GpuSpec:
    name: str
    architecture: str
    compute_capability: tuple[int, int]


@dataclass(frozen=True)
class PowerMode:
    name: str  # as nvpmodel names it
    nvpmodel_id: int | None
    watts: float | None  # None: no power cap (MAXN, MAXN_SUPER)


@dataclass(frozen=True)
class PowerSensors:
    kind: str  # one of SENSOR_KINDS
    rails: tuple[str, ...]
    total_rail: str | None  # the rail measuring the whole input; None: the sum of ``rails``


@dataclass(frozen=True)
class DeviceSpec:
    id: str
    name: str
    kind: str  # one of KINDS
    memory_bytes: int | None  # None: read at run time (the generic CPUs)
    memory_bandwidth_gbps: float | None
    cpu: CpuSpec
    gpu: GpuSpec | None
    power_modes: tuple[PowerMode, ...]
    precisions: tuple[str, ...]
    power_sensors: PowerSensors
    idle_watts: float | None  # for the energy estimator where no sensor exists
    max_watts: float | None
    sources: tuple[str, ...]

    def power_mode(self, nvpmodel_id: int) -> PowerMode | None:
        return next((m for m in self.power_modes if m.nvpmodel_id == nvpmodel_id), None)


def spec_ids() -> list[str]:
    """Ids of the shipped specs, sorted."""
    return sorted(p.stem for p in _DIR.glob("*.yaml"))


def load_spec(spec_id: str) -> DeviceSpec:
    """The shipped spec named ``spec_id``."""
    known = spec_ids()
    if spec_id not in known:
        raise EdgeTTSError(f"no device spec named '{spec_id}'; use one of: {', '.join(known)}")
    spec = load_spec_file(_DIR / f"{spec_id}.yaml")
    if spec.id != spec_id:
        raise EdgeTTSError(f"{_DIR / spec_id}.yaml says id '{spec.id}'; make its id match the file name")
    return spec


def load_spec_file(path: Path) -> DeviceSpec:
    """A spec from any YAML file (a board not shipped yet, or a corrected copy)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise EdgeTTSError(f"cannot read device spec {path} ({err.strerror}); check the path") from err
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise EdgeTTSError(f"{path} is not valid YAML ({problem}{where}); fix the file") from err
    top = _Fields(data, str(path))
    version = top.get("schema_version", int)
    if version != SCHEMA_VERSION:
        raise EdgeTTSError(
            f"{path} has schema_version {version}, but this edgetts reads version {SCHEMA_VERSION}; "
            "upgrade edgetts or rewrite the spec in that version"
        )
    cpu = top.nested("cpu")
    gpu = top.nested("gpu", null=True)
    sensors = top.nested("power_sensors")
    return DeviceSpec(
        id=top.get("id", str),
        name=top.get("name", str),
        kind=top.choice("kind", KINDS),
        memory_bytes=top.get("memory_bytes", int, null=True),
        memory_bandwidth_gbps=_float(top.get("memory_bandwidth_gbps", (int, float), null=True)),
        cpu=CpuSpec(arch=cpu.get("arch", str), cores=cpu.get("cores", int, null=True)),
        gpu=None
        if gpu is None
        else GpuSpec(
            name=gpu.get("name", str),
            architecture=gpu.get("architecture", str),
            compute_capability=gpu.pair("compute_capability"),
        ),
        power_modes=tuple(
            PowerMode(
                name=mode.get("name", str),
                nvpmodel_id=mode.get("nvpmodel_id", int, null=True),
                watts=_float(mode.get("watts", (int, float), null=True)),
            )
            for mode in top.items("power_modes")
        ),
        precisions=top.strings("precisions", PRECISIONS),
        power_sensors=PowerSensors(
            kind=sensors.choice("kind", SENSOR_KINDS),
            rails=sensors.strings("rails"),
            total_rail=sensors.get("total_rail", str, null=True),
        ),
        idle_watts=_float(top.get("idle_watts", (int, float), null=True)),
        max_watts=_float(top.get("max_watts", (int, float), null=True)),
        sources=top.strings("sources"),
    )


def _float(value: float | None) -> float | None:
    return None if value is None else float(value)


class _Fields:
    """Typed access to one mapping of a spec file; every failure names the file, the field and
    what to do, in one line."""

    def __init__(self, data: Any, path: str, prefix: str = ""):
        if not isinstance(data, dict):
            what = f"'{prefix.rstrip('.')}'" if prefix else "the file"
            raise EdgeTTSError(f"{path}: {what} should be a mapping of fields; see {_EXAMPLE} for the format")
        self.data, self.path, self.prefix = data, path, prefix

    def get(self, key: str, kind: type | tuple[type, ...], *, null: bool = False) -> Any:
        if key not in self.data:
            raise EdgeTTSError(f"{self.path}: missing field '{self.prefix}{key}'; add it (see {_EXAMPLE})")
        value = self.data[key]
        if value is None and null:
            return None
        if isinstance(value, bool) or not isinstance(value, kind):
            names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise EdgeTTSError(
                f"{self.path}: field '{self.prefix}{key}' should be {names}"
                f"{' or null' if null else ''}, not {value!r}; fix it"
            )
        return value

    def choice(self, key: str, allowed: tuple[str, ...]) -> str:
        value = self.get(key, str)
        if value not in allowed:
            raise EdgeTTSError(
                f"{self.path}: field '{self.prefix}{key}' is '{value}'; use one of: {', '.join(allowed)}"
            )
        return value

    def nested(self, key: str, *, null: bool = False) -> _Fields | None:
        value = self.get(key, dict, null=null)
        return None if value is None else _Fields(value, self.path, f"{self.prefix}{key}.")

    def items(self, key: str) -> list[_Fields]:
        return [
            _Fields(item, self.path, f"{self.prefix}{key}[{i}].")
            for i, item in enumerate(self.get(key, list))
        ]

    def strings(self, key: str, allowed: tuple[str, ...] | None = None) -> tuple[str, ...]:
        values = self.get(key, list)
        for value in values:
            if not isinstance(value, str) or (allowed is not None and value not in allowed):
                hint = f"one of: {', '.join(allowed)}" if allowed else "a string"
                raise EdgeTTSError(
                    f"{self.path}: '{self.prefix}{key}' holds {value!r}; each entry should be {hint}"
                )
        return tuple(values)

    def pair(self, key: str) -> tuple[int, int]:
        value = self.get(key, list)
        if len(value) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise EdgeTTSError(
                f"{self.path}: field '{self.prefix}{key}' should be [major, minor], not {value!r}"
            )
        return value[0], value[1]
