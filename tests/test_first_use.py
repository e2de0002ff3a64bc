"""First-use set-up as a library does it (edgetts/first_use.py): nothing printed, each line a
user should read handed to ``say``, progress to ``progress``, and the Engine planning with the
named models' measured profile only."""

from __future__ import annotations

from contextlib import contextmanager

from conftest import copy_entry

from edgetts import first_use


def test_setup_profiles_once_and_says_so_only_through_say(converted_tiny, edgetts_home, capfd):
    copy_entry(converted_tiny("llama", "fp32"), edgetts_home)
    copy_entry(converted_tiny("llama", "int8"), edgetts_home)
    lines: list[str] = []
    bars: list[tuple[str, int, int]] = []

    @contextmanager
    def progress(description: str, total: int):
        ticks = []
        yield lambda label=None: ticks.append(label)
        bars.append((description, total, len(ticks)))

    engine = first_use.setup_engine(["llama-fp32"], 1, say=lines.append, progress=progress)
    assert lines[0].startswith("no profile of llama-fp32 on this device")
    assert lines[0].endswith("running `edgetts profile --quick`")
    assert all("llama-int8" not in line for line in lines)
    assert bars and bars[0][0] == "profiling" and bars[0][2] >= bars[0][1] > 0  # every unit ticked
    assert set(engine.device_profile().models) == {"llama-fp32"}
    out = capfd.readouterr()
    assert out.out == "" and out.err == ""  # a library caller's terminal is left alone

    # Measured once: the next set-up, naming both models, profiles only the one still missing,
    # and the profile on disk keeps both.
    lines.clear()
    both = first_use.setup_engine(["llama-fp32", "llama-int8"], 1, say=lines.append)
    assert (
        [line for line in lines if line.startswith("no profile of")]
        == [line for line in lines if line.startswith("no profile of llama-int8 on")]
        != []
    )
    assert set(both.device_profile().models) == {"llama-fp32", "llama-int8"}
    lines.clear()
    again = first_use.setup_engine(["llama-int8"], 1, say=lines.append)
    assert not [line for line in lines if line.startswith("no profile of")]
    assert set(again.device_profile().models) == {"llama-int8"}
