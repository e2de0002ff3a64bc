"""`edgetts ros2` on real rclpy: the node and a client in one process, one ROS context per test,
on a ROS domain of this run's own (ROS_DOMAIN_ID if set, else a random one) and localhost-only
discovery, so that parallel runs do not hear each other. Every wait has a timeout; nothing asserts
on speed. The message checks at the top need no ROS."""

from __future__ import annotations

import json
import os
import queue
import random
import threading
import time
import uuid

import pytest
from click.testing import CliRunner

from edgetts.errors import EdgeTTSError
from edgetts.serving.ros2 import BadRequestError, parse_question, solve_action_type
from edgetts.serving.schema import MAX_LATENCY_MS

QUESTION = "Question: what is 12 plus 7?"
WAIT_S = 120.0  # generous: the machine is shared; a healthy run takes well under a second per wait

try:
    import rclpy  # noqa: F401

    HAVE_RCLPY = True
except ImportError:
    HAVE_RCLPY = False
needs_rclpy = pytest.mark.skipif(not HAVE_RCLPY, reason="rclpy is not installed: pip install 'edgetts[ros2]'")
needs_action = pytest.mark.skipif(
    not HAVE_RCLPY or solve_action_type() is None,
    reason="edgetts_interfaces is not built (python tools/build_ros_interfaces.py)",
)
DOMAIN_ID = int(os.environ.get("ROS_DOMAIN_ID") or random.randint(1, 100))


# --- messages (no ROS) ------------------------------------------------------------------------


def test_a_good_message_parses():
    q = parse_question(json.dumps({"id": "a", "question": "2+2?", "latency_ms": 500, "seed": 3}))
    assert (q.id, q.question, q.latency_s, q.best_effort, q.seed) == ("a", "2+2?", 0.5, False, 3)
    assert q.modes is None  # every mode with a table, as --mode auto
    limited = parse_question(
        json.dumps({"id": 1, "question": "2+2?", "latency_ms": 500, "mode": "direct,program"})
    )
    assert limited.modes == ("direct", "program")


@pytest.mark.parametrize(
    ("text", "request_id", "says"),
    [
        ("not json", None, "not JSON"),
        ("[1, 2]", None, "not an object"),
        ('{"question": "q", "latency_ms": 5}', None, "'id' is missing"),
        ('{"id": [1], "question": "q", "latency_ms": 5}', None, "'id' must be"),
        ('{"id": 7, "latency_ms": 5}', 7, "'question' is missing"),
        ('{"id": 7, "question": "  ", "latency_ms": 5}', 7, "empty"),
        ('{"id": 7, "question": 3, "latency_ms": 5}', 7, "'question' must be a string"),
        ('{"id": "x", "question": "q"}', "x", "'latency_ms' is missing"),
        ('{"id": "x", "question": "q", "latency_ms": "5s"}', "x", "must be a number"),
        ('{"id": "x", "question": "q", "latency_ms": true}', "x", "must be a number"),
        ('{"id": "x", "question": "q", "latency_ms": 0}', "x", "positive"),
        ('{"id": "x", "question": "q", "latency_ms": -3}', "x", "positive"),
        ('{"id": "x", "question": "q", "latency_ms": NaN}', "x", "must be a number"),
        (json.dumps({"id": "x", "question": "q", "latency_ms": MAX_LATENCY_MS + 1}), "x", "over an hour"),
        ('{"id": "x", "question": "q", "latency_ms": 5, "best_effort": "yes"}', "x", "best_effort"),
        ('{"id": "x", "question": "q", "latency_ms": 5, "seed": -1}', "x", "seed"),
        ('{"id": "x", "question": "q", "latency_ms": 5, "mode": "fast"}', "x", "'mode': 'fast': use auto"),
    ],
)
def test_bad_messages_are_refused_with_their_id(text, request_id, says):
    with pytest.raises(BadRequestError, match=says) as caught:
        parse_question(text)
    assert caught.value.request_id == request_id and caught.value.code == "bad_request"


def test_without_rclpy_the_command_says_how_to_install_it(monkeypatch):
    import sys

    from edgetts.cli_ros2 import ros2

    monkeypatch.setitem(sys.modules, "rclpy", None)  # `import rclpy` raises ImportError
    result = CliRunner().invoke(ros2, ["--no-warm"])
    assert isinstance(result.exception, EdgeTTSError)
    assert "pip install 'edgetts[ros2]'" in str(result.exception)


# --- the node on real rclpy ---------------------------------------------------------------------


class Client:
    """A second node in the same context: asks on the topic, collects answers by id."""

    def __init__(self, context, namespace: str = "/edgetts"):
        from rclpy.node import Node
        from std_msgs.msg import String

        self.String = String
        self.node = Node(f"client_{uuid.uuid4().hex[:8]}", context=context)
        self.answers: queue.Queue[dict] = queue.Queue()
        self.questions = self.node.create_publisher(String, f"{namespace}/question", 10)
        self.node.create_subscription(
            String, f"{namespace}/answer", lambda m: self.answers.put(json.loads(m.data)), 50
        )

    def wait_connected(self, server) -> None:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            if self.questions.get_subscription_count() and server.answers.get_subscription_count():
                return
            time.sleep(0.05)
        pytest.fail("the client and the node did not discover each other")

    def ask(self, payload: dict | str) -> None:
        text = payload if isinstance(payload, str) else json.dumps(payload)
        self.questions.publish(self.String(data=text))

    def next_answer(self) -> dict:
        try:
            return self.answers.get(timeout=WAIT_S)
        except queue.Empty:
            pytest.fail(f"no answer within {WAIT_S} s")

    def answer_for(self, request_id) -> dict:
        while True:
            answer = self.next_answer()
            if answer.get("id") == request_id:
                return answer


@pytest.fixture
def ros(tiny_engine, monkeypatch):
    """Start a context (optionally with ``--ros-args``), the node on the tiny engine and a client,
    spun by one executor thread; everything is torn down after the test."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions

    from edgetts.serving.ros2 import EdgeTTSNode

    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    started = []

    def start(ros_args: list[str] | None = None, namespace: str = "/edgetts"):
        context = rclpy.Context()
        rclpy.init(
            args=["edgetts", *(ros_args or [])], context=context, domain_id=DOMAIN_ID,
            signal_handler_options=SignalHandlerOptions.NO,
        )  # fmt: skip
        server = EdgeTTSNode(lambda _settings: tiny_engine, context=context)
        client = Client(context, namespace)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(server.node)
        executor.add_node(client.node)
        thread = threading.Thread(target=executor.spin, daemon=True)
        thread.start()
        started.append((context, server, client, executor, thread))
        client.wait_connected(server)
        return server, client

    yield start
    for context, server, client, executor, thread in started:
        executor.shutdown(timeout_sec=10)
        thread.join(timeout=10)
        server.destroy()
        client.node.destroy_node()
        rclpy.try_shutdown(context=context)


@needs_rclpy
def test_a_question_on_the_topic_gets_its_answer(ros):
    server, client = ros()
    assert server.settings.warm and server.node.get_namespace() == "/edgetts"
    client.ask({"id": "q1", "question": QUESTION, "latency_ms": 30_000})
    answer = client.answer_for("q1")
    assert "error" not in answer, answer
    assert answer["config"]["model"] == "llama-fp32" and "answer" in answer
    assert answer["latency_ms"] <= 30_000 and answer["queued_ms"] >= 0
    assert {"tokens", "votes", "predicted_ms", "forced_by"} <= set(answer)


@needs_rclpy
def test_malformed_messages_get_error_answers_and_the_node_lives_on(ros, caplog):
    _server, client = ros()
    client.ask("this is not JSON")
    refused = client.next_answer()
    assert refused["id"] is None and refused["error"]["code"] == "bad_request"
    assert "not JSON" in refused["error"]["message"]
    client.ask({"id": 5, "question": QUESTION, "latency_ms": -1})
    assert client.answer_for(5)["error"]["code"] == "bad_request"
    client.ask({"id": "long", "question": QUESTION, "latency_ms": 2 * MAX_LATENCY_MS})
    assert "over an hour" in client.answer_for("long")["error"]["message"]
    client.ask({"id": "typed", "question": ["not", "text"], "latency_ms": 1000})
    assert client.answer_for("typed")["error"]["code"] == "bad_request"

    client.ask({"id": "after", "question": QUESTION, "latency_ms": 30_000})
    answer = client.answer_for("after")
    assert "error" not in answer and answer["config"]["model"] == "llama-fp32"


@needs_rclpy
def test_a_deadline_nobody_can_meet_is_refused_at_once(ros):
    _server, client = ros()
    client.ask({"id": "too-fast", "question": QUESTION, "latency_ms": 0.001})
    error = client.answer_for("too-fast")["error"]
    assert error["code"] == "deadline_unreachable"
    assert error["fastest_ms"] > 0.001 and error["message"]


@needs_rclpy
def test_the_namespace_follows_ros_args(ros):
    server, client = ros(["--ros-args", "-r", "__ns:=/robot7", "-p", "warm:=false"], namespace="/robot7")
    assert server.node.get_namespace() == "/robot7" and not server.settings.warm
    client.ask({"id": "ns", "question": QUESTION, "latency_ms": 30_000})
    assert "error" not in client.answer_for("ns")


@needs_rclpy
def test_without_the_interface_package_the_topics_still_work(ros, monkeypatch):
    import edgetts.serving.ros2 as ros2_module

    monkeypatch.setattr(ros2_module, "solve_action_type", lambda: None)
    server, client = ros(["--ros-args", "-p", "warm:=false"])
    assert server.action_server is None
    client.ask({"id": "plain", "question": QUESTION, "latency_ms": 30_000})
    assert "error" not in client.answer_for("plain")


def _wait(future, what: str):
    deadline = time.monotonic() + WAIT_S
    while not future.done():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: nothing within {WAIT_S} s")
        time.sleep(0.01)
    return future.result()


def _action_client(client: Client, solve):
    from rclpy.action import ActionClient

    action = ActionClient(client.node, solve, "/edgetts/solve")
    assert action.wait_for_server(timeout_sec=WAIT_S), "the solve action server did not appear"
    return action


@needs_action
def test_the_solve_action_gives_feedback_and_the_answer(ros):
    from action_msgs.msg import GoalStatus

    solve = solve_action_type()
    _server, client = ros()
    action = _action_client(client, solve)
    feedback: list[int] = []
    goal = solve.Goal(question=QUESTION, latency_ms=30_000.0)
    sent = action.send_goal_async(goal, feedback_callback=lambda m: feedback.append(m.feedback.tokens))
    handle = _wait(sent, "goal response")
    assert handle.accepted
    done = _wait(handle.get_result_async(), "result")
    assert done.status == GoalStatus.STATUS_SUCCEEDED
    answer = json.loads(done.result.answer_json)
    assert "error" not in answer and answer["config"]["model"] == "llama-fp32"
    deadline = time.monotonic() + WAIT_S
    while not feedback and time.monotonic() < deadline:
        time.sleep(0.01)
    assert feedback and feedback[-1] >= 1, "no token feedback arrived"

    refused = _wait(action.send_goal_async(solve.Goal(question=QUESTION, latency_ms=0.001)), "goal response")
    done = _wait(refused.get_result_async(), "result")
    assert done.status == GoalStatus.STATUS_ABORTED
    assert json.loads(done.result.answer_json)["error"]["code"] == "deadline_unreachable"

    bad = _wait(action.send_goal_async(solve.Goal(question=" ", latency_ms=1000.0)), "goal response")
    done = _wait(bad.get_result_async(), "result")
    assert done.status == GoalStatus.STATUS_ABORTED
    assert json.loads(done.result.answer_json)["error"]["code"] == "bad_request"


@needs_action
def test_cancelling_a_goal_stops_its_decode(ros, tiny_engine, monkeypatch):
    """Each token is made slow (the test's on_token wrapper), so the goal is still decoding when
    the client cancels it after the first feedback."""
    from action_msgs.msg import GoalStatus

    submit = tiny_engine.submit

    def slow_submit(*args, on_token=None, **kwargs):
        def slow(sample: int, token: int) -> None:
            if on_token is not None:
                on_token(sample, token)
            time.sleep(0.5)

        return submit(*args, on_token=slow, **kwargs)

    monkeypatch.setattr(tiny_engine, "submit", slow_submit)
    solve = solve_action_type()
    _server, client = ros(["--ros-args", "-p", "warm:=false"])
    action = _action_client(client, solve)
    first_token = threading.Event()
    goal = solve.Goal(question=QUESTION, latency_ms=600_000.0)
    sent = action.send_goal_async(goal, feedback_callback=lambda _m: first_token.set())
    handle = _wait(sent, "goal response")
    assert handle.accepted
    assert first_token.wait(WAIT_S), "no feedback while decoding"
    _wait(handle.cancel_goal_async(), "cancel response")
    done = _wait(handle.get_result_async(), "result")
    assert done.status == GoalStatus.STATUS_CANCELED
    assert json.loads(done.result.answer_json)["error"]["code"] == "cancelled"


@needs_rclpy
def test_the_command_sets_up_serves_and_stops_on_ctrl_c(tiny_service_home, tmp_path):
    """`edgetts ros2` in its own process: plans with this device's saved profile, warms, serves in
    the namespace its --ros-args name, and exits cleanly (code 0, engine closed) on SIGINT."""
    import shutil
    import signal
    import subprocess
    import sys

    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions

    from edgetts.profiling.device import detect
    from edgetts.profiling.device_profile import DeviceProfile

    home = tmp_path / "home"
    shutil.copytree(tiny_service_home[0], home)
    measured = tiny_service_home[1]  # saved under this device's id: no quick profile in the child
    device_id = detect().id
    DeviceProfile({"id": device_id}, measured.conditions, measured.models).save(
        home / "profiles" / f"{device_id}.yaml"
    )
    env = {
        **os.environ, "EDGETTS_HOME": str(home), "ROS_DOMAIN_ID": str(DOMAIN_ID),
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
    }  # fmt: skip
    args = ["--models", "llama-fp32", "--eval", "sums", "--threads", "1", "--ros-args", "-r", "__ns:=/cmd"]
    log = (tmp_path / "stderr.txt").open("w+")
    process = subprocess.Popen([sys.executable, "-m", "edgetts", "ros2", *args], env=env, stderr=log)
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=DOMAIN_ID, signal_handler_options=SignalHandlerOptions.NO)
    client = Client(context, "/cmd")
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(client.node)
    try:
        deadline = time.monotonic() + WAIT_S
        while not client.questions.get_subscription_count():
            assert process.poll() is None, (tmp_path / "stderr.txt").read_text()
            assert time.monotonic() < deadline, "the node never subscribed to /cmd/question"
            time.sleep(0.1)
        threading.Thread(target=executor.spin, daemon=True).start()
        # Whether the node's answer publisher has matched our subscription cannot be seen from
        # here, so ask again (a new id) until some answer comes back; extra asks are harmless.
        answer, asked = None, 0
        while answer is None:
            assert time.monotonic() < deadline, "no answer from the node"
            asked += 1
            client.ask({"id": f"cmd{asked}", "question": QUESTION, "latency_ms": 30_000})
            try:
                answer = client.answers.get(timeout=5)
            except queue.Empty:
                continue
        assert answer["id"].startswith("cmd") and "error" not in answer, answer
        assert answer["config"]["model"] == "llama-fp32"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            code = "killed"
        executor.shutdown(timeout_sec=10)
        client.node.destroy_node()
        rclpy.try_shutdown(context=context)
    text = (tmp_path / "stderr.txt").read_text()
    assert code == 0, text
    assert "profile --quick" not in text and "serving /cmd/question" in text and "Traceback" not in text
