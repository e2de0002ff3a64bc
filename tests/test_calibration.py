"""Calibration on the tiny model: one pass with answer probes gives, at every budget, exactly the
answers the runtime gives when run with that budget; files resume and refuse mixed settings."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from conftest import copy_entry
from test_stops import with_stops

from edgetts import evals, store
from edgetts.calibration import tables
from edgetts.calibration.calibrate import calibrate
from edgetts.calibration.runner import calibrate_question
from edgetts.errors import EdgeTTSError
from edgetts.runtime.generator import generate
from edgetts.runtime.sampling import SamplingParams
from edgetts.tts.answer_types import NUMBER, AnswerType

QUESTION = "Question: what is 12 plus 7?"
WARM = SamplingParams(temperature=1.0, top_p=0.95)
BUDGETS = [0, 3, 8, 20]


CONSTRAINED = [
    (AnswerType("yesno"), True),
    (AnswerType("choice", ("vacuum", "soft fingers", "magnetic")), True),
    (AnswerType("text"), True),
    (AnswerType("number"), True),
]


@pytest.mark.parametrize(
    ("answer_type", "constrained"), [(NUMBER, False), *CONSTRAINED], ids=lambda v: getattr(v, "kind", str(v))
)
@pytest.mark.parametrize("with_stop", [False, True], ids=["stop-tokens", "stop-string"])
def test_probes_equal_runs_at_each_budget(tiny, with_stop, answer_type, constrained):
    """Per answer type, with and without the grammar: a sample that ends its reasoning by itself
    is asked for its answer under the grammar (constrained), in calibration as at run time."""
    if constrained:
        pytest.importorskip("llguidance")
    lm, tok = tiny
    samples = 4
    typed = {"answer_type": answer_type, "constrain": constrained}
    if with_stop:
        # The commonest two-character piece of the samples' text: rows end there, at different steps.
        texts = [s.text for s in generate(lm, tok, QUESTION, budget=20, samples=samples, seed=5,
                                           sampling=WARM, anchor=False).samples]  # fmt: skip
        pairs = Counter(t[i : i + 2] for t in texts for i in range(len(t) - 1) if " " not in t[i : i + 2])
        with_stops(lm, [pairs.most_common(1)[0][0]])
    got = calibrate_question(
        lm, tok, QUESTION, BUDGETS, samples, answer_tokens=6, seed=5, params=WARM, **typed
    )
    values = set()
    ended = asked = 0
    for j, budget in enumerate(BUDGETS):
        # Calibration's sampled rows are the runtime's streams 0..K-1 drawn (anchor=False); an
        # anchored vote uses the greedy row and streams 1..N-1, exchangeable with them.
        run = generate(
            lm, tok, QUESTION, budget=budget, samples=samples, answer_tokens=6, seed=5, sampling=WARM,
            anchor=False, **typed,
        )  # fmt: skip
        expected = [s.value for s in run.samples]
        if not run.stopped_early:  # an early stop cancels votes that calibration still records
            assert [got.sampled[k][j] for k in range(samples)] == expected, f"budget {budget}"
        greedy = generate(lm, tok, QUESTION, budget=budget, samples=1, answer_tokens=6, **typed)
        assert got.greedy[j] == greedy.samples[0].value, f"greedy at budget {budget}"
        values.update(expected)
        ended += sum(len(s.think) < budget for s in run.samples)
        asked += sum(s.forced_by == "asked" for s in [*run.samples, *greedy.samples])
        if constrained and answer_type.kind != "number" and not run.stopped_early:
            # Every constrained answer reads, but one the stop string cut ("in" ending " in"):
            # a stop string ends the answer too, as llama.cpp's do.
            uncut = [s for s in [*run.samples, *greedy.samples] if not _stopped_in_answer(lm, tok, s)]
            assert all(s.value is not None for s in uncut), "a constrained answer reads"
    assert values - {None}, "the tiny model should give some numeric answers for this test to mean anything"
    assert max(len(t) for t in got.think_tokens) <= max(BUDGETS)
    if with_stop:
        assert ended, "some samples should end at the stop string for this test to mean anything"
        if constrained:
            assert asked, "samples that end by themselves are asked for their answer"


def _stopped_in_answer(lm, tok, sample) -> bool:
    return any(stop in tok.decode(sample.answer) for stop in lm.manifest.prompt.stop_strings)


def test_table_uses_greedy_for_one_sample_and_votes_for_more():
    first = {
        "index": 0,
        "reference": "5",
        "sampled": [["5", "5"], ["1", "5"], ["1", "5"]],
        "greedy": ["1", "5"],
    }
    second = {
        "index": 1,
        "reference": "2",
        "sampled": [["2", "2"], ["2", None], ["3", "2"]],
        "greedy": ["2", "2"],
    }
    calibration = tables.Calibration("m", "e", {"budgets": [0, 8], "samples": 3}, results=[first, second])
    table = calibration.table()
    assert table.at(0, 1) == 0.5 and table.at(8, 1) == 1.0  # greedy answers
    assert table.at(8, 3) == 1.0
    assert table.samples == [1, 2, 3, 4]  # the greedy answer plus up to K = 3 samples
    # budget 0, first question: greedy "1" plus all three samples (5, 1, 1) stays "1"
    assert table.at(0, 4) == 0.5
    # budget 0, N = 3: question 0 votes 1 (wrong), question 1 votes 2 (right)
    assert table.at(0, 3) == 0.5
    assert np.all(table.low <= table.mean) and np.all(table.mean <= table.high)


def test_calibrate_writes_resumes_and_refuses_mixed_settings(converted_tiny, edgetts_home, tmp_path):
    copy_entry(converted_tiny("llama", "fp32"), edgetts_home)
    eval_file = tmp_path / "sums.jsonl"
    lines = [{"question": f"Question: what is {a} plus 1?", "answer": f"#### {a + 1}"} for a in range(4)]
    eval_file.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    first = calibrate("llama-fp32", str(eval_file), limit=2, budgets=(0, 4), samples=2, answer_tokens=4)
    assert [r["index"] for r in first.results] == [0, 1]
    assert first.path == edgetts_home / "calibration" / "llama-fp32.sums.json"
    seen = []
    more = calibrate(
        "llama-fp32", str(eval_file), limit=3, budgets=(0, 4), samples=2, answer_tokens=4,
        on_question=lambda i, n: seen.append(i),
    )  # fmt: skip
    assert [r["index"] for r in more.results] == [0, 1, 2]
    assert more.results[:2] == first.results  # resumed, not recomputed
    loaded = tables.load("llama-fp32", "sums")
    assert loaded is not None and loaded.table().questions == 3
    (sitting,) = loaded.conditions["earlier"]  # the first sitting's conditions are kept
    assert sitting["date"] == first.conditions["date"] and sitting["questions_done"] == 2
    assert "earlier" not in first.conditions
    with pytest.raises(EdgeTTSError, match="other settings.*--restart"):
        calibrate("llama-fp32", str(eval_file), limit=1, budgets=(0, 8), samples=2)
    assert store.exists("llama-fp32")


def test_eval_files_and_bad_lines(tmp_path):
    good = tmp_path / "good.jsonl"
    good.write_text('{"question": "q1", "answer": "#### 1,200"}\n\n{"question": "q2", "answer": 7}\n')
    problems = evals.load(str(good))
    assert [(p.index, p.reference) for p in problems] == [(0, "1200"), (2, "7")]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q1"}\n')
    with pytest.raises(EdgeTTSError, match="bad.jsonl:1 is not a JSON object with 'question' and 'answer'"):
        evals.load(str(bad))
    with pytest.raises(EdgeTTSError, match="neither one of gsm8k, robotics nor a JSONL file"):
        evals.load(str(tmp_path / "missing.jsonl"))


def test_gsm8k_is_found_in_shared_or_skipped():
    try:
        problems = evals.load("gsm8k", start=500, limit=2)
    except EdgeTTSError as err:
        pytest.skip(f"GSM8K not on this machine: {err}")
    assert [p.index for p in problems] == [500, 501] and all(p.reference for p in problems)


def test_the_ladder_ships_measured_gsm8k_tables(edgetts_home):
    from edgetts.ladder import shipped_models

    ladder = [
        "smollm2-135m-int4", "smollm2-135m-int8", "gemma3-270m-int4", "gemma3-270m-int8",
        "qwen2.5-coder-0.5b-int4", "qwen2.5-coder-0.5b-int8",
    ]  # fmt: skip
    assert [rung[0] for rung in shipped_models()] == ladder
    for name, _, quant in shipped_models():
        calibration = tables.load(name, "gsm8k")
        assert calibration.source == "measured" and calibration.conditions["onnxruntime"]
        assert calibration.conditions["quant"] == quant
        assert [r["index"] for r in calibration.results] == list(range(500))  # questions 0-499
        table = calibration.table()
        assert table.budgets[0] == 0 and (quant == "int8" or table.budgets[:4] == [0, 32, 64, 128])
    qwen = tables.load("qwen2.5-coder-0.5b-int4", "gsm8k").table()
    most = max(qwen.samples)
    assert qwen.at(max(qwen.budgets), most) > qwen.at(0, most), "reasoning should pay on GSM8K"


def test_the_ladder_ships_constrained_robotics_tables_per_type(edgetts_home):
    from edgetts.evals import robotics
    from edgetts.ladder import shipped_models

    assert [rung[0] for rung in shipped_models("robotics")] == [rung[0] for rung in shipped_models()]
    for name, _, quant in shipped_models("robotics"):
        calibration = tables.load(name, "robotics")
        assert calibration.source == "measured" and calibration.constrained
        assert calibration.conditions["quant"] == quant and "seed" in calibration.conditions["eval_path"]
        indices = [r["index"] for r in calibration.results]
        assert indices == list(range(len(indices))) and max(indices) < robotics.TEST.start  # the train split
        assert calibration.kinds() == {"yesno": 48, "choice": 32, "number": 32, "text": 32}
        for kind in calibration.kinds():
            assert calibration.table_for(kind).questions == calibration.kinds()[kind]  # its own table
        unread = Counter()
        for result in calibration.results:  # constrained: every answer reads
            answers = [*result["greedy"], *(a for row in result["sampled"] for a in row)]
            unread[result["type"]] += sum(a is None for a in answers)
        # Calibrated while the number grammar still allowed "2000/0" (Qwen2.5: 4 of 800) and a text
        # word could be a lone "'" (SmolLM2: 1 of 800); both fixed since.
        assert unread["yesno"] == unread["choice"] == 0 and unread["text"] <= 1 and unread["number"] <= 4, (
            unread
        )


@pytest.mark.parametrize("with_stop", [False, True], ids=["stop-tokens", "stop-string"])
def test_program_probes_equal_runs_at_each_budget(tiny, monkeypatch, with_stop):
    """Program mode: calibration runs exactly the programs the runtime runs (the evaluator is
    replaced by one that answers with the length of the program it was given, so that the
    tiny model's gibberish still yields comparable values), and reads cut programs from the
    forced cue as the runtime does."""
    pytest.importorskip("asteval")
    from edgetts.tts import program

    monkeypatch.setattr(
        program, "run", lambda source, limits=None: program.Outcome(float(len(source)), None, 1, 0.0)
    )
    lm, tok = tiny
    samples, budgets = 4, [3, 8, 20]
    if with_stop:
        texts = [s.text for s in generate(lm, tok, QUESTION, budget=20, samples=samples, seed=5,
                                           sampling=WARM, anchor=False, mode="program").samples]  # fmt: skip
        pairs = Counter(t[i : i + 2] for t in texts for i in range(len(t) - 1) if " " not in t[i : i + 2])
        with_stops(lm, [pairs.most_common(1)[0][0]])
    got = calibrate_question(
        lm, tok, QUESTION, budgets, samples, answer_tokens=6, seed=5, params=WARM, mode="program"
    )
    ran = 0
    for j, budget in enumerate(budgets):
        run = generate(
            lm, tok, QUESTION, budget=budget, samples=samples, answer_tokens=6, seed=5, sampling=WARM,
            anchor=False, mode="program",
        )  # fmt: skip
        if not run.stopped_early:
            assert [got.sampled[k][j] for k in range(samples)] == [s.value for s in run.samples], budget
        greedy = generate(lm, tok, QUESTION, budget=budget, samples=1, answer_tokens=6, mode="program")
        assert got.greedy[j] == greedy.samples[0].value, f"greedy at budget {budget}"
        ran += sum(s.forced_by == "none" for s in [*run.samples, *greedy.samples])
    if with_stop:
        assert ran, "some programs should end by themselves and run for this test to mean anything"
    with pytest.raises(EdgeTTSError, match="budget 0"):
        calibrate_question(lm, tok, QUESTION, [0, 8], samples, mode="program")
