"""The machine's other load: readings from injected CPU counters and recorded sysfs trees (Jetson
thermal zones and nvpmodel, a Raspberry Pi's firmware), one real reading under a load this test
makes, a busy sweep measured again, profiles that say they were measured busy (and every plan
made with them warning), and `profile show --check` as a check that fails.

Nothing here assumes the real machine is quiet: wherever a quiet or a busy reading is needed, it
is injected (a scripted LoadMeter), except the one test that makes the machine busy itself."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml
from click.testing import CliRunner
from conftest import copy_entry, run_cli

from edgetts import store
from edgetts.cli import cli
from edgetts.cli_profile import check_failure
from edgetts.profiling import device_profile, load, profiler
from edgetts.profiling.device import detect
from edgetts.profiling.device_profile import DeviceProfile
from edgetts.profiling.load import CpuSample, LoadMeter, LoadReading, firmware_throttling, thermal_throttling
from edgetts.profiling.sweep import SweepPlan

FIXTURES = Path(__file__).parent / "fixtures" / "sysfs"
TINY_PLAN = SweepPlan((8, 16, 32, 48), (1, 2, 4), (8, 24), repeats=2, warmup=1)
QUESTION = "Question: what is 12 plus 7?"


def reading(foreign: float, throttling: tuple[str, ...] = ()) -> LoadReading:
    return LoadReading(
        seconds=10.0, cpus=2, foreign_cpu=foreign, own_cpu=0.5, steal=0.0, loadavg_1m=1.5, cpu_mhz=2600.0,
        cpu_max_mhz=None, power_mode=None, throttling=throttling,
    )  # fmt: skip


QUIET, BUSY = reading(0.02), reading(0.48)


class ScriptedLoad:
    """A LoadMeter whose windows read as scripted, whatever the machine is doing."""

    def __init__(self, *readings: LoadReading):
        self.readings = list(readings)
        self.windows = 0

    def begin(self) -> None:
        self.windows += 1

    def end(self) -> LoadReading:
        return self.readings.pop(0)


def counters(*samples: tuple[float, float, float | None]):
    """Scripted psutil CPU times: (busy, total, steal) CPU seconds at each call."""
    return iter([CpuSample(*s) for s in samples]).__next__


def ticks(*values: float):
    return iter(values).__next__


def write_zone(root: Path, index: int, name: str, millidegrees: int, trips: list[tuple[str, int]]) -> None:
    """A thermal zone laid out as Linux's thermal sysfs API lays it out (millidegrees C)."""
    zone = root / "sys/class/thermal" / f"thermal_zone{index}"
    zone.mkdir(parents=True)
    (zone / "type").write_text(f"{name}\n")
    (zone / "temp").write_text(f"{millidegrees}\n")
    for n, (kind, trip) in enumerate(trips):
        (zone / f"trip_point_{n}_type").write_text(f"{kind}\n")
        (zone / f"trip_point_{n}_temp").write_text(f"{trip}\n")


@pytest.fixture
def hot_orin(tmp_path) -> Path:
    """The recorded AGX Orin (nvpmodel at MAXN) with its CPU zone over its passive trip; the
    junction zone past its fan's active trip (a fan, not throttling), a powered-down cluster at
    -256 °C, and a zone whose passive trip is disabled (0)."""
    root = Path(shutil.copytree(FIXTURES / "agx-orin-jp6", tmp_path / "agx-orin-jp6"))
    write_zone(root, 0, "cpu-thermal", 99_500, [("passive", 99_000), ("critical", 104_500)])
    write_zone(root, 1, "tj-thermal", 88_000, [("active", 85_000), ("critical", 105_000)])
    write_zone(root, 2, "cv0-thermal", -256_000, [("passive", 99_000)])
    write_zone(root, 3, "x86_pkg_temp", 51_000, [("passive", 0)])
    return root


# --- readings ----------------------------------------------------------------------------------


def test_foreign_cpu_is_the_machine_busy_time_less_this_process():
    # 2 CPUs over 10 s: 20 CPU seconds; the machine ran 6 of them, this process 2.
    meter = LoadMeter(
        FIXTURES / "x86-intel-rapl", system=counters((100, 1000, 5), (106, 1020, 5)), own=ticks(1.0, 3.0),
        clock=ticks(0.0, 10.0),
    )  # fmt: skip
    meter.begin()
    got = meter.end()
    assert got.foreign_cpu == pytest.approx(0.2) and got.own_cpu == pytest.approx(0.1)
    assert got.steal == 0.0 and got.seconds == 10.0 and got.throttling == ()
    assert got.busy  # 0.2 of the machine is over BUSY_SHARE
    assert "other processes used 20 % of the CPU" in got.describe()


def test_this_process_alone_is_quiet_and_steal_counts_as_load():
    alone = LoadMeter(Path("/nonexistent"), system=counters((0, 0, 0), (8, 20, 0)), own=ticks(0.0, 7.8))
    alone.begin()
    mine = alone.end()
    assert mine.foreign_cpu == pytest.approx(0.01) and mine.own_cpu == pytest.approx(0.39) and not mine.busy
    stolen = LoadMeter(Path("/nonexistent"), system=counters((0, 0, 0), (2, 20, 4)), own=ticks(0.0, 2.0))
    stolen.begin()
    taken = stolen.end()
    assert taken.foreign_cpu == 0.0 and taken.steal == pytest.approx(0.2) and taken.busy
    assert "the hypervisor took 20 %" in taken.describe()
    no_steal = LoadMeter(Path("/nonexistent"), system=counters((0, 0, None), (1, 20, None)), own=ticks(0, 1))
    no_steal.begin()
    assert no_steal.end().steal is None  # not reported (macOS), never a made-up 0


def test_jetson_thermal_throttling_and_power_mode_from_a_recorded_tree(hot_orin):
    assert thermal_throttling(hot_orin) == ["cpu-thermal at 99.5 °C, over its passive trip 99.0 °C"]
    meter = LoadMeter(hot_orin, system=counters((0, 0, 0), (0, 120, 0)), own=ticks(0.0, 0.0))
    meter.begin()
    hot = meter.end()
    assert hot.power_mode == "MAXN" and hot.foreign_cpu == 0.0
    assert hot.busy and "throttling: cpu-thermal at 99.5 °C" in hot.describe()
    (hot_orin / "sys/class/thermal/thermal_zone0/temp").write_text("61000\n")
    cool = LoadMeter(hot_orin, system=counters((0, 0, 0), (0, 120, 0)), own=ticks(0.0, 0.0))
    cool.begin()
    assert not cool.end().busy


def test_throttling_seen_at_the_start_of_a_window_counts(hot_orin):
    meter = LoadMeter(hot_orin, system=counters((0, 0, 0), (0, 120, 0)), own=ticks(0.0, 0.0))
    meter.begin()
    (hot_orin / "sys/class/thermal/thermal_zone0/temp").write_text("61000\n")  # cooled by the end
    assert meter.end().throttling == ("cpu-thermal at 99.5 °C, over its passive trip 99.0 °C",)


def test_the_power_mode_is_read_from_nvpmodel_status():
    meter = LoadMeter(FIXTURES / "orin-nano-jp6", system=counters((0, 0, 0), (1, 60, 0)), own=ticks(0, 0))
    meter.begin()
    assert meter.end().power_mode == "25W"  # pmode:0001 in /var/lib/nvpmodel/status


@pytest.mark.parametrize(
    ("bits", "expected"),
    [
        ("0", []),
        ("50000", []),  # under-voltage and throttling since boot, not now
        ("50005", ["firmware: under-voltage", "firmware: throttled"]),
        ("80008", ["firmware: soft temperature limit"]),
    ],
)
def test_raspberry_pi_firmware_throttling(tmp_path, bits, expected):
    firmware = tmp_path / "sys/devices/platform/soc/soc:firmware"
    firmware.mkdir(parents=True)
    (firmware / "get_throttled").write_text(f"{bits}\n")
    assert firmware_throttling(tmp_path) == expected


def test_a_reading_round_trips_through_a_profile_dict():
    hot = reading(0.05, ("cpu-thermal at 99.5 °C, over its passive trip 99.0 °C",))
    data = hot.to_dict()
    assert data["busy"] is True and data["busy_share"] == load.BUSY_SHARE
    assert LoadReading.from_dict(yaml.safe_load(yaml.safe_dump(data))) == hot
    assert LoadReading.from_dict({"foreign_cpu": 0.3}).busy  # an older, shorter record still reads


def test_a_machine_spinning_on_every_core_reads_busy():
    """The one real reading: this test makes the machine busy itself (one busy loop per CPU)
    while it sleeps, so its own CPU time is nothing and the spinners' is all foreign."""
    spinners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(psutil.cpu_count() or 1)
    ]
    try:
        time.sleep(0.5)  # past their start-up
        meter = LoadMeter()
        meter.begin()
        time.sleep(1.5)
        got = meter.end()
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()
    assert got.busy and got.foreign_cpu > 0.5, got
    assert got.own_cpu < 0.2 and got.seconds >= 1.5


# --- a busy sweep is measured again ------------------------------------------------------------


@pytest.fixture
def counted_sweeps(monkeypatch) -> list[int]:
    calls: list[int] = []

    def fake_sweep(lm, plan, meter, tick):
        calls.append(len(calls) + 1)
        return f"sweep {len(calls)}"

    monkeypatch.setattr(profiler, "run_sweep", fake_sweep)
    return calls


@pytest.mark.parametrize(
    ("readings", "sweeps", "kept", "busy"),
    [
        ((QUIET,), 1, "sweep 1", False),
        ((BUSY, QUIET), 2, "sweep 2", False),
        ((BUSY, BUSY), 2, "sweep 2", True),
    ],
)
def test_a_busy_sweep_is_repeated_once(counted_sweeps, readings, sweeps, kept, busy):
    told: list[LoadReading] = []
    sweep, got, count = profiler.watched_sweep(
        None, TINY_PLAN, None, lambda: None, ScriptedLoad(*readings), told.append
    )
    assert (sweep, count, got.busy) == (kept, sweeps, busy) and len(counted_sweeps) == sweeps
    assert told == [BUSY] * (sweeps - 1)


def test_a_profiled_model_records_the_load_it_was_measured_under(converted_tiny, edgetts_home):
    copy_entry(converted_tiny("llama", "int4"), edgetts_home)
    scripted = ScriptedLoad(BUSY, QUIET)
    model = profiler.profile_entry(store.get("llama-int4"), TINY_PLAN, load=scripted)
    measured = model.details["measured"]
    assert scripted.windows == 2 and measured["sweeps"] == 2
    assert measured["load"] == QUIET.to_dict() and measured["load"]["busy"] is False
    profile = profiler.merge({"id": "here"}, None, {"llama-int4": model}, {"source": "measured"})
    assert profile.conditions["busy"] is False and profile.busy_load() is None


def test_busy_twice_marks_the_profile_busy_and_warns(converted_tiny, edgetts_home, monkeypatch):
    copy_entry(converted_tiny("llama", "int4"), edgetts_home)
    monkeypatch.setattr(load, "LoadMeter", lambda: ScriptedLoad(BUSY, BUSY))
    result = CliRunner().invoke(cli, ["profile", "--quick", "--models", "llama-int4", "--json"])
    assert result.exit_code == 0, result.output
    written = device_profile.load_for(detect().id)
    assert written.conditions["busy"] is True and written.conditions["load"] == BUSY.to_dict()
    assert written.models["llama-int4"].details["measured"]["sweeps"] == 2
    assert json.loads(result.stdout)["conditions"]["busy"] is True
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("the machine was busy while profiling llama-int4 (other processes used 48 %")
    warning = f"warning: the profile of {detect().id} was measured under load (other processes used 48 % of"
    assert lines[-1].startswith(warning) and "re-profile on a quiet machine" in lines[-1]


def test_old_profiles_without_a_load_are_not_known_busy(edgetts_home):
    old = device_profile.load_for("jetson-agx-orin-64gb")  # published: no load recorded
    assert old.measured_load() is None and old.busy_load() is None
    marked = DeviceProfile(old.device, {**old.conditions, "busy": True, "load": BUSY.to_dict()}, old.models)
    assert marked.busy_load() == BUSY.to_dict()


# --- every plan with a busy profile warns ------------------------------------------------------


def test_plan_warns_when_its_profile_was_measured_busy(edgetts_home, tmp_path):
    orin = device_profile.load_for("jetson-agx-orin-64gb")
    orin.conditions = {**orin.conditions, "busy": True, "load": BUSY.to_dict()}
    path = orin.save(tmp_path / "busy-orin.yaml")
    result = run_cli(
        "plan", "--latency", "5s", "--profile", str(path), "--eval", "mmlu", "--json", home=edgetts_home
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["device"] == "jetson-agx-orin-64gb"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "warning: the profile of jetson-agx-orin-64gb was measured under load (other processes used 48 % of"
    )
    quiet = run_cli(
        "plan", "--latency", "5s", "--device", "jetson-agx-orin-64gb", "--eval", "mmlu", home=edgetts_home
    )
    assert quiet.returncode == 0 and "warning" not in quiet.stderr


def test_run_warns_and_its_answer_says_the_profile_was_busy(tiny_service_home, edgetts_home):
    home, profile = tiny_service_home
    shutil.copytree(home, edgetts_home, dirs_exist_ok=True)
    busy = copy.deepcopy(profile)
    busy.device = {"id": detect().id}
    busy.models["llama-fp32"].details["measured"]["load"] = BUSY.to_dict()
    busy.save(device_profile.profile_path(detect().id))
    result = run_cli(
        "run",
        QUESTION,
        "--latency",
        "20s",
        "--models",
        "llama-fp32",
        "--eval",
        "sums",
        "--json",
        home=edgetts_home,
    )
    assert "profile --quick" not in result.stderr  # the busy profile is used, not measured again
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "measured under load (other processes used 48 % of the CPU)" in warnings[0]
    answer = json.loads(result.stdout)
    assert answer["profile_busy"] is True and answer["config"]["model"] == "llama-fp32"


# --- profile show --check is a check -----------------------------------------------------------


@pytest.fixture
def tiny_here(converted_tiny, edgetts_home) -> DeviceProfile:
    """The tiny llama profiled on this device (its load scripted quiet), not yet saved."""
    copy_entry(converted_tiny("llama", "int4"), edgetts_home)
    model = profiler.profile_entry(store.get("llama-int4"), TINY_PLAN, load=ScriptedLoad(QUIET))
    return DeviceProfile({"id": detect().id}, {"source": "measured"}, {"llama-int4": model})


def test_check_fails_on_a_profile_three_times_too_slow(tiny_here, edgetts_home, tmp_path):
    latency = tiny_here.models["llama-int4"].latency
    latency.prefill.coefficients = latency.prefill.coefficients * 3
    latency.decode.coefficients = latency.decode.coefficients * 3
    path = tiny_here.save(tmp_path / "slow.yaml")
    flags = ["profile", "show", "--check", "--file", str(path), "--count", "3", "--json"]
    failed = run_cli(*flags, home=edgetts_home)
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    lines = failed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: the profile of {detect().id} mispredicts")
    assert "over --max-error 8 %" in lines[0] and "load during the check: other processes used" in lines[0]
    assert "at profile time: other processes used 2 % of the CPU" in lines[0]
    report = json.loads(failed.stdout)
    assert report["passed"] is False and report["max_error"] == 0.08 and report["mape"] > 0.08
    assert 0.0 <= report["load"]["foreign_cpu"] <= 1.0 and report["profile_load"] == QUIET.to_dict()
    generous = run_cli(*flags, "--max-error", "50", home=edgetts_home)
    assert generous.returncode == 0, generous.stderr
    assert json.loads(generous.stdout)["passed"] is True


def test_a_failed_check_says_why_in_one_line():
    old = DeviceProfile({"id": "robot"}, {"source": "measured"}, {})
    line = check_failure(old, 0.31, 0.08, QUIET)
    assert "mispredicts held-out configurations by 31.0 % (MAPE), over --max-error 8 %" in line
    assert "re-profile on this quiet machine" in line and line.endswith("at profile time: not recorded")
    busy_now = check_failure(old, 0.31, 0.08, BUSY)
    assert "the machine is busy now: check again on a quiet machine" in busy_now and "\n" not in busy_now
