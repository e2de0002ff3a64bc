"""Energy meters behind one window interface (``begin()`` … ``end()``, or ``with meter.window()``),
so that a measurement records joules, mean and peak watts, the method and the sampling rate the
same way on a Jetson, a PC with an NVIDIA GPU, an Intel/AMD CPU, or a board with no sensor.

Where no sensor answers, a reading says ``estimated`` (from the device spec) or ``unavailable``
(joules None) — never a silent 0 J, the known failure of other tools on Jetson, whose NVML
initialises but answers NotSupported for power and energy.

Counter meters (RAPL, NVML's energy counter) give exact joules over the window. Sampling meters
(INA3221 rails, NVML power) read watts at ~20 Hz in a daemon thread and integrate by trapezoid;
they also give the peak.
"""

from __future__ import annotations

import threading
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from itertools import pairwise
from pathlib import Path
from types import ModuleType
from typing import Literal

import psutil

from edgetts.devices import DeviceSpec

from .device import DeviceInfo

Source = Literal["rapl", "nvml", "ina3221", "estimated", "unavailable"]
Clock = Callable[[], float]
SAMPLE_HZ = 20.0
# Rails that measure a Jetson module's whole input: VDD_IN (Orin NX/Nano, JetPack 5+) and
# POM_5V_IN (Nano/TX, JetPack 4). AGX Orin and Thor have none among their INA3221 rails.
TOTAL_RAILS = ("VDD_IN", "POM_5V_IN")


@dataclass(frozen=True)
class EnergyReading:
    joules: float | None  # None: not measured (never 0 for "unknown")
    mean_watts: float | None
    peak_watts: float | None  # None where the meter reads a counter, not samples
    seconds: float
    source: Source
    sample_hz: float | None  # the rate achieved, for sampling meters


class Window:
    """What ``meter.window()`` yields; ``reading`` is filled in when the block exits."""

    reading: EnergyReading | None = None


class EnergyMeter(ABC):
    """One energy window at a time: ``begin()``, then ``end()`` returns its reading."""

    source: Source

    def __init__(self) -> None:
        self.notes: list[str] = []  # why select_meter chose this meter and skipped the others
        self._open = False

    @abstractmethod
    def available(self) -> tuple[bool, str]:
        """Whether this meter can measure here, and why (or why not)."""

    @abstractmethod
    def _begin(self) -> None: ...

    @abstractmethod
    def _end(self) -> EnergyReading: ...

    def begin(self) -> None:
        if self._open:
            raise RuntimeError(f"{type(self).__name__}.begin() while a window is open; end() it first")
        self._begin()
        self._open = True

    def end(self) -> EnergyReading:
        if not self._open:
            raise RuntimeError(f"{type(self).__name__}.end() without begin()")
        self._open = False
        return self._end()

    @contextmanager
    def window(self) -> Iterator[Window]:
        window = Window()
        self.begin()
        try:
            yield window
        finally:
            window.reading = self.end()


def integrate(samples: Sequence[tuple[float, float]]) -> tuple[float, float, float, float]:
    """Trapezoid over (time s, watts) samples: (joules, seconds, mean watts, peak watts)."""
    joules = sum((w0 + w1) / 2 * (t1 - t0) for (t0, w0), (t1, w1) in pairwise(samples))
    seconds = samples[-1][0] - samples[0][0]
    peak = max(w for _, w in samples)
    mean = joules / seconds if seconds > 0 else sum(w for _, w in samples) / len(samples)
    return joules, seconds, mean, peak


class _Sampler:
    """Reads watts at ``hz`` in a daemon thread between start() and stop() (one window; a meter
    makes a sampler per window), with one sample taken synchronously at each end so that the
    samples span the whole window.

    The thread holds only the read function and its own state, never the meter, so a meter that
    is dropped with a window still open is collected and its thread told to stop."""

    def __init__(self, read_watts: Callable[[], float], clock: Clock, hz: float):
        self._read, self._clock, self._interval = read_watts, clock, 1 / hz
        self._stop = threading.Event()
        self._samples: list[tuple[float, float]] = []
        self._errors: list[Exception] = []
        self._thread: threading.Thread | None = None
        weakref.finalize(self, self._stop.set)

    def start(self) -> None:
        self._samples.append((self._clock(), self._read()))
        self._thread = threading.Thread(
            target=_poll,
            args=(self._stop, self._samples, self._errors, self._read, self._clock, self._interval),
            name="edgetts-energy-sampler",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> tuple[list[tuple[float, float]], Exception | None]:
        """The window's samples, and the error that cut them short (a sensor that vanished or
        answered garbage)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if not self._errors:
            try:
                self._samples.append((self._clock(), self._read()))
            except Exception as err:  # whatever the sensor raised (OSError, NVMLError, garbage)
                self._errors.append(err)
        return list(self._samples), (self._errors[0] if self._errors else None)


def _poll(
    stop: threading.Event,
    samples: list[tuple[float, float]],
    errors: list[Exception],
    read: Callable[[], float],
    clock: Clock,
    interval: float,
) -> None:
    while not stop.wait(interval):
        try:
            samples.append((clock(), read()))
        except Exception as err:  # nothing in this thread can handle it: stop() reports it
            errors.append(err)
            return


class _SamplingMeter(EnergyMeter):
    """A meter that integrates sampled watts (INA3221 rails, NVML power usage)."""

    def __init__(self, clock: Clock, hz: float):
        super().__init__()
        self._clock, self._hz = clock, hz
        self._sampler: _Sampler | None = None

    @abstractmethod
    def _read_watts(self) -> Callable[[], float]:
        """A function reading the current watts that does not hold on to the meter."""

    def _begin(self) -> None:
        self._sampler = _Sampler(self._read_watts(), self._clock, self._hz)
        self._sampler.start()

    def _end(self) -> EnergyReading:
        assert self._sampler is not None
        samples, error = self._sampler.stop()
        if error is not None:
            self.notes.append(f"{self.source}: a window went unmeasured: {error}")
            return EnergyReading(None, None, None, self._clock() - samples[0][0], "unavailable", None)
        joules, seconds, mean, peak = integrate(samples)
        rate = (len(samples) - 1) / seconds if seconds > 0 else None
        return EnergyReading(joules, mean, peak, seconds, self.source, rate)


# --- RAPL ------------------------------------------------------------------------------------


class RaplMeter(EnergyMeter):
    """Intel and AMD CPUs' package energy counters under /sys/class/powercap (AMD Zen exposes the
    same intel-rapl tree). Counts CPU packages only: not DRAM on most parts, nor the board."""

    source = "rapl"

    def __init__(self, root: Path = Path("/"), clock: Clock = time.monotonic):
        super().__init__()
        self._base = Path(root) / "sys/class/powercap"
        self._clock = clock
        self._domains: list[Path] = []
        self._start: tuple[float, list[int]] | None = None

    def domains(self) -> list[Path]:
        """Package domains (``intel-rapl:N`` named ``package-N``), one per socket. Their
        sub-domains (``intel-rapl:N:M``: core, uncore, dram) are parts of them or outside them."""
        found = []
        for domain in sorted(self._base.glob("intel-rapl:*")):
            name = _read_text(domain / "name") if (domain / "name").exists() else ""
            if domain.name.count(":") == 1 and name.strip().startswith("package"):
                found.append(domain)
        return found

    def available(self) -> tuple[bool, str]:
        domains = self.domains()
        if not domains:
            return False, (
                f"no RAPL package domain under {self._base} (not an Intel/AMD CPU, a virtual machine, "
                "or the intel_rapl driver is not loaded)"
            )
        try:
            self._counters(domains)
        except PermissionError:
            return False, (
                f"{domains[0]}/energy_uj is readable by root only (Linux restricts it since 2020, "
                "CVE-2020-8694); run as root or `sudo chmod a+r /sys/class/powercap/intel-rapl:*/energy_uj`"
            )
        except OSError as err:
            return False, f"cannot read {domains[0]}/energy_uj ({err.strerror})"
        return True, "package energy counters " + ", ".join(d.name for d in domains)

    def _counters(self, domains: list[Path]) -> list[int]:
        return [int(_read_text(d / "energy_uj")) for d in domains]

    def _begin(self) -> None:
        self._domains = self.domains()
        self._start = (self._clock(), self._counters(self._domains))

    def _end(self) -> EnergyReading:
        assert self._start is not None
        started, before = self._start
        after = self._counters(self._domains)
        seconds = self._clock() - started
        micro = 0
        for domain, then, now in zip(self._domains, before, after, strict=True):
            delta = now - then
            if delta < 0:  # the counter wrapped (once: a window is far shorter than a wrap period)
                delta += int(_read_text(domain / "max_energy_range_uj"))
            micro += delta
        joules = micro / 1e6
        return EnergyReading(joules, joules / seconds if seconds > 0 else None, None, seconds, "rapl", None)


# --- NVML ------------------------------------------------------------------------------------


class NvmlMeter(_SamplingMeter):
    """An NVIDIA GPU through NVML (nvidia-ml-py): the total-energy counter (mJ, Volta and later)
    where it answers, else power usage (mW) sampled and integrated. ``nvml`` is the pynvml
    module, injectable so that tests need no GPU."""

    source = "nvml"

    def __init__(
        self,
        nvml: ModuleType | None = None,
        index: int = 0,
        clock: Clock = time.monotonic,
        hz: float = SAMPLE_HZ,
    ):
        super().__init__(clock, hz)
        self._nvml, self._index = nvml, index
        self._handle: object = None
        self._counter: bool | None = None  # True: energy counter; False: sampled power
        self._probed: tuple[bool, str] | None = None
        self._start: tuple[float, int] | None = None

    def available(self) -> tuple[bool, str]:
        if self._probed is None:
            self._probed = self._probe()
        return self._probed

    def _probe(self) -> tuple[bool, str]:
        if self._nvml is None:
            try:
                import pynvml
            except ImportError:
                return False, "nvidia-ml-py is not installed (pip install nvidia-ml-py)"
            self._nvml = pynvml
        nvml = self._nvml
        try:
            nvml.nvmlInit()
            self._handle = nvml.nvmlDeviceGetHandleByIndex(self._index)
        except nvml.NVMLError as err:
            return False, f"NVML did not initialise ({err}): no NVIDIA driver or GPU"
        try:
            nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)
            self._counter = True
            return True, f"GPU {self._index} total energy counter"
        except nvml.NVMLError as energy_err:
            try:
                nvml.nvmlDeviceGetPowerUsage(self._handle)
            except nvml.NVMLError as power_err:
                return False, (
                    f"NVML answers '{energy_err}' for energy and '{power_err}' for power "
                    "(as Jetson's Tegra NVML does)"
                )
            self._counter = False
            return True, f"GPU {self._index} power usage sampled at {self._hz:g} Hz (no energy counter)"

    def _read_watts(self) -> Callable[[], float]:
        return partial(_nvml_watts, self._nvml, self._handle)

    def _begin(self) -> None:
        ok, reason = self.available()
        if not ok:
            raise RuntimeError(f"NVML meter unavailable: {reason}")
        if self._counter:
            self._start = (self._clock(), self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle))
        else:
            super()._begin()

    def _end(self) -> EnergyReading:
        if not self._counter:
            return super()._end()
        assert self._start is not None
        started, before = self._start
        after = self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)
        seconds = self._clock() - started
        joules = (after - before) / 1e3
        return EnergyReading(joules, joules / seconds if seconds > 0 else None, None, seconds, "nvml", None)


def _nvml_watts(nvml: ModuleType, handle: object) -> float:
    return nvml.nvmlDeviceGetPowerUsage(handle) / 1e3


# --- INA3221 (Jetson) ------------------------------------------------------------------------


@dataclass(frozen=True)
class Rail:
    """One INA3221 channel: ``files`` are (mV, mA) under hwmon (JetPack 5+), or (mW,) under the
    older iio driver (JetPack 4), as tegrastats and jtop read them."""

    label: str
    files: tuple[Path, ...]

    def watts(self) -> float:
        if len(self.files) == 2:
            return int(_read_text(self.files[0])) * int(_read_text(self.files[1])) / 1e6
        return int(_read_text(self.files[0])) / 1e3


def find_rails(root: Path = Path("/")) -> list[Rail]:
    """Every labelled INA3221 channel under ``root``, in both driver layouts:
    ``ina3221/<bus-addr>/hwmon/hwmonN/in{1,2,3}_label`` (in_input mV, curr_input mA) and
    ``ina3221x/<bus-addr>/iio:deviceN/rail_name_{0,1,2}`` (in_power mW). Channels labelled NC
    (not connected) and the hwmon sum channel (in7) are left out."""
    rails = []
    for device in sorted((Path(root) / "sys/bus/i2c/drivers").glob("ina3221*/*")):
        for hwmon in sorted(device.glob("hwmon/hwmon*")):
            for label_file in sorted(hwmon.glob("in[1-3]_label")):
                label, n = _read_text(label_file).strip(), label_file.name[2]
                if label and label != "NC":
                    rails.append(Rail(label, (hwmon / f"in{n}_input", hwmon / f"curr{n}_input")))
        for iio in sorted(device.glob("iio:device*")):
            for name_file in sorted(iio.glob("rail_name_[0-2]")):
                label, n = _read_text(name_file).strip(), name_file.name[-1]
                if label and label != "NC":
                    rails.append(Rail(label, (iio / f"in_power{n}_input",)))
    return rails


def _sum_watts(rails: tuple[Rail, ...]) -> float:
    return sum(rail.watts() for rail in rails)


class Ina3221Meter(_SamplingMeter):
    """A Jetson's INA3221 power rails. ``rails`` names the ones to sum; by default the rail of the
    module's whole input where there is one (VDD_IN), else the sum of every rail found."""

    source = "ina3221"

    def __init__(
        self,
        root: Path = Path("/"),
        rails: Sequence[str] | None = None,
        clock: Clock = time.monotonic,
        hz: float = SAMPLE_HZ,
    ):
        super().__init__(clock, hz)
        self._root, self._wanted = Path(root), rails
        self.rails: tuple[Rail, ...] = ()

    def available(self) -> tuple[bool, str]:
        found = find_rails(self._root)
        if not found:
            return False, "no INA3221 rails under /sys/bus/i2c/drivers/ina3221* (not a Jetson, or no driver)"
        labels = [r.label for r in found]
        if self._wanted:
            missing = [w for w in self._wanted if w not in labels]
            if missing:
                return False, f"rails {', '.join(missing)} not found; this board has {', '.join(labels)}"
            chosen = tuple(r for r in found if r.label in self._wanted)
        else:
            total = next((r for r in found if r.label in TOTAL_RAILS), None)
            chosen = (total,) if total else tuple(found)
        try:
            _sum_watts(chosen)
        except PermissionError as err:
            return False, f"cannot read {err.filename}: permission denied; run as a user who may read it"
        except (OSError, ValueError) as err:
            return False, f"cannot read the INA3221 rails ({err})"
        self.rails = chosen
        return True, " + ".join(r.label for r in chosen) + f" sampled at {self._hz:g} Hz"

    def _read_watts(self) -> Callable[[], float]:
        return partial(_sum_watts, self.rails)

    def _begin(self) -> None:
        if not self.rails:
            ok, reason = self.available()
            if not ok:
                raise RuntimeError(f"INA3221 meter unavailable: {reason}")
        super()._begin()


# --- estimate and nothing --------------------------------------------------------------------


class EstimatedMeter(EnergyMeter):
    """No sensor: idle + (max − idle) × mean CPU utilisation over the window, from the spec's
    watts. An estimate, and marked as one."""

    source = "estimated"

    def __init__(
        self,
        spec: DeviceSpec | None,
        cpu_percent: Callable[[], float] = psutil.cpu_percent,
        clock: Clock = time.monotonic,
    ):
        super().__init__()
        self._spec, self._cpu_percent, self._clock = spec, cpu_percent, clock
        self._started = 0.0

    def available(self) -> tuple[bool, str]:
        spec = self._spec
        if spec is None:
            return False, "no device spec to estimate from"
        if spec.idle_watts is None or spec.max_watts is None:
            return False, f"device spec {spec.id} gives no idle_watts and max_watts"
        return True, (
            f"{spec.idle_watts:g} W idle + {spec.max_watts - spec.idle_watts:g} W × CPU utilisation "
            f"(device spec {spec.id})"
        )

    def _begin(self) -> None:
        self._cpu_percent()  # psutil measures from the previous call: this call starts the window
        self._started = self._clock()

    def _end(self) -> EnergyReading:
        seconds = self._clock() - self._started
        utilisation = self._cpu_percent() / 100
        spec = self._spec
        if spec is None or spec.idle_watts is None or spec.max_watts is None:
            return EnergyReading(None, None, None, seconds, "unavailable", None)
        watts = spec.idle_watts + (spec.max_watts - spec.idle_watts) * utilisation
        return EnergyReading(watts * seconds, watts, None, seconds, "estimated", None)


class UnavailableMeter(EnergyMeter):
    """What is left when nothing can measure: windows still time, and say ``unavailable``."""

    source = "unavailable"

    def __init__(self, reason: str, clock: Clock = time.monotonic):
        super().__init__()
        self._reason, self._clock = reason, clock
        self._started = 0.0

    def available(self) -> tuple[bool, str]:
        return False, self._reason

    def _begin(self) -> None:
        self._started = self._clock()

    def _end(self) -> EnergyReading:
        return EnergyReading(None, None, None, self._clock() - self._started, "unavailable", None)


def select_meter(
    info: DeviceInfo, spec: DeviceSpec | None, root: Path = Path("/"), nvml: ModuleType | None = None
) -> EnergyMeter:
    """The first meter that can measure here: INA3221 on a Jetson (never NVML, which answers
    NotSupported there), NVML on a discrete NVIDIA GPU, RAPL, then the estimate. ``notes`` of the
    result say why each meter before it was skipped and what the chosen one reads."""
    candidates: list[EnergyMeter] = []
    notes: list[str] = []
    if info.kind == "jetson":
        sensors = spec.power_sensors if spec is not None and spec.power_sensors.kind == "ina3221" else None
        rails = None
        if sensors is not None:
            rails = [sensors.total_rail] if sensors.total_rail else list(sensors.rails) or None
        candidates.append(Ina3221Meter(root, rails))
        notes.append("nvml: not used on a Jetson (its NVML answers NotSupported for power and energy)")
    else:
        candidates += [NvmlMeter(nvml), RaplMeter(root)]
    candidates.append(EstimatedMeter(spec))
    for meter in candidates:
        ok, reason = meter.available()
        if ok:
            meter.notes = [*notes, f"{meter.source}: chosen: {reason}"]
            return meter
        notes.append(f"{meter.source}: {reason}")
    fallback = UnavailableMeter("no energy meter works here: " + "; ".join(notes))
    fallback.notes = notes
    return fallback


def _read_text(path: Path) -> str:
    """The one place sysfs files are read (tests replace it to simulate permission errors)."""
    return path.read_text(encoding="utf-8")


def meter_for(info: DeviceInfo) -> EnergyMeter:
    """:func:`select_meter` with the detected device's own spec (None where no spec fits): the
    one meter profile, solve and bench all measure with."""
    from edgetts.devices import load_spec

    return select_meter(info, load_spec(info.spec_id) if info.spec_id else None)
