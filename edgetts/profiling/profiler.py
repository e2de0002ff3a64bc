"""`edgetts profile`: sweep store entries on this device, fit their latency models, write the
device profile atomically, and check a profile against fresh held-out measurements.
"""

from __future__ import annotations

import copy
import datetime as dt
import gc
import platform
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort
import psutil

from .. import __version__, store
from ..runtime.onnx_model import OnnxCausalLM, default_threads
from .device_profile import DeviceProfile, ModelProfile, PowerModel, ProfileError, find
from .load import LoadMeter, LoadReading
from .sweep import Point, Sweep, SweepPlan, measure_decode, measure_prefill, run_sweep

Tick = Callable[[], None]
OnBusy = Callable[[LoadReading], None]


def kv_bytes_per_token(lm: OnnxCausalLM) -> int:
    """Key + value, every layer, fp32 (the runtime's cache layout, see onnx_model.py)."""
    return lm.layers * 2 * lm.kv_heads * lm.head_dim * 4


def load_measured(entry: store.StoreEntry, threads: int | None) -> tuple[OnnxCausalLM, int]:
    """Load ``entry`` and return it with the resident memory it added (after a first forward,
    so that onnxruntime's arenas and the mmapped weights are counted), never less than its files.

    Why the floor: the growth of this process's RSS undercounts when it already holds memory an
    earlier model freed (the allocator keeps it and the next load reuses it without the RSS
    growing): profiling the ladder in one process measured 0.4–33 MB for models of 100–500 MB,
    and the plan table's memory column showed that. The weights are all resident after a forward
    pass, so the entry's files are a lower bound of what loading it costs."""
    gc.collect()
    process = psutil.Process()
    before = process.memory_info().rss
    lm = OnnxCausalLM(entry.path, entry.manifest, threads=threads)
    measure_prefill(lm, 8, repeats=1, warmup=0)
    return lm, max(process.memory_info().rss - before, entry.size_bytes)


def power_model(sweep_prefill: list[Point], sweep_decode: list[Point], source: str) -> PowerModel | None:
    """Mean watts per phase from the meter windows; None where the meter gave no power."""
    if source == "unavailable" or any(p.watts is None for p in sweep_prefill + sweep_decode):
        return None
    by_batch: dict[int, list[float]] = {}
    for point in sweep_decode:
        by_batch.setdefault(point.batch, []).append(point.watts)  # type: ignore[arg-type]
    return PowerModel(
        source=source,
        prefill_w=float(np.mean([p.watts for p in sweep_prefill])),
        decode_w=[(b, float(np.mean(w))) for b, w in sorted(by_batch.items())],
    )


def watched_sweep(
    lm: OnnxCausalLM, plan: SweepPlan, meter, tick: Tick, load: LoadMeter, on_busy: OnBusy
) -> tuple[Sweep, LoadReading, int]:
    """The sweep with the machine's other load measured over it; a busy sweep is measured once
    more (another process's burst is often over by then), and if that one is busy too it is kept
    and its reading says so. Returns the sweep kept, its reading and how many sweeps ran."""
    load.begin()
    sweep = run_sweep(lm, plan, meter, tick)
    reading = load.end()
    if not reading.busy:
        return sweep, reading, 1
    on_busy(reading)
    load.begin()
    sweep = run_sweep(lm, plan, meter, tick)
    return sweep, load.end(), 2


def profile_entry(
    entry: store.StoreEntry, plan: SweepPlan, meter=None, meter_source: str = "unavailable",
    threads: int | None = None, tick: Tick = lambda: None, load: LoadMeter | None = None,
    on_busy: OnBusy = lambda reading: None,
) -> ModelProfile:  # fmt: skip
    """Sweep, fit and describe ``entry``; ``on_busy(reading)`` is told before a busy sweep is
    measured again (see watched_sweep)."""
    lm, resident = load_measured(entry, threads)
    return profile_loaded(lm, resident, entry, plan, meter, meter_source, threads, tick, load, on_busy)


def profile_loaded(
    lm: OnnxCausalLM, resident: int, entry: store.StoreEntry, plan: SweepPlan, meter=None,
    meter_source: str = "unavailable", threads: int | None = None, tick: Tick = lambda: None,
    load: LoadMeter | None = None, on_busy: OnBusy = lambda reading: None,
) -> ModelProfile:  # fmt: skip
    """profile_entry on a model already loaded (``resident``: the memory it holds): what a
    running engine re-profiles with, so that it does not load a second copy of the weights."""
    sweep, reading, sweeps = watched_sweep(lm, plan, meter, tick, load or LoadMeter(), on_busy)
    latency = sweep.fit()
    return ModelProfile(
        name=entry.name,
        source="measured",
        quant=entry.manifest.quant_type,
        context_length=entry.manifest.architecture.context_length,
        latency=latency,
        resident_bytes=resident,
        kv_bytes_per_token=kv_bytes_per_token(lm),
        kv_in_place=lm.shared_kv,
        power=power_model(sweep.prefill, sweep.decode, meter_source),
        points={
            "prefill": [p.to_list() for p in sweep.prefill],  # [length, median s, std s, watts]
            "decode": [p.to_list() for p in sweep.decode],  # [batch, context, median s, std s, watts]
        },
        details={
            "measured": {
                "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                "threads": threads or default_threads(),
                "sweep": "quick" if plan.repeats < 5 else "full",
                "repeats": plan.repeats,
                "warmup": plan.warmup,
                "peak_rss_bytes": sweep.peak_rss_bytes,
                "sweeps": sweeps,
                "load": reading.to_dict(),
            }
        },
    )


def conditions(meter_source: str, meter_notes: list[str]) -> dict[str, object]:
    return {
        "source": "measured",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "edgetts": __version__,
        "onnxruntime": ort.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "providers": ort.get_available_providers(),
        "energy": {"source": meter_source, "notes": meter_notes},
    }


def merge(
    device: dict, existing: DeviceProfile | None, new: dict[str, ModelProfile], conds: dict
) -> DeviceProfile:
    """Models measured now replace their old sections; other measured models are kept (a
    profile grows as the user profiles more models). A published file is never merged into.
    The conditions say whether any model the file holds was measured busy, and the load seen."""
    models: dict[str, ModelProfile] = {}
    if existing is not None and existing.conditions.get("source") == "measured":
        models.update(existing.models)
    models.update(new)
    profile = DeviceProfile(device=device, conditions=conds, models=models)
    load = profile.measured_load()
    if load is not None:
        # a copy: one dict in two places would be written as a YAML anchor and alias
        profile.conditions = {**conds, "busy": bool(load.get("busy")), "load": copy.deepcopy(load)}
    return profile


def select_entries(names: Iterable[str] | None) -> list[store.StoreEntry]:
    entries = [store.get(n) for n in names] if names else store.list_entries()
    if not entries:
        raise ProfileError("the model store is empty; convert a model first (`edgetts convert smollm2-135m`)")
    return entries


def measured_profile(device_id: str) -> DeviceProfile | None:
    profile = find(device_id)
    return profile if profile and profile.conditions.get("source") == "measured" else None


@dataclass
class CheckRow:
    model: str
    phase: str  # prefill | decode
    config: str
    measured_s: float
    predicted_s: float

    @property
    def error(self) -> float:
        return self.predicted_s / self.measured_s - 1


def held_out_configs(model: ModelProfile, count: int, rng: np.random.Generator) -> list[tuple]:
    """Random configurations inside the measured ranges but off the sweep's grid."""
    lengths = sorted({int(p[0]) for p in model.points.get("prefill", [])})
    decode = model.points.get("decode", [])
    batches = sorted({int(p[0]) for p in decode})
    contexts = sorted({int(p[1]) for p in decode})
    if not lengths or not batches:
        raise ProfileError(f"{model.name} has no measured points to check against; run `edgetts profile`")
    configs: list[tuple] = []
    while len(configs) < count:
        if len(configs) % 3 == 0:
            length = int(rng.integers(lengths[0], lengths[-1] + 1))
            if length not in lengths:
                configs.append(("prefill", length))
        else:
            batch = int(rng.integers(batches[0], batches[-1] + 1))
            context = int(rng.integers(contexts[0], contexts[-1] + 1))
            if (batch, context) not in {(int(p[0]), int(p[1])) for p in decode}:
                configs.append(("decode", batch, context))
    return configs


def check(
    profile: DeviceProfile, names: list[str], count: int = 9, seed: int = 0, threads: int | None = None,
    tick: Tick = lambda: None,
) -> list[CheckRow]:  # fmt: skip
    """Re-measure ``count`` random held-out configurations per model; compare to the mean prediction."""
    rng = np.random.default_rng(seed)
    rows: list[CheckRow] = []
    for name in names:
        model = profile.model(name)
        if model.source != "measured":
            raise ProfileError(
                f"{name} in {profile.device_id}'s profile is published; only measured profiles check"
            )
        lm, _ = load_measured(store.get(name), threads)
        for config in held_out_configs(model, count, rng):
            if config[0] == "prefill":
                point = measure_prefill(lm, config[1], repeats=3, warmup=1)
                predicted = float(model.latency.prefill_s(config[1]))
                label = f"prompt {config[1]}"
            else:
                point = measure_decode(lm, config[1], config[2], repeats=3, warmup=1)
                predicted = float(model.latency.step_s(config[1], config[2]))
                label = f"N={config[1]} context {config[2]}"
            rows.append(CheckRow(name, config[0], label, point.seconds, predicted))
            tick()
        del lm
    return rows
