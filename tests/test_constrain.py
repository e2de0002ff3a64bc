"""Constrained answers on the tiny model (nearly random weights, so anything it says freely is
noise): with the grammar, a direct answer and an answer forced after a cut only ever spell a
valid answer of the type; without llguidance the answer is read unconstrained, as before."""

from __future__ import annotations

import re

import pytest

from edgetts.runtime.generator import generate
from edgetts.runtime.sampling import SamplingParams
from edgetts.tts import constrain
from edgetts.tts.answer_types import AnswerType

pytest.importorskip("llguidance")

QUESTION = "Question: what is 12 plus 7?"
WARM = SamplingParams(temperature=1.0, top_p=1.0)  # every token is a candidate: the grammar must hold
TYPES = [
    AnswerType("number"),
    AnswerType("yesno"),
    AnswerType("choice", ("vacuum", "soft fingers", "magnetic")),
    AnswerType("text"),
]


@pytest.mark.parametrize("answer_type", TYPES, ids=lambda t: t.kind)
@pytest.mark.parametrize("budget", [0, 3])
def test_forced_and_direct_answers_spell_a_valid_answer(tiny, answer_type, budget):
    lm, tokenizer = tiny
    pattern = re.compile(constrain.answer_regex(answer_type))
    for seed in range(3):
        result = generate(
            lm,
            tokenizer,
            QUESTION,
            budget=budget,
            samples=4,
            seed=seed,
            sampling=WARM,
            answer_type=answer_type,
            answer_tokens=24,
            constrain=True,
        )
        for sample in result.samples:
            if sample.forced_by == "none" and budget > 0:
                continue  # ended its reasoning by itself: read from its text, unconstrained
            said = tokenizer.decode(sample.answer)
            if sample.value is None:  # cancelled mid-answer once the vote was decided
                assert result.stopped_early, f"a constrained answer always reads: {said!r}"
                continue
            assert pattern.fullmatch(said) or len(sample.answer) == 24, (said, sample.answer)
            if answer_type.kind == "yesno":
                assert sample.value in ("yes", "no")
            if answer_type.kind == "choice":
                assert sample.value in ("A", "B", "C")
        assert result.answer is not None


def test_numbers_are_read_as_calibrated_unless_asked(tiny):
    lm, tokenizer = tiny
    free = generate(lm, tokenizer, QUESTION, budget=0, samples=4, seed=1, sampling=WARM, answer_tokens=24)
    pattern = re.compile(constrain.answer_regex(AnswerType("number")))
    assert not all(pattern.fullmatch(tokenizer.decode(s.answer)) for s in free.samples)


def test_without_the_grammar_extra_answers_are_read_unconstrained(tiny, monkeypatch):
    lm, tokenizer = tiny
    monkeypatch.setattr(constrain, "available", lambda: False)
    result = generate(
        lm, tokenizer, QUESTION, budget=0, samples=2, seed=0, sampling=WARM, answer_type=AnswerType("yesno")
    )
    assert all(s.value in (None, "yes", "no") for s in result.samples)
    free = [tokenizer.decode(s.answer) for s in result.samples]
    pattern = re.compile(constrain.answer_regex(AnswerType("yesno")))
    assert not all(pattern.fullmatch(text) for text in free), "the tiny model does not say yes/no by itself"


def test_the_mask_keeps_exactly_the_allowed_tokens(tiny):
    import numpy as np

    lm, tokenizer = tiny
    vocab = lm.manifest.architecture.vocab_size
    gate = constrain.AnswerConstraint(
        lm.model_dir / "tokenizer.json",
        vocab,
        tuple(lm.manifest.prompt.stop_token_ids),
        AnswerType("yesno"),
        [0],
    )
    logits = np.zeros((1, vocab), dtype=np.float32)
    gate.mask(logits, [0])
    allowed = {tokenizer.decode([t]) for t in np.flatnonzero(np.isfinite(logits[0]))}
    assert allowed, "something must be allowed"
    prefix = re.compile(r" ?(\*\*?)?(y(e(s)?)?|n(o)?|Y(e(s)?)?|N(o)?)?(\*\*?)?\.?")
    assert all(prefix.fullmatch(text) for text in allowed), allowed


def test_a_json_answer_is_a_document_valid_under_the_schema(tiny):
    import json

    jsonschema = pytest.importorskip("jsonschema")
    # Small: the tiny model's context is 256 tokens and the schema is in the prompt.
    schema = {"type": "object", "properties": {"go": {"type": "boolean"}}, "required": ["go"],
              "additionalProperties": False}  # fmt: skip
    answer_type = AnswerType("json", schema=json.dumps(schema, sort_keys=True, separators=(",", ":")))
    lm, tokenizer = tiny
    for budget in (0, 3):
        result = generate(
            lm, tokenizer, QUESTION, budget=budget, samples=3, seed=2, sampling=WARM, answer_type=answer_type,
            answer_tokens=24,
        )  # fmt: skip
        read = [s.value for s in result.samples if s.value is not None]
        assert read, "constrained samples read as documents"
        for value in read:
            jsonschema.validate(json.loads(value), schema)  # raises if the document breaks the schema
