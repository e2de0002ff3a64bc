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
from onnxruntime.capi import onnxruntime_pybind11_state as _ort_state

from ..errors import CorruptModelError, EdgeTTSError
from ..manifest import LOGITS_TO_KEEP, MANIFEST_NAME, Manifest
from ..precision import require_precision
from .kv_cache import KVCache, NumpyKVCache, Past, SharedKVCache

# onnxruntime's own exception types (Fail, InvalidProtobuf, NoSuchFile, RuntimeException, …):
# they derive from Exception directly, with no common base, so they are collected here; any
# other exception from loading is not the file's fault and keeps its traceback.
_ORT_ERRORS = tuple(v for v in vars(_ort_state).values() if isinstance(v, type) and issubclass(v, Exception))
# How onnxruntime words an allocation that failed inside it (a std::bad_alloc that escapes it
# is a MemoryError): the session needs more memory than is free, the file is fine.
_OUT_OF_MEMORY = ("bad_alloc", "bad allocation", "Failed to allocate memory")


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
        path = model_dir / "model.onnx"
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except MemoryError:
            raise self._out_of_memory(path) from None
        except _ORT_ERRORS as err:
            first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
            if any(sign in first for sign in _OUT_OF_MEMORY):
                raise self._out_of_memory(path) from None
            if isinstance(err, _ort_state.NotImplemented):  # a kernel this onnxruntime lacks
                raise EdgeTTSError(
                    f"{name}: onnxruntime {ort.__version__} cannot run {path} ({first}); convert it "
                    f"again with this onnxruntime (`edgetts convert --force`) or install the one it "
                    f"was converted with ({self.manifest.tools.get('onnxruntime', 'see its manifest')})"
                ) from None
            raise CorruptModelError(
                f"{name}: onnxruntime cannot load {path} ({first}); check it with "
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

    def _out_of_memory(self, path: Path) -> EdgeTTSError:
        """What loading ``path`` failed on when memory ran out: memory, not a corrupt file."""
        size = sum(int(record["size"]) for record in self.manifest.files.values())
        free = psutil.virtual_memory().available
        return EdgeTTSError(
            f"{self.manifest.name}: not enough memory to load {path} ({size / 2**20:.0f} MiB of files, "
            f"{free / 2**20:.0f} MiB free); close other programs or use a smaller model or quantization"
        )

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
