"""Energy meters against recorded sysfs trees (copied to tmp_path wherever a test changes a value),
a fake NVML module, and injected clocks. Sampling tests assert relations that hold whatever the
scheduler does (constant watts, the synchronous samples at both ends), never timings."""

from __future__ import annotations

import gc
import itertools
import os
import shutil
import sys
import threading
import time
from pathlib import Path

import pytest

from edgetts.devices import load_spec
from edgetts.profiling import energy
from edgetts.profiling.device import detect
from edgetts.profiling.energy import (
    EstimatedMeter,
    Ina3221Meter,
    NvmlMeter,
    RaplMeter,
    UnavailableMeter,
    find_rails,
    integrate,
    select_meter,
)

FIXTURES = Path(__file__).parent / "fixtures" / "sysfs"
PC = "sys/class/powercap"
NANO_HWMON = "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon1"
# an exception in a sampler thread fails the test instead of passing as a warning
pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")


def copy_tree(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURES / name, tmp_path / name))


def fake_clock(*times: float):
    return iter(times).__next__


def sampler_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "edgetts-energy-sampler"]


def write_atomically(path: Path, text: str) -> None:
    """Like the kernel updating a sysfs value: a reader sees the old or the new one, never half."""
    staging = path.with_name(path.name + ".new")
    staging.write_text(text)
    os.replace(staging, path)


def set_rail(root: Path, hwmon: str, channel: int, millivolts: int, milliamps: int) -> None:
    write_atomically(root / hwmon / f"in{channel}_input", f"{millivolts}\n")
    write_atomically(root / hwmon / f"curr{channel}_input", f"{milliamps}\n")


@pytest.fixture(autouse=True)
def no_sampler_left_behind():
    yield
    deadline = time.monotonic() + 5
    while sampler_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not sampler_threads(), "a sampler thread outlived its test"


def test_integrate_is_the_trapezoid():
    joules, seconds, mean, peak = integrate([(0.0, 10.0), (1.0, 20.0), (3.0, 20.0)])
    assert joules == pytest.approx(15 + 40)
    assert (seconds, peak) == (3.0, 20.0)
    assert mean == pytest.approx(55 / 3)


# --- RAPL ------------------------------------------------------------------------------------


def test_rapl_joules_over_a_window_are_exact(tmp_path):
    root = copy_tree("x86-intel-rapl", tmp_path)
    meter = RaplMeter(root, clock=fake_clock(100.0, 102.0))
    assert meter.available() == (True, "package energy counters intel-rapl:0")
    meter.begin()
    (root / PC / "intel-rapl:0/energy_uj").write_text("3500000\n")
    # sub-domains and the MMIO twin of package-0 move too, and must not be added
    (root / PC / "intel-rapl:0:0/energy_uj").write_text("2400000\n")
    (root / PC / "intel-rapl-mmio:0/energy_uj").write_text("999999999999\n")
    reading = meter.end()
    assert reading.joules == pytest.approx(2.5)
    assert (reading.seconds, reading.mean_watts, reading.source) == (2.0, pytest.approx(1.25), "rapl")
    assert reading.peak_watts is None and reading.sample_hz is None


def test_rapl_counter_wrap_uses_max_energy_range(tmp_path):
    root = copy_tree("x86-intel-rapl", tmp_path)
    counter = root / PC / "intel-rapl:0/energy_uj"
    counter.write_text(f"{262143328850 - 500_000}\n")
    meter = RaplMeter(root, clock=fake_clock(0.0, 1.0))
    meter.begin()
    counter.write_text("1500000\n")
    assert meter.end().joules == pytest.approx(2.0)


def test_rapl_sums_every_package_of_an_amd_two_socket_machine(tmp_path):
    root = copy_tree("x86-amd-rapl", tmp_path)
    meter = RaplMeter(root, clock=fake_clock(0.0, 4.0))
    assert [d.name for d in meter.domains()] == ["intel-rapl:0", "intel-rapl:1"]
    meter.begin()
    (root / PC / "intel-rapl:0/energy_uj").write_text("6000000\n")
    (root / PC / "intel-rapl:1/energy_uj").write_text("8000000\n")
    reading = meter.end()
    assert reading.joules == pytest.approx(1.0 + 3.0) and reading.mean_watts == pytest.approx(1.0)


def test_rapl_absent():
    ok, reason = RaplMeter(FIXTURES / "raspberry-pi-5").available()
    assert not ok and "no RAPL package domain" in reason


def test_rapl_readable_by_root_only(monkeypatch):
    real = energy._read_text

    def denied(path: Path) -> str:
        if path.name == "energy_uj":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(energy, "_read_text", denied)
    ok, reason = RaplMeter(FIXTURES / "x86-intel-rapl").available()
    assert not ok and "root" in reason and "chmod" in reason


# --- NVML ------------------------------------------------------------------------------------


class FakeNvml:
    """The part of pynvml the meter uses; energy in mJ, power in mW, as NVML answers."""

    class NVMLError(Exception):
        pass

    class NVMLError_NotSupported(NVMLError):  # noqa: N801 (pynvml's name)
        def __str__(self) -> str:
            return "Not Supported"

    def __init__(self, energy_mj=None, power_mw=None, init_error=None):
        self.energy = iter(energy_mj) if energy_mj is not None else None
        self.power_mw, self.init_error = power_mw, init_error
        self.energy_calls = 0

    def nvmlInit(self):
        if self.init_error:
            raise self.NVMLError(self.init_error)

    def nvmlDeviceGetHandleByIndex(self, index):
        return f"gpu{index}"

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        self.energy_calls += 1
        if self.energy is None:
            raise self.NVMLError_NotSupported()
        return next(self.energy)

    def nvmlDeviceGetPowerUsage(self, handle):
        if self.power_mw is None:
            raise self.NVMLError_NotSupported()
        return self.power_mw


def test_nvml_energy_counter():
    nvml = FakeNvml(energy_mj=[500, 1000, 4500])  # probe, begin, end
    meter = NvmlMeter(nvml, clock=fake_clock(10.0, 17.0))
    assert meter.available() == (True, "GPU 0 total energy counter")
    with meter.window() as window:
        pass
    reading = window.reading
    assert reading is not None
    assert (reading.joules, reading.seconds, reading.source) == (pytest.approx(3.5), 7.0, "nvml")
    assert reading.mean_watts == pytest.approx(0.5)


def test_nvml_falls_back_to_sampled_power():
    meter = NvmlMeter(FakeNvml(power_mw=150_000))
    ok, reason = meter.available()
    assert ok and "sampled" in reason
    meter.begin()
    time.sleep(0.2)
    reading = meter.end()
    assert reading.mean_watts == pytest.approx(150.0) and reading.peak_watts == pytest.approx(150.0)
    assert reading.joules == pytest.approx(150.0 * reading.seconds)
    assert reading.seconds > 0 and reading.sample_hz is not None and reading.source == "nvml"


def test_nvml_failing_mid_window_is_unavailable_not_zero():
    nvml = FakeNvml(power_mw=150_000)
    meter = NvmlMeter(nvml)
    meter.begin()
    nvml.power_mw = None  # from now on every read raises NVMLError_NotSupported
    reading = meter.end()
    assert reading.source == "unavailable" and reading.joules is None
    assert meter.notes == ["nvml: a window went unmeasured: Not Supported"]


def test_tegra_nvml_answering_not_supported_is_unavailable_never_zero():
    meter = NvmlMeter(FakeNvml())
    ok, reason = meter.available()
    assert not ok
    assert "'Not Supported' for energy" in reason and "'Not Supported' for power" in reason
    with pytest.raises(RuntimeError, match="unavailable"):
        meter.begin()


def test_nvml_without_driver_or_package(monkeypatch):
    ok, reason = NvmlMeter(FakeNvml(init_error="Driver Not Loaded")).available()
    assert not ok and "Driver Not Loaded" in reason
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml raises ImportError
    ok, reason = NvmlMeter().available()
    assert not ok and "nvidia-ml-py is not installed" in reason


# --- INA3221 ---------------------------------------------------------------------------------


def test_rails_of_both_driver_layouts():
    assert [r.label for r in find_rails(FIXTURES / "agx-orin-jp6")] == [
        "VDD_GPU_SOC",
        "VDD_CPU_CV",
        "VIN_SYS_5V0",
        "VDDQ_VDD2_1V8AO",  # the NC channels and the sum channel (in7) are left out
    ]
    nano = find_rails(FIXTURES / "orin-nano-jp6")
    assert [r.label for r in nano] == ["VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"]
    assert nano[0].watts() == pytest.approx(5.064 * 0.936)  # mV × mA
    jp4 = find_rails(FIXTURES / "jetson-nano-jp4")
    assert [r.label for r in jp4] == ["POM_5V_IN", "POM_5V_GPU", "POM_5V_CPU"]
    assert jp4[0].watts() == pytest.approx(2.272)  # in_power0_input, mW
    assert find_rails(FIXTURES / "x86-intel-rapl") == []


def test_ina3221_constant_power_integrates_to_watts_times_seconds(tmp_path):
    root = copy_tree("orin-nano-jp6", tmp_path)
    set_rail(root, NANO_HWMON, 1, 5000, 2000)  # VDD_IN: 10 W; the other rails must not be added
    meter = Ina3221Meter(root)
    assert meter.available() == (True, "VDD_IN sampled at 20 Hz")
    meter.begin()
    time.sleep(0.3)
    reading = meter.end()
    assert reading.source == "ina3221"
    assert reading.mean_watts == pytest.approx(10.0) and reading.peak_watts == pytest.approx(10.0)
    assert reading.joules == pytest.approx(10.0 * reading.seconds)
    assert reading.seconds >= 0.3 and reading.sample_hz is not None and reading.sample_hz > 0


def test_ina3221_step_change_shows_in_mean_and_peak(tmp_path):
    root = copy_tree("orin-nano-jp6", tmp_path)
    set_rail(root, NANO_HWMON, 1, 5000, 2000)
    meter = Ina3221Meter(root)
    meter.available()
    meter.begin()  # samples 10 W at once
    time.sleep(0.2)
    set_rail(root, NANO_HWMON, 1, 5000, 4000)  # 20 W from here; end() samples it at once
    time.sleep(0.2)
    reading = meter.end()
    assert reading.peak_watts == pytest.approx(20.0)
    assert 10.0 < reading.mean_watts < 20.0
    assert reading.joules == pytest.approx(reading.mean_watts * reading.seconds)


def test_ina3221_agx_orin_sums_its_four_rails(tmp_path):
    root = copy_tree("agx-orin-jp6", tmp_path)
    hwmon3 = "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3"
    hwmon4 = "sys/bus/i2c/drivers/ina3221/1-0041/hwmon/hwmon4"
    for channel in (1, 2, 3):
        set_rail(root, hwmon3, channel, 5000, 400)  # 2 W each
    set_rail(root, hwmon4, 2, 5000, 400)
    set_rail(root, hwmon4, 1, 5000, 9000)  # an NC channel reading garbage must not count
    info = detect(root)
    meter = select_meter(info, load_spec(info.spec_id), root, nvml=FakeNvml())
    assert isinstance(meter, Ina3221Meter)
    with meter.window() as window:
        time.sleep(0.1)
    assert window.reading is not None and window.reading.mean_watts == pytest.approx(8.0)


def test_ina3221_jetpack_4_iio_layout(tmp_path):
    root = copy_tree("jetson-nano-jp4", tmp_path)
    iio = root / "sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0"
    (iio / "in_power0_input").write_text("3000\n")
    meter = Ina3221Meter(root)
    assert meter.available() == (True, "POM_5V_IN sampled at 20 Hz")
    with meter.window() as window:
        time.sleep(0.1)
    assert window.reading is not None and window.reading.mean_watts == pytest.approx(3.0)


def test_ina3221_named_rails_must_exist():
    ok, reason = Ina3221Meter(FIXTURES / "orin-nano-jp6", rails=["VDD_GPU"]).available()
    assert not ok and "VDD_GPU not found" in reason and "VDD_IN, VDD_CPU_GPU_CV, VDD_SOC" in reason
    ok, reason = Ina3221Meter(FIXTURES / "x86-intel-rapl").available()
    assert not ok and "no INA3221 rails" in reason


def test_ina3221_sensor_vanishing_mid_window_is_unavailable_not_zero(tmp_path):
    root = copy_tree("orin-nano-jp6", tmp_path)
    meter = Ina3221Meter(root)
    meter.available()
    meter.begin()
    (root / NANO_HWMON / "in1_input").unlink()
    reading = meter.end()
    assert reading.source == "unavailable" and reading.joules is None
    assert any("went unmeasured" in note for note in meter.notes)


def test_a_meter_measures_window_after_window(tmp_path):
    root = copy_tree("orin-nano-jp6", tmp_path)
    meter = Ina3221Meter(root)
    meter.available()
    for milliamps, watts in ((1000, 5.0), (3000, 15.0)):
        set_rail(root, NANO_HWMON, 1, 5000, milliamps)
        with meter.window() as window:
            time.sleep(0.05)
        assert window.reading is not None and window.reading.mean_watts == pytest.approx(watts)


# --- windows and threads ---------------------------------------------------------------------


def test_window_misuse_is_refused(tmp_path):
    meter = Ina3221Meter(copy_tree("orin-nano-jp6", tmp_path))
    with pytest.raises(RuntimeError, match="without begin"):
        meter.end()
    meter.begin()
    with pytest.raises(RuntimeError, match="window is open"):
        meter.begin()
    assert len(sampler_threads()) == 1
    meter.end()
    with pytest.raises(RuntimeError, match="without begin"):
        meter.end()
    assert not sampler_threads()


def test_window_ends_even_when_the_block_raises(tmp_path):
    meter = Ina3221Meter(copy_tree("orin-nano-jp6", tmp_path))
    with pytest.raises(ValueError), meter.window() as window:
        raise ValueError("the measured code failed")
    assert window.reading is not None and window.reading.source == "ina3221"
    assert not sampler_threads()


def test_a_dropped_meter_stops_its_thread(tmp_path):
    meter = Ina3221Meter(copy_tree("orin-nano-jp6", tmp_path))
    meter.begin()
    thread = sampler_threads()[0]
    del meter
    gc.collect()
    thread.join(timeout=5)
    assert not thread.is_alive()


# --- estimate, nothing, and the choice -------------------------------------------------------


def test_estimate_from_the_spec_and_cpu_utilisation():
    spec = load_spec("generic-x86-64")  # 10 W idle, 65 W max
    percent = itertools.chain([0.0], [50.0]).__next__  # begin() resets psutil; end() reads 50 %
    meter = EstimatedMeter(spec, cpu_percent=percent, clock=fake_clock(0.0, 4.0))
    assert meter.available()[0]
    with meter.window() as window:
        pass
    reading = window.reading
    assert reading is not None and reading.source == "estimated"
    assert reading.mean_watts == pytest.approx(10 + 55 * 0.5)
    assert reading.joules == pytest.approx(37.5 * 4.0) and reading.peak_watts is None


def test_no_spec_numbers_means_no_estimate():
    assert EstimatedMeter(None).available() == (False, "no device spec to estimate from")


def test_select_meter_on_a_jetson_picks_ina3221_although_nvml_initialises():
    nvml = FakeNvml()  # nvmlInit works, power and energy answer NotSupported, as on Tegra
    info = detect(FIXTURES / "orin-nano-jp6")
    meter = select_meter(info, load_spec(info.spec_id), FIXTURES / "orin-nano-jp6", nvml=nvml)
    assert meter.source == "ina3221" and isinstance(meter, Ina3221Meter)
    assert [r.label for r in meter.rails] == ["VDD_IN"]
    assert meter.notes[0].startswith("nvml: not used on a Jetson")
    assert nvml.energy_calls == 0


def test_select_meter_on_a_pc_prefers_nvml_then_rapl():
    root = FIXTURES / "x86-intel-rapl"
    info, spec = detect(root), load_spec("generic-x86-64")
    assert select_meter(info, spec, root, nvml=FakeNvml(energy_mj=itertools.count())).source == "nvml"
    no_gpu = select_meter(info, spec, root, nvml=FakeNvml(init_error="Driver Not Loaded"))
    assert no_gpu.source == "rapl"
    assert no_gpu.notes[0].startswith("nvml: NVML did not initialise")
    assert no_gpu.notes[1].startswith("rapl: chosen")


def test_select_meter_without_sensors_estimates_and_says_why():
    root = FIXTURES / "raspberry-pi-5"
    spec = load_spec("raspberry-pi-5")
    meter = select_meter(detect(root), spec, root, nvml=FakeNvml(init_error="no driver"))
    assert meter.source == "estimated"
    assert [note.split(":")[0] for note in meter.notes] == ["nvml", "rapl", "estimated"]


def test_select_meter_with_nothing_left_is_unavailable_and_never_zero():
    info = detect(FIXTURES / "jetson-nano-jp4")  # no spec; then hide its rails
    meter = select_meter(info, None, FIXTURES / "raspberry-pi-5")
    assert isinstance(meter, UnavailableMeter)
    assert [note.split(":")[0] for note in meter.notes] == ["nvml", "ina3221", "estimated"]
    with meter.window() as window:
        pass
    assert window.reading is not None and window.reading.joules is None
    assert window.reading.source == "unavailable"


@pytest.mark.skipif(
    Path("/sys/class/powercap").exists() or Path("/sys/bus/i2c/drivers/ina3221").exists(),
    reason="this machine has a power sensor",
)
def test_this_machine_without_sensors_ends_on_the_estimate(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)
    info = detect()
    meter = select_meter(info, load_spec(info.spec_id) if info.spec_id else None)
    assert meter.source == "estimated"
    assert any(note.startswith("rapl: no RAPL") for note in meter.notes)
