"""Stop strings (a base model's "\\nQuestion:"): a sample ends at the first token whose text
completes one and its answer is read from the text before it (calibration's probes with stop
strings: test_calibration.py)."""

from __future__ import annotations

import dataclasses
import json
import shutil

from conftest import copy_entry, run_cli

from edgetts.converters.templates import BASE_STOP, prompt_format
from edgetts.runtime.generator import generate
from edgetts.runtime.stops import StopStrings
from edgetts.tts.answers import extract_answer

QUESTION = "Question: what is 12 plus 7?"


def with_stops(lm, strings: list[str]) -> None:
    lm.manifest.prompt = dataclasses.replace(lm.manifest.prompt, stop_strings=strings)


def _middle_word(text: str) -> str:
    """Three non-space characters from the middle of ``text``, else from its start (no edge
    spaces: a decoder may strip a leading space at the start of a slice)."""
    middle = len(text) // 2
    for start in [*range(middle, len(text) - 2), *range(middle)]:
        piece = text[start : start + 3]
        if not any(c.isspace() for c in piece):
            return piece
    raise AssertionError(f"no three non-space characters in {text!r}")


def test_hit_spans_tokens_and_trim_cuts_at_the_first_stop(tiny):
    _, tok = tiny
    ids = tok.encode("The sum is 19.\nQuestion: what is 3 plus 4?", add_special_tokens=False).ids
    stops = StopStrings(tok, ["\nQuestion:"])
    first = next(k for k in range(1, len(ids) + 1) if "\nQuestion:" in tok.decode(ids[:k]))
    lengths = range(1, len(ids) + 1)
    assert [stops.hit(ids[:k]) for k in lengths] == [k >= first for k in lengths]
    assert len(tok.decode(ids[first - 1 : first])) < len("\nQuestion:"), "the stop string should span tokens"
    assert stops.trim("19.\nQuestion: a\nQuestion: b") == "19."
    assert stops.trim("no stop here") == "no stop here"
    assert not StopStrings(tok, []).hit(ids) and StopStrings(tok, [""]).strings == []


def test_a_sample_ends_at_its_stop_string_and_answers_from_the_text_before(tiny):
    lm, tok = tiny
    full = generate(lm, tok, QUESTION, budget=40, samples=1).samples[0]
    stop = _middle_word(tok.decode(full.think))
    first = next(k for k in range(1, len(full.think) + 1) if stop in tok.decode(full.think[:k]))
    with_stops(lm, [stop])
    cut = generate(lm, tok, QUESTION, budget=40, samples=1).samples[0]
    thought = tok.decode(full.think[:first])
    assert cut.think == full.think[:first] and cut.answer == []
    assert cut.forced_by == "none"
    assert cut.text == thought[: thought.index(stop)]
    assert cut.value == extract_answer(cut.text)


def test_a_call_s_stop_strings_cut_like_the_model_s_and_leave_the_model_alone(tiny):
    lm, tok = tiny
    full = generate(lm, tok, QUESTION, budget=40, samples=1).samples[0]
    stop = _middle_word(tok.decode(full.think))
    with_stops(lm, [stop])
    by_model = generate(lm, tok, QUESTION, budget=40, samples=1).samples[0]
    with_stops(lm, [])
    by_call = generate(lm, tok, QUESTION, budget=40, samples=1, stop=[stop]).samples[0]
    assert (by_call.think, by_call.text) == (by_model.think, by_model.text) != (full.think, full.text)
    assert lm.manifest.prompt.stop_strings == []
    again = generate(lm, tok, QUESTION, budget=40, samples=1).samples[0]
    assert again.think == full.think, "a call's stop strings must not stay with the model"


def test_cli_generate_stop_option(converted_tiny, edgetts_home):
    copy_entry(converted_tiny("llama", "int4"), edgetts_home)
    args = ("generate", QUESTION, "-m", "llama-int4", "--budget", "12", "--json")
    result = run_cli(*args, home=edgetts_home)
    assert result.returncode == 0, result.stderr
    full = json.loads(result.stdout)["samples"][0]
    stop = _middle_word(full)
    result = run_cli(*args, "--stop", "never said", "--stop", stop, home=edgetts_home)
    assert result.returncode == 0, result.stderr
    cut = json.loads(result.stdout)["samples"][0]
    assert stop not in cut and full.startswith(cut) and len(cut) < len(full)


def test_a_model_without_chat_template_gets_the_question_frame_and_its_stop_string(tiny_models, tmp_path):
    chat_folder = tiny_models["llama"][0]
    assert prompt_format(chat_folder).stop_strings == []
    base = tmp_path / "base"
    shutil.copytree(chat_folder, base, ignore=shutil.ignore_patterns("*.safetensors", "chat_template.jinja"))
    config = json.loads((base / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (base / "tokenizer_config.json").write_text(json.dumps(config))
    fmt = prompt_format(base)
    assert (fmt.prefix, fmt.suffix, fmt.stop_strings) == ("Question: ", "\nAnswer:", [BASE_STOP])
