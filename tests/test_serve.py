"""`edgetts serve` for real: the Starlette app on uvicorn over loopback, driven by httpx, planning
over the tiny calibrated model. Every bad request gets a 4xx JSON error and the server keeps
serving; deadlines hold under concurrent requests or are refused with their code; a client that
disconnects cancels its work."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

httpx = pytest.importorskip("httpx")
uvicorn = pytest.importorskip("uvicorn")

from edgetts.serving.http import create_app  # noqa: E402
from edgetts.serving.local import LocalServer as Server  # noqa: E402

QUESTION = "count from 3:"  # the tiny model was trained to continue this with numbers
WAIT = 60.0


def wait_ready(client, timeout: float = WAIT):
    deadline = time.monotonic() + timeout
    while client.get("/health").status_code != 200:
        assert time.monotonic() < deadline, "the server did not finish warming up"
        time.sleep(0.02)


@pytest.fixture
def served(tiny_engine):
    server = Server(create_app(tiny_engine))
    with httpx.Client(base_url=server.url, timeout=WAIT) as client:
        wait_ready(client)
        yield client, tiny_engine
    server.stop()


def answered(response) -> dict:
    """A solve answer: 200 with a readable answer, or 502 no_answer carrying the run's JSON (the
    tiny model's weights are nearly random) — never a 200 with a silent null."""
    data = response.json()
    assert response.status_code in (200, 502), data
    if response.status_code == 502:
        assert data["answer"] is None and data["error"]["code"] == "no_answer"
    else:
        assert data["answer"] is not None
    assert {"config", "latency_ms", "queued_ms", "deadline_ms", "on_time", "votes", "tokens"} <= set(data)
    return data


def test_solve_answers_within_the_deadline_counted_from_arrival(served):
    client, _ = served
    data = answered(client.post("/v1/solve", json={"question": QUESTION, "latency_ms": 20_000}))
    assert data["on_time"] is True and data["latency_ms"] <= 20_000 and data["deadline_ms"] == 20_000
    assert data["config"]["model"] == "llama-fp32" and data["queued_ms"] >= 0
    # "mode" limits how it may be reasoned, as --mode does: direct answers at budget 0.
    direct = answered(
        client.post("/v1/solve", json={"question": QUESTION, "latency_ms": 20_000, "mode": "direct"})
    )
    assert direct["config"]["budget"] == 0
    steps = answered(
        client.post("/v1/solve", json={"question": QUESTION, "latency_ms": 20_000, "mode": ["steps"]})
    )
    assert steps["config"]["budget"] > 0 and steps["config"]["mode"] == "steps"


def test_health_answers_503_while_warming(tiny_engine):
    gate = threading.Event()
    real_warm = tiny_engine.warm

    def slow_warm(models=None):
        assert gate.wait(WAIT)
        return real_warm(models)

    tiny_engine.warm = slow_warm
    server = Server(create_app(tiny_engine))
    try:
        with httpx.Client(base_url=server.url, timeout=WAIT) as client:
            health = client.get("/health")
            assert health.status_code == 503 and health.json() == {"status": "warming"}
            early = client.post("/v1/solve", json={"question": QUESTION, "latency_ms": 5000})
            assert early.status_code == 503 and early.json()["error"]["code"] == "warming"
            gate.set()
            wait_ready(client)
            ok = client.get("/health").json()
            assert ok["status"] == "ok" and ok["startup_ms"] > 0
    finally:
        gate.set()
        server.stop()


def test_chat_completions_plain_n_and_planned(served):
    client, _ = served
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": QUESTION}]
    plain = client.post(
        "/v1/chat/completions", json={"model": "llama-fp32", "messages": messages, "max_tokens": 8}
    )
    assert plain.status_code == 200, plain.text
    body = plain.json()
    assert body["object"] == "chat.completion" and body["model"] == "llama-fp32"
    assert len(body["choices"]) == 1 and body["choices"][0]["message"]["role"] == "assistant"
    assert body["choices"][0]["finish_reason"] in ("stop", "length")
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
    assert usage["completion_tokens"] <= 8

    many = client.post(
        "/v1/chat/completions",
        json={
            "model": "llama-fp32",
            "messages": messages,
            "n": 3,
            "max_tokens": 6,
            "temperature": 1.0,
            "seed": 4,
        },
    ).json()
    assert [c["index"] for c in many["choices"]] == [0, 1, 2]
    assert many["edgetts"]["config"]["samples"] == 3

    budget = client.post(
        "/v1/chat/completions",
        json={"model": "llama-fp32", "messages": messages, "reasoning_budget_tokens": 2},
    ).json()
    assert budget["edgetts"]["config"]["budget"] == 2 and max(budget["edgetts"]["tokens"]["think"]) <= 2

    planned = client.post("/v1/chat/completions", json={"messages": messages, "latency_ms": 20_000})
    assert planned.status_code == 200, planned.text
    extension = planned.json()["edgetts"]
    assert extension["on_time"] is True and extension["deadline_ms"] == 20_000 and "predicted_ms" in extension


def test_chat_completions_stream_as_server_sent_events(served):
    client, _ = served
    request = {"model": "llama-fp32", "messages": [{"role": "user", "content": QUESTION}], "n": 2,
               "max_tokens": 6, "temperature": 1.0, "stream": True}  # fmt: skip
    with client.stream("POST", "/v1/chat/completions", json=request) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[len("data: ") :]) for line in lines[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = {0: "", 1: ""}
    for c in chunks:
        for choice in c["choices"]:
            text[choice["index"]] += choice["delta"].get("content", "")
    final = chunks[-1]
    assert final["choices"] == [] and final["usage"]["completion_tokens"] > 0
    samples = final["edgetts"]["samples"]
    for index in (0, 1):  # the streamed deltas spell what each sample said
        assert text[index].replace("\n", "") == samples[index].replace("\n", "")
    reasons = [ch["finish_reason"] for c in chunks[-2:-1] for ch in c["choices"]]
    assert len(reasons) == 2 and all(r in ("stop", "length") for r in reasons)


def test_models_and_metrics_move(served):
    client, _ = served
    names = [m["id"] for m in client.get("/v1/models").json()["data"]]
    assert names == ["auto", "llama-fp32"]
    before = client.get("/metrics").text
    client.post("/v1/solve", json={"question": QUESTION, "latency_ms": 20_000})
    client.post("/v1/solve", json={"question": QUESTION, "latency_ms": 0.001})
    after = client.get("/metrics").text
    assert 'edgetts_deadlines_total{result="hit"} 1.0' in after
    assert 'edgetts_refused_total{code="deadline_unreachable"} 1.0' in after
    assert "edgetts_latency_seconds_count 1.0" in after and "edgetts_queue_seconds_count 1.0" in after
    assert 'edgetts_tokens_total{kind="prompt"}' in after and "edgetts_queue_depth 0.0" in after
    assert 'edgetts_deadlines_total{result="hit"}' not in before


STEP_S = 0.02  # what every model call of the slowed tiny model takes, profile included


@pytest.fixture(scope="module")
def slow_server(tiny_service_home):
    """The tiny model slowed to ~20 ms a model call, profiled that way: its requests take a few
    hundred milliseconds, so deadlines of the same size make them compete for the worker, and
    thread switching (milliseconds) is small against them."""
    from edgetts import store
    from edgetts.engine import Engine
    from edgetts.profiling.device_profile import DeviceProfile
    from edgetts.profiling.profiler import profile_entry
    from edgetts.profiling.sweep import QUICK
    from edgetts.runtime.onnx_model import OnnxCausalLM

    home, _ = tiny_service_home
    run = OnnxCausalLM.run

    def slow_run(self, cache, input_ids):
        time.sleep(STEP_S)
        return run(self, cache, input_ids)

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EDGETTS_HOME", str(home))
        patch.setattr(OnnxCausalLM, "run", slow_run)
        model = profile_entry(store.get("llama-fp32"), QUICK, threads=1)
        profile = DeviceProfile({"id": "here"}, {"source": "measured"}, {"llama-fp32": model})
        engine = Engine(threads=1, profile=profile, eval_name="sums")
        server = Server(create_app(engine))
        yield server, engine, home
        server.stop()


@pytest.fixture
def slow_served(slow_server, monkeypatch):
    server, engine, home = slow_server
    monkeypatch.setenv("EDGETTS_HOME", str(home))  # the autouse fixture gave this test an empty one
    with httpx.Client(base_url=server.url, timeout=WAIT) as client:
        wait_ready(client)
        yield client, engine


@pytest.mark.parametrize("clients", [2, 4])
def test_concurrent_deadlines_are_kept_or_refused_with_the_code(slow_served, clients):
    client, engine = slow_served
    fastest_s = engine.plan(QUESTION, 60.0)[0].fastest_s
    # Deadlines of 1.2, 1.7, 2.2, 2.7 x the fastest plan: the first fits alone, the later ones
    # only if the queue ahead of them leaves room.
    latencies = [1000 * fastest_s * (1.2 + 0.5 * i) for i in range(clients)]
    barrier = threading.Barrier(clients)

    def ask(i: int):
        barrier.wait(WAIT)
        return client.post("/v1/solve", json={"question": QUESTION, "latency_ms": latencies[i], "seed": i})

    with ThreadPoolExecutor(clients) as pool:
        responses = list(pool.map(ask, range(clients)))
    served = 0
    for latency, response in zip(latencies, responses, strict=True):
        if response.status_code == 503:
            error = response.json()["error"]
            assert error["code"] == "deadline_unreachable" and error["fastest_ms"] > 0
        else:
            data = answered(response)
            assert data["on_time"] is True and data["latency_ms"] <= latency, data
            served += 1
    assert served >= 1, "the request due first fits on an empty queue"
    assert engine.pending() == 0


def test_a_client_that_disconnects_cancels_its_work(slow_served, monkeypatch):
    client, engine = slow_served
    started = threading.Event()
    real_generate = engine.generate
    seen: dict = {}

    def watched_generate(*args, **kwargs):
        started.set()
        seen["cancel"] = kwargs.get("cancel")
        return real_generate(*args, **kwargs)

    monkeypatch.setattr(engine, "generate", watched_generate)
    long = {"model": "llama-fp32", "messages": [{"role": "user", "content": QUESTION}],
            "reasoning_budget_tokens": -1, "n": 4}  # fmt: skip
    with pytest.raises(httpx.TimeoutException):
        client.post("/v1/chat/completions", json=long, timeout=httpx.Timeout(WAIT, read=0.5))
    assert started.wait(WAIT)
    deadline = time.monotonic() + WAIT
    while not seen["cancel"].is_set():
        assert time.monotonic() < deadline, "the disconnect did not cancel the request"
        time.sleep(0.01)
    after = answered(client.post("/v1/solve", json={"question": QUESTION, "latency_ms": 20_000}))
    # Uncancelled, the long request would hold the worker for its whole context (seconds).
    assert after["queued_ms"] < 1000, "the next request waited for the abandoned one"
    assert engine.pending() == 0


HI = [{"role": "user", "content": "hi"}]
AS_JSON = {"content-type": "application/json"}
BAD = [
    ("post", "/v1/solve", {"json": {"latency_ms": 1000}}, 400, "bad_request"),
    ("post", "/v1/solve", {"json": {"question": 7, "latency_ms": 1000}}, 400, "bad_request"),
    ("post", "/v1/solve", {"json": {"question": QUESTION, "latency_ms": "1s"}}, 400, "bad_request"),
    ("post", "/v1/solve", {"json": {"question": QUESTION, "latency_ms": -5}}, 400, "bad_request"),
    ("post", "/v1/solve", {"json": {"question": QUESTION, "latency_ms": 1e12}}, 400, "bad_request"),
    ("post", "/v1/solve", {"json": {"question": QUESTION}}, 400, "bad_request"),
    ("post", "/v1/solve", {"json": [1, 2]}, 400, "bad_request"),
    ("post", "/v1/solve", {"content": b"{not json", "headers": AS_JSON}, 400,
     "bad_request"),
    ("post", "/v1/solve", {"content": b"question=hi", "headers": {"content-type": "text/plain"}}, 415,
     "unsupported_media_type"),
    ("post", "/v1/solve", {"content": b"{" + b" " * (1 << 20) + b"}", "headers": AS_JSON},
     413, "body_too_large"),
    ("post", "/v1/chat/completions", {"json": {"model": "nope", "messages": HI}},
     404, "model_not_found"),
    ("post", "/v1/chat/completions", {"json": {"messages": HI}}, 400,
     "bad_request"),
    ("post", "/v1/chat/completions", {"json": {"model": "llama-fp32", "messages": []}}, 400, "bad_request"),
    ("post", "/v1/chat/completions", {"json": {"model": "llama-fp32", "messages": [{"role": "user"}]}}, 400,
     "bad_request"),
    ("post", "/v1/chat/completions",
     {"json": {"model": "llama-fp32", "messages": HI, "n": 0}}, 400, "bad_request"),
    ("post", "/v1/solve", {"json": {"question": QUESTION, "latency_ms": 500, "answer_type": "colour"}}, 400,
     "bad_request"),
    ("post", "/v1/solve", {"json": {"question": "Which?", "latency_ms": 500, "answer_type": "choice"}}, 400,
     "bad_request"),
    ("post", "/v1/solve", {"json": {"question": "Which?", "latency_ms": 500, "choices": ["a", "a"]}}, 400,
     "bad_request"),
    ("post", "/v1/solve", {"json": {"question": "Q?", "latency_ms": 500, "schema": {"type": "objekt"}}}, 400,
     "bad_request"),
    ("post", "/v1/solve", {"json": {"question": "Q?", "latency_ms": 50, "schema": "{}"}}, 400, "bad_request"),
    ("post", "/v1/solve", {"json": {"question": "Q?", "latency_ms": 50, "mode": "code"}}, 400, "bad_request"),
    ("post", "/v1/solve", {"json": {"question": "Q?", "latency_ms": 50, "mode": [1]}}, 400, "bad_request"),
    ("get", "/v1/solve", {}, 405, "method_not_allowed"),
    ("get", "/v2/nothing", {}, 404, "not_found"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "kwargs", "status", "code"), BAD)
def test_bad_requests_get_a_json_error_and_the_server_keeps_serving(
    served, method, path, kwargs, status, code
):
    client, _ = served
    response = getattr(client, method)(path, **kwargs)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["message"]
    assert client.get("/health").status_code == 200


def test_an_api_key_is_required_where_set(tiny_engine):
    server = Server(create_app(tiny_engine, api_key="sesame"))
    try:
        with httpx.Client(base_url=server.url, timeout=WAIT) as client:
            wait_ready(client)  # /health stays open (load balancers probe it)
            for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": "sesame"}):
                refused = client.post(
                    "/v1/solve", json={"question": QUESTION, "latency_ms": 5000}, headers=headers
                )
                assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
            assert client.get("/v1/models").status_code == 401
            good = client.get("/v1/models", headers={"authorization": "Bearer sesame"})
            assert good.status_code == 200
    finally:
        server.stop()


def test_serve_refuses_a_public_host_without_a_key(edgetts_home):
    from conftest import run_cli

    result = run_cli("serve", "--host", "0.0.0.0", "--models", "llama-fp32", home=edgetts_home)
    assert result.returncode == 1 and "set --api-key" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
