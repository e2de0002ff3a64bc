"""Prompt text and budget-forcing text per model family."""

from __future__ import annotations

from edgetts.manifest import PromptFormat
from edgetts.runtime.prompting import build_prompt, force_text

# The numeric wording the shipped GSM8K tables were calibrated with: changing it voids them.
STEP_BY_STEP = "\nSolve this step by step, then give the final answer."
DIRECT = "\nGive only the final answer."

INSTRUCT = PromptFormat(
    prefix="<|im_start|>user\n", suffix="<|im_end|>\n<|im_start|>assistant\n", style="instruct",
    answer_cue="Therefore, the final answer is", stop_token_ids=[2],
)  # fmt: skip
THINK = PromptFormat(
    prefix="<|im_start|>user\n", suffix="<|im_end|>\n<|im_start|>assistant\n", style="think",
    answer_cue="The final answer is", stop_token_ids=[2], think_start="<think>", think_end="</think>",
)  # fmt: skip


def test_instruct_reasons_step_by_step_and_is_cut_with_the_cue():
    assert (
        build_prompt(INSTRUCT, "Q?", 64)
        == f"<|im_start|>user\nQ?{STEP_BY_STEP}<|im_end|>\n<|im_start|>assistant\n"
    )
    assert force_text(INSTRUCT) == "\nTherefore, the final answer is"


def test_instruct_budget_zero_answers_directly():
    assert build_prompt(INSTRUCT, "Q?", 0).endswith(
        f"Q?{DIRECT}<|im_end|>\n<|im_start|>assistant\nTherefore, the final answer is"
    )


def test_think_opens_thinking_and_is_closed_at_the_budget():
    assert build_prompt(THINK, "Q?", 64) == "<|im_start|>user\nQ?<|im_end|>\n<|im_start|>assistant\n<think>\n"
    assert force_text(THINK) == "\n</think>\n\nThe final answer is"
    assert build_prompt(THINK, "Q?", 0).endswith("<think>\n</think>\n\nThe final answer is")


def test_think_template_that_already_opens_the_tag_is_not_doubled():
    opened = PromptFormat(**{**THINK.__dict__, "suffix": THINK.suffix + "<think>\n"})
    assert build_prompt(opened, "Q?", 64).count("<think>") == 1


def test_the_answer_type_words_the_request_and_lists_options():
    from edgetts.manifest import PromptFormat
    from edgetts.tts.answer_types import AnswerType

    fmt = PromptFormat("<u>", "</u>", "instruct", "Therefore, the final answer is", [])
    yesno = build_prompt(fmt, "Is it dark?", 0, AnswerType("yesno"))
    assert yesno == "<u>Is it dark?\nAnswer only yes or no.</u>Therefore, the final answer is"
    choice = build_prompt(fmt, "Which gripper?", 64, AnswerType("choice", ("vacuum", "soft fingers")))
    assert choice == (
        "<u>Which gripper?\nA) vacuum\nB) soft fingers\n"
        "Think step by step, then answer with the letter of one option.</u>"
    )
