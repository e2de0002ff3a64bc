"""The embedding API: an :class:`Engine` that loads store entries once and answers questions.

Thread safety: loading is guarded by a lock; a loaded model is read-only afterwards (ONNX
Runtime's ``run`` is thread-safe and each call keeps its own KV cache and random streams), so
one Engine can serve several threads, e.g. the callbacks of a ROS 2 node.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import psutil
from tokenizers import Tokenizer

from . import store
from .errors import EdgeTTSError
from .planner.candidates import build as build_candidates
from .planner.scheduler import plan
from .profiling.device_profile import DeviceProfile, load_for
from .runtime.generator import Generation, generate
from .runtime.onnx_model import OnnxCausalLM
from .runtime.sampling import SamplingParams

MIN_DEADLINE_S = 0.001  # what the guard gets when planning alone used up the target


@dataclass
class Answer:
    """What one question cost and produced; ``to_json`` is the CLI's ``--json`` shape."""

    text: str | None  # the voted answer (normalised), None when no sample gave one
    config: dict[str, object]
    latency_ms: float
    prefill_ms: float
    decode_ms: float
    tokens: dict[str, object]
    forced_by: str
    votes: dict[str, int]
    stopped_early: bool
    samples: list[str] = field(default_factory=list)
    planned: dict[str, object] | None = None  # solve(): predicted_ms, predicted_accuracy, energy

    def to_json(self) -> dict[str, object]:
        return {
            "answer": self.text,
            "config": self.config,
            "latency_ms": round(self.latency_ms, 1),
            "prefill_ms": round(self.prefill_ms, 1),
            "decode_ms": round(self.decode_ms, 1),
            "tokens": self.tokens,
            "forced_by": self.forced_by,
            "votes": self.votes,
            "stopped_early": self.stopped_early,
            "samples": self.samples,
            **(self.planned or {}),
        }


class Engine:
    def __init__(
        self, threads: int | None = None, profile: DeviceProfile | None = None, eval_name: str = "gsm8k"
    ):
        """``profile``: the device profile :meth:`solve` plans with (default: this device's);
        ``eval_name``: whose calibration tables give the accuracies it maximises."""
        self.threads = threads
        self.eval_name = eval_name
        self._profile = profile
        self._info = None
        self._models: dict[str, tuple[OnnxCausalLM, Tokenizer]] = {}
        self._lock = threading.Lock()

    def device_profile(self) -> DeviceProfile:
        with self._lock:
            if self._profile is None:
                self._profile = load_for(self._device().id)
            return self._profile

    def _device(self):
        """This machine, detected once (a benign race: two threads may both detect it)."""
        if self._info is None:
            from .profiling.device import detect

            self._info = detect()
        return self._info

    def plan(self, question: str, latency: float, energy: float | None = None, best_effort: bool = False):
        """The configuration :meth:`solve` would run, and the candidates it was chosen from."""
        if latency <= 0:
            raise EdgeTTSError(f"latency {latency} s is not positive")
        candidates, notes = build_candidates(self.device_profile(), question, self.eval_name)
        if not len(candidates):
            raise EdgeTTSError("nothing to plan with: " + "; ".join(notes or ["the profile has no models"]))
        memory = self._memory_cap()
        return plan(
            candidates, latency, energy_j=energy, memory_bytes=memory, best_effort=best_effort
        ), candidates

    def solve(
        self,
        question: str,
        latency: float,
        energy: float | None = None,
        best_effort: bool = False,
        seed: int = 0,
    ) -> Answer:
        """Answer ``question`` as accurately as the device can within ``latency`` seconds: plan
        (model, budget, N) from the profile and calibration, run it under the deadline guard,
        and report the prediction next to what it cost."""
        start = time.perf_counter()
        chosen = self.plan(question, latency, energy, best_effort)[0].chosen
        config = chosen.config
        self.load(config.model)  # a first call's model load is not the query's energy
        meter = self._meter()
        meter.begin()
        # The caller's clock started before planning: the guard gets what is left of the target.
        left = max(latency - (time.perf_counter() - start), MIN_DEADLINE_S)
        answer = self.generate(
            question,
            model=config.model,
            budget=config.budget,
            samples=config.samples,
            deadline=left,
            seed=seed,
        )
        reading = meter.end()
        answer.planned = {
            "predicted_ms": round(1000 * chosen.latency_s, 1),
            "predicted_accuracy": round(chosen.accuracy, 4),
            "predicted_energy_j": None if chosen.energy_j is None else round(chosen.energy_j, 3),
            "energy_j": None if reading.joules is None else round(reading.joules, 3),
            "energy_source": reading.source,
        }
        return answer

    def _memory_cap(self) -> int | None:
        """What a configuration may use: this machine's free memory (plus what edgetts already
        holds), or the spec's memory when planning for another device's profile."""
        profile = self.device_profile()
        if profile.device_id == self._device().id:
            return psutil.virtual_memory().available + psutil.Process().memory_info().rss
        spec_id = profile.device.get("spec")
        if spec_id:
            from .devices import load_spec

            return load_spec(str(spec_id)).memory_bytes
        return None

    def _meter(self):
        from .profiling.energy import meter_for

        return meter_for(self._device())

    def load(self, model: str) -> tuple[OnnxCausalLM, Tokenizer]:
        with self._lock:
            if model not in self._models:
                entry = store.get(model)
                lm = OnnxCausalLM(entry.path, entry.manifest, threads=self.threads)
                tokenizer = Tokenizer.from_file(str(entry.path / "tokenizer.json"))
                self._models[model] = (lm, tokenizer)
            return self._models[model]

    def generate(
        self,
        prompt: str,
        model: str,
        budget: int = 128,
        samples: int = 1,
        deadline: float | None = None,
        seed: int = 0,
        answer_tokens: int = 16,
        sampling: SamplingParams | None = None,
        on_token=None,
        anchor: bool = True,
        stop: Sequence[str] = (),
    ) -> Answer:
        lm, tokenizer = self.load(model)
        result: Generation = generate(
            lm, tokenizer, prompt, budget=budget, samples=samples, answer_tokens=answer_tokens,
            deadline=deadline, seed=seed, sampling=sampling, on_token=on_token, anchor=anchor,
            stop=stop,
        )  # fmt: skip
        return Answer(
            text=result.answer,
            config={
                "model": model,
                "quant": lm.manifest.quant_type,
                "budget": budget,
                "samples": samples,
            },
            latency_ms=result.latency_ms,
            prefill_ms=result.prefill_ms,
            decode_ms=result.decode_ms,
            tokens={
                "prompt": result.prompt_tokens,
                "think": [len(s.think) for s in result.samples],
                "answer": [len(s.answer) for s in result.samples],
            },
            forced_by=result.forced_by,
            votes=result.votes,
            stopped_early=result.stopped_early,
            samples=[s.text for s in result.samples],
        )
