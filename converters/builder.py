"""Build a compact ONNX decoder graph directly from the weights (llama and qwen2 families).

Why not only optimum's export: its graph is a trace of the PyTorch code, ~4,000 nodes for
SmolLM2 even after onnxruntime's fusions (shape arithmetic, masks, repeat_kv, a concat per cache
per step), and the per-node overhead dominates a decode step of a small model on the CPU. This
graph has what a decoder needs and nothing else, ~13 nodes per layer: (Skip)SimplifiedLayerNorm,
one packed QKV MatMul (+ bias for qwen2), GroupQueryAttention with rotary embedding and the KV
cache inside, the output projection, and a SiLU-gated MLP. Inputs and outputs are the same as
optimum's (``input_ids``, ``attention_mask``, ``past_key_values.*``; ``logits``, ``present.*``)
minus ``position_ids``, which GroupQueryAttention derives from the attention mask, plus an
optional ``logits_to_keep`` (see below).

Weights stay fp32 MatMul initializers here; converters.quantize turns them into INT4/INT8/FP16
exactly as it does for optimum's graph. Architectures or rope scalings this file does not know
fall back to optimum (see ``supports``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..manifest import LOGITS_TO_KEEP

SUPPORTED = ("llama", "qwen2")
OPSET = 21


def supports(config: dict) -> bool:
    """True for the families and settings whose graph this builder reproduces exactly."""
    scaling = config.get("rope_scaling")
    return (
        config.get("model_type") in SUPPORTED
        and config.get("hidden_act", "silu") == "silu"
        and (scaling is None or scaling.get("rope_type", scaling.get("type")) == "default")
        and config.get("attention_bias") is not True  # llama with an o_proj bias: not built here
        and not config.get("mlp_bias", False)
    )


def _rope_tables(config: dict, head_dim: int, positions: int) -> tuple[np.ndarray, np.ndarray]:
    theta = float(config.get("rope_theta", 10000.0))
    inv_freq = 1.0 / theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    angles = np.outer(np.arange(positions, dtype=np.float64), inv_freq)
    return np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)


class _Graph:
    """A small helper to collect nodes and initializers with unique names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []

    def weight(self, name: str, array: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array.astype(np.float32)), name))
        return name

    def const(self, name: str, array: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(array, name))
        return name

    def node(
        self, op: str, inputs: list[str], name: str, outputs: int | list[str] = 1, domain: str = "", **attrs
    ) -> list[str]:
        """Add a node; ``outputs`` is a count (names derived from ``name``) or the names."""
        outs = outputs if isinstance(outputs, list) else [f"{name}/out{i}" for i in range(outputs)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=name, domain=domain, **attrs))
        return outs


def _linear(g: _Graph, weights: dict, x: str, weight_name: str, node_name: str) -> str:
    """x @ W.T for a torch Linear weight W [out, in], as a MatMul on a [in, out] initializer."""
    return g.node("MatMul", [x, g.weight(weight_name, weights[weight_name].T)], node_name)[0]


def _norm(
    g: _Graph, weights: dict, weight_name: str, node_name: str, pending: str | None, residual: str, eps: float
) -> tuple[str, str]:
    """RMSNorm of the residual stream; with a pending sub-layer output, add it first (fused).
    Returns the normed activations and the new residual stream."""
    w = g.weight(weight_name, weights[weight_name])
    if pending is None:
        (normed,) = g.node("SimplifiedLayerNormalization", [residual, w], node_name, axis=-1, epsilon=eps)
        return normed, residual
    normed, _, _, summed = g.node(
        "SkipSimplifiedLayerNormalization", [pending, residual, w], node_name, outputs=4,
        domain="com.microsoft", epsilon=eps,
    )  # fmt: skip
    return normed, summed


def build_decoder(hf_dir: Path) -> onnx.ModelProto:
    """The fp32 decoder graph of the HF folder's weights (in memory; the pipeline quantizes and
    saves it)."""
    import json

    import torch
    from transformers import AutoModelForCausalLM

    config = json.loads((hf_dir / "config.json").read_text())
    model = AutoModelForCausalLM.from_pretrained(str(hf_dir), dtype=torch.float32, local_files_only=True)
    weights = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    del model

    hidden = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    kv_heads = int(config.get("num_key_value_heads") or heads)
    head_dim = int(config.get("head_dim") or hidden // heads)
    layers = int(config["num_hidden_layers"])
    eps = float(config.get("rms_norm_eps", 1e-6))
    context = int(config.get("max_position_embeddings") or 2048)
    vocab = int(config["vocab_size"])

    g = _Graph()
    embed = g.weight("model.embed_tokens.weight", weights["model.embed_tokens.weight"])
    (hidden_states,) = g.node("Gather", [embed, "input_ids"], "/model/embed_tokens/Gather")
    cos, sin = _rope_tables(config, head_dim, context)
    g.const("cos_cache", cos)
    g.const("sin_cache", sin)

    # GroupQueryAttention wants, per row, the index of the last valid position and the total length.
    (mask_sum,) = g.node(
        "ReduceSum",
        ["attention_mask", g.const("one_axis", np.array([1], np.int64))],
        "/model/mask/ReduceSum",
        keepdims=0,
    )
    (last,) = g.node("Sub", [mask_sum, g.const("one", np.array(1, np.int64))], "/model/mask/Sub")
    (seqlens_k,) = g.node("Cast", [last], "/model/mask/seqlens_k", to=TensorProto.INT32)
    (shape,) = g.node("Shape", ["attention_mask"], "/model/mask/Shape")
    (total,) = g.node(
        "Gather", [shape, g.const("one_index", np.array(1, np.int64))], "/model/mask/Gather", axis=0
    )
    (total_len,) = g.node("Cast", [total], "/model/mask/total_sequence_length", to=TensorProto.INT32)

    residual = hidden_states
    pending: str | None = None  # the last sub-layer's output, added to the residual by the next norm
    outputs = []
    for i in range(layers):
        p = f"model.layers.{i}"

        normed, residual = _norm(
            g, weights, f"{p}.input_layernorm.weight", f"/{p}/input_layernorm", pending, residual, eps
        )
        qkv_w = np.concatenate([weights[f"{p}.self_attn.{x}_proj.weight"] for x in "qkv"], axis=0).T
        (qkv,) = g.node(
            "MatMul", [normed, g.weight(f"{p}.self_attn.qkv_proj.weight", qkv_w)], f"/{p}/attn/qkv_proj"
        )
        if f"{p}.self_attn.q_proj.bias" in weights:
            bias = np.concatenate([weights[f"{p}.self_attn.{x}_proj.bias"] for x in "qkv"])
            (qkv,) = g.node(
                "Add", [qkv, g.weight(f"{p}.self_attn.qkv_proj.bias", bias)], f"/{p}/attn/qkv_bias"
            )
        past_k, past_v = f"past_key_values.{i}.key", f"past_key_values.{i}.value"
        present = [f"present.{i}.key", f"present.{i}.value"]
        outputs += present
        (attn,) = g.node(
            "GroupQueryAttention",
            [qkv, "", "", past_k, past_v, seqlens_k, total_len, "cos_cache", "sin_cache"],
            f"/{p}/attn/GroupQueryAttention", outputs=[f"/{p}/attn/out", *present],
            domain="com.microsoft", num_heads=heads, kv_num_heads=kv_heads, scale=float(head_dim**-0.5),
            do_rotary=1, rotary_interleaved=0, local_window_size=-1,
        )[:1]  # fmt: skip
        attn_out = _linear(g, weights, attn, f"{p}.self_attn.o_proj.weight", f"/{p}/attn/o_proj")
        pending = attn_out
        normed, residual = _norm(
            g,
            weights,
            f"{p}.post_attention_layernorm.weight",
            f"/{p}/post_attention_layernorm",
            pending,
            residual,
            eps,
        )
        gate = _linear(g, weights, normed, f"{p}.mlp.gate_proj.weight", f"/{p}/mlp/gate_proj")
        up = _linear(g, weights, normed, f"{p}.mlp.up_proj.weight", f"/{p}/mlp/up_proj")
        (sig,) = g.node("Sigmoid", [gate], f"/{p}/mlp/act/Sigmoid")
        (silu,) = g.node("Mul", [gate, sig], f"/{p}/mlp/act/Mul")
        (gated,) = g.node("Mul", [silu, up], f"/{p}/mlp/Mul")
        down = _linear(g, weights, gated, f"{p}.mlp.down_proj.weight", f"/{p}/mlp/down_proj")
        pending = down

    final_w = g.weight("model.norm.weight", weights["model.norm.weight"])
    normed, _, _, _ = g.node(
        "SkipSimplifiedLayerNormalization",
        [pending, residual, final_w],
        "/model/norm",
        outputs=4,
        domain="com.microsoft",
        epsilon=eps,
    )
    head = weights.get("lm_head.weight")
    if head is not None and not np.array_equal(head, weights["model.embed_tokens.weight"]):
        head_name = g.weight("lm_head.weight", head.T)
    else:  # tied: one copy in the file; the quantizers untie it (graph.untie_lm_head)
        (head_name,) = g.node("Transpose", [embed], "/lm_head/Transpose", perm=[1, 0])
    # logits_to_keep (HF's argument of that name): logits for the last K positions only, 0 = all
    # (the default, an initializer the caller may override). Why: a prefill needs one position's
    # logits, and the vocabulary projection of every prompt position was ~13 % of a Qwen2.5
    # prefill and a [prompt, 152k] array.
    keep = g.const(LOGITS_TO_KEEP, np.array([0], np.int64))
    (first,) = g.node("Neg", [keep], "/lm_head/keep/Neg")
    end = g.const("keep_end", np.array([np.iinfo(np.int64).max], np.int64))
    (kept,) = g.node(
        "Slice", [normed, first, end, g.const("keep_axis", np.array([1], np.int64))], "/lm_head/keep"
    )
    g.node("MatMul", [kept, head_name], "/lm_head/MatMul", outputs=["logits"])

    batch, seq, past, total_dim = (
        "batch_size",
        "sequence_length",
        "past_sequence_length",
        "total_sequence_length",
    )
    inputs = [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, [batch, seq]),
        helper.make_tensor_value_info("attention_mask", TensorProto.INT64, [batch, total_dim]),
        helper.make_tensor_value_info(LOGITS_TO_KEEP, TensorProto.INT64, [1]),
    ]
    for i in range(layers):
        for kind in ("key", "value"):
            inputs.append(
                helper.make_tensor_value_info(
                    f"past_key_values.{i}.{kind}", TensorProto.FLOAT, [batch, kv_heads, past, head_dim]
                )
            )
    outs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, "logits_length", vocab])]
    outs += [
        helper.make_tensor_value_info(name, TensorProto.FLOAT, [batch, kv_heads, total_dim, head_dim])
        for name in outputs
    ]
    graph = helper.make_graph(g.nodes, "edgetts-decoder", inputs, outs, g.inits)
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid("com.microsoft", 1)]
    )
    model.ir_version = 10
    return model
