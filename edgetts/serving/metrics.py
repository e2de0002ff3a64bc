"""What the server counts, in Prometheus' text format (prometheus-client), on its own registry so
that two apps in one process (the tests) do not share counters."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# Latency and queue time as fractions of a second to a minute: robots' deadlines.
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    def __init__(self, pending) -> None:
        """``pending()``: requests waiting or running in the decode queue, read at each scrape."""
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "edgetts_requests", "Requests by endpoint and outcome", ["endpoint", "outcome"],
            registry=self.registry,
        )  # fmt: skip
        self.deadlines = Counter(
            "edgetts_deadlines", "Requests with a deadline that answered in time (hit) or not (miss)",
            ["result"], registry=self.registry,
        )  # fmt: skip
        self.refused = Counter(
            "edgetts_refused",
            "Requests refused at admission, by error code",
            ["code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "edgetts_latency_seconds", "Time from arrival to answer", buckets=BUCKETS, registry=self.registry
        )
        self.queue = Histogram(
            "edgetts_queue_seconds", "Time from arrival to the start of decoding", buckets=BUCKETS,
            registry=self.registry,
        )  # fmt: skip
        self.tokens = Counter("edgetts_tokens", "Tokens by kind", ["kind"], registry=self.registry)
        self.energy = Counter(
            "edgetts_energy_joules", "Measured energy of answered requests", registry=self.registry
        )
        depth = Gauge("edgetts_queue_depth", "Requests waiting or running", registry=self.registry)
        depth.set_function(pending)

    def answered(self, endpoint: str, data: dict) -> None:
        """Count one answered request from its ``Answer.to_json()``."""
        on_time = data.get("on_time")
        outcome = "no_answer" if data.get("answer") is None else ("late" if on_time is False else "ok")
        self.requests.labels(endpoint, outcome).inc()
        if on_time is not None:
            self.deadlines.labels("hit" if on_time else "miss").inc()
        self.latency.observe(float(data["latency_ms"]) / 1000)
        if data.get("queued_ms") is not None:
            self.queue.observe(float(data["queued_ms"]) / 1000)
        tokens = data.get("tokens") or {}
        self.tokens.labels("prompt").inc(int(tokens.get("prompt", 0)))
        self.tokens.labels("completion").inc(sum(tokens.get("think", [])) + sum(tokens.get("answer", [])))
        if data.get("energy_j") is not None:
            self.energy.inc(float(data["energy_j"]))

    def failed(self, endpoint: str, code: str) -> None:
        self.requests.labels(endpoint, code).inc()
        if code in ("deadline_unreachable", "infeasible"):
            self.refused.labels(code).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
