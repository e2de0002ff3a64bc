"""Real export and quantization of tiny llama / qwen2 models, checked against PyTorch."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from edgetts.manifest import Manifest
from edgetts.runtime.onnx_model import OnnxCausalLM

torch = pytest.importorskip("torch")
ARCHS = ("llama", "qwen2")
EXPORTERS = ("auto", "optimum")  # auto = edgetts' own GroupQueryAttention graph for these families


def random_prompts(folder, count: int = 8, length: int = 24) -> np.ndarray:
    """Fresh random questions of the kind the tiny model was trained on (not its training
    lines), as token ids: random *token* soup is far out of distribution and full of near-tied
    logits, where the top-1 of any two precisions agrees by chance."""
    from tiny_models import corpus
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    rows = [tokenizer.encode(" ".join(corpus(4, seed=100 + i))).ids[:length] for i in range(count)]
    return np.array(rows, dtype=np.int64)


def weight_matmuls(entry) -> list[str]:
    """MatMul nodes still multiplying by a float weight (activation x activation ones are fine)."""
    model = onnx.load(str(entry / "model.onnx"), load_external_data=False)
    weights = {init.name for init in model.graph.initializer}
    return [n.name for n in model.graph.node if n.op_type == "MatMul" and n.input[1] in weights]


def torch_logits(model, ids: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(ids)).logits.numpy()


@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize("arch", ARCHS)
def test_fp32_logits_match_pytorch(arch, exporter, tiny_models, converted_tiny):
    folder, model = tiny_models[arch]
    lm = OnnxCausalLM(converted_tiny(arch, "fp32", exporter))
    ids = random_prompts(converted_tiny(arch, "fp32"))
    logits, _ = lm.forward(ids, lm.empty_past(len(ids)))
    np.testing.assert_allclose(logits, torch_logits(model, ids), atol=1e-4)


@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize("arch", ARCHS)
def test_fp32_incremental_decode_matches_full_sequence(arch, exporter, converted_tiny):
    lm = OnnxCausalLM(converted_tiny(arch, "fp32", exporter))
    ids = random_prompts(converted_tiny(arch, "fp32"), count=2, length=12)
    full, _ = lm.forward(ids, lm.empty_past(2))
    logits, past = lm.forward(ids[:, :8], lm.empty_past(2))
    steps = [logits[:, -1]]
    for t in range(8, 12):
        logits, past = lm.forward(ids[:, t : t + 1], past)
        steps.append(logits[:, -1])
    np.testing.assert_allclose(np.stack(steps[:-1], axis=1), full[:, 7:11], atol=1e-4)


@pytest.mark.parametrize("quant", ("fp32", "int4"))
def test_logits_to_keep_gives_the_last_positions_only(quant, converted_tiny):
    """The builder's graphs project only the last K positions when asked (0 = all, the default),
    and the generator's cache asks for one."""
    lm = OnnxCausalLM(converted_tiny("qwen2", quant))
    ids = random_prompts(converted_tiny("qwen2", quant), count=2, length=10)
    full, past = lm.forward(ids, lm.empty_past(2))
    feed = {"input_ids": ids, "attention_mask": np.ones_like(ids), **lm.empty_past(2)}
    for keep in (1, 3):
        (kept,) = lm.session.run(["logits"], {**feed, "logits_to_keep": np.array([keep], dtype=np.int64)})
        np.testing.assert_allclose(kept, full[:, -keep:], atol=1e-5)
    cache = lm.new_cache(1, 10)
    assert cache.last_logits_only
    np.testing.assert_allclose(lm.run(cache, ids[:1]), full[:1, -1:], atol=1e-4)


@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize("quant", ("fp16", "int8", "int4"))
@pytest.mark.parametrize("arch", ARCHS)
def test_quantized_top1_agrees_with_pytorch(arch, quant, exporter, tiny_models, converted_tiny):
    _, model = tiny_models[arch]
    lm = OnnxCausalLM(converted_tiny(arch, quant, exporter))
    ids = random_prompts(converted_tiny(arch, quant))
    logits, _ = lm.forward(ids, lm.empty_past(len(ids)))
    reference = torch_logits(model, ids)
    agreement = float((logits.argmax(-1) == reference.argmax(-1)).mean())
    assert agreement >= 0.90, f"{arch} {quant}: top-1 agrees on {agreement:.0%} of positions"


@pytest.mark.parametrize("arch", ARCHS)
def test_int4_quantizes_every_matmul_and_the_tied_embedding(arch, converted_tiny):
    entry = converted_tiny(arch, "int4")
    manifest = Manifest.load(entry / "manifest.json")
    ops = manifest.graph["ops"]
    assert weight_matmuls(entry) == [], "a weight MatMul (the lm_head?) was left in fp32"
    assert ops["MatMulNBits"] == 2 * 5 + 1  # packed qkv, o, gate, up, down per layer + lm_head
    assert ops["GroupQueryAttention"] == 2
    assert manifest.graph["exporter"] == "edgetts-builder"
    assert ops["GatherBlockQuantized"] == 1
    assert manifest.graph["tied_embedding_shared"]  # the lm_head reads the embedding's 4-bit blocks
    assert manifest.quant == {
        "type": "int4",
        "scheme": "W4A16 MatMulNBits + GatherBlockQuantized",
        "block_size": 32,
        "symmetric": True,
        "algorithm": "default",
        "accuracy_level": 4,
    }


def test_int8_is_dynamic_w8a8(converted_tiny):
    entry = converted_tiny("llama", "int8")
    ops = Manifest.load(entry / "manifest.json").graph["ops"]
    assert weight_matmuls(entry) == []
    assert ops["DynamicQuantizeLinear"] >= 1 and ops["MatMulInteger"] >= 1


def test_manifest_records_architecture_prompt_and_files(tiny_models, converted_tiny):
    entry = converted_tiny("qwen2", "fp32")
    manifest = Manifest.load(entry / "manifest.json")
    arch = manifest.architecture
    assert (arch.model_type, arch.layers, arch.heads, arch.kv_heads, arch.head_dim, arch.hidden_size) == (
        "qwen2",
        2,
        4,
        2,
        16,
        64,
    )
    assert manifest.prompt.prefix == "<|im_start|>user\n"
    assert manifest.prompt.suffix == "<|im_end|>\n<|im_start|>assistant\n"
    assert manifest.prompt.style == "instruct"
    assert manifest.prompt.answer_cue == "Therefore, the final answer is"
    im_end = json.loads((entry / "tokenizer.json").read_text())["added_tokens"][2]
    assert im_end["content"] == "<|im_end|>" and im_end["id"] in manifest.prompt.stop_token_ids
    assert set(manifest.files) >= {"model.onnx", "tokenizer.json"}
    assert manifest.files["model.onnx"]["size"] == (entry / "model.onnx").stat().st_size
    assert manifest.source["kind"] == "hf-dir" and len(manifest.source["sha256"]) == 64
    assert {"torch", "transformers", "optimum", "onnx", "onnxruntime"} <= set(manifest.tools)
    # Round trip: the dict form reloads to an equal manifest.
    assert Manifest.from_dict(json.loads(manifest.to_json()), "x") == manifest


def test_fp8_converts_to_e4m3_qdq_and_is_refused_on_this_device(converted_tiny):
    from edgetts.errors import UnsupportedPrecisionError
    from edgetts.precision import available_precisions

    entry = converted_tiny("llama", "fp8")
    manifest = Manifest.load(entry / "manifest.json")
    assert manifest.opset >= 19  # float8 Q/DQ needs opset 19
    model = onnx.load(str(entry / "model.onnx"))
    zero_points = [i for i in model.graph.initializer if i.name.endswith("zero_point")]
    assert zero_points and {i.data_type for i in zero_points} == {onnx.TensorProto.FLOAT8E4M3FN}
    assert weight_matmuls(entry) == []  # every weight goes through DequantizeLinear
    if "fp8" in available_precisions():
        pytest.skip("this device runs FP8; the refusal is tested on devices without it")
    with pytest.raises(
        UnsupportedPrecisionError, match=r"FP8, which this device .* runs fp32, fp16, int8, int4"
    ):
        OnnxCausalLM(entry)


@pytest.mark.parametrize("arch", ARCHS)
def test_optimum_export_gets_norms_and_rotary_fused(arch, converted_tiny):
    manifest = Manifest.load(converted_tiny(arch, "fp32", "optimum") / "manifest.json")
    assert manifest.graph["exporter"] == "optimum"
    ops = manifest.graph["ops"]
    assert ops["SkipSimplifiedLayerNormalization"] + ops["SimplifiedLayerNormalization"] == 2 * 2 + 1
    assert ops["RotaryEmbedding"] == 2 * 2  # q and k in each layer


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_rotary_tables_cover_the_context_only(exporter, converted_tiny):
    model = onnx.load(str(converted_tiny("llama", "int4", exporter) / "model.onnx"))
    caches = {i.name: list(i.dims) for i in model.graph.initializer if i.name in ("cos_cache", "sin_cache")}
    assert caches == {"cos_cache": [256, 8], "sin_cache": [256, 8]}  # context 256, head_dim 16
