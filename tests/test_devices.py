"""Device specs, device detection on recorded sysfs trees, and `edgetts devices`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

import edgetts.devices
from edgetts.cli_devices import devices
from edgetts.devices import load_spec, load_spec_file, spec_ids
from edgetts.errors import EdgeTTSError
from edgetts.profiling.device import describe, detect

FIXTURES = Path(__file__).parent / "fixtures" / "sysfs"
SHIPPED = [
    "generic-arm64",
    "generic-x86-64",
    "jetson-agx-orin-64gb",
    "jetson-orin-nano-8gb",
    "jetson-orin-nx-16gb",
    "jetson-thor",
    "raspberry-pi-5",
]


# --- specs -----------------------------------------------------------------------------------


def test_spec_ids_are_the_shipped_files():
    assert spec_ids() == SHIPPED


@pytest.mark.parametrize("spec_id", SHIPPED)
def test_every_shipped_spec_loads(spec_id):
    spec = load_spec(spec_id)
    assert spec.id == spec_id
    assert spec.sources
    assert "fp32" in spec.precisions and "int4" in spec.precisions
    assert spec.idle_watts is not None and spec.max_watts is not None and spec.idle_watts < spec.max_watts
    if spec.kind == "cpu":
        assert spec.memory_bytes is None and spec.cpu.cores is None and spec.gpu is None
    else:
        assert spec.memory_bytes and spec.cpu.cores


def test_orin_has_no_fp8_and_thor_has_fp8_and_fp4():
    for spec_id in ("jetson-orin-nano-8gb", "jetson-orin-nx-16gb", "jetson-agx-orin-64gb"):
        spec = load_spec(spec_id)
        assert "fp8" not in spec.precisions and "fp4" not in spec.precisions
        assert spec.gpu is not None and spec.gpu.compute_capability == (8, 7)
    thor = load_spec("jetson-thor")
    assert {"fp8", "fp4"} <= set(thor.precisions)
    assert thor.gpu is not None and thor.gpu.architecture == "blackwell"


def test_orin_nano_has_the_jetpack_6_2_super_modes():
    spec = load_spec("jetson-orin-nano-8gb")
    assert [(m.name, m.nvpmodel_id) for m in spec.power_modes] == [
        ("15W", 0),
        ("25W", 1),
        ("MAXN_SUPER", 2),
        ("7W", 3),
    ]
    assert spec.power_mode(2).watts is None  # MAXN_SUPER is uncapped
    assert spec.power_mode(1).watts == 25


def test_power_sensor_rails_follow_the_board_wiring():
    agx = load_spec("jetson-agx-orin-64gb").power_sensors
    assert agx.kind == "ina3221" and agx.total_rail is None
    assert agx.rails == ("VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0", "VDDQ_VDD2_1V8AO")
    nano = load_spec("jetson-orin-nano-8gb").power_sensors
    assert nano.rails == ("VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC") and nano.total_rail == "VDD_IN"
    assert load_spec("generic-x86-64").power_sensors.kind == "rapl"
    assert load_spec("raspberry-pi-5").power_sensors.kind == "none"


def test_unknown_spec_id_lists_the_known_ones():
    with pytest.raises(EdgeTTSError) as err:
        load_spec("jetson-tx2")
    message = str(err.value)
    assert "jetson-tx2" in message and "\n" not in message
    assert all(spec_id in message for spec_id in SHIPPED)


def test_spec_id_cannot_escape_the_specs_folder():
    with pytest.raises(EdgeTTSError, match="no device spec named"):
        load_spec("../pyproject")


def _shipped_data(spec_id: str = "jetson-orin-nano-8gb") -> dict:
    return yaml.safe_load((Path(edgetts.devices.__file__).parent / f"{spec_id}.yaml").read_text())


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "board.yaml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def test_a_copy_of_a_shipped_spec_loads_from_any_path(tmp_path):
    spec = load_spec_file(_write(tmp_path, _shipped_data()))
    assert spec == load_spec("jetson-orin-nano-8gb")


def test_malformed_yaml_is_one_line(tmp_path):
    path = _write(tmp_path, "schema_version: 1\nid: [unclosed\nname: x\n")
    with pytest.raises(EdgeTTSError) as err:
        load_spec_file(path)
    message = str(err.value)
    assert str(path) in message and "not valid YAML" in message and "line" in message
    assert "\n" not in message


@pytest.mark.parametrize("field", ["memory_bytes", "power_sensors", "precisions", "idle_watts"])
def test_missing_field_is_named(tmp_path, field):
    data = _shipped_data()
    del data[field]
    with pytest.raises(EdgeTTSError) as err:
        load_spec_file(_write(tmp_path, data))
    assert f"missing field '{field}'" in str(err.value) and "\n" not in str(err.value)


def test_missing_nested_field_is_named_with_its_path(tmp_path):
    data = _shipped_data()
    del data["power_modes"][1]["watts"]
    with pytest.raises(EdgeTTSError, match=r"missing field 'power_modes\[1\]\.watts'"):
        load_spec_file(_write(tmp_path, data))


def test_unknown_schema_version(tmp_path):
    data = _shipped_data()
    data["schema_version"] = 2
    with pytest.raises(EdgeTTSError, match="schema_version 2.*reads version 1"):
        load_spec_file(_write(tmp_path, data))


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("memory_bytes", "8 GB", "should be int"),
        ("kind", "phone", "use one of: jetson, sbc, cpu"),
        ("precisions", ["fp32", "fp7"], "fp7"),
        ("gpu", {"name": "x", "architecture": "ampere", "compute_capability": [8]}, r"\[major, minor\]"),
        ("cpu", "arm64", "'cpu' should be dict"),
    ],
)
def test_wrong_values_are_refused(tmp_path, field, value, expected):
    data = _shipped_data()
    data[field] = value
    with pytest.raises(EdgeTTSError, match=expected):
        load_spec_file(_write(tmp_path, data))


def test_a_spec_that_is_not_a_mapping(tmp_path):
    with pytest.raises(EdgeTTSError, match="should be a mapping"):
        load_spec_file(_write(tmp_path, "- just\n- a list\n"))


def test_specs_are_installed_as_package_data():
    """`import edgetts.devices` from outside the repository finds the YAML files next to it."""
    code = "import edgetts.devices as d; print(len(d.spec_ids()), d.load_spec('jetson-thor').id)"
    out = subprocess.run([sys.executable, "-c", code], cwd="/", capture_output=True, text=True, check=True)
    assert out.stdout.split() == [str(len(SHIPPED)), "jetson-thor"]


# --- detection -------------------------------------------------------------------------------

EXPECTED = {
    "agx-orin-jp6": dict(
        id="jetson-agx-orin-64gb",
        spec_id="jetson-agx-orin-64gb",
        kind="jetson",
        name="NVIDIA Jetson AGX Orin Developer Kit",
        cpu_model="Arm Cortex-A78AE",
        physical_cores=12,
        logical_cores=12,
        power_mode="MAXN",
        jetson_clocks=False,
        l4t="36.4.0",
    ),
    "orin-nano-jp6": dict(
        id="jetson-orin-nano-8gb",
        spec_id="jetson-orin-nano-8gb",
        kind="jetson",
        name="NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super",
        cpu_model="Arm Cortex-A78AE",
        physical_cores=6,
        logical_cores=6,
        power_mode="25W",
        jetson_clocks=True,
        l4t="36.4.3",
    ),
    "jetson-nano-jp4": dict(
        id="jetson-nano-4gb",
        spec_id=None,
        kind="jetson",
        name="NVIDIA Jetson Nano Developer Kit",
        cpu_model="Arm Cortex-A57",
        physical_cores=4,
        logical_cores=4,
        power_mode="5W",
        jetson_clocks=None,
        l4t="32.7.1",
    ),
    "raspberry-pi-5": dict(
        id="raspberry-pi-5",
        spec_id="raspberry-pi-5",
        kind="sbc",
        name="Raspberry Pi 5 Model B Rev 1.0",
        cpu_model="Arm Cortex-A76",
        physical_cores=4,
        logical_cores=4,
        power_mode=None,
        jetson_clocks=None,
        l4t=None,
    ),
    "x86-intel-rapl": dict(
        id="cpu-intel-xeon-platinum-8481c-2c",
        spec_id="generic-x86-64",
        kind="cpu",
        name="Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz",
        cpu_model="Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz",
        physical_cores=2,
        logical_cores=4,
        power_mode=None,
        jetson_clocks=None,
        l4t=None,
    ),
    "x86-amd-rapl": dict(
        id="cpu-amd-epyc-7763-4c",
        spec_id="generic-x86-64",
        kind="cpu",
        name="AMD EPYC 7763 64-Core Processor",
        cpu_model="AMD EPYC 7763 64-Core Processor",
        physical_cores=4,
        logical_cores=8,
        power_mode=None,
        jetson_clocks=None,
        l4t=None,
    ),
}


@pytest.mark.parametrize("tree", sorted(EXPECTED))
def test_detect_recorded_tree(tree):
    info = detect(FIXTURES / tree)
    for field, value in EXPECTED[tree].items():
        assert getattr(info, field) == value, field
    meminfo = (FIXTURES / tree / "proc/meminfo").read_text().split()
    assert info.memory_bytes == int(meminfo[1]) * 1024


def test_a_jetson_with_a_spec_gets_the_gpu_of_its_spec():
    info = detect(FIXTURES / "agx-orin-jp6")
    assert info.gpu is not None and info.gpu.compute_capability == (8, 7)
    assert detect(FIXTURES / "x86-intel-rapl").gpu is None


def test_without_nvpmodel_status_the_boot_default_applies(tmp_path):
    root = shutil.copytree(FIXTURES / "orin-nano-jp6", tmp_path / "root")
    (root / "var/lib/nvpmodel/status").unlink()
    assert detect(root).power_mode == "MAXN_SUPER"  # < PM_CONFIG DEFAULT=2 >


def test_a_mode_missing_from_nvpmodel_conf_is_named_from_the_spec(tmp_path):
    root = shutil.copytree(FIXTURES / "orin-nano-jp6", tmp_path / "root")
    (root / "etc/nvpmodel.conf").unlink()
    assert detect(root).power_mode == "25W"
    (root / "var/lib/nvpmodel/status").write_text("pmode:0009\n")
    assert detect(root).power_mode == "mode 9"


def test_a_variant_without_a_spec_keeps_an_id_of_its_own(tmp_path):
    """A 32 GB AGX Orin must not share the 64 GB board's profile."""
    root = shutil.copytree(FIXTURES / "agx-orin-jp6", tmp_path / "root")
    (root / "proc/meminfo").write_text("MemTotal:       31250000 kB\n")
    info = detect(root)
    assert (info.id, info.spec_id, info.kind) == ("jetson-agx-orin-32gb", None, "jetson")


def test_the_id_does_not_depend_on_the_power_mode(tmp_path):
    root = shutil.copytree(FIXTURES / "agx-orin-jp6", tmp_path / "root")
    before = detect(root)
    (root / "var/lib/nvpmodel/status").write_text("pmode:0002\n")
    after = detect(root)
    assert (before.power_mode, after.power_mode) == ("MAXN", "MODE_30W")
    assert before.id == after.id


def test_describe_records_the_conditions_as_plain_data():
    data = describe(detect(FIXTURES / "orin-nano-jp6"))
    assert data["id"] == "jetson-orin-nano-8gb" and data["power_mode"] == "25W" and data["l4t"] == "36.4.3"
    assert data["gpu"]["compute_capability"] == [8, 7]
    assert {"onnxruntime", "providers", "python", "edgetts"} <= set(data)
    assert "CPUExecutionProvider" in data["providers"]
    assert yaml.safe_load(yaml.safe_dump(data)) == data
    json.dumps(data)


def test_detect_this_machine():
    info = detect()
    assert info.id and info.kind in ("jetson", "sbc", "cpu")
    assert info.logical_cores >= info.physical_cores >= 1 and info.memory_bytes > 0


# --- CLI -------------------------------------------------------------------------------------


def test_cli_devices_json_on_a_recorded_jetson():
    result = CliRunner().invoke(devices, ["--json", "--root", str(FIXTURES / "agx-orin-jp6")])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["device"]["id"] == "jetson-agx-orin-64gb" and data["device"]["power_mode"] == "MAXN"
    assert data["meter"]["source"] == "ina3221"
    assert any(note.startswith("nvml: not used on a Jetson") for note in data["meter"]["notes"])
    assert [s["id"] for s in data["specs"]] == SHIPPED


def test_cli_devices_table():
    result = CliRunner().invoke(devices, ["--root", str(FIXTURES / "orin-nano-jp6")], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "jetson-orin-nano-8gb" in result.output and "25W, jetson_clocks on, L4T 36.4.3" in result.output
    assert "energy meter: ina3221" in result.output and "VDD_IN sampled" in result.output
    for spec_id in SHIPPED:
        assert spec_id in result.output


def test_cli_devices_refuses_a_missing_root(tmp_path):
    result = CliRunner().invoke(devices, ["--root", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "does not exist" in result.output
