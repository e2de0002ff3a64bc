"""The decode queue on its own: earliest deadline first, admission against the work ahead,
refusals that protect requests admitted earlier, cancellation and shutdown. The jobs here are
plain functions that wait on events, so the order of events (not timing) decides every check."""

from __future__ import annotations

import threading
import time
from concurrent.futures import CancelledError

import pytest

from edgetts.errors import DeadlineUnreachableError, EngineClosedError
from edgetts.worker import DecodeWorker

WAIT = 10  # seconds any single wait may take before the test fails instead of hanging


@pytest.fixture
def worker():
    w = DecodeWorker()
    yield w
    w.close(timeout=WAIT)


def fixed(predicted: float, fastest: float | None = None, seen: list | None = None):
    """An admit function: records the seconds it was offered, predicts ``predicted``."""

    def admit(left):
        if seen is not None:
            seen.append(left)
        return predicted, predicted if fastest is None else fastest

    return admit


def blocker(release: threading.Event, started: threading.Event | None = None, order: list | None = None):
    def run(job):
        if started is not None:
            started.set()
        if order is not None:
            order.append("blocker")
        assert release.wait(WAIT)
        return "blocked"

    return run


def record(order: list, name: str):
    def run(job):
        order.append(name)
        return name

    return run


def test_earliest_deadline_runs_first_and_no_deadline_last(worker):
    release, started, order = threading.Event(), threading.Event(), []
    now = time.perf_counter()
    first = worker.submit(now, now + 100, fixed(0.1), blocker(release, started, order))
    assert started.wait(WAIT)
    late = worker.submit(now, now + 90, fixed(0.1), record(order, "late"))
    given = worker.submit(now, None, fixed(0.1), record(order, "as given"))
    soon = worker.submit(now, now + 30, fixed(0.1), record(order, "soon"))
    release.set()
    assert [f.result(WAIT) for f in (first, late, given, soon)] == ["blocked", "late", "as given", "soon"]
    assert order == ["blocker", "soon", "late", "as given"]


def test_admission_plans_for_the_time_left_after_the_work_ahead(worker):
    release, started = threading.Event(), threading.Event()
    now = time.perf_counter()
    worker.submit(now, now + 100, fixed(5.0), blocker(release, started))
    assert started.wait(WAIT)
    worker.submit(now, now + 50, fixed(3.0), record([], "queued"))
    seen: list = []
    worker.submit(now, now + 60, fixed(1.0, seen=seen), record([], "third"))
    # 60 s from arrival, minus at most 5 s of the running request and 3 s of the queued one.
    assert len(seen) == 1 and 60 - 5 - 3 - 1 < seen[0] <= 60 - 5 - 3 + 0.01
    before: list = []
    worker.submit(now, now + 40, fixed(1.0, seen=before), record([], "earlier"))
    assert 40 - 5 - 1 < before[0] <= 40 - 5 + 0.01, "a request due sooner does not wait for later ones"
    release.set()


def test_a_request_that_would_make_an_admitted_one_late_is_refused(worker):
    release, started = threading.Event(), threading.Event()
    now = time.perf_counter()
    worker.submit(now, now + 100, fixed(2.0), blocker(release, started))
    assert started.wait(WAIT)
    promised = worker.submit(now, now + 10, fixed(5.0, fastest=6.0), record([], "promised"))
    with pytest.raises(DeadlineUnreachableError, match="request admitted earlier") as refused:
        worker.submit(now, now + 5, fixed(3.0), record([], "pushy"))
    assert refused.value.code == "deadline_unreachable" and refused.value.fastest_ms == 3000
    worker.submit(now, now + 5, fixed(1.0), record([], "modest"))  # 10 - 2 - 1 >= 6: fits
    # A best-effort request that cannot make its deadline anyway protects nothing.
    worker.submit(now, now + 20, fixed(30.0), record([], "hopeless"))
    worker.submit(now, now + 15, fixed(4.0), record([], "fine"))
    release.set()
    assert promised.result(WAIT) == "promised"


def test_an_admit_that_raises_queues_nothing(worker):
    def refuse(left):
        raise DeadlineUnreachableError("nothing fits", fastest_ms=12.0)

    now = time.perf_counter()
    with pytest.raises(DeadlineUnreachableError):
        worker.submit(now, now + 0.01, refuse, record([], "never"))
    assert worker.pending() == 0


def test_cancel_in_the_queue_frees_the_place_and_a_running_job_sees_its_event(worker):
    started, seen_cancel = threading.Event(), threading.Event()
    now = time.perf_counter()

    def running(job):
        started.set()
        while not job.cancel.is_set():
            time.sleep(0.001)
        seen_cancel.set()
        raise CancelledError

    busy = worker.submit(now, now + 100, fixed(5.0), running)
    assert started.wait(WAIT)
    queued = worker.submit(now, now + 100, fixed(50.0), record([], "queued"))
    assert worker.pending() == 2
    assert queued.cancel() and queued.cancelled()
    assert worker.pending() == 1, "a cancelled request leaves the queue at once"
    seen: list = []
    worker.submit(now, now + 100, fixed(1.0, seen=seen), record([], "next"))
    assert seen[0] > 100 - 5 - 1, "the cancelled request's predicted time no longer counts"
    busy.cancel()
    assert seen_cancel.wait(WAIT)
    with pytest.raises(CancelledError):
        busy.result(WAIT)
    with pytest.raises(CancelledError):
        queued.result(WAIT)


def test_close_fails_the_queue_and_refuses_new_requests():
    worker = DecodeWorker()
    release, started = threading.Event(), threading.Event()
    now = time.perf_counter()
    worker.submit(now, None, fixed(1.0), blocker(release, started))
    assert started.wait(WAIT)
    queued = worker.submit(now, None, fixed(1.0), record([], "queued"))
    release.set()
    worker.close(timeout=WAIT)
    with pytest.raises(EngineClosedError):
        queued.result(WAIT)
    with pytest.raises(EngineClosedError):
        worker.submit(now, None, fixed(1.0), record([], "late"))


def test_a_failing_job_fails_its_future_and_the_worker_lives_on(worker):
    def boom(job):
        raise ValueError("model exploded")

    now = time.perf_counter()
    failed = worker.submit(now, None, fixed(0.0), boom)
    with pytest.raises(ValueError, match="exploded"):
        failed.result(WAIT)
    assert worker.submit(now, None, fixed(0.0), record([], "after")).result(WAIT) == "after"


def test_a_finished_request_is_not_work_ahead_of_the_next(worker):
    seen: list = []
    now = time.perf_counter()
    first = worker.submit(now, now + 100, fixed(50.0), record([], "quick"))  # predicted 50 s, takes none
    assert first.result(WAIT) == "quick"
    worker.submit(time.perf_counter(), time.perf_counter() + 10, fixed(1.0, seen=seen), record([], "next"))
    assert seen[0] > 9.9, "the finished request's predicted remainder still counted"


def test_a_starting_request_may_use_only_what_the_queue_behind_it_can_spare(worker):
    release, started = threading.Event(), threading.Event()
    now = time.perf_counter()
    worker.submit(now, now + 100, fixed(5.0), blocker(release, started))
    assert started.wait(WAIT)
    allowances = {}

    def note(name):
        def run(job):
            allowances[name] = job.allowance_s
            return name

        return run

    # "roomy" (due in 60 s) was admitted planning 3 s; "behind" (due in 62 s, 4 s) counts on it.
    roomy = worker.submit(now, now + 60, fixed(3.0), note("roomy"))
    behind = worker.submit(now, now + 62, fixed(4.0), note("behind"))
    release.set()
    assert roomy.result(WAIT) == "roomy" and behind.result(WAIT) == "behind"
    assert allowances["behind"] is None, "nobody waits behind the last one"
    # At its start "roomy" may take what leaves "behind" its 4 s: about 62 - 4 = 58 s from now.
    assert 57 < allowances["roomy"] <= 58
