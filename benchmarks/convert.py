"""Conversion time and size per precision for the built-in models (run by hand, not in CI).

    python benchmarks/convert.py [--models smollm2-135m,gemma3-270m,qwen2.5-coder-0.5b]
                                 [--quants fp32,fp16,int8,int4,fp8] [--output table|csv|json|md]

Each conversion runs from the PyPI GGUF package to a verified store entry in a scratch store
(deleted afterwards). Ratios are against fp32 of the same model, measured in the same run.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone

import psutil


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default="smollm2-135m,gemma3-270m,qwen2.5-coder-0.5b")
    parser.add_argument("--quants", default="fp32,fp16,int8,int4,fp8")
    parser.add_argument("--output", choices=("table", "csv", "json", "md"), default="md")
    args = parser.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    scratch = tempfile.mkdtemp(prefix="edgetts-bench-convert-")
    os.environ["EDGETTS_HOME"] = scratch
    from edgetts import store
    from edgetts.converters.pipeline import convert
    from edgetts.converters.quantize import QuantSettings
    from edgetts.errors import EdgeTTSError

    rows = []
    for model in args.models.split(","):
        fp32 = None
        for quant in args.quants.split(","):
            start = time.perf_counter()
            try:
                entry = convert(model, QuantSettings(type=quant), install=False)
            except EdgeTTSError as err:
                rows.append({"model": model, "quant": quant, "seconds": None, "mb": None, "error": str(err)})
                print(f"{model} {quant}: {err}", file=sys.stderr)
                continue
            seconds = time.perf_counter() - start
            mb = entry.size_bytes / 1e6
            if quant == "fp32":
                fp32 = (seconds, mb)
            rows.append(
                {
                    "model": model,
                    "quant": quant,
                    "seconds": round(seconds, 1),
                    "mb": round(mb, 1),
                    "size_vs_fp32": round(mb / fp32[1], 3) if fp32 else None,
                    "time_vs_fp32": round(seconds / fp32[0], 2) if fp32 else None,
                }
            )
            print(f"{model} {quant}: {seconds:.1f} s, {mb:.1f} MB", file=sys.stderr)
            store.remove(entry.name)

    cores = psutil.cpu_count(logical=False)
    conditions = (
        f"{datetime.now(timezone.utc):%Y-%m-%d}, {platform.machine()}, {cores} cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB, Python {platform.python_version()}"
    )
    columns = ["model", "quant", "seconds", "mb", "size_vs_fp32", "time_vs_fp32"]
    if args.output == "json":
        print(json.dumps({"conditions": conditions, "rows": rows}, indent=2))
    elif args.output == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns + ["error"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        print(buffer.getvalue(), end="")
    else:
        from rich.console import Console
        from rich.table import Table

        if args.output == "md":
            print(f"Measured {conditions}.\n")
            print("| model | quant | convert s | size MB | size / fp32 | time / fp32 |")
            print("| --- | --- | ---: | ---: | ---: | ---: |")
            for r in rows:
                cells = [r.get(c) for c in columns]
                print("| " + " | ".join("–" if c is None else str(c) for c in cells) + " |")
        else:
            table = Table(title=f"edgetts convert ({conditions})")
            for column in columns:
                table.add_column(column)
            for r in rows:
                table.add_row(*("–" if r.get(c) is None else str(r.get(c)) for c in columns))
            Console().print(table)


if __name__ == "__main__":
    main()
