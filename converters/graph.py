"""Graph passes on the exported ONNX model that matter on the edge.

Why untie: optimum exports a tied embedding/lm_head as ``MatMul(h, Transpose(embed))``. The
weight-only quantizers in onnxruntime only quantize a MatMul whose weight is an initializer, so
they skip the lm_head, which is the single largest matrix of a small model (SmolLM2's INT4 file
stays ~180 MB instead of < 100 MB). Giving the lm_head its own (transposed) initializer lets the
quantizers see it; the embedding Gather is quantized separately (GatherBlockQuantized / int8).
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
from onnx import numpy_helper


def untie_lm_head(model: onnx.ModelProto) -> list[str]:
    """Replace ``MatMul(x, Transpose(W))`` with ``MatMul(x, W_t)`` for initializer ``W``.

    Returns the names of the MatMul nodes that were rewritten. Transposes left without
    consumers are removed; the original initializer stays for its other users (the Gather).
    """
    graph = model.graph
    inits = {init.name: init for init in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}
    consumers = Counter(name for node in graph.node for name in node.input)
    consumers.update(out.name for out in graph.output)
    rewritten: list[str] = []
    dead: list[onnx.NodeProto] = []
    for node in graph.node:
        if node.op_type != "MatMul" or len(node.input) != 2:
            continue
        transpose = producers.get(node.input[1])
        if transpose is None or transpose.op_type != "Transpose" or transpose.input[0] not in inits:
            continue
        perm = next((list(a.ints) for a in transpose.attribute if a.name == "perm"), None)
        weight = numpy_helper.to_array(inits[transpose.input[0]])
        if weight.ndim != 2 or perm not in (None, [1, 0]):
            continue
        new_name = f"{transpose.input[0]}.lm_head_t"
        if new_name not in inits:
            new_init = numpy_helper.from_array(np.ascontiguousarray(weight.T), new_name)
            graph.initializer.append(new_init)
            inits[new_name] = new_init
        consumers[node.input[1]] -= 1
        if consumers[node.input[1]] == 0:
            dead.append(transpose)
        node.input[1] = new_name
        rewritten.append(node.name)
    for node in dead:
        graph.node.remove(node)
    return rewritten


# The op types whose counts tell what the graph passes and quantizers did (manifest "ops").
REPORTED_OPS = (
    "MatMul", "MatMulNBits", "GatherBlockQuantized", "MatMulInteger", "DynamicQuantizeLinear",
    "QuantizeLinear", "DequantizeLinear", "GroupQueryAttention", "MultiHeadAttention",
    "SimplifiedLayerNormalization", "SkipSimplifiedLayerNormalization", "RotaryEmbedding",
)  # fmt: skip


def op_histogram(model: onnx.ModelProto) -> dict[str, int]:
    """How many nodes of each reported op type the graph has (recorded in the manifest)."""
    counts = Counter(node.op_type for node in model.graph.node)
    return {op: counts[op] for op in REPORTED_OPS if counts[op]}


def _unpack_nibbles(packed: np.ndarray) -> np.ndarray:
    """MatMulNBits' uint8 blobs as signed values: low nibble first, zero point 8."""
    flat = packed.reshape(packed.shape[0], -1)
    low, high = (flat & 0x0F).astype(np.int16), (flat >> 4).astype(np.int16)
    return np.stack([low, high], axis=-1).reshape(flat.shape[0], -1) - 8


def share_tied_int4_embedding(model: onnx.ModelProto) -> bool:
    """Let the INT4 embedding Gather read the lm_head's MatMulNBits weights instead of its own copy.

    Why: after untying, a tied model carries the vocabulary matrix twice in 4 bits (14 MB each
    for SmolLM2, 68 MB for Qwen2.5-0.5B). GatherBlockQuantized accepts MatMulNBits' packed uint8
    layout ([N, blocks, blob], zero point 8) with ``bits=4``, so the Gather can share it; only
    its scales need their own [N, blocks, 1] view. Done only when both quantizations agree
    exactly, so the result is bit-identical to the unshared model.
    """
    graph = model.graph
    inits = {init.name: init for init in graph.initializer}
    gather = next(
        (n for n in graph.node if n.op_type == "GatherBlockQuantized" and n.input[1] == "input_ids"), None
    )
    head = next((n for n in graph.node if n.op_type == "MatMulNBits" and "logits" in n.output), None)
    if head is None:
        producers = {out: n for n in graph.node for out in n.output}
        head = producers.get("logits")
        if head is None or head.op_type != "MatMulNBits":
            return False
    if gather is None or len(gather.input) > 3 or len(head.input) > 3:
        return False  # asymmetric (zero points) or unknown layout: leave both as they are
    if not all(name in inits for name in (gather.input[0], gather.input[2], head.input[1], head.input[2])):
        return False
    g_data = numpy_helper.to_array(inits[gather.input[0]])
    g_scales = numpy_helper.to_array(inits[gather.input[2]])
    h_data = numpy_helper.to_array(inits[head.input[1]])
    h_scales = numpy_helper.to_array(inits[head.input[2]])
    if h_data.dtype != np.uint8 or h_data.ndim != 3 or g_scales.size != h_scales.size:
        return False
    rows, blocks, blob = h_data.shape
    if g_data.shape[0] != rows or not np.array_equal(g_scales.reshape(-1), h_scales.reshape(-1)):
        return False
    # numpy_helper unpacks INT4 to one value per element; MatMulNBits blobs are packed uint8.
    g_values = g_data.astype(np.int16).reshape(rows, -1)
    if not np.array_equal(g_values, _unpack_nibbles(h_data)):
        return False

    scales_name = f"{head.input[2]}.gather_view"
    graph.initializer.append(
        numpy_helper.from_array(h_scales.reshape(rows, blocks, 1).astype(h_scales.dtype), scales_name)
    )
    old_data, old_scales = gather.input[0], gather.input[2]
    gather.input[0] = head.input[1]
    gather.input[2] = scales_name
    for attr in list(gather.attribute):
        if attr.name in ("quantize_axis", "bits"):
            gather.attribute.remove(attr)
    gather.attribute.extend(
        [onnx.helper.make_attribute("quantize_axis", 2), onnx.helper.make_attribute("bits", 4)]
    )
    # The Gather now yields [batch, seq, blocks, block]; fold the last two back to hidden.
    blocked = f"{gather.output[0]}.blocked"
    hidden_out = gather.output[0]
    gather.output[0] = blocked
    shape_name = f"{blocked}.shape"
    graph.initializer.append(numpy_helper.from_array(np.array([0, 0, -1], dtype=np.int64), shape_name))
    reshape = onnx.helper.make_node(
        "Reshape", [blocked, shape_name], [hidden_out], name=f"{gather.name}/unblock"
    )
    graph.node.insert(list(graph.node).index(gather) + 1, reshape)
    for name in (old_data, old_scales):
        if not any(name in n.input for n in graph.node):
            graph.initializer.remove(inits[name])
    return True


# Families whose exported graphs the fusions are tested on (tests compare the fused fp32 model
# with PyTorch); others are exported unfused rather than risk a pattern that almost matches.
FUSABLE_MODEL_TYPES = ("llama", "qwen2", "qwen3", "mistral")


def fuse_decoder(
    model: onnx.ModelProto, model_type: str, heads: int, hidden: int, context_length: int
) -> onnx.ModelProto:
    """Fuse what onnxruntime's transformer optimizer can fuse in an optimum decoder export:
    RMSNorm (+ residual add) into (Skip)SimplifiedLayerNormalization and RoPE into
    RotaryEmbedding. Its attention fusion does not match optimum's GQA export (checked with
    onnxruntime 1.32), so attention stays as MatMul/Softmax; the fused ops still cut the node
    count of every layer, which is what the per-token decode cost on the CPU pays for.
    """
    if model_type not in FUSABLE_MODEL_TYPES:
        return model
    from onnxruntime.transformers.optimizer import optimize_model

    # "qwen3" is the optimizer's generic RoPE/GQA/RMSNorm decoder entry; opt_level 0 applies the
    # Python fusions only and leaves the rest to the session's own graph optimizations.
    fused = optimize_model(model, model_type="qwen3", num_heads=heads, hidden_size=hidden, opt_level=0).model
    # The optimizer emits com.microsoft ops without declaring the domain; shape inference in the
    # quantizers then refuses the graph.
    if not any(o.domain == "com.microsoft" for o in fused.opset_import):
        fused.opset_import.append(onnx.helper.make_opsetid("com.microsoft", 1))
    _trim_rotary_caches(fused, context_length)
    return fused


def _trim_rotary_caches(model: onnx.ModelProto, context_length: int) -> None:
    """The rotary fusion tabulates cos/sin for 131072 positions (33 MB for SmolLM2, a third of
    its INT4 file); positions past the model's context are never valid, so keep only those."""
    caches = {n.input[i] for n in model.graph.node if n.op_type == "RotaryEmbedding" for i in (2, 3)}
    for index, init in enumerate(model.graph.initializer):
        if init.name in caches and init.dims and init.dims[0] > context_length:
            table = numpy_helper.to_array(init)[:context_length]
            model.graph.initializer[index].CopyFrom(
                numpy_helper.from_array(np.ascontiguousarray(table), init.name)
            )
