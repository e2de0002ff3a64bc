"""Device profiles: measuring a real (tiny) model, the file format, bad files, published profiles."""

from __future__ import annotations

import os
from dataclasses import replace

import numpy as np
import pytest
from conftest import copy_entry

from edgetts import store
from edgetts.profiling import device_profile
from edgetts.profiling.device_profile import DeviceProfile, ProfileError
from edgetts.profiling.latency_model import residual_summary
from edgetts.profiling.profiler import check, merge, profile_entry
from edgetts.profiling.sweep import SweepPlan

TINY_PLAN = SweepPlan((8, 16, 32, 48), (1, 2, 4), (8, 24), repeats=2, warmup=1)


@pytest.fixture
def tiny_profile(converted_tiny, edgetts_home) -> DeviceProfile:
    copy_entry(converted_tiny("llama", "int4"), edgetts_home)
    model = profile_entry(store.get("llama-int4"), TINY_PLAN)
    return DeviceProfile(
        device={"id": "test-device"}, conditions={"source": "measured"}, models={"llama-int4": model}
    )


def test_profile_measures_every_point_and_fits(tiny_profile):
    model = tiny_profile.models["llama-int4"]
    assert model.source == "measured" and model.quant == "int4"
    assert [p[0] for p in model.points["prefill"]] == [8, 16, 32, 48]
    assert {(p[0], p[1]) for p in model.points["decode"]} == {(b, c) for b in (1, 2, 4) for c in (8, 24)}
    assert all(p[2] > 0 for p in model.points["prefill"] + model.points["decode"])
    assert model.latency.prefill.form and model.latency.decode.form
    assert model.kv_bytes_per_token > 0 and model.resident_bytes >= store.get("llama-int4").size_bytes
    assert model.kv_in_place  # the builder's graph: GroupQueryAttention writes into the cache
    assert model.details["measured"]["sweep"] == "quick"
    assert float(model.latency.run_s(20, 16, 4, 2)) > float(model.latency.prefill_s(20))


def test_profile_round_trips_through_yaml(tiny_profile, edgetts_home):
    path = tiny_profile.save()
    assert path == edgetts_home / "profiles" / "test-device.yaml"
    loaded = device_profile.load_for("test-device")
    model, again = tiny_profile.models["llama-int4"], loaded.models["llama-int4"]
    assert again.points == model.points
    np.testing.assert_allclose(again.latency.run_s(30, 8, 4, 3), model.latency.run_s(30, 8, 4, 3), rtol=1e-4)
    assert again.details["measured"]["repeats"] == 2
    assert again.kv_in_place is True


def test_memory_charges_the_kv_cache_as_the_runtime_holds_it(tiny_profile):
    """Rows x tokens once for the cache updated in place, twice for one returned anew every
    step; a profile written before the flag was recorded is charged as copied."""
    model = tiny_profile.models["llama-int4"]
    kv, resident = model.kv_bytes_per_token, model.resident_bytes
    # 4 rows of 300 tokens, 128 of them thinking: under FIRST_THINK_ROOM, so the cache never grows
    assert float(model.memory_bytes(4, 300, 128)) == resident + kv * 4 * 300
    copied = replace(model, kv_in_place=False)  # optimum's graphs (NumpyKVCache)
    assert float(copied.memory_bytes(4, 300, 128)) == resident + 2 * kv * 4 * 300
    data = model.to_dict()
    del data["memory"]["kv_in_place"]
    assert device_profile.ModelProfile.from_dict("old", data, "old.yaml").kv_in_place is False


def test_check_compares_held_out_measurements_with_predictions(tiny_profile):
    rows = check(tiny_profile, ["llama-int4"], count=6, seed=3)
    assert len(rows) == 6 and {r.phase for r in rows} == {"prefill", "decode"}
    grid = {(p[0], p[1]) for p in tiny_profile.models["llama-int4"].points["decode"]}
    for row in rows:
        assert row.measured_s > 0 and row.predicted_s > 0
        if row.phase == "decode":
            assert tuple(int(x) for x in row.config.replace("N=", "").split(" context ")) not in grid


def test_merge_keeps_other_measured_models_but_never_a_published_file(tiny_profile):
    other = DeviceProfile(
        {"id": "test-device"}, {"source": "measured"}, {"old": tiny_profile.models["llama-int4"]}
    )
    merged = merge({"id": "test-device"}, other, dict(tiny_profile.models), {"source": "measured"})
    assert set(merged.models) == {"old", "llama-int4"}
    published = DeviceProfile(
        {"id": "x"}, {"source": "published"}, {"paper": tiny_profile.models["llama-int4"]}
    )
    assert set(merge({"id": "x"}, published, {}, {"source": "measured"}).models) == set()


def test_a_killed_write_leaves_the_old_profile(tiny_profile, edgetts_home, monkeypatch):
    path = tiny_profile.save()
    before = path.read_text()
    tiny_profile.models["llama-int4"].resident_bytes += 1

    def killed(*_args):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        tiny_profile.save()
    assert path.read_text() == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left behind


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("models: [unclosed", "not valid YAML at line 1"),
        ("- a list", "not a profile"),
        ("schema_version: 7\ndevice: {id: d}\n", "schema version 7"),
        ("schema_version: 1\n", "names no device id"),
        ("schema_version: 1\ndevice: {id: d}\nmodels: {m: {source: guessed}}\n", "malformed"),
        (
            "schema_version: 1\ndevice: {id: d}\nmodels: {m: {source: measured, memory: {kv_in_place: 2}}}\n",
            "kv_in_place 2 is neither true nor false",
        ),
    ],
)
def test_bad_profile_files_are_one_line_errors(edgetts_home, text, message):
    path = edgetts_home / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ProfileError, match=message) as err:
        device_profile.load(path)
    assert "\n" not in str(err.value)


def test_a_profile_of_another_device_is_refused(tiny_profile, edgetts_home):
    path = tiny_profile.save(edgetts_home / "elsewhere.yaml")
    with pytest.raises(ProfileError, match="profile of test-device, not of my-robot.*--device test-device"):
        device_profile.load_for("my-robot", path)
    with pytest.raises(ProfileError, match="no profile for device my-robot"):
        device_profile.load_for("my-robot")


def test_published_orin_profile_is_honest_about_its_numbers():
    profile = device_profile.load_for("jetson-agx-orin-64gb")  # the shipped file: no measured one here
    assert profile.conditions["source"] == "published"
    assert len(profile.models) == 3
    for model in profile.models.values():
        assert model.source == "published" and "arXiv 2511.01866" in model.details["published"]["reference"]
        lengths, seconds = np.array(model.points["prefill"]).T
        recomputed = residual_summary(model.latency.prefill_s(lengths), seconds)
        for key, value in model.latency.prefill.residual.items():
            assert value == pytest.approx(recomputed[key], abs=1e-4)
    small = profile.models["deepseek-r1-distill-qwen-1.5b-fp16"]
    # The paper's own check: 128 decode tokens after 512 prompt tokens took 3.80 s on the Orin.
    assert float(small.latency.run_s(512, 128, 0, 1)) == pytest.approx(3.80, rel=0.2)
    # N = 8 costs about 1.33x one sample there (parallel-sampling table).
    ratio = small.latency.run_s(512, 128, 0, 8) / small.latency.run_s(512, 128, 0, 1)
    assert float(ratio) == pytest.approx(1.33, rel=0.05)


def test_saved_profiles_are_readable_by_others(tiny_profile):
    assert tiny_profile.save().stat().st_mode & 0o777 == 0o644


def test_one_stalled_repeat_does_not_move_a_point(monkeypatch):
    """A point is the median of its repeats: the third run here stalls for 40 ms of a fake
    clock (a page fault, another process) and the point stays at the 10 ms the others took."""
    from edgetts.profiling import sweep

    durations = iter([0.010, 0.010, 0.050, 0.010, 0.011])  # warm-up, then the 4 timed repeats
    clock = {"now": 0.0}

    def run() -> None:
        clock["now"] += next(durations)

    monkeypatch.setattr(sweep.time, "perf_counter", lambda: clock["now"])
    seconds, std, watts = sweep._timed(run, repeats=4, warmup=1, meter=None, tick=lambda: None)
    assert seconds == pytest.approx(0.0105)
    assert std > 0.015  # the stall still shows in the spread the profile records
    assert watts is None
