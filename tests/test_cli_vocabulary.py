"""One way to name models on the command line: ``-m/--model NAME`` where one store entry is
meant, ``--models a,b`` where several are, and ``--models`` means the same on every command
(here: `plan` over a shipped published profile, which needs no model in the store)."""

from __future__ import annotations

import json

import click
from conftest import run_cli

JETSON = ("--latency", "10s", "--device", "jetson-agx-orin-64gb", "--eval", "mmlu", "--json")
SMALL = "deepseek-r1-distill-qwen-1.5b-fp16"


def frontier_models(result) -> set[str]:
    assert result.returncode == 0, result.stderr
    return {row["config"]["model"] for row in json.loads(result.stdout)["frontier"]}


def test_plan_models_keeps_to_the_named_entries(edgetts_home):
    everything = frontier_models(run_cli("plan", *JETSON, home=edgetts_home))
    assert SMALL in everything and len(everything) > 1
    only = run_cli("plan", *JETSON, "--models", SMALL, home=edgetts_home)
    assert frontier_models(only) == {SMALL}
    assert json.loads(only.stdout)["chosen"]["config"]["model"] == SMALL


def test_a_model_the_profile_lacks_is_named_in_one_line(edgetts_home):
    result = run_cli("plan", *JETSON, "--models", f"{SMALL},nope", home=edgetts_home)
    assert frontier_models(result) == {SMALL}  # the other one still plans
    missing = run_cli("plan", *JETSON, "--models", "nope", home=edgetts_home)
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert missing.stderr.strip() == (
        "error: nothing to plan with: nope: not in the profile of jetson-agx-orin-64gb "
        "(run `edgetts profile --models nope`)"
    )


def test_calibrate_names_its_model_with_an_option(edgetts_home):
    positional = run_cli("calibrate", "llama-fp32", home=edgetts_home)
    assert positional.returncode == 2 and "Missing option '--model'" in positional.stderr
    named = run_cli("calibrate", "-m", "nope", "--limit", "1", "--eval", "robotics", home=edgetts_home)
    assert named.returncode == 1 and "nope" in named.stderr and "Traceback" not in named.stderr


def _commands(group, prefix=()):
    for name, command in group.commands.items():
        yield (*prefix, name), command
        if isinstance(command, click.Group):
            yield from _commands(command, (*prefix, name))


def test_every_option_that_names_models_or_prints_json_says_so_in_its_help():
    from edgetts.cli import cli

    seen = set()
    for path, command in _commands(cli):
        for param in command.params:
            if not isinstance(param, click.Option):
                continue
            if "--json" in param.opts or "--model" in param.opts or "--models" in param.opts:
                assert param.help, f"`edgetts {' '.join(path)} {param.opts[0]}` has no help text"
                seen.add(param.opts[0] if param.opts[0] != "-m" else "--model")
            assert "--name" not in param.opts or path == ("convert",), "models are named with -m/--model"
            if "--model" in param.opts:
                assert "-m" in param.opts, f"`edgetts {' '.join(path)} --model` should also be -m"
    assert {"--json", "--model", "--models"} <= seen


def test_counts_read_as_english():
    from edgetts.planner.scheduler import Config, plural

    assert plural(1, "sample") == "1 sample" and plural(2, "thread") == "2 threads"
    assert plural(0, "busy core") == "0 busy cores"
    one = Config("m", "int4", 64, 1)
    assert one.describe() == "m, budget 64, 1 sample"
