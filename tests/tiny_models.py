"""Tiny causal LMs (llama, qwen2) that the tests build and export themselves: 2 layers,
hidden 64, a byte-level BPE tokenizer trained on a few lines of text.

The random init is trained for 200 steps (about 2 s) on that text. Why: an untrained model has
near-uniform logits and wild activation ranges, so any two precisions disagree on the top-1
token by chance (W8A8 agreed on ~80 % of positions), and the quantization tests would measure
noise; a briefly trained model behaves like a real one (~97 %).
"""

from __future__ import annotations

import random
from pathlib import Path

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def corpus(n: int = 400, seed: int = 0) -> list[str]:
    """Lines that are mostly predictable once they start (counting, a fixed phrase, a sum), so
    the trained model is confident at most positions; seed 0 trains the tokenizer and the model,
    other seeds give fresh prompts of the same kind for the tests.

    Why predictable: where the next token is a coin toss (a random digit), the top-1 of any two
    precisions agrees only by chance, and the quantization tests would measure that chance.
    """
    rng = random.Random(seed)
    phrases = [
        "the robot takes the shortest route",
        "the corridor is blocked so think step by step",
        "each apple costs two coins in total",
    ]
    lines = []
    for _ in range(n):
        a, b = rng.randint(0, 50), rng.randint(0, 9)
        count = " ".join(str(a + i) for i in range(8))
        lines.append(
            f"count from {a}: {count}. {rng.choice(phrases)}. Question: what is {a} plus {b}? Answer: {a + b}"
        )
    return lines


def build_tokenizer(folder: Path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=SPECIAL, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(corpus(), trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(str(folder))
    return fast


def build_model(arch: str, folder: Path, tie: bool = True):
    """Save a tiny ``arch`` model and its tokenizer in ``folder``; return the torch model."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(folder)
    common = dict(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=tie,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(0)
    if arch == "llama":
        model = LlamaForCausalLM(LlamaConfig(**common))
    elif arch == "qwen2":
        model = Qwen2ForCausalLM(Qwen2Config(**common))
    else:
        raise ValueError(arch)
    _train(model, tokenizer)
    model.eval()
    model.save_pretrained(str(folder))
    return model


def _train(model, tokenizer, steps: int = 200, seq_len: int = 32, batch: int = 32) -> None:
    import torch

    rows = [tokenizer(line)["input_ids"][:seq_len] for line in corpus(2000)]
    pad = tokenizer.pad_token_id
    data = torch.tensor([row + [pad] * (seq_len - len(row)) for row in rows])
    generator = torch.Generator().manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        sample = data[torch.randint(0, len(data), (batch,), generator=generator)]
        labels = sample.masked_fill(sample == pad, -100)  # never learn to emit the pad (a stop token)
        loss = model(sample, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
