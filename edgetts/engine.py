"""The embedding API: an :class:`Engine` that loads store entries once and answers questions.

Thread safety: loading is guarded by a lock; a loaded model is read-only afterwards (ONNX
Runtime's ``run`` is thread-safe and each call keeps its own KV cache and random streams), so
one Engine can serve several threads, e.g. the callbacks of a ROS 2 node.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from tokenizers import Tokenizer

from . import store
from .runtime.generator import Generation, generate
from .runtime.onnx_model import OnnxCausalLM
from .runtime.sampling import SamplingParams


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
        }


class Engine:
    def __init__(self, threads: int | None = None):
        self.threads = threads
        self._models: dict[str, tuple[OnnxCausalLM, Tokenizer]] = {}
        self._lock = threading.Lock()

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
    ) -> Answer:
        lm, tokenizer = self.load(model)
        result: Generation = generate(
            lm, tokenizer, prompt, budget=budget, samples=samples, answer_tokens=answer_tokens,
            deadline=deadline, seed=seed, sampling=sampling, on_token=on_token,
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
