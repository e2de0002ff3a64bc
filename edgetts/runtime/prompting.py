"""Prompts and budget-forcing text per model family (see design.md, s1 budget forcing).

Instruct models (SmolLM2, Gemma 3, Qwen2.5) are asked to reason step by step; at the budget the
reasoning is cut and the answer cue is appended. Thinking models (<think>…</think>) think inside
the tags; at the budget the end tag and the cue are injected. Budget 0 answers directly.

Program mode (program-aided reasoning, PAL / program of thoughts): the model is asked for a
Python function that computes the answer, and the prompt already opens it (a fenced block and
``def solution():``), so even a small model writes the body rather than prose about it; the
closing fence ends the sample and tts/program.py runs the function. Its reasoning tokens are the
program's: the budget caps the program, and a program cut at the budget is closed and asked for
its answer with the answer cue, as a cut step-by-step sample is.
"""

from __future__ import annotations

from ..errors import EdgeTTSError
from ..manifest import PromptFormat
from ..tts.answer_types import NUMBER, AnswerType

STEPS, PROGRAM = "steps", "program"
MODES = (STEPS, PROGRAM)
PROGRAM_INSTRUCTION = (
    "Write a Python function solution() that computes the answer and returns it as a number. "
    "Reply with the code only."
)
PROGRAM_HEAD = "def solution():\n"  # what the prompt opens and the program run starts with
PROGRAM_STOPS = ("```",)  # the closing fence: the program is complete


def build_prompt(
    fmt: PromptFormat, question: str, budget: int, answer_type: AnswerType = NUMBER, mode: str = STEPS
) -> str:
    """The text the model is prefilled with (think budget 0 already ends with the answer cue).
    The answer type words the request ("Answer only yes or no.") and lists a choice's options;
    the numeric wording is the one the shipped GSM8K tables were calibrated with."""
    question = answer_type.question_text(question)
    if mode == PROGRAM:
        check_program(fmt, budget, answer_type)
        return fmt.prefix + question + "\n" + PROGRAM_INSTRUCTION + fmt.suffix + "```python\n" + PROGRAM_HEAD
    if fmt.style == "think":
        opened = fmt.prefix + question + fmt.suffix
        if fmt.think_start and not opened.rstrip().endswith(fmt.think_start):
            opened += fmt.think_start + "\n"
        return opened + (force_text(fmt).lstrip("\n") if budget == 0 else "")
    if budget == 0:
        return fmt.prefix + question + "\n" + answer_type.direct_instruction() + fmt.suffix + fmt.answer_cue
    return fmt.prefix + question + "\n" + answer_type.reasoning_instruction() + fmt.suffix


def check_program(fmt: PromptFormat, budget: int, answer_type: AnswerType) -> None:
    """Program mode computes a number, in a function an instruct model writes within its budget."""
    if answer_type.kind != "number":
        raise EdgeTTSError(f"program mode answers numbers; this question wants a {answer_type.kind} answer")
    if budget == 0:
        raise EdgeTTSError("program mode needs a budget for the program (budget 0 answers directly)")
    if fmt.style != "instruct":
        raise EdgeTTSError("program mode needs an instruct model (this one thinks in <think> tags)")


def force_text(fmt: PromptFormat, mode: str = STEPS) -> str:
    """What is appended to a sample whose thinking is cut (by the budget or the deadline): in
    program mode the code block is closed first, so that the cue reads as prose again."""
    if mode == PROGRAM:
        return f"\n```\n{fmt.answer_cue}"
    if fmt.style == "think" and fmt.think_end:
        return f"\n{fmt.think_end}\n\n{fmt.answer_cue}"
    return f"\n{fmt.answer_cue}"
