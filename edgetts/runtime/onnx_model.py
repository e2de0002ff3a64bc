"""An ONNX causal LM from the model store.

Two ways to drive it. ``forward`` is the plain numpy pass (prefill or one decode step over a KV
cache in the layout the manifest records: ``[batch, kv_heads, sequence, head_dim]``, fp32, and a
new, longer cache returned): the conversion tests compare with it. ``new_cache`` + ``run`` is
what generation uses: a cache the model updates in place (kv_cache.SharedKVCache) for graphs
whose attention is GroupQueryAttention, the numpy pass behind the same interface otherwise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import psutil

from ..errors import CorruptModelError
from ..manifest import MANIFEST_NAME, Manifest
from ..precision import require_precision
from .kv_cache import LOGITS_TO_KEEP, KVCache, NumpyKVCache, Past, SharedKVCache


def default_threads() -> int:
    """Physical cores: hyper-threads share the FPU and slow the memory-bound decode down."""
    return psutil.cpu_count(logical=False) or psutil.cpu_count() or 1


class OnnxCausalLM:
    """``shared_kv``: give ``new_cache`` the in-place cache where the graph allows it; False keeps
    the numpy one everywhere (the benchmark and the tests compare the two)."""

    def __init__(
        self,
        model_dir: Path,
        manifest: Manifest | None = None,
        threads: int | None = None,
        shared_kv: bool = True,
    ):
        self.manifest = manifest or Manifest.load(model_dir / MANIFEST_NAME)
        self.model_dir = model_dir
        name = self.manifest.name
        require_precision(name, self.manifest.quant_type)
        options = ort.SessionOptions()
        self.threads = threads or default_threads()
        options.intra_op_num_threads = self.threads
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(
                str(model_dir / "model.onnx"), options, providers=["CPUExecutionProvider"]
            )
        except Exception as err:  # onnxruntime raises its own exception types for every failure
            first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
            raise CorruptModelError(
                f"{name}: onnxruntime cannot load {model_dir / 'model.onnx'} ({first}); check it with "
                f"`edgetts models verify {name}` and convert it again with `edgetts convert --force`"
            ) from None
        arch = self.manifest.architecture
        self.layers = arch.layers
        self.kv_heads = arch.kv_heads
        self.head_dim = arch.head_dim
        self.input_names = {i.name for i in self.session.get_inputs()}
        # Inputs with a default (an initializer) are listed apart: the builder's logits_to_keep.
        overridable = {i.name for i in self.session.get_overridable_initializers()}
        self.last_logits_only = LOGITS_TO_KEEP in self.input_names | overridable
        self.output_names = [o.name for o in self.session.get_outputs()]
        # Every layer's attention must be GroupQueryAttention (edgetts' builder); optimum's
        # export concatenates past and new keys itself and cannot write into a shared buffer.
        gqa = self.manifest.graph.get("ops", {}).get("GroupQueryAttention", 0) == self.layers
        self.shared_kv = shared_kv and gqa and "attention_mask" in self.input_names

    def new_cache(self, batch: int, capacity: int, max_capacity: int | None = None) -> KVCache:
        """An empty cache with one row (for the shared prefill) and room for ``batch`` rows of
        ``capacity`` tokens each, grown on demand up to ``max_capacity`` (default: ``capacity``);
        widen it with ``replicate``."""
        if self.shared_kv:
            arch = self.manifest.architecture
            return SharedKVCache(
                self.session, self.layers, self.kv_heads, self.head_dim, arch.vocab_size, batch,
                capacity, max_capacity, self.last_logits_only,
            )  # fmt: skip
        return NumpyKVCache(self.forward, self.empty_past(1))

    def run(self, cache: KVCache, input_ids: np.ndarray) -> np.ndarray:
        """Feed ``input_ids`` [cache.rows, new] after the cache's tokens, growing it by ``new``;
        return the last position's logits [rows, 1, vocab] (valid until the next ``run`` on that
        cache): generation never needs the others, and the builder's graphs skip computing them. Every
        model call of a generation goes through here (the deadline tests slow it down)."""
        return cache.run(input_ids)

    def past_names(self) -> list[str]:
        names = []
        for layer in range(self.layers):
            names += [f"past_key_values.{layer}.key", f"past_key_values.{layer}.value"]
        return names

    def empty_past(self, batch: int) -> Past:
        shape = (batch, self.kv_heads, 0, self.head_dim)
        return {name: np.zeros(shape, dtype=np.float32) for name in self.past_names()}

    def forward(
        self, input_ids: np.ndarray, past: Past, attention_mask: np.ndarray | None = None
    ) -> tuple[np.ndarray, Past]:
        """Run ``input_ids`` [batch, new] after ``past``; return logits and the grown cache."""
        batch, new = input_ids.shape
        past_len = next(iter(past.values())).shape[2] if past else 0
        if attention_mask is None:
            attention_mask = np.ones((batch, past_len + new), dtype=np.int64)
        feed: dict[str, np.ndarray] = {"input_ids": input_ids.astype(np.int64), **past}
        if "attention_mask" in self.input_names:
            feed["attention_mask"] = attention_mask
        if "position_ids" in self.input_names:
            positions = np.cumsum(attention_mask, axis=1) - 1
            feed["position_ids"] = positions[:, -new:].clip(min=0).astype(np.int64)
        outputs = dict(zip(self.output_names, self.session.run(self.output_names, feed), strict=False))
        new_past = {name: outputs[name.replace("past_key_values.", "present.")] for name in self.past_names()}
        return outputs["logits"], new_past

    def greedy(self, prompt_ids: list[int], max_new_tokens: int, stop_ids: set[int]) -> list[int]:
        """Greedy decoding at batch 1: the reference the tests compare quantizations with."""
        logits, past = self.forward(np.array([prompt_ids], dtype=np.int64), self.empty_past(1))
        out: list[int] = []
        for _ in range(max_new_tokens):
            token = int(np.argmax(logits[0, -1]))
            if token in stop_ids:
                break
            out.append(token)
            logits, past = self.forward(np.array([[token]], dtype=np.int64), past)
        return out
