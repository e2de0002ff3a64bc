"""Prompts and budget-forcing text per model family (see design.md, s1 budget forcing).

Instruct models (SmolLM2, Gemma 3, Qwen2.5) are asked to reason step by step; at the budget the
reasoning is cut and the answer cue is appended. Thinking models (<think>…</think>) think inside
the tags; at the budget the end tag and the cue are injected. Budget 0 answers directly.
"""

from __future__ import annotations

from ..manifest import PromptFormat
from ..tts.answer_types import NUMBER, AnswerType


def build_prompt(fmt: PromptFormat, question: str, budget: int, answer_type: AnswerType = NUMBER) -> str:
    """The text the model is prefilled with (think budget 0 already ends with the answer cue).
    The answer type words the request ("Answer only yes or no.") and lists a choice's options;
    the numeric wording is the one the shipped GSM8K tables were calibrated with."""
    question = answer_type.question_text(question)
    if fmt.style == "think":
        opened = fmt.prefix + question + fmt.suffix
        if fmt.think_start and not opened.rstrip().endswith(fmt.think_start):
            opened += fmt.think_start + "\n"
        return opened + (force_text(fmt).lstrip("\n") if budget == 0 else "")
    if budget == 0:
        return fmt.prefix + question + "\n" + answer_type.direct_instruction() + fmt.suffix + fmt.answer_cue
    return fmt.prefix + question + "\n" + answer_type.reasoning_instruction() + fmt.suffix


def force_text(fmt: PromptFormat) -> str:
    """What is appended to a sample whose thinking is cut (by the budget or the deadline)."""
    if fmt.style == "think" and fmt.think_end:
        return f"\n{fmt.think_end}\n\n{fmt.answer_cue}"
    return f"\n{fmt.answer_cue}"
