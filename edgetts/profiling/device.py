"""What this machine is: a stable id (the key of its profile), its spec, and the conditions a
measurement has to record (power mode, jetson_clocks, L4T), because a latency measured at 15 W
says nothing about the same board at MAXN.

Every file is read relative to ``root``, so that tests (and anyone debugging a report) can point
detection at a recorded tree instead of this machine's ``/``.
"""

from __future__ import annotations

import platform
import re
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import onnxruntime as ort
import psutil

from edgetts import __version__
from edgetts.devices import DeviceSpec, load_spec
from edgetts.precision import gpu_info

# A board's device-tree model names its family; its memory picks the variant. (family keyword,
# id stem, {memory class in GiB: spec id}). A variant without a spec keeps an id of its own
# (e.g. jetson-agx-orin-32gb) so that its profile never mixes with another variant's.
_BOARDS = (
    ("AGX Thor", "jetson-agx-thor", {128: "jetson-thor"}),
    ("AGX Orin", "jetson-agx-orin", {64: "jetson-agx-orin-64gb"}),
    ("Orin NX", "jetson-orin-nx", {16: "jetson-orin-nx-16gb"}),
    ("Orin Nano", "jetson-orin-nano", {8: "jetson-orin-nano-8gb"}),
    ("Raspberry Pi 5", "raspberry-pi-5", {8: "raspberry-pi-5"}),
)
# Boards report less than their nominal memory (firmware carve-outs), never more.
_MEMORY_CLASSES_GIB = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
_GENERIC_SPECS = {"x86_64": "generic-x86-64", "arm64": "generic-arm64"}
# /proc/cpuinfo on arm64 names no model, only (implementer, part); from Linux's cputype.h.
_ARM_PARTS = {
    ("0x41", "0xd03"): "Arm Cortex-A53",
    ("0x41", "0xd07"): "Arm Cortex-A57",
    ("0x41", "0xd08"): "Arm Cortex-A72",
    ("0x41", "0xd0b"): "Arm Cortex-A76",
    ("0x41", "0xd0c"): "Arm Neoverse-N1",
    ("0x41", "0xd40"): "Arm Neoverse-V1",
    ("0x41", "0xd41"): "Arm Cortex-A78",
    ("0x41", "0xd42"): "Arm Cortex-A78AE",
    ("0x41", "0xd49"): "Arm Neoverse-N2",
    ("0x41", "0xd4f"): "Arm Neoverse-V2",
    ("0x41", "0xd83"): "Arm Neoverse-V3AE",
    ("0x41", "0xd84"): "Arm Neoverse-V3",
    ("0x4e", "0x004"): "NVIDIA Carmel",
}
_POWER_MODEL = re.compile(r"<\s*POWER_MODEL\s+ID=(\d+)\s+NAME=([^\s>]+)\s*>")
_PM_DEFAULT = re.compile(r"<\s*PM_CONFIG\s+DEFAULT=(\d+)\s*>")
_L4T = re.compile(r"#\s*R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)")


@dataclass(frozen=True)
class GpuInfo:
    name: str
    compute_capability: tuple[int, int]


@dataclass(frozen=True)
class DeviceInfo:
    id: str  # stable across reboots and power modes: the hardware only
    spec_id: str | None  # None: no shipped spec fits (planning falls back to measurements)
    name: str
    kind: str  # jetson | sbc | cpu
    cpu_model: str
    physical_cores: int
    logical_cores: int
    memory_bytes: int
    gpu: GpuInfo | None
    power_mode: str | None  # nvpmodel's name for the active mode (Jetson only)
    jetson_clocks: bool | None  # None: unknown (not a Jetson, or cpufreq unreadable)
    l4t: str | None  # e.g. "36.4.0"


def detect(root: Path = Path("/")) -> DeviceInfo:
    """Identify the machine whose ``/proc``, ``/sys`` and ``/etc`` lie under ``root``."""
    root = Path(root)
    model = (_read(root / "proc/device-tree/model") or "").strip("\0\n ")
    processors, extra = _cpuinfo(root)
    memory = _memory_bytes(root)
    arch = _arch(processors)
    logical = len(processors) or psutil.cpu_count(logical=True) or 1
    physical = _physical_cores(processors, arch) or psutil.cpu_count(logical=False) or logical
    cpu_model = _cpu_model(processors, extra, arch)
    jetson = (root / "etc/nv_tegra_release").exists() or "Jetson" in model
    board = next((b for b in _BOARDS if b[0] in model), None)
    if jetson or board is not None:
        if board is not None:
            stem, variants = board[1], board[2]
        else:  # a Jetson edgetts has no spec for: its own id, from its model name
            stem, variants = _slug(re.sub("NVIDIA|Developer Kit", "", model)) or "jetson", {}
        size = _memory_class(memory)
        spec_id = variants.get(size)
        spec = load_spec(spec_id) if spec_id else None
        return DeviceInfo(
            id=spec_id or f"{stem}-{size}gb",
            spec_id=spec_id,
            name=model,
            kind="jetson" if jetson else "sbc",
            cpu_model=cpu_model,
            physical_cores=physical,
            logical_cores=logical,
            memory_bytes=memory,
            gpu=_gpu(root, spec),
            power_mode=read_power_mode(root, spec) if jetson else None,
            jetson_clocks=_jetson_clocks(root) if jetson else None,
            l4t=_l4t(root),
        )
    return DeviceInfo(
        id=f"cpu-{_slug(_short_cpu_name(cpu_model))}-{physical}c",
        spec_id=_GENERIC_SPECS.get(arch),
        name=cpu_model,
        kind="cpu",
        cpu_model=cpu_model,
        physical_cores=physical,
        logical_cores=logical,
        memory_bytes=memory,
        gpu=_gpu(root, None),
        power_mode=None,
        jetson_clocks=None,
        l4t=None,
    )


def describe(info: DeviceInfo) -> dict[str, Any]:
    """The device and the software a measurement ran on, as plain data (for profile YAML/JSON)."""
    data = asdict(info)
    if info.gpu is not None:
        data["gpu"]["compute_capability"] = list(info.gpu.compute_capability)
    data.update(
        edgetts=__version__,
        onnxruntime=ort.__version__,
        providers=ort.get_available_providers(),
        python=platform.python_version(),
    )
    return data


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _cpuinfo(root: Path) -> tuple[list[dict[str, str]], dict[str, str]]:
    """Per-processor blocks of /proc/cpuinfo, and the board-wide lines (arm64's Hardware, Model)."""
    processors: list[dict[str, str]] = []
    extra: dict[str, str] = {}
    for block in (_read(root / "proc/cpuinfo") or "").split("\n\n"):
        fields = dict(
            (key.strip(), value.strip())
            for key, sep, value in (line.partition(":") for line in block.splitlines())
            if sep
        )
        if fields.get("processor", "").isdigit():
            processors.append(fields)
        else:
            extra.update(fields)
    return processors, extra


def _arch(processors: list[dict[str, str]]) -> str:
    if processors and "CPU implementer" in processors[0]:
        return "arm64"
    if processors and "vendor_id" in processors[0]:
        return "x86_64"
    machine = platform.machine().lower()
    return {"aarch64": "arm64", "amd64": "x86_64"}.get(machine, machine)


def _physical_cores(processors: list[dict[str, str]], arch: str) -> int:
    """Distinct (socket, core) pairs on x86 (SMT siblings share one); on arm64 every processor is
    a core (the Cortex/Neoverse cores of these boards have no SMT)."""
    if arch == "x86_64" and processors and "core id" in processors[0]:
        return len({(p.get("physical id", "0"), p["core id"]) for p in processors})
    return len(processors)


def _cpu_model(processors: list[dict[str, str]], extra: dict[str, str], arch: str) -> str:
    if processors and "model name" in processors[0]:
        return processors[0]["model name"]
    parts = Counter((p.get("CPU implementer", ""), p.get("CPU part", "")) for p in processors)
    names = [
        _ARM_PARTS.get(part, f"arm64 implementer {part[0]} part {part[1]}") for part, _ in parts.most_common()
    ]
    if names:
        return " + ".join(names)
    return extra.get("Hardware") or platform.processor() or arch


def _short_cpu_name(model: str) -> str:
    """Drop what the id does not need: trademarks, clock speed, 'CPU', 'N-Core Processor'."""
    return re.sub(r"\((R|TM|tm)\)|@.*$|\bCPU\b|\b\d+-Core\b|\bProcessor\b", " ", model)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _memory_bytes(root: Path) -> int:
    match = re.search(r"^MemTotal:\s+(\d+)\s*kB", _read(root / "proc/meminfo") or "", re.MULTILINE)
    return int(match.group(1)) * 1024 if match else psutil.virtual_memory().total


def _memory_class(memory_bytes: int) -> int:
    gib = memory_bytes / 2**30
    return next((size for size in _MEMORY_CLASSES_GIB if gib <= size), round(gib))


def _gpu(root: Path, spec: DeviceSpec | None) -> GpuInfo | None:
    """NVML's answer on this machine; a recorded tree has no NVML, and a Jetson whose NVML
    answers nothing useful still has the GPU its spec names."""
    found = gpu_info() if root == Path("/") else None
    if found is not None:
        return GpuInfo(found[0], found[1])
    if spec is not None and spec.gpu is not None:
        return GpuInfo(spec.gpu.name, spec.gpu.compute_capability)
    return None


def read_power_mode(root: Path, spec: DeviceSpec | None) -> str | None:
    """nvpmodel keeps the active mode in /var/lib/nvpmodel/status ("pmode:0002 …"); without that
    file the boot default of /etc/nvpmodel.conf applies. Names come from nvpmodel.conf, which is
    what the board really runs, and only then from the spec."""
    conf = _read(root / "etc/nvpmodel.conf") or ""
    status = re.search(r"pmode:\s*(\d+)", _read(root / "var/lib/nvpmodel/status") or "")
    chosen = status or _PM_DEFAULT.search(conf)
    if chosen is None:
        return None
    mode_id = int(chosen.group(1))
    names = {int(i): name for i, name in _POWER_MODEL.findall(conf)}
    if mode_id in names:
        return names[mode_id]
    mode = spec.power_mode(mode_id) if spec is not None else None
    return mode.name if mode is not None else f"mode {mode_id}"


def _jetson_clocks(root: Path) -> bool | None:
    """jetson_clocks pins each clock's minimum to its maximum; `jetson_clocks --show` needs root,
    cpufreq's limits do not."""
    cpufreq = root / "sys/devices/system/cpu/cpu0/cpufreq"
    low, high = _read(cpufreq / "scaling_min_freq"), _read(cpufreq / "scaling_max_freq")
    if low is None or high is None:
        return None
    return low.strip() == high.strip()


def _l4t(root: Path) -> str | None:
    match = _L4T.search(_read(root / "etc/nv_tegra_release") or "")
    return f"{match.group(1)}.{match.group(2)}" if match else None
