"""Engine.warm / submit / solve on the tiny calibrated model: the clock starts at the call, an
unmeetable deadline is refused at once with the fastest time, a cancelled request stops within
a step and frees the worker, and requests as given queue behind those with deadlines."""

from __future__ import annotations

import threading
from concurrent.futures import CancelledError

import pytest

from edgetts.errors import DeadlineUnreachableError, EdgeTTSError, RequestCancelledError

QUESTION = "Question: what is 12 plus 7?"
WAIT = 60


def test_warm_loads_what_planning_and_the_first_request_need(tiny_engine):
    seconds = tiny_engine.warm()
    assert seconds > 0
    assert ("llama-fp32", 1) in tiny_engine._models, "the model the planner may choose is loaded (1 thread)"
    answer = tiny_engine.solve(QUESTION, latency=30.0)
    assert answer.queued_ms is not None and answer.queued_ms >= 0
    data = answer.to_json()
    assert "queued_ms" in data and data["latency_ms"] >= data["prefill_ms"] + data["decode_ms"] - 1


def test_an_unmeetable_deadline_is_refused_at_submit_with_the_fastest_time(tiny_engine):
    tiny_engine.warm()
    with pytest.raises(DeadlineUnreachableError) as refused:
        tiny_engine.submit(QUESTION, 0.000_01)
    assert refused.value.code == "deadline_unreachable" and refused.value.fastest_ms > 0.01
    best = tiny_engine.submit(QUESTION, 0.000_01, best_effort=True).result(WAIT)
    assert best.config.model == "llama-fp32"
    assert best.on_time is False and best.reason in ("deadline", "no_answer")
    assert best.to_json()["reason"] == best.reason


@pytest.mark.parametrize(
    ("question", "latency", "message"),
    [
        ("", 1.0, "question is empty"),
        (QUESTION, 0, "not positive"),
        (QUESTION, -2.0, "not positive"),
        (QUESTION, float("nan"), "not a number"),
        (QUESTION, "2s", "not a number"),
        (QUESTION, 5000.0, "meant in milliseconds"),
    ],
)
def test_bad_requests_fail_at_submit(tiny_engine, question, latency, message):
    with pytest.raises(EdgeTTSError, match=message):
        tiny_engine.submit(question, latency)


def test_cancel_stops_a_running_request_within_a_step_and_the_next_one_runs(tiny_engine):
    tiny_engine.warm()
    first_token = threading.Event()
    tokens: list[int] = []

    def on_token(sample: int, token: int) -> None:
        tokens.append(token)
        first_token.set()

    # As given (no plan): a long budget that would take far longer than the test waits.
    running = tiny_engine.submit_generate(QUESTION, "llama-fp32", budget=-1, samples=2, on_token=on_token)
    assert first_token.wait(WAIT)
    said = len(tokens)
    assert running.cancel() is False  # already running: stopped by its event, not by the Future
    with pytest.raises(CancelledError) as stopped:
        running.result(WAIT)
    assert isinstance(stopped.value, RequestCancelledError)
    assert len(tokens) <= said + 2, "the cancelled request said at most one more step's tokens (2 rows)"
    answer = tiny_engine.solve(QUESTION, latency=30.0)
    assert answer.samples, "the worker is free for the next request"


def test_submitted_requests_report_their_wait_in_the_queue(tiny_engine):
    tiny_engine.warm()
    futures = [tiny_engine.submit(QUESTION, 30.0, seed=i) for i in range(3)]
    answers = [f.result(WAIT) for f in futures]
    assert all(a.queued_ms is not None for a in answers)
    assert answers[2].queued_ms >= answers[0].queued_ms, "the third waited for the first two"
    for answer in answers:
        assert answer.latency_ms <= 30_000


def test_the_answer_type_is_inferred_or_given_and_reported(tiny_engine):
    tiny_engine.warm()
    yesno = tiny_engine.solve("Is 12 plus 7 more than 15?", latency=30.0).to_json()
    assert yesno["answer_type"] == "yesno" and yesno["answer"] in (None, "yes", "no")
    choice = tiny_engine.solve("What is 12 plus 7?", latency=30.0, choices=["19", "20"]).to_json()
    assert choice["answer_type"] == "choice" and choice["answer"] in (None, "A", "B")
    assert choice["answer_text"] in (None, "A) 19", "B) 20")
    assert tiny_engine.solve(QUESTION, latency=30.0).to_json()["answer_type"] == "number"
    with pytest.raises(EdgeTTSError, match="a choice answer needs options"):
        tiny_engine.submit("Which way?", 30.0, answer_type="choice")


def test_stream_yields_each_samples_text_then_the_answer(tiny_engine):
    from edgetts import Answer, Delta

    tiny_engine.warm()
    events = list(tiny_engine.stream(QUESTION, 30.0, seed=3))
    *deltas, answer = events
    assert isinstance(answer, Answer) and all(isinstance(d, Delta) for d in deltas) and deltas
    said: dict[int, str] = {}
    for delta in deltas:
        said[delta.sample] = said.get(delta.sample, "") + delta.text
    assert sorted(said) == list(range(answer.config.samples))
    for sample, text in said.items():
        # What was streamed is what the sample said: its reasoning and answer tokens (the answer
        # keeps "\n" apart from the reasoning and the engine's forcing text is not streamed; a
        # stop string the answer trims was streamed as the model said it).
        squeezed = "".join(answer.samples[sample].split())
        assert "".join(text.split()).startswith(squeezed), (sample, text, answer.samples[sample])


def test_leaving_a_stream_early_cancels_its_request(tiny_engine):
    tiny_engine.warm()
    stream = tiny_engine.stream(QUESTION, 30.0)
    first = next(stream)
    assert first.text
    stream.close()  # the request is cancelled; the worker takes the next one
    assert tiny_engine.solve(QUESTION, latency=30.0).samples
