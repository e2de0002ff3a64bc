"""First-use set-up, before any request's clock starts: the built-in ladder converted, this
device profiled where it has no measured profile of the models in use, and the Engine that
answers with them.

The CLI (`run`, `bench`, `profile`), the HTTP service, the ROS 2 node and the benchmarks start
the same way through here, so this lives beside the engine rather than in a CLI module. It prints
nothing itself: ``say`` receives each line a user should read (a conversion, a profile being
measured, a busy machine) and ``progress(description, total)`` makes the progress display — a
context manager yielding ``advance(label=None)`` — so that a library caller decides where they
appear and the CLI shows a rich bar.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING

from .profiling.device_profile import DeviceProfile

if TYPE_CHECKING:
    from .engine import Engine
    from .profiling.load import LoadReading

Say = Callable[[str], None]
Advance = Callable[..., None]  # advance(label: str | None = None)
Progress = Callable[[str, int], AbstractContextManager[Advance]]


def silent(_text: str) -> None:
    """The default ``say``: a library caller that wants the lines passes its own."""


@contextmanager
def no_progress(_description: str, _total: int) -> Iterator[Advance]:
    """The default ``progress``: nothing shown."""
    yield lambda label=None: None


def busy_warning(profile: DeviceProfile) -> str | None:
    """Why plans made with ``profile`` may be too cautious, where it was measured under load (its
    latencies are the loaded machine's); None when it was measured quiet."""
    from .profiling.load import LoadReading

    load = profile.busy_load()
    if load is None:
        return None
    return (
        f"the profile of {profile.device_id} was measured under load "
        f"({LoadReading.from_dict(load).describe()}); its predicted latencies may be too long for this "
        "device when quiet: re-profile on a quiet machine (`edgetts profile`)"
    )


def profile_this_device(
    names: list[str] | None, quick: bool, threads: int | None, threads_sweep: bool = False,
    say: Say = silent, progress: Progress = no_progress,
) -> DeviceProfile:  # fmt: skip
    """Sweep ``names`` (default: every store entry), fit, merge into this device's profile, save.
    A sweep the machine's other load disturbed is measured again, and said so (see
    profiler.watched_sweep); whether the result is busy is the caller's to warn about.
    ``threads_sweep``: also measure every thread count under busy loops (profiling/threads.py)."""
    from .profiling.device import describe, detect
    from .profiling.energy import meter_for
    from .profiling.load import LoadMeter
    from .profiling.profiler import conditions, measured_profile, merge, profile_entry, select_entries
    from .profiling.sweep import FULL, QUICK
    from .profiling.threads import sweep_threads, sweep_units
    from .runtime.onnx_model import OnnxCausalLM, default_threads

    info = detect()
    meter = meter_for(info)
    load = LoadMeter()
    entries = select_entries(names)
    plan = QUICK if quick else FULL
    cores = default_threads()
    units = plan.units() + (sweep_units(cores) if threads_sweep else 0)
    models = {}
    with progress("profiling", units * len(entries)) as advance:
        for entry in entries:
            advance(f"profiling {entry.name}")
            models[entry.name] = profile_entry(
                entry, plan, meter=meter, meter_source=meter.source, threads=threads, tick=advance,
                load=load, on_busy=_measuring_again(entry.name, say),
            )  # fmt: skip
            if threads_sweep:
                advance(f"{entry.name}: every thread count under busy loops")
                models[entry.name].under_load = sweep_threads(
                    lambda count, entry=entry: OnnxCausalLM(entry.path, entry.manifest, threads=count),
                    cores, tick=advance,
                )  # fmt: skip
    profile = merge(describe(info), measured_profile(info.id), models, conditions(meter.source, meter.notes))
    profile.save()
    return profile


def _measuring_again(name: str, say: Say) -> Callable[[LoadReading], None]:
    """What the user reads when a busy sweep of ``name`` is measured again: why profiling takes
    twice as long."""
    return lambda reading: say(
        f"the machine was busy while profiling {name} ({reading.describe()}): measuring it again"
    )


def ensure_profile(
    device_id: str,
    models: list[str],
    threads: int | None,
    say: Say = silent,
    progress: Progress = no_progress,
) -> DeviceProfile:
    """This device's measured profile restricted to ``models``, profiling the missing ones
    --quick first and saying so (what `run` and `bench` do on a fresh machine; they measure this
    device, so a published profile will not do). Says so where those models were measured busy."""
    from .profiling.profiler import measured_profile

    profile = measured_profile(device_id)
    missing = [n for n in models if profile is None or n not in profile.models]
    if missing:
        listed = ", ".join(missing)
        say(f"no profile of {listed} on this device ({device_id}): running `edgetts profile --quick`")
        profile = profile_this_device(missing, quick=True, threads=threads, say=say, progress=progress)
    profile.models = {n: m for n, m in profile.models.items() if n in models}
    if (warning := busy_warning(profile)) is not None:
        say(f"warning: {warning}")
    return profile


def setup_engine(
    names: list[str] | None, threads: int | None, eval_name: str = "gsm8k", auto_reprofile: bool = False,
    say: Say = silent, progress: Progress = no_progress,
) -> Engine:  # fmt: skip
    """The Engine `run`, `serve` and `ros2` answer with: ``names`` or the built-in ladder
    (converted on first use), planned with this device's profile of those models only (measured
    --quick where missing). First-use work happens here, before any request's clock starts."""
    from .engine import Engine
    from .ladder import ensure_converted
    from .profiling.device import detect

    models = names or ensure_converted(say, eval_name)
    profile = ensure_profile(detect().id, models, threads, say, progress)
    return Engine(threads=threads, profile=profile, eval_name=eval_name, auto_reprofile=auto_reprofile)
