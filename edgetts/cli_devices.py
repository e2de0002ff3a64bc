"""`edgetts devices`: what this machine was detected as, which energy meter it gets and why, and
the device specs edgetts ships. Registered on the main group with ``cli.add_command``."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from edgetts.devices import DeviceSpec, load_spec, spec_ids
from edgetts.profiling.device import describe, detect
from edgetts.profiling.energy import select_meter


@click.command("devices")
@click.option("--json", "as_json", is_flag=True, help="Print the device, meter and specs as JSON.")
@click.option(
    "--root",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=Path("/"),
    show_default=True,
    help="Read /proc, /sys and /etc under this folder (a tree recorded on another machine).",
)
def devices(as_json: bool, root: Path) -> None:
    """Show the detected device, its energy meter, and the known device specs."""
    info = detect(root)
    spec = load_spec(info.spec_id) if info.spec_id else None
    meter = select_meter(info, spec, root)
    specs = [load_spec(spec_id) for spec_id in spec_ids()]
    if as_json:
        payload = {
            "device": describe(info),
            "meter": {"source": meter.source, "notes": meter.notes},
            "specs": [_spec_row(s) for s in specs],
        }
        click.echo(json.dumps(payload, indent=2))
        return
    console = Console()
    console.print(f"[bold]{info.id}[/]  {info.name}")
    console.print(f"  spec: {info.spec_id or 'none (no shipped spec fits this machine)'}")
    console.print(f"  cpu: {info.cpu_model}, {info.physical_cores} cores / {info.logical_cores} threads")
    console.print(f"  memory: {info.memory_bytes / 2**30:.1f} GiB")
    if info.gpu is not None:
        major, minor = info.gpu.compute_capability
        console.print(f"  gpu: {info.gpu.name} (compute capability {major}.{minor})")
    if info.kind == "jetson":
        clocks = {True: "on", False: "off", None: "unknown"}[info.jetson_clocks]
        console.print(
            f"  power mode: {info.power_mode or 'unknown'}, jetson_clocks {clocks}, L4T {info.l4t or '?'}"
        )
    console.print(f"  energy meter: [bold]{meter.source}[/]")
    for note in meter.notes:
        console.print(f"    {note}", highlight=False)
    table = Table(title="device specs (edgetts.devices)")
    table.add_column("id", no_wrap=True)
    for column in ("GiB", "GB/s", "precisions", "power modes", "sensor"):
        table.add_column(column)
    for s in specs:
        table.add_row(
            s.id,
            "-" if s.memory_bytes is None else f"{s.memory_bytes / 2**30:g}",
            "-" if s.memory_bandwidth_gbps is None else f"{s.memory_bandwidth_gbps:g}",
            ", ".join(s.precisions),
            ", ".join(m.name for m in s.power_modes) or "-",
            s.power_sensors.kind,
        )
    console.print(table)


def _spec_row(spec: DeviceSpec) -> dict[str, object]:
    return {
        "id": spec.id,
        "name": spec.name,
        "kind": spec.kind,
        "memory_bytes": spec.memory_bytes,
        "memory_bandwidth_gbps": spec.memory_bandwidth_gbps,
        "precisions": list(spec.precisions),
        "power_modes": [m.name for m in spec.power_modes],
        "power_sensors": spec.power_sensors.kind,
    }
