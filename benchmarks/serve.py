"""Deadlines under concurrent clients: `edgetts serve`'s deadline queue against a plain
first-come-first-served server, in the same run, on the default ladder; and the cold CLI.

    python benchmarks/serve.py [--clients 1,2,4] [--questions 25] [--from 600] [--seed 0]
                               [--cold 10] [--out bench-out/serve]

Each of C clients (threads here with one httpx connection each; the server runs in its own
process, as on a robot) sends its own --questions GSM8K test
questions one after another (questions --from onwards: 0–499 calibrated the tables, 500–599 are
the planner bench's), each with a deadline drawn from {0.5, 1, 2, 5, 10} s (seeded), to
``POST /v1/solve`` of a real server on a loopback port:

- ``edgetts``: the app as shipped (earliest deadline first, admission against the work ahead,
  re-planned at start, refused with 503 ``deadline_unreachable`` when nothing fits);
- ``fcfs``: the same app and engine with the queue replaced by arrival order, each request
  planned once at arrival as if it were alone and never refused (what a server without
  deadline scheduling does; the deadline guard still forces answers at the deadline).

Per server and client count: the share of admitted requests answered on time, the share refused,
p50 / p95 / p99 of latency ÷ deadline (latency from the request's arrival, measured by the
server), accuracy over all requests (a refusal counts as wrong) and the time a refusal takes
(client round trip). Targets (issue 15): ≥ 99 % of admitted requests on time at 1, 2 and 4
clients; every refusal in < 50 ms; p99 latency ≤ 1.0 × deadline.

``--cold N`` also runs ``edgetts run --latency 2s --json`` in N fresh processes (questions --from
onwards) and reports start-up, latency and whether every one answered. Writes report.md and
records.json to --out. Run it on a quiet machine: the profile it plans with is this device's.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import psutil

from edgetts import __version__, evals
from edgetts.answer import Answer, Prediction
from edgetts.engine import MIN_DEADLINE_S, Engine
from edgetts.first_use import setup_engine
from edgetts.profiling.device import detect
from edgetts.serving.http import create_app
from edgetts.tts.answer_types import resolve
from edgetts.worker import Job

DEADLINES_S = (0.5, 1.0, 2.0, 5.0, 10.0)


class FirstComeFirstServed(Engine):
    """The baseline: requests run in arrival order, each planned once at arrival for its whole
    latency as if it were alone, never refused; the guard still cuts at the deadline."""

    def submit(  # the keywords of Engine.submit the server passes; streaming ones are unused here
        self,
        question,
        latency,
        *,
        energy=None,
        models=None,
        arrival=None,
        answer_type=None,
        choices=(),
        seed=0,
        **_unused,
    ):
        arrival = time.perf_counter() if arrival is None else arrival
        deadline = arrival + latency
        chosen = self.plan(question, latency, energy, True, models)[0].chosen
        kind = resolve(question, answer_type, tuple(choices))

        def run(job: Job) -> Answer:
            config = chosen.config
            answer = self.generate(
                question,
                model=config.model,
                budget=config.budget,
                samples=config.samples,
                seed=seed,
                deadline=max(deadline - time.perf_counter(), MIN_DEADLINE_S),
                cancel=job.cancel,
                answer_type=kind,
            )
            answer.latency_ms = 1000 * (time.perf_counter() - arrival)
            answer.deadline_ms, answer.queued_ms = 1000 * latency, job.queued_ms
            answer.planned = Prediction(round(1000 * chosen.latency_s, 1), chosen.accuracy)
            return answer

        # No deadline in the queue: arrival order, and nothing counts as work ahead.
        return self._decode_worker().submit(arrival, None, lambda _left: (0.0, 0.0), run)


def client_run(url: str, client: int, problems, seed: int, records: list, lock: threading.Lock) -> None:
    rng = random.Random(seed * 1000 + client)
    with httpx.Client(base_url=url, timeout=60) as http:
        for problem in problems:
            deadline = rng.choice(DEADLINES_S)
            start = time.perf_counter()
            response = http.post(
                "/v1/solve", json={"question": problem.question, "latency_ms": 1000 * deadline}
            )
            rtt = time.perf_counter() - start
            data = response.json()
            answer = data.get("answer")
            record = {
                "client": client,
                "index": problem.index,
                "deadline_s": deadline,
                "status": response.status_code,
                "code": (data.get("error") or {}).get("code"),
                "message": (data.get("error") or {}).get("message"),
                "rtt_s": rtt,
                "latency_ms": data.get("latency_ms"),
                "on_time": data.get("on_time"),
                "answer": answer,
                "correct": answer == problem.reference,
                "config": data.get("config"),
            }
            with lock:
                records.append(record)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(kind: str) -> tuple[subprocess.Popen, str]:
    """The server in its own process, as a robot runs it: the clients' threads here share no GIL
    with its event loop and decode worker. ``edgetts`` is `edgetts serve` itself."""
    port = free_port()
    if kind == "edgetts":
        command = [sys.executable, "-m", "edgetts", "serve", "--port", str(port), "--log-level", "warning"]
    else:
        command = [sys.executable, __file__, "--baseline-server", str(port)]
    process = subprocess.Popen(command)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    with httpx.Client(base_url=url) as http:
        while True:
            assert process.poll() is None and time.monotonic() < deadline, f"{kind} server did not start"
            try:
                if http.get("/health").status_code == 200:
                    return process, url
            except httpx.TransportError:
                pass
            time.sleep(0.1)


def serve_baseline(port: int) -> None:
    import uvicorn

    base = setup_engine(None, None, say=print)
    engine = FirstComeFirstServed(threads=base.threads, profile=base.device_profile(), eval_name="gsm8k")
    uvicorn.run(create_app(engine), host="127.0.0.1", port=port, log_level="warning")


def run_server(kind: str, clients: int, problems, per_client: int, seed: int) -> list[dict]:
    records: list[dict] = []
    lock = threading.Lock()
    process, url = start_server(kind)
    try:
        threads = [
            threading.Thread(
                target=client_run,
                args=(url, c, problems[c * per_client : (c + 1) * per_client], seed, records, lock),
            )
            for c in range(clients)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(60)
    return records


def summarise(records: list[dict]) -> dict:
    refused = [r for r in records if r["status"] == 503]
    admitted = [r for r in records if r["status"] != 503]
    on_time = [r for r in admitted if r["on_time"]]
    ratio = np.array(
        [r["latency_ms"] / (1000 * r["deadline_s"]) for r in admitted if r["latency_ms"] is not None]
    )
    refuse_ms = np.array([1000 * r["rtt_s"] for r in refused])

    def pct(values: np.ndarray, q: float) -> float | None:
        return None if not values.size else round(float(np.percentile(values, q)), 3)

    return {
        "requests": len(records),
        "admitted": len(admitted),
        "refused": len(refused),
        "on_time_of_admitted": None if not admitted else round(len(on_time) / len(admitted), 4),
        "refused_share": round(len(refused) / len(records), 4) if records else None,
        "ratio_p50": pct(ratio, 50),
        "ratio_p95": pct(ratio, 95),
        "ratio_p99": pct(ratio, 99),
        "accuracy": round(sum(r["correct"] for r in records) / len(records), 4) if records else None,
        "refuse_ms_p99": pct(refuse_ms, 99),
        "refuse_ms_max": None if not refuse_ms.size else round(float(refuse_ms.max()), 1),
        "no_answer": sum(r["status"] == 502 for r in records),
    }


def cold_cli(problems, count: int) -> list[dict]:
    out = []
    for problem in problems[:count]:
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "edgetts", "run", problem.question, "--latency", "2s", "--json"],
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - start
        data = json.loads(done.stdout) if done.stdout.strip().startswith("{") else {}
        out.append(
            {
                "index": problem.index,
                "rc": done.returncode,
                "answer": data.get("answer"),
                "correct": data.get("answer") == problem.reference,
                "latency_ms": data.get("latency_ms"),
                "startup_ms": data.get("startup_ms"),
                "wall_s": round(wall, 2),
                "stderr": done.stderr.strip()[-200:],
            }
        )
    return out


def load_now() -> str:
    return f"load {psutil.getloadavg()[0]:.2f}, cpu {psutil.cpu_percent(interval=1.0):.0f} %"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="1,2,4")
    parser.add_argument("--questions", type=int, default=25, help="per client")
    parser.add_argument("--from", dest="start", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cold", type=int, default=10, help="cold `edgetts run --latency 2s` runs (0: none)")
    parser.add_argument("--out", default="bench-out/serve")
    parser.add_argument("--baseline-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_server:
        serve_baseline(args.baseline_server)
        return
    counts = [int(c) for c in args.clients.split(",")]
    problems = evals.load("gsm8k", args.start, max(counts) * args.questions)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    began = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results: dict[str, dict] = {}
    records: dict[str, list] = {}
    before = load_now()
    setup_engine(None, None, say=print)  # first-use conversion and profile, before any server starts
    for kind in ("edgetts", "fcfs"):
        for clients in counts:
            key = f"{kind} x{clients}"
            print(f"{key}: {clients * args.questions} requests", flush=True)
            records[key] = run_server(kind, clients, problems, args.questions, args.seed)
            results[key] = summarise(records[key])
            print(json.dumps(results[key]), flush=True)
    cold = cold_cli(evals.load("gsm8k", args.start, args.cold), args.cold) if args.cold else []
    after = load_now()
    meta = {
        "date": began,
        "machine": f"{detect().id} ({platform.machine()}, {psutil.cpu_count()} cores)",
        "python": platform.python_version(),
        "edgetts": __version__,
        "load_before": before,
        "load_after": after,
        "command": " ".join(sys.argv),
    }
    (out / "records.json").write_text(
        json.dumps({"meta": meta, "results": results, "records": records, "cold": cold}, indent=1)
    )
    lines = [
        f"# serve benchmark, {began}",
        "",
        f"`{meta['command']}` on {meta['machine']}; {before} before, {after} after.",
        "",
        "| server | clients | requests | on time (admitted) | refused | p50 / p95 / p99 latency÷deadline | "
        "accuracy | refusal p99 / max ms | no answer |",
        "| --- | ---: | ---: | ---: | ---: | --- | ---: | --- | ---: |",
    ]
    for key, r in results.items():
        kind, clients = key.split(" x")
        on_time = "–" if r["on_time_of_admitted"] is None else f"{100 * r['on_time_of_admitted']:.1f} %"
        lines.append(
            f"| {kind} | {clients} | {r['requests']} | {on_time} | {100 * r['refused_share']:.0f} % | "
            f"{r['ratio_p50']} / {r['ratio_p95']} / {r['ratio_p99']} | {100 * r['accuracy']:.0f} % | "
            f"{r['refuse_ms_p99'] or '–'} / {r['refuse_ms_max'] or '–'} | {r['no_answer']} |"
        )
    if cold:
        startup = [c["startup_ms"] / 1000 for c in cold if c["startup_ms"] is not None]
        latency = [c["latency_ms"] for c in cold if c["latency_ms"] is not None]
        answered = sum(c["answer"] is not None for c in cold)
        lines += [
            "",
            f"Cold `edgetts run --latency 2s`: {answered} of {len(cold)} answered "
            f"({sum(c['correct'] for c in cold)} correct); start-up {min(startup, default=0):.1f}–"
            f"{max(startup, default=0):.1f} s, not counted; latency {min(latency, default=0):.0f}–"
            f"{max(latency, default=0):.0f} ms.",
        ]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
