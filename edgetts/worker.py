"""One decode worker that owns the CPU, and the earliest-deadline-first queue in front of it.

Why one worker: two ONNX Runtime sessions decoding at once on a small CPU slow each other down
(each sizes its thread pool for the whole machine) and falsify the profile every plan rests on.
So every request — ``Engine.solve`` / ``Engine.submit``, the HTTP server, the ROS 2 node — goes
through this queue, and one thread runs the requests one at a time, earliest deadline first
(requests without a deadline after every request with one, first come first served).

Admission, at arrival: the request is planned for the time its deadline leaves after the work
ahead of it (the running request's predicted remainder and every queued request due before it);
if nothing fits it is refused at once (:class:`DeadlineUnreachableError`), never answered late.
It is refused as well when taking it would leave a queued request that is due later less time
than that request's fastest configuration needs: that request was promised first. When a request
starts, it is planned again for the time actually left (the queue may have run faster or slower
than predicted), but for no more than the requests queued behind it can spare (``allowance_s``);
the engine runs the fastest configuration under the deadline guard when nothing fits any more,
so an admitted request is always answered.
"""

from __future__ import annotations

import threading
import time
from bisect import insort
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

from .errors import DeadlineUnreachableError, EngineClosedError

# What admission plans with when the work ahead already uses up the deadline: the planner needs
# a positive target, and this one only the impossible meets (so the refusal names the fastest).
NO_TIME_S = 1e-6


class JobFuture(Future):
    """A request's future whose ``cancel`` also stops it while it decodes (within one step):
    a running request then fails with :class:`RequestCancelledError`, a subclass of the
    ``CancelledError`` a request cancelled in the queue raises."""

    def __init__(self, cancel: threading.Event):
        super().__init__()
        self.cancel_event = cancel

    def cancel(self) -> bool:
        self.cancel_event.set()
        return super().cancel()


@dataclass(eq=False)
class Job:
    """A request in the queue. Times are ``time.perf_counter()`` seconds; ``deadline`` is absolute
    (arrival + latency), None for a request that runs as given."""

    arrival: float
    deadline: float | None
    run: Callable[[Job], object]  # the work, on the worker thread; its return value is the result
    predicted_s: float  # how long it is expected to hold the CPU (upper quantile)
    fastest_s: float  # the least time it can still be answered in
    seq: int
    future: JobFuture = field(init=False)
    cancel: threading.Event = field(default_factory=threading.Event)
    started: float | None = None
    # Set at start: how long it may run so that every request queued behind it keeps the time
    # it was admitted with (None: nobody with a deadline waits behind it).
    allowance_s: float | None = None

    def __post_init__(self) -> None:
        self.future = JobFuture(self.cancel)

    @property
    def key(self) -> tuple[float, int]:
        return (float("inf") if self.deadline is None else self.deadline, self.seq)

    @property
    def queued_ms(self) -> float | None:
        return None if self.started is None else 1000 * (self.started - self.arrival)


Admit = Callable[[float | None], tuple[float, float]]


class DecodeWorker:
    """The queue and its one thread (started on first use, a daemon: a process can exit with
    requests still queued, as a server's shutdown does after :meth:`close`)."""

    def __init__(self, name: str = "edgetts-decode"):
        self._cond = threading.Condition()
        self._queue: list[Job] = []
        self._running: Job | None = None
        self._closed = False
        self._seq = 0
        # Held while a request runs; background work (a re-profile, reprofile.py) holds it for
        # each of its short measurements, so the two never share the CPU.
        self.gate = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(
        self, arrival: float, deadline: float | None, admit: Admit, run: Callable[[Job], object]
    ) -> Future:
        """Queue a request that arrived at ``arrival``. ``admit(seconds_left)`` plans it for the
        time its deadline leaves after the work ahead (None: no deadline) and returns its
        (predicted, fastest) seconds, or raises; it runs under the queue's lock, so that two
        requests arriving together do not both count on the same free time."""
        with self._cond:
            if self._closed:
                raise EngineClosedError("the engine is closed; it takes no more requests")
            now = time.perf_counter()
            key = (float("inf") if deadline is None else deadline, self._seq)
            left = None if deadline is None else max(deadline - now - self._work_ahead(key, now), NO_TIME_S)
            predicted_s, fastest_s = admit(left)
            self._refuse_if_it_makes_others_late(key, predicted_s, fastest_s, now)
            job = Job(arrival, deadline, run, predicted_s, fastest_s, self._seq)
            self._seq += 1
            insort(self._queue, job, key=lambda j: j.key)
            job.future.add_done_callback(lambda _f, job=job: self._discard_if_cancelled(job))
            self._cond.notify_all()  # all: wait_idle's callers wait on the same condition
            return job.future

    def pending(self) -> int:
        """Requests waiting or running (the server's queue-depth gauge)."""
        with self._cond:
            return len(self._queue) + (self._running is not None)

    def wait_idle(self) -> bool:
        """Block until no request is queued or running; False once the worker is closed."""
        with self._cond:
            while (self._queue or self._running is not None) and not self._closed:
                self._cond.wait()
            return not self._closed

    def close(self, timeout: float | None = None) -> None:
        """Refuse new requests, fail the queued ones, cancel the running one, stop the thread."""
        with self._cond:
            self._closed = True
            queued, self._queue = self._queue, []
            if self._running is not None:
                self._running.cancel.set()
            self._cond.notify_all()
        for job in queued:
            if job.future.set_running_or_notify_cancel():
                job.future.set_exception(EngineClosedError("the engine closed before the request ran"))
        self._thread.join(timeout)

    def _work_ahead(self, key: tuple[float, int], now: float) -> float:
        """Seconds of predicted work before a request with ``key`` would start."""
        ahead = 0.0
        running = self._running
        if running is not None and running.started is not None:
            # The guard ends the running request by its deadline at the latest.
            end = running.started + running.predicted_s
            if running.deadline is not None:
                end = min(end, running.deadline)
            ahead += max(0.0, end - now)
        return ahead + sum(j.predicted_s for j in self._queue if j.key < key and not j.future.cancelled())

    def _refuse_if_it_makes_others_late(
        self, key: tuple[float, int], predicted_s: float, fastest_s: float, now: float
    ) -> None:
        for job in self._queue:
            if job.key < key or job.deadline is None or job.future.cancelled():
                continue
            before = job.deadline - now - self._work_ahead(job.key, now)
            left = before - predicted_s
            # Only a promise that still holds is protected: a best-effort request already past
            # meeting its deadline does not block the requests due before it.
            if left < job.fastest_s <= before:
                raise DeadlineUnreachableError(
                    "the queue ahead of this request's deadline is full: running it would make a "
                    f"request admitted earlier miss its deadline (it needs {1000 * job.fastest_s:.0f} ms "
                    f"and would have {1000 * max(left, 0):.0f} ms); retry with a longer latency",
                    fastest_ms=1000 * fastest_s,
                )

    def _allowance(self, now: float) -> float | None:
        """The longest the request starting now may run while each queued request with a
        deadline still has the time its admission planned for. Without this cap a request
        re-planned at its start (the queue ran faster than predicted) would take all the time
        to its own deadline and starve the requests admitted behind it."""
        allowance, ahead = None, 0.0
        for job in self._queue:
            if job.future.cancelled():
                continue
            if job.deadline is not None:
                room = job.deadline - now - ahead - job.predicted_s
                allowance = room if allowance is None else min(allowance, room)
            ahead += job.predicted_s
        return allowance

    def _discard_if_cancelled(self, job: Job) -> None:
        """A request cancelled while queued leaves the queue at once (its time is free again)."""
        if job.future.cancelled():
            with self._cond:
                if job in self._queue:
                    self._queue.remove(job)
                    self._cond.notify_all()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                job = self._queue.pop(0)
                if not job.future.set_running_or_notify_cancel():
                    continue
                job.started = time.perf_counter()
                job.allowance_s = self._allowance(job.started)
                self._running = job
            try:
                with self.gate:
                    result, failure = job.run(job), None
            except Exception as err:  # the caller's failure, delivered to the caller; the worker lives on
                result, failure = None, err
            # Free the worker before the caller learns the result: a caller that sends its next
            # request at once must not find this one still counted as work ahead.
            with self._cond:
                self._running = None
                self._cond.notify_all()
            if failure is not None:
                job.future.set_exception(failure)
            else:
                job.future.set_result(result)
