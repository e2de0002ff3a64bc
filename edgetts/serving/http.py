"""`edgetts serve`: the HTTP adapter over one Engine (Starlette on uvicorn, sse-starlette for
streams, prometheus-client for /metrics).

The adapter parses, validates and maps errors; planning, queueing and the deadline are the
engine's (one decode worker, earliest deadline first). A request's clock starts when its handler
is entered, before the body is read. Every failure is a JSON body ``{"error": {"code",
"message"}}`` with a 4xx/5xx status, and the server keeps serving:

| status | code | when |
| --- | --- | --- |
| 400 | bad_request | a field is missing, mistyped or out of range; the body is not JSON |
| 401 | unauthorized | ``--api-key`` is set and the request has no matching ``Bearer`` token |
| 404 | not_found / model_not_found | unknown path; a model that is not in the store |
| 405 | method_not_allowed | e.g. GET /v1/solve |
| 413 | body_too_large | a body over 1 MiB |
| 415 | unsupported_media_type | a body that is not ``application/json`` |
| 422 | infeasible | the energy cap excludes every configuration |
| 502 | no_answer | /v1/solve: no sample gave a readable answer (the run's JSON rides along) |
| 503 | deadline_unreachable | nothing fits in the time left after the queue ahead (``fastest_ms``) |
| 503 | warming | the engine is still loading (see /health) |
| 504 | deadline_missed | the answer came late (the run's JSON rides along); not with ``best_effort`` |
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import threading
import time
from concurrent.futures import CancelledError, Future
from typing import Any

from sse_starlette.sse import EventSourceResponse
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .. import store
from ..engine import Answer, Engine
from ..errors import DeadlineUnreachableError, EdgeTTSError, ModelNotFoundError
from ..runtime.sampling import SamplingParams
from ..runtime.stream_text import StreamText
from . import openai
from .metrics import Metrics
from .schema import ChatRequest, parse_chat, parse_solve

MAX_BODY_BYTES = 1 << 20
log = logging.getLogger("edgetts.serve")

STATUS = {
    "bad_request": 400, "unauthorized": 401, "not_found": 404, "model_not_found": 404,
    "method_not_allowed": 405, "body_too_large": 413, "unsupported_media_type": 415, "infeasible": 422,
    "no_answer": 502, "deadline_unreachable": 503, "warming": 503, "shutting_down": 503,
    "deadline_missed": 504, "cancelled": 499,
}  # fmt: skip


class HTTPError(Exception):
    def __init__(self, code: str, message: str, status: int | None = None, **extra: Any):
        super().__init__(message)
        self.code, self.message, self.status, self.extra = code, message, status or STATUS[code], extra


class ClientGone(Exception):
    """The client disconnected before its answer was ready; the request was cancelled."""


class Failure:
    """What a failed request is answered with (one per request: routes run concurrently)."""

    response: Response | None = None


def error_body(code: str, message: str, **extra: Any) -> dict:
    return {"error": {"code": code, "message": message, **extra}}


class Service:
    """The state behind the routes: the engine, what it plans over, the key, the counters."""

    def __init__(
        self, engine: Engine, models: list[str] | None = None, api_key: str | None = None, warm: bool = True
    ):
        self.engine, self.models, self.api_key = engine, models, api_key
        self.metrics = Metrics(engine.pending)
        self.ready = threading.Event()
        self.warm_error: str | None = None
        self.startup_s: float | None = None
        self.warm_on_start = warm

    def warm(self) -> None:
        """On a thread at start-up: /health answers 503 until it is done."""
        try:
            self.startup_s = self.engine.warm(self.models) if self.warm_on_start else 0.0
        except Exception as err:  # reported on /health; the process stays up to say so
            self.warm_error = str(err).splitlines()[0] if str(err) else type(err).__name__
            log.error("warm-up failed: %s", self.warm_error)
            return
        self.ready.set()

    # -- helpers every route uses ----------------------------------------------------------------

    def authorize(self, request: Request) -> None:
        if self.api_key is None:
            return
        given = request.headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), self.api_key.encode()
        ):
            raise HTTPError(
                "unauthorized", "this server needs an API key: send 'Authorization: Bearer <key>'"
            )

    def require_ready(self) -> None:
        if not self.ready.is_set():
            why = (
                f"warm-up failed: {self.warm_error}" if self.warm_error else "the engine is still warming up"
            )
            raise HTTPError("warming", f"{why}; see GET /health")

    async def read_json(self, request: Request) -> Any:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/json":
            raise HTTPError(
                "unsupported_media_type", f"send the body as application/json (got {kind or 'none'!r})"
            )
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
            raise HTTPError("body_too_large", f"the body is over {MAX_BODY_BYTES} bytes")
        body = bytearray()
        async for part in request.stream():
            body += part
            if len(body) > MAX_BODY_BYTES:
                raise HTTPError("body_too_large", f"the body is over {MAX_BODY_BYTES} bytes")
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError) as err:
            raise HTTPError("bad_request", f"the body is not valid JSON ({err})") from None

    def check_model(self, name: str | None) -> None:
        if name is not None and not store.exists(name):
            raise HTTPError("model_not_found", f"no model {name!r} in the store; GET /v1/models lists them")

    async def wait(self, request: Request, future: Future) -> Answer:
        """The answer, or ClientGone once the client disconnects (its request is cancelled then,
        which stops the decoding within one step and frees the queue)."""
        waiter = asyncio.wrap_future(future)
        gone = asyncio.ensure_future(_disconnected(request))
        try:
            await asyncio.wait({waiter, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
        if not waiter.done():
            future.cancel()
            waiter.cancel()
            raise ClientGone
        return waiter.result()

    # -- routes -----------------------------------------------------------------------------------

    async def solve(self, request: Request) -> Response:
        arrival = time.perf_counter()
        with self.failures("solve") as failed:
            self.authorize(request)
            self.require_ready()
            req = parse_solve(await self.read_json(request))
            future = self.engine.submit(
                req.question, req.latency_s, energy=req.energy_j, best_effort=req.best_effort, seed=req.seed,
                models=self.models, arrival=arrival, answer_type=req.answer_type, choices=req.choices,
                schema=req.schema, modes=req.modes,
            )  # fmt: skip
            answer = await self.wait(request, future)
            data = answer.to_json()
            self.metrics.answered("solve", data)
            if answer.text is None:
                return self.answer_error(data, "no_answer", "no sample gave a readable answer")
            if answer.on_time is False and not req.best_effort:
                return self.answer_error(data, "deadline_missed", "the answer came after the deadline")
            return JSONResponse(data)
        return failed.response

    async def chat(self, request: Request) -> Response:
        arrival = time.perf_counter()
        with self.failures("chat") as failed:
            self.authorize(request)
            self.require_ready()
            req = parse_chat(await self.read_json(request))
            self.check_model(req.model)
            if req.stream:
                return await self.stream(request, req, arrival)
            answer = await self.wait(request, self.submit_chat(req, arrival))
            body = openai.response(openai.completion_id(), answer)
            self.metrics.answered("chat", body["edgetts"])
            if answer.on_time is False and not req.best_effort:
                return JSONResponse(
                    {**body, **error_body("deadline_missed", "the answer came after the deadline")}, 504
                )
            return JSONResponse(body)
        return failed.response

    def submit_chat(self, req: ChatRequest, arrival: float, on_token=None, on_start=None) -> Future:
        """With ``latency_ms`` the planner chooses (model, budget, n) and the guard keeps the
        deadline; without it the request runs as given and needs a model."""
        if req.latency_s is not None:
            models = self.models if req.model is None else [req.model]
            return self.engine.submit(
                req.question, req.latency_s, best_effort=req.best_effort, seed=req.seed, models=models,
                on_token=on_token, on_start=on_start, arrival=arrival,
            )  # fmt: skip
        if req.model is None:
            raise HTTPError(
                "bad_request", "name a 'model' (GET /v1/models), or give 'latency_ms' and let edgetts choose"
            )
        sampling = None if req.temperature is None else SamplingParams(temperature=req.temperature)
        future = self.engine.submit_generate(
            req.question, req.model, budget=req.budget, samples=req.n, seed=req.seed,
            answer_tokens=req.answer_tokens, sampling=sampling, stop=req.stop, on_token=on_token,
            arrival=arrival,
        )  # fmt: skip
        if on_start is not None:
            on_start(None)
        return future

    async def stream(self, request: Request, req: ChatRequest, arrival: float) -> Response:
        """Server-sent chunks as OpenAI streams them, ``data: [DONE]`` last. Admission happens
        before the stream opens, so a refusal is a plain JSON error."""
        loop = asyncio.get_running_loop()
        events: asyncio.Queue = asyncio.Queue()

        def post(*event) -> None:
            loop.call_soon_threadsafe(events.put_nowait, event)

        future = self.submit_chat(
            req, arrival, on_token=lambda s, t: post("token", s, t), on_start=lambda c: post("start", c)
        )
        future.add_done_callback(lambda _f: post("done"))
        cid = openai.completion_id()

        async def chunks():
            model, text, opened = req.model or "auto", None, set()
            try:
                while True:
                    event = await events.get()
                    if event[0] == "done":
                        break
                    if event[0] == "start":
                        model = model if event[1] is None else event[1].model
                        text = StreamText(self.engine.tokenizer(model))
                        continue
                    _, sample, token = event
                    choice: dict[str, Any] = {"index": sample, "delta": {}, "finish_reason": None}
                    if sample not in opened:
                        opened.add(sample)
                        choice["delta"]["role"] = "assistant"
                    delta = text.delta(sample, token) if text is not None else ""
                    if delta or "role" in choice["delta"]:
                        choice["delta"]["content"] = delta
                        yield {"data": json.dumps(openai.chunk(cid, model, [choice]))}
                try:
                    answer = future.result()
                except CancelledError:
                    return
                except EdgeTTSError as err:
                    self.metrics.failed("chat", err.code)
                    yield {"data": json.dumps(error_body(err.code, str(err)))}
                    yield {"data": "[DONE]"}
                    return
                data = answer.to_json()
                self.metrics.answered("chat", data)
                reasons = openai.finish_reasons(answer)
                last = [{"index": i, "delta": {}, "finish_reason": r} for i, r in enumerate(reasons)]
                yield {"data": json.dumps(openai.chunk(cid, answer.config.model, last))}
                extra = {"usage": openai.usage(data)} if req.include_usage else {}
                yield {"data": json.dumps(openai.chunk(cid, answer.config.model, [], **extra, edgetts=data))}
                yield {"data": "[DONE]"}
            finally:
                future.cancel()  # the client went away mid-stream: stop decoding (no-op when done)

        return EventSourceResponse(chunks(), sep="\n")

    async def list_models(self, request: Request) -> Response:
        with self.failures("models") as failed:
            self.authorize(request)
            names = self.models or sorted(self.engine.device_profile().models)
            data = [{"id": "auto", "object": "model", "created": 0, "owned_by": "edgetts"}]
            data += [
                {"id": name, "object": "model", "created": 0, "owned_by": "edgetts"}
                for name in names
                if store.exists(name)
            ]
            return JSONResponse({"object": "list", "data": data})
        return failed.response

    async def health(self, request: Request) -> Response:
        if self.ready.is_set():
            startup = None if self.startup_s is None else round(1000 * self.startup_s, 1)
            return JSONResponse({"status": "ok", "startup_ms": startup, "pending": self.engine.pending()})
        if self.warm_error:
            return JSONResponse({"status": "error", "message": self.warm_error}, 503)
        return JSONResponse({"status": "warming"}, 503)

    async def metrics_page(self, request: Request) -> Response:
        with self.failures("metrics") as failed:
            self.authorize(request)
            return Response(self.metrics.render(), media_type="text/plain; version=0.0.4")
        return failed.response

    # -- error mapping ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def failures(self, endpoint: str):
        """Turn what a route raises into ``failed.response`` (a JSON error) and count it. A
        context manager rather than an exception handler, so that the metrics know the endpoint
        and every route reads straight through."""
        failed = Failure()
        try:
            yield failed
        except HTTPError as err:
            failed.response = JSONResponse(error_body(err.code, err.message, **err.extra), err.status)
            self.metrics.failed(endpoint, err.code)
        except ClientGone:
            failed.response = Response(status_code=499)
            self.metrics.failed(endpoint, "cancelled")
        except DeadlineUnreachableError as err:
            body = error_body(err.code, str(err), fastest_ms=round(err.fastest_ms, 1))
            failed.response = JSONResponse(body, STATUS[err.code], headers={"Retry-After": "1"})
            self.metrics.failed(endpoint, err.code)
        except ModelNotFoundError as err:
            failed.response = JSONResponse(error_body("model_not_found", str(err)), 404)
            self.metrics.failed(endpoint, "model_not_found")
        except EdgeTTSError as err:
            failed.response = JSONResponse(error_body(err.code, str(err)), STATUS.get(err.code, 400))
            self.metrics.failed(endpoint, err.code)
        except Exception as err:  # a bug: the caller still gets JSON, the log gets the traceback
            log.exception("%s failed", endpoint)
            failed.response = JSONResponse(error_body("internal", f"{type(err).__name__}: {err}"), 500)
            self.metrics.failed(endpoint, "internal")

    def answer_error(self, data: dict, code: str, message: str) -> Response:
        return JSONResponse({**data, **error_body(code, message)}, STATUS[code])


async def _disconnected(request: Request) -> None:
    """Returns when the client disconnects (after the body was read, uvicorn's ``receive``
    waits for exactly that)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "bad_request")
    return JSONResponse(
        error_body(code, f"{exc.detail}: {request.method} {request.url.path}"), exc.status_code
    )


def create_app(
    engine: Engine, models: list[str] | None = None, api_key: str | None = None, warm: bool = True
) -> Starlette:
    """The ASGI app. Warm-up starts with the app (a thread: /health answers 503 meanwhile);
    the engine's worker is closed when the app stops."""
    service = Service(engine, models, api_key, warm)

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        threading.Thread(target=service.warm, name="edgetts-warm", daemon=True).start()
        yield
        engine.close()

    app = Starlette(
        routes=[
            Route("/v1/solve", service.solve, methods=["POST"]),
            Route("/v1/chat/completions", service.chat, methods=["POST"]),
            Route("/v1/models", service.list_models, methods=["GET"]),
            Route("/health", service.health, methods=["GET"]),
            Route("/metrics", service.metrics_page, methods=["GET"]),
        ],
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.state.service = service
    return app
