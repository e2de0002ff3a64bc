"""``edgetts ros2``: serve questions to a ROS 2 graph (see edgetts/serving/ros2.py for the topics
and the action). Setup is what ``edgetts run`` does on first use (convert the ladder, profile it
--quick), done before the node subscribes, so that no question waits for it."""

from __future__ import annotations

import click


@click.command(
    "ros2",
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
@click.option("--models", "names", help="Plan over these store entries (default: the built-in ladder).")
@click.option("--threads", type=click.IntRange(min=1), help="Intra-op threads (default: physical cores).")
@click.option("--no-warm", "no_warm", is_flag=True, help="Accept questions before loading the models.")
@click.option("--eval", "eval_set", help="Whose calibration to maximise (default: gsm8k).")
@click.argument("ros_args", nargs=-1, type=click.UNPROCESSED)
def ros2(names: str | None, threads: int | None, no_warm: bool, eval_set: str | None, ros_args) -> None:
    """Run the edgetts ROS 2 node: topics question -> answer (JSON in std_msgs/String) and the
    action solve, in namespace /edgetts. ROS_ARGS go to rclpy as they are, e.g.
    `edgetts ros2 --ros-args -r __ns:=/robot1 -p models:=qwen2.5-coder-0.5b-int4`; the options
    above, where given, win over the same `-p` parameters."""
    from .serving.ros2 import require_rclpy, spin

    require_rclpy()  # the one-line install hint before any setup work
    if ros_args and ros_args[0] != "--ros-args":
        raise click.UsageError(f"unexpected argument {ros_args[0]!r}: ROS arguments follow --ros-args")
    from rclpy.parameter import Parameter

    overrides = []
    if names is not None:
        overrides.append(Parameter("models", value=names))
    if threads is not None:
        overrides.append(Parameter("threads", value=threads))
    if no_warm:
        overrides.append(Parameter("warm", value=False))
    if eval_set is not None:
        overrides.append(Parameter("eval", value=eval_set))
    spin(make_engine, list(ros_args), parameter_overrides=overrides)


def make_engine(settings):
    """The node's Engine: the named models, or the built-in ladder converted on first use, with
    this device's profile (measured --quick where missing)."""
    from .cli_profile import setup_engine

    return setup_engine(settings.models, settings.threads, settings.eval_name)
