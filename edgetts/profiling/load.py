"""The rest of the machine's load over a window (``begin()`` … ``end()``): what share of the CPU
other processes used, the hypervisor's steal, the load average, the CPU clock, the power mode and
any throttling — so that a profile says what conditions its latencies were measured under, and a
profile measured on a busy or throttled machine is known to be one.

Why the share of CPU *time* and not the load average: the load average counts this process's own
threads (a profile runs one per core) and lags a minute behind; CPU time used by others over the
very window a sweep ran is what slowed that sweep.

Every file is read relative to ``root`` (as in device.py and energy.py), so that tests can point
the meter at a recorded tree instead of this machine's ``/``; the psutil readings are injectable.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

from .device import read_power_mode

# Busy: other processes used more than this share of the machine's CPU time (or the hypervisor
# stole more). Above a desktop's or an idle ROS graph's background (a few %), and below what one
# other busy core takes on the boards edgetts targets (6 to 12 cores: 8 to 17 %; 2 cores: 50 %);
# the sweep's threads cover every core, so a busy core elsewhere stalls every parallel step.
BUSY_SHARE = 0.15
# Trip points at which the kernel slows the clocks (Linux thermal sysfs API): "passive" cooling
# is clock throttling, "hot" is the platform's own emergency action. "active" trips start fans.
THROTTLING_TRIPS = ("passive", "hot")
# The Raspberry Pi firmware's get_throttled bits that hold *now* (bits 16-19 say "since boot"):
# under-voltage, ARM frequency capped, throttled, soft temperature limit.
PI_THROTTLED_NOW = {
    0x1: "under-voltage",
    0x2: "ARM frequency capped",
    0x4: "throttled",
    0x8: "soft temperature limit",
}


@dataclass(frozen=True)
class CpuSample:
    """Cumulative CPU seconds over all CPUs since boot."""

    busy: float  # user, nice, system, irq, softirq: time something ran
    total: float  # busy + idle + iowait + steal
    steal: float | None  # None where the platform does not report it (only Linux does)


@dataclass(frozen=True)
class LoadReading:
    seconds: float
    cpus: int
    foreign_cpu: float  # share of the machine's CPU time used by other processes, 0–1
    own_cpu: float  # share used by this process (and the children it waited for)
    steal: float | None  # share the hypervisor gave to other guests
    loadavg_1m: float | None
    cpu_mhz: float | None
    cpu_max_mhz: float | None
    power_mode: str | None  # nvpmodel's mode (Jetson), None elsewhere
    throttling: tuple[str, ...] = ()  # what throttled the clocks at either end of the window
    busy_share: float = BUSY_SHARE

    @property
    def busy(self) -> bool:
        """Whether the window's timings are not the quiet machine's (see BUSY_SHARE)."""
        stolen = self.steal or 0.0
        return self.foreign_cpu > self.busy_share or stolen > self.busy_share or bool(self.throttling)

    def describe(self) -> str:
        """The reading as a user reads it in a warning: "other processes used 48 % of the CPU"."""
        parts = [f"other processes used {100 * self.foreign_cpu:.0f} % of the CPU"]
        if self.steal is not None and self.steal >= 0.01:
            parts.append(f"the hypervisor took {100 * self.steal:.0f} %")
        if self.throttling:
            parts.append("throttling: " + ", ".join(self.throttling))
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("foreign_cpu", "own_cpu", "steal"):
            data[key] = None if data[key] is None else round(data[key], 4)
        for key in ("seconds", "loadavg_1m", "cpu_mhz", "cpu_max_mhz"):
            data[key] = None if data[key] is None else round(data[key], 2)
        data["throttling"] = list(self.throttling)
        return {"busy": self.busy, **data}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoadReading:
        """A reading recorded in a profile (missing keys: not recorded then)."""
        return cls(
            seconds=float(data.get("seconds") or 0.0),
            cpus=int(data.get("cpus") or 0),
            foreign_cpu=float(data.get("foreign_cpu") or 0.0),
            own_cpu=float(data.get("own_cpu") or 0.0),
            steal=None if data.get("steal") is None else float(data["steal"]),
            loadavg_1m=data.get("loadavg_1m"),
            cpu_mhz=data.get("cpu_mhz"),
            cpu_max_mhz=data.get("cpu_max_mhz"),
            power_mode=data.get("power_mode"),
            throttling=tuple(str(t) for t in data.get("throttling") or ()),
            busy_share=float(data.get("busy_share") or BUSY_SHARE),
        )


def system_sample() -> CpuSample:
    """psutil's machine-wide CPU times; guest time is already inside user and nice (Linux)."""
    fields = psutil.cpu_times()._asdict()
    for counted_twice in ("guest", "guest_nice"):
        fields.pop(counted_twice, None)
    total = sum(fields.values())
    steal = fields.get("steal")
    idle = fields.get("idle", 0.0) + fields.get("iowait", 0.0)
    return CpuSample(busy=total - idle - (steal or 0.0), total=total, steal=steal)


def own_cpu_seconds() -> float:
    """CPU seconds of this process, its threads and the children it has waited for."""
    times = psutil.Process().cpu_times()
    return times.user + times.system + times.children_user + times.children_system


def loadavg_1m() -> float | None:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # Windows has none; a container may hide /proc/loadavg
        return None


def cpu_mhz() -> tuple[float | None, float | None]:
    """Current and maximum CPU clock; None where the platform does not say (0 max: unknown)."""
    try:
        freq = psutil.cpu_freq()
    except (OSError, NotImplementedError, RuntimeError):
        freq = None
    if freq is None:
        return None, None
    return (freq.current or None), (freq.max or None)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None


def _millidegrees(path: Path) -> int | None:
    text = _read(path)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def thermal_throttling(root: Path) -> list[str]:
    """Thermal zones at or over a throttling trip point, from ``sys/class/thermal/thermal_zone*``
    (``type``, ``temp`` and ``trip_point_N_{type,temp}``, millidegrees C). A trip at or below
    0 °C is a disabled one (Intel's x86_pkg_temp keeps two at 0), and a zone below -40 °C is a
    sensor that is off (Jetson reports -256 °C for a powered-down cluster)."""
    found = []
    for zone in sorted((Path(root) / "sys/class/thermal").glob("thermal_zone*")):
        temp = _millidegrees(zone / "temp")
        if temp is None or temp < -40_000:
            continue
        for type_file in sorted(zone.glob("trip_point_*_type")):
            kind = _read(type_file)
            trip = _millidegrees(zone / type_file.name.replace("_type", "_temp"))
            if kind in THROTTLING_TRIPS and trip is not None and 0 < trip <= temp:
                name = _read(zone / "type") or zone.name
                found.append(f"{name} at {temp / 1000:.1f} °C, over its {kind} trip {trip / 1000:.1f} °C")
                break
    return found


def firmware_throttling(root: Path) -> list[str]:
    """What a Raspberry Pi's firmware says throttles it now: ``get_throttled`` (hex bits, as
    ``vcgencmd get_throttled`` prints them) under the firmware node, e.g.
    ``sys/devices/platform/soc/soc:firmware/get_throttled``."""
    found = []
    for path in sorted((Path(root) / "sys/devices/platform").glob("*/*firmware/get_throttled")):
        try:
            bits = int(_read(path) or "", 16)
        except ValueError:
            continue
        found += [f"firmware: {what}" for bit, what in PI_THROTTLED_NOW.items() if bits & bit]
    return found


def throttling(root: Path) -> list[str]:
    return thermal_throttling(root) + firmware_throttling(root)


class LoadMeter:
    """The machine's other load between ``begin()`` and ``end()``.

    Foreign CPU = (machine busy time − this process's CPU time) / the machine's CPU time, all as
    the kernel counts them over the window, in its clock ticks (10 ms): a window of a tenth of a
    second reads to the nearest ~10 %, a sweep's minute to the nearest 0.01 %. Throttling is
    looked at both ends of the window (the zones' state in between is not sampled)."""

    def __init__(
        self,
        root: Path = Path("/"),
        system: Callable[[], CpuSample] = system_sample,
        own: Callable[[], float] = own_cpu_seconds,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._root, self._system, self._own, self._clock = Path(root), system, own, clock
        self._start: tuple[float, CpuSample, float, list[str]] | None = None

    def begin(self) -> None:
        self._start = (self._clock(), self._system(), self._own(), throttling(self._root))

    def end(self) -> LoadReading:
        if self._start is None:
            raise RuntimeError("LoadMeter.end() without begin()")
        started, before, own_before, throttled_before = self._start
        after, own_after = self._system(), self._own()
        seconds = self._clock() - started
        capacity = after.total - before.total
        own = max(0.0, own_after - own_before)
        foreign = max(0.0, after.busy - before.busy - own)
        steal = None if after.steal is None or before.steal is None else after.steal - before.steal
        current, top = cpu_mhz()
        throttled = throttled_before + [t for t in throttling(self._root) if t not in throttled_before]
        return LoadReading(
            seconds=seconds,
            cpus=psutil.cpu_count() or 1,
            foreign_cpu=_share(foreign, capacity),
            own_cpu=_share(own, capacity),
            steal=None if steal is None else _share(steal, capacity),
            loadavg_1m=loadavg_1m(),
            cpu_mhz=current,
            cpu_max_mhz=top,
            power_mode=read_power_mode(self._root, None),
            throttling=tuple(throttled),
        )


def _share(seconds: float, capacity: float) -> float:
    """A share of the window's CPU time, 0–1; 0 for a window shorter than the kernel's tick."""
    return min(1.0, max(0.0, seconds / capacity)) if capacity > 0 else 0.0


def others_running(root: Path = Path("/")) -> int | None:
    """Threads of other processes runnable right now: the kernel's ``procs_running``
    (``proc/stat``, every runnable thread on the machine) less this process's threads in state
    R (``proc/self/task/*/stat``). None where there is no /proc (not Linux)."""
    text = _read(Path(root) / "proc/stat")
    line = next((row for row in (text or "").splitlines() if row.startswith("procs_running ")), None)
    if line is None:
        return None
    own = 0
    for stat in (Path(root) / "proc/self/task").glob("*/stat"):
        fields = (_read(stat) or "").rpartition(")")[2].split()
        own += bool(fields) and fields[0] == "R"
    return max(0, int(line.split()[1]) - own)


class LoadWatch:
    """Other processes' CPU demand *now*, in cores, for the engine to pick threads by
    (profiling/threads.py): a daemon thread samples every ``interval_s``, and the load is the
    mean over the last ``window_s`` of the other processes' runnable threads (others_running).

    Why runnable threads and not the CPU share others got: the share is squeezed by what this
    process runs. Measured here (2 cores, `profile --threads-sweep`): one busy loop got 50 % of the
    CPU beside one decoding thread but 36 % beside two, and two busy loops 50 % beside two, which
    would read as one busy core. A runnable thread is one whether or not it got its core. Where
    /proc is missing, the share of CPU time is what is left (LoadMeter's reading).

    Why a sampler and not a reading at request time: a request cannot wait a second to measure,
    and a window since the previous request (which may be a minute old) would average a load
    that just started away. A sample reads /proc/stat and this process's thread states."""

    def __init__(
        self, window_s: float = 2.0, interval_s: float = 0.25,
        system: Callable[[], CpuSample] = system_sample, own: Callable[[], float] = own_cpu_seconds,
        running: Callable[[], int | None] = others_running,
    ):  # fmt: skip
        self.window_s, self.interval_s = window_s, interval_s
        self._system, self._own, self._running = system, own, running
        self._samples: deque[tuple[float, CpuSample, float, int | None]] = deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> LoadWatch:
        with self._lock:
            if self._thread is None:
                self._take()
                self._thread = threading.Thread(target=self._run, name="edgetts-load", daemon=True)
                self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def _take(self) -> None:
        now = time.monotonic()
        self._samples.append((now, self._system(), self._own(), self._running()))
        while len(self._samples) > 2 and self._samples[1][0] <= now - self.window_s:
            self._samples.popleft()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            with self._lock:
                self._take()

    def foreign_cores(self) -> float:
        """Cores other processes want over the last window (0 until two samples exist: no load
        is known yet)."""
        with self._lock:
            if len(self._samples) < 2:
                return 0.0
            samples = list(self._samples)
        running = [sample[3] for sample in samples[1:]]
        if all(count is not None for count in running):
            return float(sum(running)) / len(running)
        (_, before, own_before, _), (_, after, own_after, _) = samples[0], samples[-1]
        capacity = after.total - before.total
        foreign = max(0.0, after.busy - before.busy - max(0.0, own_after - own_before))
        return _share(foreign, capacity) * (psutil.cpu_count() or 1)
