"""``edgetts ros2``: a ROS 2 node over one :class:`~edgetts.engine.Engine` (a thin adapter: parse,
validate, map errors; the engine's deadline queue plans and runs).

Interfaces, relative to the node's namespace (default ``/edgetts``, ``-r __ns:=/x`` moves it):

- topic ``question`` (std_msgs/String, JSON ``{"id", "question", "latency_ms"}``, optional
  ``best_effort``, ``seed``) -> topic ``answer`` (std_msgs/String, ``Answer.to_json()`` plus
  ``"id"``, or ``{"id", "error": {"code", "message"[, "fastest_ms"]}}``). A robot's nodes talk
  JSON over String so that no client needs edgetts' interface package to ask a question.
- action ``solve`` (edgetts_interfaces/action/Solve: goal question + latency_ms, feedback tokens
  so far, result the same answer JSON), cancellable, where the interface package is built
  (``tools/build_ros_interfaces.py``); without it the node serves the topics and says so.

Why nothing here blocks: generation runs on the engine's one decode worker thread. A question is
submitted from the subscription callback and its answer is published from the Future's done
callback (on the worker thread; rclpy publishers are thread-safe); an action goal's execute
callback is a coroutine that awaits an rclpy Future completed by that same done callback, so the
executor keeps serving other questions, goals and cancels meanwhile. A bad message gets an error
answer and one log line; the node lives on.

rclpy is imported only when a node is made (:func:`require_rclpy`), so that ``import edgetts``
never needs ROS.
"""

from __future__ import annotations

import json
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass
from typing import Any

from ..errors import DeadlineUnreachableError, EdgeTTSError
from .schema import BadRequestError as SchemaError
from .schema import parse_solve

NODE_NAME = "edgetts"
NAMESPACE = "/edgetts"
FEEDBACK_INTERVAL_S = 0.1  # action feedback at most this often (plus the first token and the end)
ANSWER_QUEUE_DEPTH = 50  # answers kept for a slow subscriber (each is one question's result)


class BadRequestError(SchemaError):
    """A question message that cannot be served as sent; ``request_id``: its id, where readable."""

    def __init__(self, message: str, request_id: object = None):
        super().__init__(message)
        self.request_id = request_id


@dataclass(frozen=True)
class Question:
    """One validated request (from the topic or an action goal)."""

    id: object
    question: str
    latency_s: float
    best_effort: bool = False
    seed: int = 0
    answer_type: str | None = None
    choices: tuple[str, ...] = ()
    schema: dict | None = None
    modes: tuple[str, ...] | None = None  # how it may be reasoned (None: every mode)


@dataclass(frozen=True)
class NodeSettings:
    """The node's ROS parameters (``--ros-args -p models:=a,b -p threads:=2 -p warm:=false``)."""

    models: list[str] | None  # None: whatever the engine's profile holds (the built-in ladder)
    threads: int | None
    warm: bool
    eval_name: str


def parse_question(text: str) -> Question:
    """The ``question`` topic's JSON, checked field by field; :class:`BadRequestError` otherwise
    (carrying the message's id where it has a readable one, so the asker can match the error)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise BadRequestError(f"the message is not JSON ({err.msg} at char {err.pos})") from None
    if not isinstance(data, dict):
        raise BadRequestError(f"the message is a JSON {type(data).__name__}, not an object")
    request_id = data.get("id")
    try:
        if "id" not in data:
            raise BadRequestError("'id' is missing")
        if not _is_id(request_id):
            raise BadRequestError(f"'id' must be a string or an integer, not {type(request_id).__name__}")
        return checked_question(request_id, data)
    except BadRequestError as err:
        err.request_id = request_id if _is_id(request_id) else None
        raise


def checked_question(request_id: object, fields: dict[str, Any]) -> Question:
    """Validate one request's fields as /v1/solve does (shared by the topic and the action goal)."""
    try:
        request = parse_solve(fields)
    except SchemaError as err:
        raise BadRequestError(str(err), request_id) from None
    return Question(
        request_id, request.question, request.latency_s, request.best_effort, request.seed,
        request.answer_type, request.choices, request.schema, request.modes,
    )  # fmt: skip


def _is_id(value: object) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def error_json(request_id: object, err: BaseException) -> dict[str, Any]:
    """The error answer: ``{"id", "error": {"code", "message"[, "fastest_ms"]}}``."""
    if isinstance(err, CancelledError) and not isinstance(err, EdgeTTSError):
        body: dict[str, Any] = {"code": "cancelled", "message": "the request was cancelled"}
    elif isinstance(err, EdgeTTSError):
        body = {"code": err.code, "message": str(err)}
        if isinstance(err, DeadlineUnreachableError):
            body["fastest_ms"] = round(err.fastest_ms, 1)
    else:  # a bug: the caller still gets an answer, the log gets the traceback
        body = {"code": "internal", "message": f"{type(err).__name__}: {err}"}
    return {"id": request_id, "error": body}


def answer_json(request_id: object, future: Future) -> dict[str, Any]:
    """A finished engine Future as the answer message (its answer, or its error)."""
    try:
        answer = future.result(timeout=0)
    except BaseException as err:  # CancelledError is a BaseException subclass on 3.8+
        return error_json(request_id, err)
    return {"id": request_id, **answer.to_json()}


def require_rclpy():
    """rclpy, or the one-line error that says how to get it."""
    try:
        import rclpy
    except ImportError as err:
        raise EdgeTTSError(
            "the ros2 extra is not installed: pip install 'edgetts[ros2]' "
            f"(rclpy could not be imported: {err})"
        ) from None
    return rclpy


def solve_action_type():
    """The ``Solve`` action type, or None where its interface package is not built."""
    try:
        from edgetts_interfaces.action import Solve
    except ImportError:
        return None
    return Solve


class EdgeTTSNode:
    """The ROS 2 node (an rclpy ``Node`` in ``self.node``: composition, so that this module
    imports without ROS). ``engine_factory(settings)`` makes the Engine from the node's
    parameters; the node warms it (parameter ``warm``) before it subscribes to anything, so the
    first question does not pay for loading."""

    def __init__(
        self,
        engine_factory: Callable[[NodeSettings], Any],
        *,
        context=None,
        node_name: str = NODE_NAME,
        namespace: str = NAMESPACE,
        parameter_overrides: Sequence[Any] | None = None,
    ):
        require_rclpy()
        from rclpy.node import Node
        from std_msgs.msg import String

        self._String = String
        overrides = list(parameter_overrides or [])
        self.node = Node(node_name, namespace=namespace, context=context, parameter_overrides=overrides)
        self.log = self.node.get_logger()
        self.settings = self._declare_parameters()
        self.engine = engine_factory(self.settings)
        if self.settings.warm:
            spent = self.engine.warm(self.settings.models)
            self.log.info(f"warmed the engine in {spent:.1f} s")
        self._goals: dict[bytes, Future] = {}
        self._goals_lock = threading.Lock()
        self.answers = self.node.create_publisher(String, "answer", ANSWER_QUEUE_DEPTH)
        self.questions = self.node.create_subscription(String, "question", self._on_question, 10)
        self.action_server = self._create_action_server()
        self.log.info(
            f"serving {self.node.get_namespace().rstrip('/')}/question -> answer"
            + (", action solve" if self.action_server is not None else "")
        )

    def _declare_parameters(self) -> NodeSettings:
        from rcl_interfaces.msg import ParameterDescriptor

        def declare(name: str, default, why: str):
            return self.node.declare_parameter(name, default, ParameterDescriptor(description=why)).value

        models = declare("models", "", "comma-separated store entries to plan over (empty: the ladder)")
        threads = declare("threads", 0, "intra-op threads (0: physical cores)")
        warm = declare("warm", True, "load and run every model once before accepting questions")
        eval_name = declare("eval", "gsm8k", "whose calibration tables the planner maximises")
        names = [name.strip() for name in str(models).split(",") if name.strip()]
        return NodeSettings(names or None, int(threads) or None, bool(warm), str(eval_name))

    # --- topic ---------------------------------------------------------------------------------

    def _on_question(self, message) -> None:
        """Validate, submit, return: the answer is published when the Future is done."""
        try:
            question = parse_question(message.data)
        except BadRequestError as err:
            self.log.warning(f"bad question message: {err}")
            self._publish(error_json(err.request_id, err))
            return
        try:
            future = self._submit(question)
        except Exception as err:  # refused at admission (deadline, bad input): answered at once
            self._log_refusal(question.id, err)
            self._publish(error_json(question.id, err))
            return
        future.add_done_callback(lambda done: self._publish(self._answer(question.id, done)))

    def _answer(self, request_id: object, future: Future) -> dict[str, Any]:
        """A finished request's answer message; a failure that is not the user's (a bug) is
        logged with its traceback, so that it gets reported."""
        payload = answer_json(request_id, future)
        if payload.get("error", {}).get("code") == "internal":
            err = future.exception(timeout=0)
            self.log.error(
                f"question {request_id!r} failed: "
                + "".join(traceback.format_exception(type(err), err, err.__traceback__)).rstrip()
            )
        return payload

    def _submit(self, question: Question, on_token=None) -> Future:
        return self.engine.submit(
            question.question, question.latency_s, best_effort=question.best_effort, seed=question.seed,
            on_token=on_token, models=self.settings.models, answer_type=question.answer_type,
            choices=question.choices, schema=question.schema, modes=question.modes,
        )  # fmt: skip

    def _log_refusal(self, request_id: object, err: Exception) -> None:
        if isinstance(err, EdgeTTSError):
            self.log.info(f"question {request_id!r} refused: {err}")
        else:
            self.log.error(f"question {request_id!r} failed: {type(err).__name__}: {err}")

    def _publish(self, payload: dict[str, Any]) -> None:
        """Called on the executor (errors) or the decode worker (answers)."""
        try:
            self.answers.publish(self._String(data=json.dumps(payload)))
        except Exception as err:  # the context shut down under a late answer: nobody is listening
            self.log.debug(f"answer {payload.get('id')!r} not published: {err}")

    # --- action --------------------------------------------------------------------------------

    def _create_action_server(self):
        solve = solve_action_type()
        if solve is None:
            self.log.warning(
                "action solve is off: its interface package edgetts_interfaces is not built "
                "(python tools/build_ros_interfaces.py); the question/answer topics work"
            )
            return None
        from rclpy.action import ActionServer, CancelResponse

        self._Solve = solve
        return ActionServer(
            self.node, solve, "solve", self._execute_goal,
            cancel_callback=lambda goal: self._cancel_goal(goal, CancelResponse),
        )  # fmt: skip

    def _cancel_goal(self, goal_handle, responses):
        """Accept and stop the decode within one step; the execute coroutine then reports it."""
        with self._goals_lock:
            future = self._goals.get(bytes(goal_handle.goal_id.uuid))
        if future is not None:
            future.cancel()
        return responses.ACCEPT

    async def _execute_goal(self, goal_handle):
        """A coroutine: it awaits the engine's answer without holding an executor thread."""
        from rclpy.task import Future as RosFuture

        goal, goal_id = goal_handle.request, bytes(goal_handle.goal_id.uuid)
        request_id = goal_id.hex()
        result = self._Solve.Result()
        if goal_handle.is_cancel_requested:  # cancelled before it started
            goal_handle.canceled()
            result.answer_json = json.dumps(error_json(request_id, CancelledError()))
            return result
        try:
            fields = {"question": goal.question, "latency_ms": goal.latency_ms}
            fields |= {"best_effort": goal.best_effort, "seed": goal.seed}
            question = checked_question(request_id, fields)
            feedback = _Feedback(goal_handle, self._Solve.Feedback, self.log)
            future = self._submit(question, on_token=feedback)
        except Exception as err:
            self._log_refusal(request_id, err)
            goal_handle.abort()
            result.answer_json = json.dumps(error_json(request_id, err))
            return result
        with self._goals_lock:
            self._goals[goal_id] = future
        executor = self.node.executor
        done = RosFuture(executor=executor)

        def finished(_future: Future) -> None:  # on the decode worker
            done.set_result(True)
            # rclpy polls an awaiting coroutine only when its executor wakes up, and completing
            # a Future from another thread does not wake it: say that something changed.
            if executor is not None:
                executor.wake()

        future.add_done_callback(finished)
        try:
            await done
        finally:
            with self._goals_lock:
                self._goals.pop(goal_id, None)
        payload = self._answer(request_id, future)
        feedback.send()  # the final count, whatever the throttle held back
        result.answer_json = json.dumps(payload)
        if "error" not in payload:
            goal_handle.succeed()
        elif payload["error"]["code"] == "cancelled" and goal_handle.is_cancel_requested:
            goal_handle.canceled()
        else:
            goal_handle.abort()
        return result

    def destroy(self) -> None:
        """Cancel what is running for goals, close the engine, leave the graph."""
        with self._goals_lock:
            running = list(self._goals.values())
        for future in running:
            future.cancel()
        self.engine.close()
        if self.action_server is not None:
            self.action_server.destroy()
        self.node.destroy_node()


class _Feedback:
    """A goal's ``on_token``: counts tokens on the worker thread and publishes the count on the
    first token and then at most every FEEDBACK_INTERVAL_S (a DDS write per token would slow the
    decode it reports on); :meth:`send` publishes the final count."""

    def __init__(self, goal_handle, feedback_type, log):
        self.goal_handle, self.feedback_type, self.log = goal_handle, feedback_type, log
        self.tokens = 0
        self._sent_at = 0.0

    def __call__(self, _sample: int, _token: int) -> None:
        self.tokens += 1
        now = time.monotonic()
        if self.tokens == 1 or now - self._sent_at >= FEEDBACK_INTERVAL_S:
            self._sent_at = now
            self.send()

    def send(self) -> None:
        try:
            self.goal_handle.publish_feedback(self.feedback_type(tokens=min(self.tokens, 2**32 - 1)))
        except Exception as err:  # the goal ended or the context is shutting down
            self.log.debug(f"feedback not published: {err}")


def spin(
    engine_factory: Callable[[NodeSettings], Any], ros_args: Sequence[str], parameter_overrides=()
) -> None:
    """Initialise rclpy with ``ros_args`` (``--ros-args ...``), serve until Ctrl-C or shutdown.
    ``parameter_overrides`` (rclpy Parameters, from the CLI's options) win over ``-p`` ones."""
    rclpy = require_rclpy()
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions

    context = rclpy.Context()
    # rclpy installs its SIGINT/SIGTERM handlers (shut the context down, so that spin returns
    # and the engine is closed) only for the default context unless asked.
    rclpy.init(args=["edgetts", *ros_args], context=context, signal_handler_options=SignalHandlerOptions.ALL)
    node = None
    try:
        node = EdgeTTSNode(engine_factory, context=context, parameter_overrides=parameter_overrides)
        # One thread is enough: no callback blocks (see the module docstring), and it keeps a
        # goal's cancel and its execute coroutine in order.
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node.node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy()
        rclpy.try_shutdown(context=context)
