"""KV caches for batched decoding: what a generation owns while its rows are decoded.

``SharedKVCache`` (graphs whose attention is GroupQueryAttention, i.e. edgetts' own builder):
one preallocated buffer that onnxruntime reads the past from and writes the new keys and values
into, in place. How the CPU kernel decides (onnxruntime contrib_ops/cpu/bert,
group_query_attention_helper.h and gqa_attention_base.h): the present's sequence dimension is
``max(total_sequence_length, past_key's sequence dimension)``, here the buffer's capacity, so
the bound output has exactly the input's shape; past and present are shared when their data
pointers are equal (``past_key_data == present_key_data``, likewise for the values), and then
nothing is memset or copied. Row b's length is ``seqlens_k[b] + 1`` (our graph derives it from
``attention_mask``, whose width is ``total_sequence_length``); the new tokens are written at
``length - new`` in that row and positions past the length are never read. So the attention
mask stays what it always was, all ones of width ``length``, and the graph needs no change. A
prefill (``new == total_sequence_length``) writes from position 0; several new tokens after a
cache are accepted at batch 1 only (the generator feeds a batch the forcing text one token per
step).

Layout: one fp32 array ``[layers, 2 (key, value), rows, kv_heads, capacity, head_dim]``.
Why: the graph's per-layer tensors are ``[rows, kv_heads, sequence, head_dim]``, and the kernel
strides a row by ``kv_heads * capacity * head_dim``, so ``buffer[layer, kind, :rows]`` is a
contiguous ``[rows, kv_heads, capacity, head_dim]`` block that can be bound as both past and
present without a copy, for any number of leading rows. One array for all layers makes the
replication after the prefill and the gather of kept rows one numpy assignment each. A
row-major layout (``[rows, layers, ...]``) would make a row contiguous but no layer's tensor
bindable. ``np.zeros`` maps the pages lazily, so a large capacity costs resident memory only for
the positions actually written.

Finished rows are dropped, not masked. Dropping = the kept rows gathered into the front of the
buffer (holes refilled from the back: at most one row copied per finished row) and smaller
steps from then on; masking = decoding every row to the end and ignoring the finished ones.
Measured 2026-11-24 on the project's 2-core x86_64 machine (AMD EPYC, onnxruntime 1.32.0, 2
threads, nothing else running; benchmarks/decode.py --finish-half): N=8 rows after the 74-token
benchmark prompt, 32 steps, then 4 rows finish and 64 more steps follow. SmolLM2-135M INT4:
drop 1381 ± 12 ms, mask 1884 ± 9 ms; Qwen2.5-Coder-0.5B INT4: drop 2969 ± 140 ms, mask
4174 ± 210 ms. Masking is ~1.4x slower (also under load: 3355 vs 4566 ms for SmolLM2): a
step's cost still grows with its rows at these sizes, and the gather is a few row copies once.

``NumpyKVCache``: the same interface over the numpy forward pass, for graphs without
GroupQueryAttention (optimum's export), which return a new, longer cache every step.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnxruntime as ort

from ..errors import EdgeTTSError
from ..manifest import LOGITS_TO_KEEP

Past = dict[str, np.ndarray]
Forward = Callable[[np.ndarray, Past, np.ndarray], tuple[np.ndarray, Past]]


class SharedKVCache:
    """A preallocated cache of ``capacity`` tokens for up to ``batch`` rows that onnxruntime
    updates in place through an IOBinding, grown (reallocated, doubling) when a run needs more,
    up to ``max_capacity``. It starts with one row (the shared prefill); see the module
    docstring for the layout and why it is safe."""

    def __init__(
        self,
        session: ort.InferenceSession,
        layers: int,
        kv_heads: int,
        head_dim: int,
        vocab: int,
        batch: int,
        capacity: int,
        max_capacity: int | None = None,
        last_logits_only: bool = False,
    ):
        """``last_logits_only``: the graph takes ``LOGITS_TO_KEEP`` (the model knows, once)."""
        self.session, self.vocab = session, vocab
        self.max_capacity = max(capacity, max_capacity or capacity)
        self.rows, self.length = 1, 0
        self._shape = (layers, 2, batch, kv_heads, head_dim)
        self._allocate(capacity)
        self._logits = np.empty(batch * vocab, dtype=np.float32)  # one step's logits, reused
        self._ids = np.zeros((1, 0), dtype=np.int64)  # kept alive while bound
        self._binding = session.io_binding()
        self.last_logits_only = last_logits_only
        if last_logits_only:
            self._keep_one = np.ones(1, dtype=np.int64)
            self._bind_input(LOGITS_TO_KEEP, self._keep_one)
        self._bind_cache()

    def run(self, input_ids: np.ndarray) -> np.ndarray:
        """Feed ``input_ids`` [rows, new] after the cached tokens and return the last position's
        logits [rows, 1, vocab], a view that the next call overwrites."""
        rows, new = input_ids.shape
        total = self.length + new
        if rows != self.rows or total > self.max_capacity:
            raise ValueError(
                f"{rows}x{new} tokens do not fit a {self.rows}-row cache at {self.length}/{self.max_capacity}"
            )
        if total > self.capacity:
            self._grow(total)
        self._ids = np.ascontiguousarray(input_ids, dtype=np.int64)
        self._bind_input("input_ids", self._ids)
        self._bind_input("attention_mask", self._ones[: rows * total].reshape(rows, total))
        # Graphs with logits_to_keep skip the other positions' vocabulary projection; older ones
        # compute every position's logits, of which the last are taken.
        kept = 1 if self.last_logits_only else new
        size = rows * kept * self.vocab
        out = self._logits[:size] if size <= self._logits.size else np.empty(size, dtype=np.float32)
        logits = out.reshape(rows, kept, self.vocab)
        self._binding.bind_output("logits", "cpu", 0, np.float32, logits.shape, logits.ctypes.data)
        self.session.run_with_iobinding(self._binding)
        self.length = total
        return logits[:, -1:]

    def replicate(self, rows: int) -> None:
        """Copy row 0 (the prefilled prompt) to rows 1..rows-1."""
        self.buffer[:, :, 1:rows, :, : self.length] = self.buffer[:, :, :1, :, : self.length]
        self.rows = rows
        self._bind_cache()

    def keep(self, rows: list[int]) -> list[int]:
        """Keep only ``rows`` (ascending); return the old row index of each new row. Holes left by
        dropped rows among the first ``len(rows)`` are filled with kept rows from the back, so
        at most one row is copied per dropped row (the samples are reordered to match)."""
        kept = len(rows)
        if kept == self.rows:
            return rows
        holes = sorted(set(range(kept)) - set(rows))
        movers = [r for r in rows if r >= kept]
        order = list(range(kept))
        for hole, row in zip(holes, movers, strict=True):
            self.buffer[:, :, hole, :, : self.length] = self.buffer[:, :, row, :, : self.length]
            order[hole] = row
        self.rows = kept
        self._bind_cache()
        return order

    def set_length(self, length: int) -> None:
        """Declare the first ``length`` positions the context (what they hold is whatever was
        written, zeros in a new cache): for timing a step at a given context without a prefill."""
        if not 0 <= length <= self.capacity:
            raise ValueError(f"length {length} outside the cache's capacity {self.capacity}")
        self.length = length

    def fork(self, capacity: int) -> SharedKVCache:
        """An independent copy of the current rows and context with room for ``capacity`` tokens:
        a branch that can be decoded (calibration's answer probes) while this one goes on."""
        layers, _, _, kv_heads, head_dim = self._shape
        twin = SharedKVCache(
            self.session, layers, kv_heads, head_dim, self.vocab, self.rows, max(capacity, self.length),
            last_logits_only=self.last_logits_only,
        )  # fmt: skip
        twin.buffer[:, :, :, :, : self.length] = self.buffer[:, :, : self.rows, :, : self.length]
        twin.rows, twin.length = self.rows, self.length
        twin._bind_cache()
        return twin

    def _allocate(self, capacity: int) -> None:
        """A zeroed buffer of ``capacity`` tokens per row, the old context copied into it."""
        layers, kinds, batch, kv_heads, head_dim = self._shape
        try:
            buffer = np.zeros((layers, kinds, batch, kv_heads, capacity, head_dim), dtype=np.float32)
        except MemoryError:
            raise EdgeTTSError(
                f"no memory for a KV cache of {batch} rows x {capacity} tokens; lower --samples or --budget"
            ) from None
        if self.length:
            buffer[:, :, : self.rows, :, : self.length] = self.buffer[:, :, : self.rows, :, : self.length]
        self.buffer, self.capacity = buffer, capacity
        # The attention mask is all ones of width ``length``: any contiguous run of ones will do.
        self._ones = np.ones(batch * capacity, dtype=np.int64)

    def _grow(self, needed: int) -> None:
        """Double the capacity (at least to ``needed``, at most to ``max_capacity``). Why grow
        instead of reserving ``max_capacity`` up front: the CPU kernel's work follows the bound
        capacity, so a prefill into a context-sized buffer costs ~35 % more (Qwen2.5, 120-token
        prompt, capacity 32k vs 512); doubling copies each position O(1) times on average."""
        self._allocate(min(self.max_capacity, max(needed, 2 * self.capacity)))
        self._bind_cache()

    def _bind_input(self, name: str, array: np.ndarray) -> None:
        element = array.dtype.type
        self._binding.bind_input(name, "cpu", 0, element, array.shape, array.ctypes.data)

    def _bind_cache(self) -> None:
        """Bind each layer's block of the first ``rows`` rows as both its past and its present."""
        for layer, kinds in enumerate(self.buffer):
            for kind, block in zip(("key", "value"), kinds, strict=True):
                view = block[: self.rows]
                pointer = view.ctypes.data
                self._binding.bind_input(
                    f"past_key_values.{layer}.{kind}", "cpu", 0, np.float32, view.shape, pointer
                )
                self._binding.bind_output(
                    f"present.{layer}.{kind}", "cpu", 0, np.float32, view.shape, pointer
                )


class NumpyKVCache:
    """The cache as numpy arrays that each forward pass returns anew (graphs without
    GroupQueryAttention); same interface as ``SharedKVCache``."""

    def __init__(self, forward: Forward, empty: Past):
        self.forward, self.past = forward, empty
        self.rows, self.length = 1, 0
        self._rewind: tuple[int, Past] | None = None

    def run(self, input_ids: np.ndarray) -> np.ndarray:
        total = self.length + input_ids.shape[1]
        mask = np.ones((self.rows, total), dtype=np.int64)
        logits, self.past = self.forward(input_ids, self.past, mask)
        self.length = total
        return logits[:, -1:]

    def replicate(self, rows: int) -> None:
        self.past = {name: np.repeat(value, rows, axis=0) for name, value in self.past.items()}
        self.rows, self._rewind = rows, None

    def keep(self, rows: list[int]) -> list[int]:
        if len(rows) < self.rows:
            index = np.asarray(rows, dtype=np.int64)
            self.past = {name: value[index] for name, value in self.past.items()}
            self.rows, self._rewind = len(rows), None
        return rows

    def set_length(self, length: int) -> None:
        """As ``SharedKVCache.set_length``. The cache cut (or zero-padded) to ``length`` is kept,
        so rewinding to the same length again is free, as it is for the shared cache: a timed
        ``set_length`` + ``run`` costs what one generator step costs (forward never writes into
        its inputs, so the kept arrays stay valid)."""
        if self._rewind is None or self._rewind[0] != length:
            pad = max(0, length - self.length)
            past = {
                name: np.pad(value[:, :, :length], ((0, 0), (0, 0), (0, pad), (0, 0)))
                for name, value in self.past.items()
            }
            self._rewind = (length, past)
        self.past, self.length = self._rewind[1], length

    def fork(self, capacity: int) -> NumpyKVCache:
        """As ``SharedKVCache.fork``; the arrays are shared, as forward never writes into them."""
        twin = NumpyKVCache(self.forward, self.past)
        twin.rows, twin.length = self.rows, self.length
        return twin


KVCache = SharedKVCache | NumpyKVCache
