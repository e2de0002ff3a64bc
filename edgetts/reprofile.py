"""Re-profiling in the background when the device drifts: ``Engine(auto_reprofile=True)``.

The run-time correction (planner/correction.py) scales a profile's predictions by one factor per
phase; when it stays outside the profile's residual band for several runs the device is no
longer the one profiled (other load, heat, a new power mode), and a scalar may not be the whole
story (load slows wide batches differently from batch 1). So the engine measures the drifting
model again, --quick, on the copy it already has loaded, and plans with that from then on.

It must not cost a request its deadline: the sweep runs only while the decode worker is idle,
and holds the worker's gate for one measured forward pass at a time. A request that arrives
mid-sweep waits for at most the pass in progress (the longest is a 320-token prefill), and is
planned for the time actually left when it starts, as every request is. Between passes the
sweep pauses for as long as requests keep coming, so a busy server re-profiles in its gaps.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from . import store
from .profiling.device_profile import ModelProfile
from .profiling.profiler import profile_loaded
from .profiling.sweep import QUICK
from .runtime.onnx_model import OnnxCausalLM
from .worker import DecodeWorker

log = logging.getLogger(__name__)

MIN_INTERVAL_S = 300.0  # a model is re-profiled at most this often: drift may be a passing burst


class Stopped(Exception):
    """The engine closed while a re-profile was pausing between its measurements."""


class Reprofiler:
    """One background thread that re-profiles the models it is asked to, one at a time."""

    def __init__(
        self,
        worker: DecodeWorker,
        loaded: Callable[[str], OnnxCausalLM | None],
        done: Callable[[str, ModelProfile], None],
        threads: int | None = None,
    ):
        """``loaded(name)``: the engine's loaded copy of a model (None: not loaded, nothing to
        re-profile with); ``done(name, profile)``: the engine takes the new measurement."""
        self.worker, self.loaded, self.done, self.threads = worker, loaded, done, threads
        self._lock = threading.Lock()
        self._waiting: list[str] = []
        self._running: str | None = None
        self._last: dict[str, float] = {}
        self._thread: threading.Thread | None = None

    def request(self, model: str) -> str:
        """Ask for ``model`` to be re-profiled; returns its state: ``queued``, ``running`` or
        ``recent`` (re-profiled less than MIN_INTERVAL_S ago, so not again yet)."""
        with self._lock:
            if self._running == model:
                return "running"
            if model in self._waiting:
                return "queued"
            if time.monotonic() - self._last.get(model, float("-inf")) < MIN_INTERVAL_S:
                return "recent"
            self._waiting.append(model)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="edgetts-reprofile", daemon=True)
                self._thread.start()
            return "queued"

    def state(self, model: str) -> str | None:
        with self._lock:
            if self._running == model:
                return "running"
            return "queued" if model in self._waiting else None

    def join(self, timeout: float | None = None) -> None:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _loop(self) -> None:
        while True:
            with self._lock:
                if not self._waiting:
                    return
                model = self._running = self._waiting.pop(0)
            try:
                profile = self._measure(model)
                if profile is not None:
                    self.done(model, profile)
            except Stopped:
                return
            except Exception:  # a failed re-profile leaves the old profile and correction in use
                log.exception("re-profiling %s failed; plans go on with its profile and correction", model)
            finally:
                with self._lock:
                    self._running = None
                    self._last[model] = time.monotonic()

    def _measure(self, model: str) -> ModelProfile | None:
        lm = self.loaded(model)
        if lm is None:
            return None
        gate = self.worker.gate

        def between_passes() -> None:
            """Give the CPU back after each pass, and wait for a gap in the requests."""
            gate.release()
            if not self.worker.wait_idle():
                gate.acquire()  # released again below, as after every pass
                raise Stopped
            gate.acquire()

        if not self.worker.wait_idle():
            raise Stopped
        with gate:
            return profile_loaded(lm, 0, store.get(model), QUICK, threads=self.threads, tick=between_passes)
