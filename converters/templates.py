"""The prompt format and the budget-forcing strings of a model family, fixed at convert time.

Why render the chat template here: the runtime must not need jinja or transformers, so the
template is rendered once around a placeholder and stored as a prefix and a suffix.
"""

from __future__ import annotations

from pathlib import Path

from ..manifest import PromptFormat

_PLACEHOLDER = "\u2063EDGETTS_QUESTION\u2063"
# Tokens that end a turn in the families we know; any that the vocabulary has become stop ids.
_END_OF_TURN = ("<|im_end|>", "<end_of_turn>", "<|eot_id|>", "<|endoftext|>", "<|end|>", "</s>", "<eos>")
INSTRUCT_ANSWER_CUE = "Therefore, the final answer is"
THINK_ANSWER_CUE = "The final answer is"
BASE_STOP = "\nQuestion:"  # a base model that has answered starts the next question


def prompt_format(hf_dir: Path) -> PromptFormat:
    from transformers import AutoTokenizer, GenerationConfig

    tokenizer = AutoTokenizer.from_pretrained(str(hf_dir), local_files_only=True)
    if tokenizer.chat_template:
        rendered = tokenizer.apply_chat_template(
            [{"role": "user", "content": _PLACEHOLDER}], tokenize=False, add_generation_prompt=True
        )
        prefix, _, suffix = rendered.partition(_PLACEHOLDER)
        stop_strings = []
    else:  # a base model: a plain question/answer frame, which it would go on to repeat
        prefix, suffix = "Question: ", "\nAnswer:"
        stop_strings = [BASE_STOP]
    # Where the tokenizer's post-processor adds the BOS token itself (SmolLM2's is <|im_start|>,
    # Gemma's <bos>), keep it out of the text so that it is not doubled.
    adds_bos = tokenizer.bos_token_id is not None and tokenizer("a")["input_ids"][:1] == [
        tokenizer.bos_token_id
    ]
    if adds_bos and prefix.startswith(tokenizer.bos_token):
        prefix = prefix[len(tokenizer.bos_token) :]

    vocab = tokenizer.get_vocab()
    stop_ids: set[int] = set()
    try:
        eos = GenerationConfig.from_pretrained(str(hf_dir), local_files_only=True).eos_token_id
    except OSError:
        eos = None
    for value in (eos, tokenizer.eos_token_id):
        if isinstance(value, int):
            stop_ids.add(value)
        elif isinstance(value, list):
            stop_ids.update(int(v) for v in value)
    # Only *special* tokens end a turn: Qwen's vocabulary also has "</s>" as ordinary text.
    special = set(tokenizer.all_special_tokens) | {
        t.content for t in tokenizer.added_tokens_decoder.values() if t.special
    }
    stop_ids.update(vocab[tok] for tok in _END_OF_TURN if tok in vocab and tok in special)

    thinks = "<think>" in vocab and "</think>" in vocab
    return PromptFormat(
        prefix=prefix,
        suffix=suffix,
        style="think" if thinks else "instruct",
        answer_cue=THINK_ANSWER_CUE if thinks else INSTRUCT_ANSWER_CUE,
        stop_token_ids=sorted(stop_ids),
        think_start="<think>" if thinks else None,
        think_end="</think>" if thinks else None,
        stop_strings=stop_strings,
    )
